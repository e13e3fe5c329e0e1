"""The Numba CPU backend: the reference's math with its hot loops compiled (im2col/col2im,
fused bias + activation, max-pool with its argmax, activation gradients) and batch norm folded
into the weights for inference (``scale / (sqrt(var) + 1e-6)``, Darknet's denominator).
GEMMs go to BLAS through NumPy, outside the compiled loops, so Numba's threads and BLAS's
never run at once. Layers without a kernel here use the reference; every layer is checked
against it (tests/test_layer_parity.py)."""
import os
import time

import numba
import numpy as np
from numba import njit, prange

# OpenMP worker threads spin after each parallel loop and fight OpenBLAS's threads for the
# two cores (measured here: 460 ms vs 260 ms for yolov2-voc); the workqueue layer does not.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

from .numpy_ref import NumpyBackend

F = np.float32
ACTIVATION_CODES = {"linear": 0, "leaky": 1, "relu": 2, "logistic": 3}


@njit(parallel=True, cache=True, fastmath=False)
def im2col(x, size, stride, pad, out_h, out_w, cols):
    """darknet im2col_cpu for one image: x [C, H, W] -> cols [C*size*size, out_h*out_w]."""
    c, h, w = x.shape
    for row in prange(c * size * size):
        ch = row // (size * size)
        ky = (row // size) % size
        kx = row % size
        for oy in range(out_h):
            iy = oy * stride + ky - pad
            for ox in range(out_w):
                ix = ox * stride + kx - pad
                if 0 <= iy < h and 0 <= ix < w:
                    cols[row, oy * out_w + ox] = x[ch, iy, ix]
                else:
                    cols[row, oy * out_w + ox] = 0.0


@njit(parallel=True, cache=True)
def col2im_add(cols, size, stride, pad, out_h, out_w, dx):
    """darknet col2im_cpu: add the columns back onto dx [C, H, W] (each channel in a thread)."""
    c, h, w = dx.shape
    for ch in prange(c):
        for ky in range(size):
            for kx in range(size):
                row = (ch * size + ky) * size + kx
                for oy in range(out_h):
                    iy = oy * stride + ky - pad
                    if iy < 0 or iy >= h:
                        continue
                    for ox in range(out_w):
                        ix = ox * stride + kx - pad
                        if 0 <= ix < w:
                            dx[ch, iy, ix] += cols[row, oy * out_w + ox]


@njit(inline="always")
def activate(v, code):
    """darknet's linear (0), leaky (1), relu (2) and logistic (3) on one value."""
    if code == 1:
        return v if v > 0 else np.float32(.1) * v
    if code == 2:
        return v if v > 0 else np.float32(0)
    if code == 3:
        return np.float32(1) / (np.float32(1) + np.exp(-v))
    return v


@njit(parallel=True, cache=True)
def bias_activate(y, bias, code):
    """y [K, P] += bias[k], then darknet's activation, in place."""
    k, p = y.shape
    for i in prange(k):
        b = bias[i]
        for j in range(p):
            y[i, j] = activate(y[i, j] + b, code)


@njit(parallel=True, cache=True)
def maxpool(x, size, stride, before, out_h, out_w, out, argmax):
    """darknet forward_maxpool_layer: window from -padding/2, first maximum wins,
    cells outside count as -FLT_MAX; argmax holds the input's flat index per output."""
    n, c, h, w = x.shape
    lowest = np.float32(-3.4028234663852886e38)
    for nc in prange(n * c):
        b = nc // c
        ch = nc % c
        for oy in range(out_h):
            for ox in range(out_w):
                best = lowest
                best_i = -1
                for ky in range(size):
                    iy = oy * stride - before + ky
                    for kx in range(size):
                        ix = ox * stride - before + kx
                        if 0 <= iy < h and 0 <= ix < w:
                            v = x[b, ch, iy, ix]
                            if v > best:
                                best = v
                                best_i = (nc * h + iy) * w + ix
                out[b, ch, oy, ox] = best
                argmax[b, ch, oy, ox] = best_i


@njit(parallel=True, cache=True)
def maxpool_inference(x, size, stride, before, out_h, out_w, out):
    """The same maxima without the argmax: cells outside the input are clamped to the edge,
    which repeats an in-range value of the window and so cannot change its maximum."""
    n, c, h, w = x.shape
    for nc in prange(n * c):
        b = nc // c
        ch = nc % c
        for oy in range(out_h):
            for ox in range(out_w):
                best = np.float32(-3.4028234663852886e38)
                for ky in range(size):
                    iy = min(max(oy * stride - before + ky, 0), h - 1)
                    for kx in range(size):
                        ix = min(max(ox * stride - before + kx, 0), w - 1)
                        v = x[b, ch, iy, ix]
                        if v > best:
                            best = v
                out[b, ch, oy, ox] = best


@njit(cache=True)
def scatter_add(target, index, values):
    for i in range(index.size):
        if index[i] >= 0:
            target[index[i]] += values[i]


# Winograd F(4x4, 3x3) (Lavin & Gray): Y = A^T [(G g G^T) * (B^T d B)] A on 6x6 input tiles.
# B^T and A^T are written out in _bt and winograd_output; G transforms the filters once.
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=np.float64)


def winograd_filters(weights):
    """U[36, K, C] = G g G^T for every 3x3 filter (float64 math)."""
    u = np.einsum("ai,kcij,bj->abkc", G, weights.astype(np.float64), G)
    return np.ascontiguousarray(u.reshape(36, *weights.shape[:2]), dtype=F)


F2, F4, F5, F8 = np.float32(2), np.float32(4), np.float32(5), np.float32(8)


@njit(inline="always", fastmath=True)
def _bt(d0, d1, d2, d3, d4, d5, out, k):
    """B^T applied to a 6-vector, into column k of out (F(4,3)'s input transform, written out)."""
    out[0, k] = F4 * d0 - F5 * d2 + d4
    out[1, k] = -F4 * d1 - F4 * d2 + d3 + d4
    out[2, k] = F4 * d1 - F4 * d2 - d3 + d4
    out[3, k] = -F2 * d1 - d2 + F2 * d3 + d4
    out[4, k] = F2 * d1 - d2 - F2 * d3 + d4
    out[5, k] = F4 * d1 - F5 * d3 + d5


@njit(parallel=True, cache=True, fastmath=True)
def winograd_input(x, tiles_h, tiles_w, v):
    """V[36, C, T] = B^T d B for every 6x6 tile d (stride 4, starting at -1: pad 1)."""
    c, h, w = x.shape
    for ch in prange(c):
        d = np.zeros((6, 6), dtype=np.float32)
        tmp = np.empty((6, 6), dtype=np.float32)
        res = np.empty((6, 6), dtype=np.float32)
        for ty in range(tiles_h):
            for tx in range(tiles_w):
                for i in range(6):
                    iy = ty * 4 - 1 + i
                    for j in range(6):
                        ix = tx * 4 - 1 + j
                        d[i, j] = x[ch, iy, ix] if 0 <= iy < h and 0 <= ix < w else np.float32(0)
                for j in range(6):            # columns: tmp = B^T d
                    _bt(d[0, j], d[1, j], d[2, j], d[3, j], d[4, j], d[5, j], tmp, j)
                for i in range(6):            # rows: res^T = B^T tmp^T
                    _bt(tmp[i, 0], tmp[i, 1], tmp[i, 2], tmp[i, 3], tmp[i, 4], tmp[i, 5], res, i)
                t = ty * tiles_w + tx
                for i in range(6):
                    for j in range(6):
                        v[i * 6 + j, ch, t] = res[j, i]


@njit(parallel=True, cache=True, fastmath=True)
def winograd_output(m, tiles_h, tiles_w, bias, code, out):
    """out[K, H, W] = A^T m A per tile (written out), cropped, plus bias and the activation.
    The inner loops run over tiles, whose entries lie side by side in m[36, K, T]."""
    k_count, h, w = out.shape
    tiles = tiles_h * tiles_w
    for k in prange(k_count):
        tmp = np.empty((4, 6, tiles), dtype=np.float32)
        for j in range(6):                     # A^T on the columns, all tiles at once
            for t in range(tiles):
                m0, m1, m2 = m[j, k, t], m[6 + j, k, t], m[12 + j, k, t]
                m3, m4, m5 = m[18 + j, k, t], m[24 + j, k, t], m[30 + j, k, t]
                tmp[0, j, t] = m0 + m1 + m2 + m3 + m4
                tmp[1, j, t] = m1 - m2 + F2 * m3 - F2 * m4
                tmp[2, j, t] = m1 + m2 + F4 * m3 + F4 * m4
                tmp[3, j, t] = m1 - m2 + F8 * m3 - F8 * m4 + m5
        b = bias[k]
        for i in range(4):                     # then on the rows, into the output map
            for t in range(tiles):
                oy = (t // tiles_w) * 4 + i
                if oy >= h:
                    continue
                ox = (t % tiles_w) * 4
                r0, r1, r2 = tmp[i, 0, t], tmp[i, 1, t], tmp[i, 2, t]
                r3, r4, r5 = tmp[i, 3, t], tmp[i, 4, t], tmp[i, 5, t]
                v0 = r0 + r1 + r2 + r3 + r4
                v1 = r1 - r2 + F2 * r3 - F2 * r4
                v2 = r1 + r2 + F4 * r3 + F4 * r4
                v3 = r1 - r2 + F8 * r3 - F8 * r4 + r5
                out[k, oy, ox] = activate(v0 + b, code)
                if ox + 1 < w:
                    out[k, oy, ox + 1] = activate(v1 + b, code)
                if ox + 2 < w:
                    out[k, oy, ox + 2] = activate(v2 + b, code)
                if ox + 3 < w:
                    out[k, oy, ox + 3] = activate(v3 + b, code)


class NumbaBackend(NumpyBackend):
    name = "numba"

    def __init__(self):
        self.folded = {}
        self.choice = {}            # (layer, input shape) -> "winograd" | "direct"
        self.workspace = np.empty(0, dtype=F)

    def prepare(self, net):
        self.folded = {}            # parameters changed: refold on the next inference

    def update(self, net, lr, batch, momentum, decay):
        super().update(net, lr, batch, momentum, decay)
        self.folded = {}

    def _work(self, rows, cols):
        if self.workspace.size < rows * cols:
            self.workspace = np.empty(rows * cols, dtype=F)
        return self.workspace[:rows * cols].reshape(rows, cols)

    def _fold(self, layer):
        if layer.index not in self.folded:
            self.folded[layer.index] = layer.folded()
        return self.folded[layer.index]

    def _columns(self, layer, image):
        """im2col of one image (a view of the image itself for a plain 1x1 conv)."""
        _, oh, ow = layer.out_shape
        if layer.size == 1 and layer.stride == 1 and layer.padding == 0:
            return image.reshape(image.shape[0], -1)
        cols = self._work(image.shape[0] * layer.size * layer.size, oh * ow)
        im2col(image, layer.size, layer.stride, layer.padding, oh, ow, cols)
        return cols

    def _convolve(self, layer, x, weights):
        """[N, K, oh, ow] = weights [K, C*k*k] @ columns, per image and group."""
        n = x.shape[0]
        k, oh, ow = layer.out_shape
        g = layer.groups
        out = np.empty((n, k, oh * ow), dtype=F)
        cg, kg = x.shape[1] // g, k // g
        for b in range(n):
            for j in range(g):
                cols = self._columns(layer, np.ascontiguousarray(x[b, j * cg:(j + 1) * cg]))
                np.dot(weights[j * kg:(j + 1) * kg], cols, out=out[b, j * kg:(j + 1) * kg])
        return out

    def forward_layer(self, layer, inputs, state):
        kind = layer.kind
        if kind == "convolutional":
            return self._conv_forward(layer, inputs[0], state)
        if kind == "maxpool":
            return self._maxpool_forward(layer, inputs[0], state)
        return super().forward_layer(layer, inputs, state)

    def _winograd_ready(self, layer):
        """3x3, stride 1, pad 1, no groups, and enough channels to pay for the transforms."""
        return (layer.size == 3 and layer.stride == 1 and layer.padding == 1 and layer.groups == 1
                and layer.in_shape[0] >= 16 and layer.filters >= 16)

    def _winograd(self, layer, x, code):
        if ("winograd", layer.index) not in self.folded:
            w, b = self._fold(layer)
            self.folded[("winograd", layer.index)] = (winograd_filters(w.reshape(layer.filters, -1, 3, 3)), b)
        u, b = self.folded[("winograd", layer.index)]
        n, c, h, w = x.shape
        tiles_h, tiles_w = (h + 3) // 4, (w + 3) // 4
        out = np.empty((n, layer.filters, h, w), dtype=F)
        v = np.empty((36, c, tiles_h * tiles_w), dtype=F)
        for i in range(n):
            winograd_input(np.ascontiguousarray(x[i]), tiles_h, tiles_w, v)
            m = np.matmul(u, v)
            winograd_output(m, tiles_h, tiles_w, b, code, out[i])
        return out

    def _conv_forward(self, layer, x, state):
        n = x.shape[0]
        code = ACTIVATION_CODES.get(layer.activation)
        if state.train or code is None:   # batch statistics, or an activation not compiled here
            out = self._convolve(layer, x, layer.params["weights"].reshape(layer.filters, -1))
            return layer.finish(out.reshape(n, *layer.out_shape), state)
        if not self._winograd_ready(layer):
            return self._direct(layer, x, code)
        # Winograd wins on large maps; on small ones (13x13: 16 tiles) its 36 thin gemms
        # lose to one im2col gemm. The first call times both for this shape and keeps the faster.
        key = (layer.index, x.shape)
        if key not in self.choice:
            timings = {}
            for name, run in (("winograd", self._winograd), ("direct", self._direct)):
                run(layer, x, code)               # compiles, folds, transforms the filters
                timings[name] = np.inf
                for _ in range(2):                # the better of two: one can be disturbed
                    start = time.perf_counter()
                    out = run(layer, x, code)
                    timings[name] = min(timings[name], time.perf_counter() - start)
            self.choice[key] = min(timings, key=timings.get)
            return out
        return self._winograd(layer, x, code) if self.choice[key] == "winograd" else self._direct(layer, x, code)

    def _direct(self, layer, x, code):
        w, b = self._fold(layer)
        out = self._convolve(layer, x, w)
        for image in out:
            bias_activate(image, b, code)
        return out.reshape(x.shape[0], *layer.out_shape)

    def _maxpool_forward(self, layer, x, state):
        n, c = x.shape[:2]
        _, oh, ow = layer.out_shape
        out = np.empty((n, c, oh, ow), dtype=F)
        if not state.train:
            maxpool_inference(np.ascontiguousarray(x), layer.size, layer.stride, layer.padding // 2, oh, ow, out)
            return out
        argmax = np.empty((n, c, oh, ow), dtype=np.int64)
        maxpool(np.ascontiguousarray(x), layer.size, layer.stride, layer.padding // 2, oh, ow, out, argmax)
        state.saved_for(layer)["flat_argmax"] = argmax
        return out

    def backward_layer(self, layer, inputs, output, delta, input_deltas, state):
        if layer.kind == "maxpool" and "flat_argmax" in state.saved_for(layer):
            if input_deltas[0] is not None:
                scatter_add(input_deltas[0].reshape(-1), state.saved_for(layer)["flat_argmax"].reshape(-1),
                            np.ascontiguousarray(delta).reshape(-1))
            return
        if layer.kind == "convolutional" and layer.groups == 1:
            return self._conv_backward(layer, inputs[0], output, delta, input_deltas, state)
        super().backward_layer(layer, inputs, output, delta, input_deltas, state)

    def _conv_backward(self, layer, x, output, delta, input_deltas, state):
        """darknet backward_convolutional_layer with compiled im2col/col2im and BLAS gemms."""
        p, u = layer.params, layer.updates
        layer.delta_to_gemm(delta, output, state)
        n = x.shape[0]
        k, oh, ow = layer.out_shape
        wmat = p["weights"].reshape(k, -1)
        grad = u["weights"].reshape(k, -1)
        for b in range(n):
            d = np.ascontiguousarray(delta[b].reshape(k, oh * ow))
            cols = self._columns(layer, np.ascontiguousarray(x[b]))
            grad += d @ cols.T
            if input_deltas[0] is None:
                continue
            dcols = wmat.T @ d
            if layer.size == 1:     # darknet: the 1x1 gemm writes the input delta (beta 0)
                if layer.stride == 1 and layer.padding == 0:
                    input_deltas[0][b] = dcols.reshape(input_deltas[0][b].shape)
                else:
                    input_deltas[0][b] = 0
                    col2im_add(dcols, 1, layer.stride, layer.padding, oh, ow, input_deltas[0][b])
            else:
                col2im_add(dcols, layer.size, layer.stride, layer.padding, oh, ow, input_deltas[0][b])
