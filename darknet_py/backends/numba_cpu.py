"""The Numba CPU backend: the reference's math with its hot loops compiled (im2col/col2im,
fused bias + activation, max-pool with its argmax, activation gradients) and batch norm folded
into the weights for inference (``scale / (sqrt(var) + 1e-6)``, Darknet's denominator).
Inference keeps one set of threads busy: BLAS limited to one thread, every gemm called from
compiled code in Numba's threads or in tasks on a small thread pool (Winograd by equal shares
of tiles, im2col band by band), each a piece sized for the core's cache. Training calls BLAS
through NumPy, with its own threads, between the compiled loops. A first layer's few channels
convolve directly, without im2col, in both. Layers without a kernel here use the reference;
every layer is checked against it (tests/test_layer_parity.py)."""
import contextlib
import functools
import hashlib
import itertools
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

# Numba's OpenMP threads start a parallel loop in ~20 us, its workqueue's in 70-100 us
# (measured here; an inference launches ~60). Passive: OpenMP's threads sleep as soon as a
# loop ends instead of spinning beside BLAS's threads in training (spinning: a tiny-voc
# training step took 2.2 s instead of 1.7). The workqueue where libgomp cannot be loaded.
if "NUMBA_THREADING_LAYER" not in os.environ:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "workqueue", "tbb"]
    numba.config.THREADING_LAYER = "default"

from .numpy_ref import NumpyBackend
from . import numba_warmup

import scipy.linalg.cython_blas  # noqa: F401  the BLAS Numba calls, loaded before threadpoolctl looks
from threadpoolctl import ThreadpoolController

_blas_controller = None          # made on first use: it lists the BLAS libraries loaded by then


def keep_large_allocations():
    """glibc serves arrays above 32 MB with fresh mmap pages, which the kernel zeroes on
    every training step (measured: 64,000 page faults and ~15% of a yolov2-tiny-voc batch-8
    step). Raising the mmap and trim thresholds lets freed activations be reused instead;
    the price is that the process keeps its peak heap. Both values must fit a C int: 4 GB
    passed as the trim threshold wrapped to 0 and trimmed the heap after every free
    (measured: 16,770 page faults per yolov2-voc inference, none with 1 GB)."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)      # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)      # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


keep_large_allocations()

F = np.float32
ACTIVATION_CODES = {"linear": 0, "leaky": 1, "relu": 2, "logistic": 3}


@njit(inline="always")
def im2col_line(plane, row, size, stride, pad, oy, dest):
    """One output row's stretch of darknet im2col_cpu's row ``row`` (channel, ky, kx) from
    plane [C, H, W]: dest[ox] = plane[ch, oy*stride + ky - pad, ox*stride + kx - pad], 0 outside."""
    _, h, w = plane.shape
    ch, ky, kx = row // (size * size), (row // size) % size, row % size
    iy = oy * stride + ky - pad
    if iy < 0 or iy >= h:
        dest[:] = 0
        return
    line = plane[ch, iy]
    for ox in range(dest.shape[0]):
        ix = ox * stride + kx - pad
        dest[ox] = line[ix] if 0 <= ix < w else np.float32(0)


@njit(parallel=True, cache=True)
def im2col(x, size, stride, pad, out_h, out_w, cols):
    """darknet im2col_cpu for every image, side by side: x [N, C, H, W] ->
    cols [C*size*size, N*out_h*out_w]."""
    n, c = x.shape[:2]
    pixels = out_h * out_w
    for row in prange(c * size * size):
        for b in range(n):
            for oy in range(out_h):
                base = b * pixels + oy * out_w
                im2col_line(x[b], row, size, stride, pad, oy, cols[row, base:base + out_w])


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


@njit(inline="always")
def bias_activate_line(dest, src, b, code):
    """dest[i] = activate(src[i] + b, code), the activation chosen once, outside the loop: in
    the Winograd output rows and the few-channel convolution a test of the code per value
    kept LLVM from vectorising. The plain loops of bias_activate and convolve_band were no
    faster through it (A/B) and cost ~0.25 s more compiling, so they keep theirs."""
    if code == 1:
        for i in range(dest.size):
            dest[i] = activate(src[i] + b, 1)
    elif code == 2:
        for i in range(dest.size):
            dest[i] = activate(src[i] + b, 2)
    elif code == 3:
        for i in range(dest.size):
            dest[i] = activate(src[i] + b, 3)
    else:
        for i in range(dest.size):
            dest[i] = src[i] + b


@njit(parallel=True, cache=True)
def bias_activate(y, bias, code):
    """y [K, P] += bias[k], then darknet's activation, in place."""
    k, p = y.shape
    for i in prange(k):
        b = bias[i]
        for j in range(p):
            y[i, j] = activate(y[i, j] + b, code)


@njit(inline="always")
def activation_gradient(y, code):
    """darknet's gradient of linear (0), leaky (1), relu (2) and logistic (3), from the output."""
    if code == 1:
        return np.float32(1) if y > 0 else np.float32(.1)
    if code == 2:
        return np.float32(1) if y > 0 else np.float32(0)
    if code == 3:
        return (np.float32(1) - y) * y
    return np.float32(1)


# The per-channel float64 sums may be reassociated (vectorised): summing float32 values in
# float64 in another order moves the result by ~1e-16 relative, far below float32's rounding.
@njit(cache=True, fastmath={"reassoc"})
def channel_sum(x, ch):
    total = 0.0
    for b in range(x.shape[0]):
        for i in range(x.shape[2]):
            total += x[b, ch, i]
    return total


@njit(cache=True, fastmath={"reassoc"})
def channel_squares(x, ch, m):
    """sum of float32 (x - m)^2 in float64, as variance_cpu squares before it sums."""
    total = 0.0
    for b in range(x.shape[0]):
        for i in range(x.shape[2]):
            d = x[b, ch, i] - m
            total += d * d
    return total


@njit(parallel=True, cache=True)
def batchnorm_train_forward(x, scales, biases, rolling_mean, rolling_variance, code,
                            x_norm, mean, variance, out):
    """batchnorm.forward_train + add_bias + activation over x [N, C, P], one channel per task:
    float64 sums cast to float32, the unbiased variance, the 1% rolling update and
    ``/ (sqrt(var) + .000001f)``, each rounded as the reference rounds it."""
    n, c, size = x.shape
    count = np.float32(n * size)
    for ch in prange(c):
        m = np.float32(channel_sum(x, ch)) / count
        v = np.float32(channel_squares(x, ch, m)) / (count - np.float32(1))
        mean[ch], variance[ch] = m, v
        rolling_mean[ch] = np.float32(.99) * rolling_mean[ch] + np.float32(.01) * m
        rolling_variance[ch] = np.float32(.99) * rolling_variance[ch] + np.float32(.01) * v
        denominator = np.sqrt(v) + np.float32(.000001)
        scale, bias = scales[ch], biases[ch]
        for b in range(n):
            for i in range(size):
                normalized = (x[b, ch, i] - m) / denominator
                x_norm[b, ch, i] = normalized
                out[b, ch, i] = activate(normalized * scale + bias, code)


@njit(cache=True, fastmath={"reassoc"})
def channel_delta_sums(delta, output, code, x, x_norm, ch, m, scale):
    """delta *= activation gradient, *= scale, in place on channel ch; returns the float64 sums
    of delta (before the scale), delta * x_norm, and of scaled delta and scaled delta * (x - m)."""
    sum_delta = sum_scaled = sum_scaled_delta = sum_centered = 0.0
    for b in range(delta.shape[0]):
        for i in range(delta.shape[2]):
            d = delta[b, ch, i] * activation_gradient(output[b, ch, i], code)
            sum_delta += d
            sum_scaled += d * x_norm[b, ch, i]
            d = d * scale
            sum_scaled_delta += d
            sum_centered += d * (x[b, ch, i] - m)
            delta[b, ch, i] = d
    return sum_delta, sum_scaled, sum_scaled_delta, sum_centered


@njit(parallel=True, cache=True)
def batchnorm_train_backward(delta, output, code, x, x_norm, mean, variance, scales,
                             bias_updates, scale_updates):
    """The activation gradient, then batchnorm.backward, in place on delta [N, C, P]:
    backward_bias, backward_scale_cpu, scale_bias, mean_delta_cpu, variance_delta_cpu
    and normalize_delta_cpu (``sqrt(var + .00001f)``), rounded as the reference rounds."""
    n, c, size = delta.shape
    count = np.float32(n * size)
    for ch in prange(c):
        m, v = mean[ch], variance[ch]
        sum_delta, sum_scaled, sum_scaled_delta, sum_centered = channel_delta_sums(
            delta, output, code, x, x_norm, ch, m, scales[ch])
        bias_updates[ch] += np.float32(sum_delta)
        scale_updates[ch] += np.float32(sum_scaled)
        std = np.sqrt(v + np.float32(.00001))
        mean_delta = np.float32(sum_scaled_delta) * (np.float32(-1) / std)
        variance_delta = np.float32(sum_centered) * (np.float32(-.5) * (v + np.float32(.00001)) ** np.float32(-1.5))
        for b in range(n):
            for i in range(size):
                delta[b, ch, i] = (delta[b, ch, i] / std
                                   + variance_delta * np.float32(2) * (x[b, ch, i] - m) / count
                                   + mean_delta / count)


@njit(parallel=True, cache=True)
def bias_backward(delta, output, code, bias_updates):
    """The activation gradient in place on delta [N, K, P], then backward_bias."""
    n, k, size = delta.shape
    for ch in prange(k):
        total = 0.0
        for b in range(n):
            for i in range(size):
                d = delta[b, ch, i] * activation_gradient(output[b, ch, i], code)
                delta[b, ch, i] = d
                total += d
        bias_updates[ch] += np.float32(total)


@njit(parallel=True, cache=True)
def maxpool(x, size, stride, before, out_h, out_w, out, argmax):
    """darknet forward_maxpool_layer: window from -padding/2, first maximum wins,
    cells outside count as -FLT_MAX; argmax (None in inference) gets the input's flat index
    of each maximum."""
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
                if argmax is not None:
                    argmax[b, ch, oy, ox] = best_i


@njit(parallel=True, cache=True)
def maxpool_tiled(x, size, out, argmax):
    """maxpool for windows that tile the input exactly (size == stride, no padding inside the
    map): the same maxima and first-maximum indices without the bounds tests."""
    n, c, h, w = x.shape
    out_h, out_w = h // size, w // size
    lowest = np.float32(-3.4028234663852886e38)
    for nc in prange(n * c):
        b = nc // c
        ch = nc % c
        plane = x[b, ch]
        base = nc * h * w
        for oy in range(out_h):
            for ox in range(out_w):
                best = lowest
                best_i = -1
                for ky in range(size):
                    iy = oy * size + ky
                    for kx in range(size):
                        v = plane[iy, ox * size + kx]
                        if v > best:
                            best = v
                            best_i = base + iy * w + ox * size + kx
                out[b, ch, oy, ox] = best
                if argmax is not None:
                    argmax[b, ch, oy, ox] = best_i


@njit(inline="always")
def first_maximum(a, b, c, d):
    """darknet's scan of a 2x2 window in its order from -FLT_MAX, only ``>`` picking (NaN
    never wins), as selects: vectorisable."""
    best = np.float32(-3.4028234663852886e38)
    best = a if a > best else best
    best = b if b > best else best
    best = c if c > best else best
    return d if d > best else best


@njit(inline="always")
def maxpool_2x2_line(top, bottom, line, stride, first, last):
    """line[ox] for ox in [first, last), windows whose two columns lie inside the map: with
    the stride a constant, 3x faster on 416..104-wide maps than indices clamped to the map."""
    for ox in range(first, last):
        left = ox * stride
        line[ox] = first_maximum(top[left], top[left + 1], bottom[left], bottom[left + 1])


@njit(cache=True, nogil=True)
def maxpool_2x2_task(x, stride, out, tasks, task):
    """maxpool without the argmax (inference) for 2x2 windows starting inside the map (no
    padding before), task ``task``'s run of the planes. A cell past the map's edge is read as
    its neighbour inside, which cannot change a maximum. Tasks, not a prange loop: this
    kernel compiled in 1.9 s as a parallel loop, 0.7 s as a task."""
    n, c, h, w = x.shape
    _, _, out_h, out_w = out.shape
    inside = max(0, min(out_w, (w - 2) // stride + 1))      # windows with both columns in the map
    planes = n * c
    for nc in range(task * planes // tasks, (task + 1) * planes // tasks):
        plane = x[nc // c, nc % c]
        result = out[nc // c, nc % c]
        for oy in range(out_h):
            top, bottom, line = plane[oy * stride], plane[min(oy * stride + 1, h - 1)], result[oy]
            if stride == 2:        # a constant: YOLO's pools, the loads a pattern the vectoriser knows
                maxpool_2x2_line(top, bottom, line, 2, 0, inside)
            else:
                maxpool_2x2_line(top, bottom, line, stride, 0, inside)
            for ox in range(inside, out_w):
                left = ox * stride
                right = min(left + 1, w - 1)
                line[ox] = first_maximum(top[left], top[right], bottom[left], bottom[right])


@njit(cache=True)
def scatter_add(target, index, values):
    for i in range(index.size):
        if index[i] >= 0:
            target[index[i]] += values[i]


@njit(cache=True, nogil=True)
def convolve_band(x, weights, bias, code, size, stride, pad, out, tasks, task):
    """im2col + gemm + bias + activation of one band of one image: task ``task`` of ``tasks``
    takes its share of the rows of out [K, oh, ow], lays out their columns (darknet
    im2col_cpu's rows), multiplies them by weights [K, C*size*size] (BLAS in this thread) and
    writes the band. The columns and products stay in cache instead of crossing memory whole."""
    c = x.shape[0]
    k_count, oh, ow = out.shape
    oy0 = task * oh // tasks
    rows = (task + 1) * oh // tasks - oy0
    cols = np.empty((c * size * size, rows * ow), dtype=np.float32)
    for row in range(c * size * size):
        for r in range(rows):
            im2col_line(x, row, size, stride, pad, oy0 + r, cols[row, r * ow:(r + 1) * ow])
    m = np.empty((k_count, rows * ow), dtype=np.float32)
    np.dot(weights, cols, m)
    for k in range(k_count):
        b = bias[k]
        for r in range(rows):
            dest = out[k, oy0 + r]
            for ox in range(ow):
                dest[ox] = activate(m[k, r * ow + ox] + b, code)


@njit(inline="always")
def padded_rows(x, oy, rows):
    """rows[ch, ky, 1:W + 1] = x[ch, oy - 1 + ky] (zeros above and below the map; the first and
    last column stay the zeros of the padding). Element by element: slice assignments cost
    ~1.5 s of compiling in convolve_few_channels."""
    c, h, w = x.shape
    for ch in range(c):
        for ky in range(3):
            line, iy = rows[ch, ky], oy - 1 + ky
            if 0 <= iy < h:
                src = x[ch, iy]
                for i in range(w):
                    line[i + 1] = src[i]
            else:
                for i in range(w + 2):
                    line[i] = 0


@njit(cache=True, nogil=True, fastmath=True)
def convolve_few_channels(x, weights, bias, code, out, tasks, task):
    """A 3x3, stride 1, pad 1 convolution of x [C, H, W] with few channels (an image's: 27
    products a pixel make a thin gemm, and im2col's columns are 9x the image), task ``task``
    of ``tasks`` taking its share of the rows of out [K, H, W]: per output row, each filter's
    row summed channel by channel from three zero-padded input rows, each term a vector
    along the row, then bias and activation. weights [K, C, 3, 3]."""
    c, h, w = x.shape
    rows = np.zeros((c, 3, w + 2), dtype=np.float32)
    for oy in range(task * h // tasks, (task + 1) * h // tasks):
        padded_rows(x, oy, rows)
        for k in range(out.shape[0]):
            dest = out[k, oy]
            for i in range(w):
                dest[i] = 0
            for ch in range(c):
                f, r0, r1, r2 = weights[k, ch], rows[ch, 0], rows[ch, 1], rows[ch, 2]
                f00, f01, f02, f10, f11, f12 = f[0, 0], f[0, 1], f[0, 2], f[1, 0], f[1, 1], f[1, 2]
                f20, f21, f22 = f[2, 0], f[2, 1], f[2, 2]
                for i in range(w):
                    dest[i] += (f00 * r0[i] + f01 * r0[i + 1] + f02 * r0[i + 2] + f10 * r1[i] + f11 * r1[i + 1]
                                + f12 * r1[i + 2] + f20 * r2[i] + f21 * r2[i + 1] + f22 * r2[i + 2])
            bias_activate_line(dest, dest, bias[k], code)


@njit(cache=True, nogil=True, fastmath=True)
def weight_gradient_few_channels(x, delta, grad, tasks, task):
    """grad [K, C, 3, 3] += the weights' gradient of convolve_few_channels over a batch, x [N,
    C, H, W], delta [N, K, H, W], for task ``task``'s run of the filters: each row of delta
    dotted with the three shifted padded input rows of each channel and kernel row (darknet:
    delta @ im2col's columns transposed, without the columns, 9x the images), the rows' sums
    added in float64."""
    n, c, h, w = x.shape
    k_count = delta.shape[1]
    k0, k1 = task * k_count // tasks, (task + 1) * k_count // tasks
    rows = np.zeros((c, 3, w + 2), dtype=np.float32)
    sums = np.zeros((k1 - k0, c, 3, 3), dtype=np.float64)
    for b in range(n):
        for oy in range(h):
            padded_rows(x[b], oy, rows)
            for k in range(k0, k1):
                d = delta[b, k, oy]
                for ch in range(c):
                    for ky in range(3):
                        r = rows[ch, ky]
                        s0, s1, s2 = np.float32(0), np.float32(0), np.float32(0)
                        for i in range(w):
                            s0 += d[i] * r[i]
                            s1 += d[i] * r[i + 1]
                            s2 += d[i] * r[i + 2]
                        sums[k - k0, ch, ky, 0] += s0
                        sums[k - k0, ch, ky, 1] += s1
                        sums[k - k0, ch, ky, 2] += s2
    for k in range(k0, k1):
        for ch in range(c):
            for ky in range(3):
                for kx in range(3):
                    grad[k, ch, ky, kx] += np.float32(sums[k - k0, ch, ky, kx])


@njit(parallel=True, cache=True)
def gemm_rows(a, b, out, parts):
    """out = a @ b in ``parts`` runs of rows of a as equal as the rows allow, one task each, BLAS
    called in the task's thread (a run of rows of a C-ordered matrix is contiguous: Numba's
    np.dot copies any other layout)."""
    rows = a.shape[0]
    for i in prange(parts):
        first, last = i * rows // parts, (i + 1) * rows // parts
        np.dot(a[first:last], b, out[first:last])


@njit(parallel=True, cache=True)
def matmul_rows(a, b, out, parts):
    """out[p] = a[p] @ b[p] for every p, each in ``parts`` runs of rows of a[p], one task each."""
    rows = a.shape[1]
    for task in prange(a.shape[0] * parts):
        p, i = task // parts, task % parts
        first, last = i * rows // parts, (i + 1) * rows // parts
        np.dot(a[p, first:last], b[p], out[p, first:last])


# Winograd F(4x4, 3x3) (Lavin & Gray): Y = A^T [(G g G^T) * (B^T d B)] A on 6x6 input tiles.
# B^T and A^T are written out in the row transforms below; G transforms the filters once.
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=np.float64)


@njit(parallel=True, cache=True)
def transform_filters(weights, g, u):
    """u[a*t + b, k, c] = (g w g^T)[a, b] for every 3x3 filter w = weights[k, c], in float64."""
    k_count, c_count = weights.shape[:2]
    t = g.shape[0]
    for kc in prange(k_count * c_count):
        k = kc // c_count
        c = kc % c_count
        w = weights[k, c].astype(np.float64)
        for a in range(t):
            r0 = g[a, 0] * w[0, 0] + g[a, 1] * w[1, 0] + g[a, 2] * w[2, 0]     # (g w)[a, :]
            r1 = g[a, 0] * w[0, 1] + g[a, 1] * w[1, 1] + g[a, 2] * w[2, 1]
            r2 = g[a, 0] * w[0, 2] + g[a, 1] * w[1, 2] + g[a, 2] * w[2, 2]
            for b in range(t):
                u[a * t + b, k, c] = np.float32(r0 * g[b, 0] + r1 * g[b, 1] + r2 * g[b, 2])


def winograd_filters(weights, g=G):
    """U[t*t, K, C] = g w g^T for every 3x3 filter w (float64 math); t = 6 for F(4x4, 3x3)."""
    u = np.empty((len(g) ** 2, *weights.shape[:2]), dtype=F)
    transform_filters(np.ascontiguousarray(weights, dtype=F), g, u)
    return u


F2, F4, F5, F8 = np.float32(2), np.float32(4), np.float32(5), np.float32(8)


@njit(inline="always")
def image_row(x, ch, iy, zeros):
    """Row iy of channel ch, or zeros above and below the map (pad 1)."""
    if iy < 0 or iy >= x.shape[1]:
        return zeros
    return x[ch, iy]


@njit(cache=True, fastmath=True)
def winograd4_input_row(x, ch, ty, tx0, tx1, v, base, cols, zeros):
    """v[36, ch, base:base + tx1 - tx0] = B^T d B for the 6x6 tiles d (stride 4, from -1: pad 1)
    tx0..tx1 - 1 of row ty of tiles. B^T first runs down the six rows along the tiles' columns
    (cols[r, j] = (B^T d)[r] at image column 4*tx0 - 1 + j, contiguous loops), then along each
    tile's six columns: no per-tile gather (2-2.7x faster than gathering the tiles first on
    26..104-wide maps). cols, zeros: winograd_scratch."""
    first, lo, hi = tile_columns(4, tx0, tx1, x.shape[2])
    y = ty * 4 - 1
    d0, d1, d2 = image_row(x, ch, y, zeros), image_row(x, ch, y + 1, zeros), image_row(x, ch, y + 2, zeros)
    d3, d4, d5 = image_row(x, ch, y + 3, zeros), image_row(x, ch, y + 4, zeros), image_row(x, ch, y + 5, zeros)
    c0, c1, c2, c3, c4, c5 = cols[0], cols[1], cols[2], cols[3], cols[4], cols[5]
    for j in range(lo, hi):
        i = first + j
        a0, a1, a2, a3, a4, a5 = d0[i], d1[i], d2[i], d3[i], d4[i], d5[i]
        c0[j] = F4 * a0 - F5 * a2 + a4
        c1[j] = -F4 * a1 - F4 * a2 + a3 + a4
        c2[j] = F4 * a1 - F4 * a2 - a3 + a4
        c3[j] = -F2 * a1 - a2 + F2 * a3 + a4
        c4[j] = F2 * a1 - a2 - F2 * a3 + a4
        c5[j] = F4 * a1 - F5 * a3 + a5
    pad_columns(cols, lo, hi, 4 * (tx1 - tx0) + 2)
    for r in range(6):
        cr = cols[r]
        for tx in range(tx1 - tx0):
            i = 4 * tx
            t0, t1, t2, t3, t4, t5 = cr[i], cr[i + 1], cr[i + 2], cr[i + 3], cr[i + 4], cr[i + 5]
            v[r * 6, ch, base + tx] = F4 * t0 - F5 * t2 + t4
            v[r * 6 + 1, ch, base + tx] = -F4 * t1 - F4 * t2 + t3 + t4
            v[r * 6 + 2, ch, base + tx] = F4 * t1 - F4 * t2 - t3 + t4
            v[r * 6 + 3, ch, base + tx] = -F2 * t1 - t2 + F2 * t3 + t4
            v[r * 6 + 4, ch, base + tx] = F2 * t1 - t2 - F2 * t3 + t4
            v[r * 6 + 5, ch, base + tx] = F4 * t1 - F5 * t3 + t5


@njit(inline="always")
def tile_columns(tile, tx0, tx1, w):
    """For tiles tx0..tx1 - 1 of a row: the image column of their first input column (pad 1:
    from -1) and the range [lo, hi) of their tile * (tx1 - tx0) + 2 columns inside the map."""
    first = tile * tx0 - 1
    return first, max(0, -first), min(w - first, tile * (tx1 - tx0) + 2)


@njit(inline="always")
def pad_columns(cols, lo, hi, n):
    """The columns outside the map, [0, lo) and [hi, n): zeros (pad 1, the last tile's overhang)."""
    for r in range(cols.shape[0]):
        for j in range(lo):
            cols[r, j] = 0
        for j in range(hi, n):
            cols[r, j] = 0


@njit(cache=True, fastmath=True)
def winograd4_output_columns(m, k, first, n, tmp):
    """tmp[r, j, :n] = (A^T m)[r, j] for the n tiles whose products are m[36, k, first:first + n]:
    F(4x4, 3x3)'s first pass, elementwise over tiles, so over every tile of a share or map at
    once (a row of a small map's tiles is shorter than one vector)."""
    for j in range(6):
        s0 = m[j, k, first:first + n]
        s1 = m[6 + j, k, first:first + n]
        s2 = m[12 + j, k, first:first + n]
        s3 = m[18 + j, k, first:first + n]
        s4 = m[24 + j, k, first:first + n]
        s5 = m[30 + j, k, first:first + n]
        for t in range(n):
            m0, m1, m2, m3, m4, m5 = s0[t], s1[t], s2[t], s3[t], s4[t], s5[t]
            tmp[0, j, t] = m0 + m1 + m2 + m3 + m4
            tmp[1, j, t] = m1 - m2 + F2 * m3 - F2 * m4
            tmp[2, j, t] = m1 + m2 + F4 * m3 + F4 * m4
            tmp[3, j, t] = m1 - m2 + F8 * m3 - F8 * m4 + m5


@njit(cache=True, fastmath=True)
def winograd4_output_rows(tmp, at, tx0, tx1, b, code, plane, ty):
    """plane[4*ty:4*ty + 4, 4*tx0:4*tx1] = (A^T m) A + b, activated, cropped to the plane, for
    tiles tx0..tx1 - 1 of row ty, whose first pass is tmp[:, :, at:at + tx1 - tx0]. Each output
    row is written whole, then biased and activated in one loop: the activation per value
    inside the loop over tiles, with the test for the last tile, kept it scalar (the layers on
    208..52 maps took 1.1-1.2x as long)."""
    h, w = plane.shape
    n = tx1 - tx0
    full = max(0, min(n, w // 4 - tx0))    # tiles whose 4 columns all lie inside the map
    for r in range(4):
        oy = ty * 4 + r
        if oy >= h:
            break
        row = plane[oy, 4 * tx0:min(w, 4 * tx1)]
        q0, q1, q2 = tmp[r, 0, at:at + n], tmp[r, 1, at:at + n], tmp[r, 2, at:at + n]
        q3, q4, q5 = tmp[r, 3, at:at + n], tmp[r, 4, at:at + n], tmp[r, 5, at:at + n]
        for tx in range(full):
            r0, r1, r2, r3, r4, r5 = q0[tx], q1[tx], q2[tx], q3[tx], q4[tx], q5[tx]
            row[4 * tx] = r0 + r1 + r2 + r3 + r4
            row[4 * tx + 1] = r1 - r2 + F2 * r3 - F2 * r4
            row[4 * tx + 2] = r1 + r2 + F4 * r3 + F4 * r4
            row[4 * tx + 3] = r1 - r2 + F8 * r3 - F8 * r4 + r5
        for tx in range(full, n):
            r0, r1, r2, r3, r4 = q0[tx], q1[tx], q2[tx], q3[tx], q4[tx]
            ox = 4 * tx
            row[ox] = r0 + r1 + r2 + r3 + r4
            if ox + 1 < row.size:
                row[ox + 1] = r1 - r2 + F2 * r3 - F2 * r4
            if ox + 2 < row.size:
                row[ox + 2] = r1 + r2 + F4 * r3 + F4 * r4
        bias_activate_line(row, row, b, code)


# Winograd F(2x2, 3x3): 4x4 input tiles at stride 2, 16 products per 4 outputs. Fewer savings
# than F(4x4, 3x3) but filters only 16/9 the weights: on 13x13 maps its gemms stay compute-bound.
G2 = np.array([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]], dtype=np.float64)


@njit(cache=True, fastmath=True)
def winograd2_input_row(x, ch, ty, tx0, tx1, v, base, cols, zeros):
    """v[16, ch, base:base + tx1 - tx0] = B^T d B for the 4x4 tiles d (stride 2, from -1)
    tx0..tx1 - 1 of row ty: F(2x2, 3x3), down the rows first as in winograd4_input_row."""
    first, lo, hi = tile_columns(2, tx0, tx1, x.shape[2])
    y = ty * 2 - 1
    d0, d1 = image_row(x, ch, y, zeros), image_row(x, ch, y + 1, zeros)
    d2, d3 = image_row(x, ch, y + 2, zeros), image_row(x, ch, y + 3, zeros)
    c0, c1, c2, c3 = cols[0], cols[1], cols[2], cols[3]
    for j in range(lo, hi):
        i = first + j
        a0, a1, a2, a3 = d0[i], d1[i], d2[i], d3[i]
        c0[j] = a0 - a2
        c1[j] = a1 + a2
        c2[j] = a2 - a1
        c3[j] = a1 - a3
    pad_columns(cols, lo, hi, 2 * (tx1 - tx0) + 2)
    for r in range(4):
        cr = cols[r]
        for tx in range(tx1 - tx0):
            i = 2 * tx
            t0, t1, t2, t3 = cr[i], cr[i + 1], cr[i + 2], cr[i + 3]
            v[r * 4, ch, base + tx] = t0 - t2
            v[r * 4 + 1, ch, base + tx] = t1 + t2
            v[r * 4 + 2, ch, base + tx] = t2 - t1
            v[r * 4 + 3, ch, base + tx] = t1 - t3


@njit(cache=True, fastmath=True)
def winograd2_output_columns(m, k, first, n, tmp):
    """tmp[r, j, :n] = (A^T m)[r, j], F(2x2, 3x3), as winograd4_output_columns."""
    for j in range(4):
        s0 = m[j, k, first:first + n]
        s1 = m[4 + j, k, first:first + n]
        s2 = m[8 + j, k, first:first + n]
        s3 = m[12 + j, k, first:first + n]
        for t in range(n):
            m0, m1, m2, m3 = s0[t], s1[t], s2[t], s3[t]
            tmp[0, j, t] = m0 + m1 + m2
            tmp[1, j, t] = m1 - m2 - m3


@njit(cache=True, fastmath=True)
def winograd2_output_rows(tmp, at, tx0, tx1, b, code, plane, ty):
    """plane[2*ty:2*ty + 2, 2*tx0:2*tx1] = (A^T m) A + b, activated, cropped: F(2x2, 3x3), as
    winograd4_output_rows."""
    h, w = plane.shape
    n = tx1 - tx0
    for r in range(2):
        oy = ty * 2 + r
        if oy >= h:
            break
        row = plane[oy, 2 * tx0:min(w, 2 * tx1)]
        p0, p1, p2, p3 = tmp[r, 0, at:at + n], tmp[r, 1, at:at + n], tmp[r, 2, at:at + n], tmp[r, 3, at:at + n]
        pairs = row.size // 2
        for tx in range(pairs):
            t0, t1, t2, t3 = p0[tx], p1[tx], p2[tx], p3[tx]
            row[2 * tx] = t0 + t1 + t2
            row[2 * tx + 1] = t1 - t2 - t3
        if pairs < n:
            row[2 * pairs] = p0[pairs] + p1[pairs] + p2[pairs]
        bias_activate_line(row, row, b, code)


@njit(inline="always")
def winograd_input_row(tile, x, ch, ty, tx0, tx1, v, base, cols, zeros):
    """The input pass of either variant. The tile numbers as int64s: a caller's literal 0
    would have Numba compile the rows once more for it (~1 s)."""
    tx0, tx1, base = np.int64(tx0), np.int64(tx1), np.int64(base)
    if tile == 4:
        winograd4_input_row(x, ch, ty, tx0, tx1, v, base, cols, zeros)
    else:
        winograd2_input_row(x, ch, ty, tx0, tx1, v, base, cols, zeros)


@njit(inline="always")
def row_share(t0, t1, ty, tiles_w):
    """The tiles [tx0, tx1) of row ty that lie in the share [t0, t1) of a map's tiles
    (row-major), and where the first of them sits in the share."""
    first, last = max(t0, ty * tiles_w), min(t1, (ty + 1) * tiles_w)
    return first - ty * tiles_w, last - ty * tiles_w, first - t0


@njit(inline="always")
def share_rows(t0, t1, tiles_w):
    """The rows of tiles that the share [t0, t1) of a map's tiles (row-major) touches."""
    return range(t0 // tiles_w, (t1 - 1) // tiles_w + 1)


@njit(inline="always")
def winograd_output_share(tile, m, k, first, t0, t1, tiles_w, b, code, plane, tmp):
    """Filter k's outputs over the share [t0, t1) of a map's tiles (row-major), whose products
    are m[points, k, first:first + t1 - t0]: the first pass over the whole share, the second
    row of tiles by row. tmp: winograd_scratch's, for t1 - t0 tiles. ``first`` as an int64:
    a caller's literal 0 would have Numba compile the passes once more for it (~1 s)."""
    first = np.int64(first)
    if tile == 4:
        winograd4_output_columns(m, k, first, t1 - t0, tmp)
    else:
        winograd2_output_columns(m, k, first, t1 - t0, tmp)
    for ty in share_rows(t0, t1, tiles_w):
        tx0, tx1, at = row_share(t0, t1, ty, tiles_w)
        if tile == 4:
            winograd4_output_rows(tmp, at, tx0, tx1, b, code, plane, ty)
        else:
            winograd2_output_rows(tmp, at, tx0, tx1, b, code, plane, ty)


@njit(inline="always")
def winograd_scratch(tile, tiles_w, tiles):
    """A task's buffers for the transforms (allocated once per task, not per row: up to ~10%
    of a small layer's time): the input rows down-transformed, [tile + 2, tile * tiles_w + 2],
    a row of zeros for the padding, and A^T m for a share of ``tiles`` tiles, [tile, tile + 2,
    tiles]."""
    size = tile + 2
    return (np.empty((size, tile * tiles_w + 2), dtype=np.float32), np.zeros(tile * tiles_w, dtype=np.float32),
            np.empty((tile, size, tiles), dtype=np.float32))


@njit(cache=True, nogil=True)
def winograd_input_task(tile, x, tiles_h, tiles_w, v, first, tasks, task):
    """V[points, C, first + T] = B^T d B for the tiles d of x [C, H, W] in task ``task``'s
    share of the (channel, row of tiles) pairs, a contiguous run of them: interleaved, two
    cores wrote neighbouring rows' tiles into the same cache lines. ``first`` places the
    image among a batch."""
    cols, zeros, _ = winograd_scratch(tile, tiles_w, 0)
    jobs = x.shape[0] * tiles_h
    for job in range(task * jobs // tasks, (task + 1) * jobs // tasks):
        ty = job % tiles_h
        winograd_input_row(tile, x, job // tiles_h, ty, 0, tiles_w, v, first + ty * tiles_w, cols, zeros)


@njit(cache=True, nogil=True)
def winograd_fused_task(tile, x, u, bias, code, out, k_block, tasks, task):
    """One piece of a Winograd convolution of x [C, H, W] sized for the cache: task ``task`` of
    ``tasks`` takes its share of the tiles (row-major, an equal count each: whole rows of
    tiles left one task with 4 rows of a 13x13 map's 7 and the other core waiting),
    transforms them (V [points, C, T]), multiplies them by ``k_block`` filters of u [points, K,
    C] at a time (M = U V, BLAS called in this thread) and writes those filters' outputs. V and M stay in the core's cache, where the whole-image kernels
    send both through memory (on 208x208 maps, ~40 MB each way)."""
    c, h, w = x.shape
    points, k_count = u.shape[0], u.shape[1]
    tiles_w = (w + tile - 1) // tile
    total = ((h + tile - 1) // tile) * tiles_w
    t0, t1 = task * total // tasks, (task + 1) * total // tasks
    v = np.empty((points, c, t1 - t0), dtype=np.float32)
    cols, zeros, out_tmp = winograd_scratch(tile, tiles_w, t1 - t0)
    for ch in range(c):
        for ty in share_rows(t0, t1, tiles_w):
            tx0, tx1, base = row_share(t0, t1, ty, tiles_w)
            winograd_input_row(tile, x, ch, ty, tx0, tx1, v, base, cols, zeros)
    m = np.empty((points, min(k_block, k_count), t1 - t0), dtype=np.float32)
    for first in range(0, k_count, k_block):
        filters = min(k_block, k_count - first)
        for p in range(points):
            np.dot(u[p, first:first + filters], v[p], m[p, :filters])
        for k in range(filters):
            winograd_output_share(tile, m, k, 0, t0, t1, tiles_w, bias[first + k], code, out[first + k], out_tmp)


@njit(cache=True, nogil=True)
def winograd_output_task(tile, u, v, first, bias, code, out, tiles_h, tiles_w, tasks, task):
    """out[K, H, W] = A^T m A per tile, cropped, plus bias and the activation, for task
    ``task``'s run of the filters, each filter's first pass over all its tiles at once (a
    13x13 map's output phase took 1.06 ms for 1,024 filters row of tiles by row, 0.68 so).
    m = U V for the run first, while it is in cache (BLAS in this thread; u [points, K, C],
    v [points, C, T]): small maps, whose few rows of tiles cannot be split among the cores
    without each task reading all the filters. Or, where u has no points, v holds the
    products m [points, K, first:first + T] of every filter (the whole-image path). One
    kernel for both: each kernel that calls the output passes compiles them again (~1.3 s)."""
    k_count = out.shape[0]
    k0, k1 = task * k_count // tasks, (task + 1) * k_count // tasks
    tiles = tiles_h * tiles_w
    _, _, tmp = winograd_scratch(tile, tiles_w, tiles)
    m, row0, offset = v, 0, first
    if u.shape[0]:
        m = np.empty((u.shape[0], k1 - k0, tiles), dtype=np.float32)
        for p in range(u.shape[0]):
            np.dot(u[p, k0:k1], v[p], m[p])
        row0, offset = k0, 0
    for k in range(k0, k1):
        winograd_output_share(tile, m, k - row0, offset, 0, tiles, tiles_w, bias[k], code, out[k], tmp)


_task_pool = {}                  # threads -> ThreadPoolExecutor of threads - 1 workers


def run_tasks(task, args, tasks):
    """task(*args, tasks, i) for every i < tasks, on the calling thread and Numba's thread count
    less one pool threads, each taking the next task when it is done with one (the tasks
    release the GIL; a core slowed by a neighbour then takes fewer). Not a prange loop:
    Numba's parallel passes re-optimise everything a loop body calls and cost seconds per
    kernel on first compile (a fused Winograd's loop: 7.5 s, its task 6.7 s)."""
    threads = min(numba.get_num_threads(), tasks)
    if threads <= 1:
        for i in range(tasks):
            task(*args, tasks, i)
        return
    claimed = itertools.count()        # next() on a count is atomic under the GIL

    def work():
        for i in iter(claimed.__next__, None):
            if i >= tasks:
                return
            task(*args, tasks, i)
    if threads not in _task_pool:
        _task_pool[threads] = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="darknet_py")
    others = [_task_pool[threads].submit(work) for _ in range(threads - 1)]
    work()
    for future in others:
        future.result()


def balanced_tasks(rows, size_of_row, most):
    """How many tasks to split ``rows`` rows (or tiles) into: a multiple of Numba's threads, so
    that equal tasks keep every core busy to the end, each about ``most`` in size where the
    rows allow, every task at least one row."""
    threads = numba.get_num_threads()
    per_thread = max(1, -(-rows * size_of_row // (threads * most)))
    return max(1, min(rows, threads * per_thread))


@functools.lru_cache(maxsize=1)
def kernels_version():
    """A digest of this module's source and Numba's version: what the compiled kernels and
    their timings depend on."""
    source = Path(__file__).read_bytes()
    return hashlib.sha1(source + numba.__version__.encode()).hexdigest()[:16]


class RememberedChoices:
    """The algorithm timed fastest per convolution shape, kept on disk per machine and kernels'
    version (like FFTW's wisdom) so that later processes skip the timing: $DARKNET_PY_CACHE,
    else ~/.cache/darknet_py, file numba-choices.json. Delete it to time again. Another
    version's timings are dropped, not reused: an update that changes a kernel changes which
    is fastest (a stale file kept yolov2-voc's 104x104 layers on a whole-image Winograd at
    12.7 ms a layer, where the fused one now takes 5.0)."""

    def __init__(self):
        root = os.environ.get("DARKNET_PY_CACHE") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "darknet_py")
        self.path = os.path.join(root, "numba-choices.json")
        self.cpu = f"{_cpu_model()}, {numba.config.NUMBA_NUM_THREADS} threads"
        self.machine = f"{self.cpu}, kernels {kernels_version()}"
        self.all = None

    def _load(self):
        if self.all is None:
            try:
                with open(self.path) as f:
                    self.all = json.load(f)
            except (OSError, ValueError):     # none yet, or unreadable: time again
                self.all = {}
            for stale in [m for m in self.all if m != self.machine and m.split(", kernels ")[0] == self.cpu]:
                del self.all[stale]           # this machine's timings of other kernels' versions
        return self.all.setdefault(self.machine, {})

    def get(self, signature):
        return self._load().get(signature)

    def put(self, signature, name):
        self._load()[signature] = name
        try:
            from ..weights import atomic_write
            text = json.dumps(self.all, indent=1, sort_keys=True).encode()
            atomic_write(self.path, lambda f: f.write(text))
        except OSError:                       # a read-only home: the choice lasts this process
            pass


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


class NumbaBackend(NumpyBackend):
    name = "numba"

    def __init__(self):
        self.folded = {}
        self.choice = {}            # (layer, input shape) -> a name of _algorithms
        self.remembered = RememberedChoices()
        self.workspace = np.empty(0, dtype=F)
        self.own_threads = False     # inside running(): gemms in Numba's threads, BLAS in one
        numba_warmup.start_beside()      # a fresh install: a second process compiles kernels beside the first call

    def prepare(self, net):
        self.folded = {}            # parameters changed: refold on the next inference

    def update(self, net, lr, batch, momentum, decay):
        super().update(net, lr, batch, momentum, decay)
        self.folded = {}

    def _work(self, rows, cols):
        if self.workspace.size < rows * cols:
            self.workspace = np.empty(rows * cols, dtype=F)
        return self.workspace[:rows * cols].reshape(rows, cols)

    @contextlib.contextmanager
    def running(self, train):
        """Inference calls every gemm from Numba's threads, BLAS kept to one thread: OpenBLAS's
        own threads spin for ~0.1 s after each call and, beside Numba's, slowed the next
        kernels 2x (a Winograd layer of yolov2-voc: 14.4 ms after a BLAS call, 6.5 alone).
        Training keeps BLAS's threads for its gemms."""
        if train or self.own_threads:
            yield
            return
        global _blas_controller
        if _blas_controller is None:
            _blas_controller = ThreadpoolController()
        with _blas_controller.limit(limits=1, user_api="blas"):
            self.own_threads = True
            try:
                yield
            finally:
                self.own_threads = False

    def _gemm(self, a, b, out=None):
        """out = a @ b: split among Numba's threads by blocks of rows of a, or by BLAS."""
        if out is None:
            out = np.empty((a.shape[0], b.shape[1]), dtype=F)
        if not (self.own_threads and out.flags.c_contiguous):
            return np.dot(a, b, out=out)
        # one run of rows per thread: blocks that divide the rows exactly left 125 filters
        # in 5 blocks of 25 on 2 threads (0.58 ms; 0.43 in 2 runs of 62 and 63)
        gemm_rows(np.ascontiguousarray(a), np.ascontiguousarray(b), out, min(a.shape[0], numba.get_num_threads()))
        return out

    def _matmul(self, a, b):
        """a[p] @ b[p] for every p, by blocks of rows of a[p] in Numba's threads, or by BLAS."""
        if not self.own_threads:
            return np.matmul(a, b)
        points, k, c = a.shape
        out = np.empty((points, k, b.shape[2]), dtype=F)
        # two wide runs where the filters allow: BLAS packs the small operand (the tiles)
        # again on every call
        matmul_rows(a, b, out, max(1, min(2, k // self.FUSED_FILTERS)))
        return out

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
        im2col(image[None], layer.size, layer.stride, layer.padding, oh, ow, cols)
        return cols

    # Small maps (13x13: 169 columns an image) make thin gemms; there one gemm over the
    # whole batch's columns runs 10-25% faster, at the cost of one batch-wide column matrix.
    BATCH_GEMM_PIXELS = 1024
    BATCH_GEMM_BYTES = 256 << 20

    def _batch_gemm(self, layer, n):
        c = layer.in_shape[0]
        _, oh, ow = layer.out_shape
        return (layer.groups == 1 and n > 1 and oh * ow <= self.BATCH_GEMM_PIXELS
                and 4 * c * layer.size ** 2 * n * oh * ow <= self.BATCH_GEMM_BYTES)

    def _batch_columns(self, layer, x):
        """Every image's im2col side by side: [C*k*k, N*oh*ow]."""
        n = x.shape[0]
        _, oh, ow = layer.out_shape
        pixels = oh * ow
        if layer.size == 1 and layer.stride == 1 and layer.padding == 0:
            return np.ascontiguousarray(x.reshape(n, x.shape[1], pixels).transpose(1, 0, 2)).reshape(x.shape[1], -1)
        cols = self._work(x.shape[1] * layer.size ** 2, n * pixels)
        im2col(np.ascontiguousarray(x), layer.size, layer.stride, layer.padding, oh, ow, cols)
        return cols

    def _convolve(self, layer, x, weights):
        """[N, K, oh, ow] = weights [K, C*k*k] @ columns, per image and group."""
        n = x.shape[0]
        k, oh, ow = layer.out_shape
        if self._few_channels(layer):       # training's first layer, tiny-voc's 8 images at 416: 50 -> 24 ms
            out = self._convolve_few_channels(layer, x, weights, np.zeros(k, dtype=F), ACTIVATION_CODES["linear"])
            return out.reshape(n, k, oh * ow)
        if self._batch_gemm(layer, n):
            out = self._gemm(weights, self._batch_columns(layer, x))
            return np.ascontiguousarray(out.reshape(k, n, oh * ow).transpose(1, 0, 2))
        g = layer.groups
        out = np.empty((n, k, oh * ow), dtype=F)
        cg, kg = x.shape[1] // g, k // g
        for b in range(n):
            for j in range(g):
                cols = self._columns(layer, np.ascontiguousarray(x[b, j * cg:(j + 1) * cg]))
                self._gemm(weights[j * kg:(j + 1) * kg], cols, out[b, j * kg:(j + 1) * kg])
        return out

    def forward_layer(self, layer, inputs, state):
        kind = layer.kind
        if kind == "convolutional":
            return self._conv_forward(layer, inputs[0], state)
        if kind == "maxpool":
            return self._maxpool_forward(layer, inputs[0], state)
        return super().forward_layer(layer, inputs, state)

    WINOGRAD4_MIN_TILES = 36
    # output tile and filter transform per Winograd variant; "-fused" runs it share by share of
    # tiles, "-filters" run by run of filters
    WINOGRAD = {"winograd4": (4, G), "winograd2": (2, G2)}

    def _algorithms(self, layer):
        """The ways this layer may convolve in inference. Winograd needs 3x3, stride 1, pad 1,
        no groups and enough channels to pay for its transforms; F(4x4, 3x3) also a map of at
        least 6x6 tiles: at 13x13 (16 tiles) its filters, 4x the weights, make its 36 thin
        gemms memory-bound (measured in yolov2-voc: no faster than im2col, for 720 MB more)."""
        c, h, w = layer.in_shape
        if not (layer.size == 3 and layer.stride == 1 and layer.padding == 1 and layer.groups == 1
                and c >= 16 and layer.filters >= 16):
            return ("direct",)
        if ((h + 3) // 4) * ((w + 3) // 4) >= self.WINOGRAD4_MIN_TILES:
            return ("winograd4-fused", "winograd4", "winograd2-fused", "winograd2", "direct")
        return ("winograd2-fused", "winograd2-filters", "winograd2", "direct")

    def _weights_key(self, name, layer):
        return layer.index if name == "direct" else (name.split("-")[0], layer.index)

    def _winograd_filters(self, layer, name):
        key = self._weights_key(name, layer)
        if key not in self.folded:
            w, b = self._fold(layer)
            self.folded[key] = (winograd_filters(w.reshape(layer.filters, -1, 3, 3), self.WINOGRAD[key[0]][1]), b)
        return self.folded[key]

    WINOGRAD_BATCH_BYTES = 64 << 20
    PRODUCTS_GIVEN = np.empty((0, 0, 0), dtype=F)      # winograd_output_task's u: v holds the products
    ROW_TASKS = 8               # the whole-image transforms: tasks of (channel, row of tiles) runs
    FUSED_TILES = 128           # tiles per task, about: 0-12% faster than 64 on 208..52 maps, 256 no better
    FUSED_FILTERS = 64          # filters per gemm in the fused tasks, the fewest per run elsewhere

    def _winograd(self, layer, x, code, name, filters=None):
        """Winograd "winograd4"/"winograd2", whole-image or with a suffix: "-fused" share by
        share of tiles, "-filters" run by run of filters. ``filters``: (U, biases) in place of
        the folded weights' (training: the raw weights', no biases)."""
        base, _, how = name.partition("-")
        tile = self.WINOGRAD[base][0]
        u, b = filters or self._winograd_filters(layer, name)
        n, c, h, w = x.shape
        tiles_h, tiles_w = (h + tile - 1) // tile, (w + tile - 1) // tile
        out = np.empty((n, layer.filters, h, w), dtype=F)
        run = {"": self._whole_images, "fused": self._by_shares, "filters": self._by_filters}[how]
        run(tile, u, b, code, x, out, tiles_h, tiles_w)
        return out

    def _whole_images(self, tile, u, b, code, x, out, tiles_h, tiles_w):
        """Every tile of an image (small maps: of the whole batch) transformed, then one gemm
        per point, then the outputs."""
        points, k, c = u.shape
        n, tiles = x.shape[0], tiles_h * tiles_w
        # small maps: the whole batch's tiles in one gemm per point (wider, and the filters
        # read once); large ones image by image, to bound the transformed tiles' memory
        together = n if 4 * points * (c + k) * n * tiles <= self.WINOGRAD_BATCH_BYTES else 1
        v = np.empty((points, c, together * tiles), dtype=F)
        for start in range(0, n, together):
            images = range(start, min(n, start + together))
            for i in images:
                run_tasks(winograd_input_task, (tile, np.ascontiguousarray(x[i]), tiles_h, tiles_w, v,
                                                (i - start) * tiles), self.ROW_TASKS)
            m = self._matmul(u, np.ascontiguousarray(v[:, :, :len(images) * tiles]))
            for i in images:
                run_tasks(winograd_output_task, (tile, self.PRODUCTS_GIVEN, m, (i - start) * tiles, b, code, out[i],
                                                 tiles_h, tiles_w), self.ROW_TASKS)

    def _by_shares(self, tile, u, b, code, x, out, tiles_h, tiles_w):
        tasks = balanced_tasks(tiles_h * tiles_w, 1, self.FUSED_TILES)
        for i in range(x.shape[0]):
            run_tasks(winograd_fused_task, (tile, np.ascontiguousarray(x[i]), u, b, code, out[i],
                                            self.FUSED_FILTERS), tasks)

    def _by_filters(self, tile, u, b, code, x, out, tiles_h, tiles_w):
        points, k, c = u.shape
        tasks = max(1, min(4, k // self.FUSED_FILTERS))     # runs of at least FUSED_FILTERS filters
        v = np.empty((points, c, tiles_h * tiles_w), dtype=F)
        for i in range(x.shape[0]):
            run_tasks(winograd_input_task, (tile, np.ascontiguousarray(x[i]), tiles_h, tiles_w, v, 0), self.ROW_TASKS)
            run_tasks(winograd_output_task, (tile, u, v, 0, b, code, out[i], tiles_h, tiles_w), tasks)

    def _run(self, name, layer, x, code):
        return self._direct(layer, x, code) if name == "direct" else self._winograd(layer, x, code, name)

    def _conv_forward(self, layer, x, state):
        n = x.shape[0]
        code = ACTIVATION_CODES.get(layer.activation)
        if code is None:                  # an activation not compiled here
            out = self._convolve(layer, x, layer.params["weights"].reshape(layer.filters, -1))
            return layer.finish(out.reshape(n, *layer.out_shape), state)
        if state.train:
            return self._conv_train_forward(layer, x, state, code)
        candidates = self._algorithms(layer)
        if len(candidates) == 1:
            return self._direct(layer, x, code)
        key = (layer.index, x.shape)
        if key not in self.choice:
            signature = f"{x.shape[0]}x{x.shape[1]}x{x.shape[2]}x{x.shape[3]}>{layer.filters}"
            remembered = self.remembered.get(signature)
            if remembered in candidates:
                self.choice[key] = remembered
            else:
                beside = numba_warmup.compiling()
                self.choice[key], out = self._time_algorithms(layer, x, code, candidates)
                # timed while the warm-up helper compiled on the other core: good for this
                # process, not to be kept (one such choice put tiny-voc's 208x208 layer on a
                # Winograd 1 ms slower for every later process)
                if not (beside or numba_warmup.compiling()):
                    self.remembered.put(signature, self.choice[key])
                return out
        return self._run(self.choice[key], layer, x, code)

    TIMING_ROUNDS = 5           # this 2-core VM's speed wanders by 2x: three rounds chose wrong
    TIMING_DROP = 1.5           # after two rounds, candidates this much slower than the best stop

    def _time_algorithms(self, layer, x, code, candidates):
        """Which algorithm is fastest depends on the map, the channels and the machine: time
        each on this input, keep the fastest's weights only. Returns (its name, the output)."""
        for name in candidates:       # weights folded or transformed first, outside the timings
            if name == "direct":
                self._fold(layer)
            else:
                self._winograd_filters(layer, name)
        best, out = self._fastest(candidates, lambda name: self._run(name, layer, x, code))
        kept = self._weights_key(best, layer)
        for name in candidates:      # Winograd's filters or the folded weights, not both
            if self._weights_key(name, layer) != kept:
                self.folded.pop(self._weights_key(name, layer), None)
        return best, out

    def _fastest(self, candidates, run):
        """The candidate whose run(candidate) took least, in rounds taken in turn (a busy
        moment hits them all), each keeping its best round; the last run's output. No untimed
        run first: a compile or a cold start lands in round 0 (one run less per candidate:
        ~0.6 s of yolov2-voc's first inference)."""
        timings = dict.fromkeys(candidates, np.inf)
        running = list(candidates)
        for round_ in range(self.TIMING_ROUNDS):
            for name in running:
                start = time.perf_counter()
                out = run(name)
                timings[name] = min(timings[name], time.perf_counter() - start)
            if round_ == 1:
                fastest = min(timings.values())
                running = [name for name in running if timings[name] <= self.TIMING_DROP * fastest]
        return min(timings, key=timings.get), out

    def _train_convolve(self, layer, x, weights):
        """A training forward's raw convolution, [N, K, oh*ow]: im2col + gemm ("gemm") or, for
        the 3x3 layers inference convolves by Winograd, F(2x2,3x3), whichever timed fastest on
        this shape in the first step (tiny-voc, 8 images at 416: the 3x3 layers' raw
        convolutions 420 -> 276 ms). The raw weights' transform (16/9 of their size) is made
        once per update and kept until the next: every subdivision's pass uses it (yolov2-voc's
        takes ~320 ms, which each of its 8 passes paid). Not F(4x4): its rounding moved
        Darknet's golden first-layer deltas (train_yolov2-tiny-voc_160: 2,242 of 819,200 off,
        against 14 for im2col and F(2x2), ties misrouted at a max-pool)."""
        candidates = self._train_algorithms(layer)
        if len(candidates) == 1:
            return self._convolve(layer, x, weights)
        key = ("train", layer.index, x.shape)
        if key not in self.choice:
            self.choice[key], out = self._fastest(candidates, lambda name: self._train_run(name, layer, x, weights))
            return out
        return self._train_run(self.choice[key], layer, x, weights)

    def _train_algorithms(self, layer):
        return ("gemm",) + tuple(name for name in self._algorithms(layer) if name.startswith("winograd2"))

    def _train_run(self, name, layer, x, weights):
        if name == "gemm":
            return self._convolve(layer, x, weights)
        k = layer.filters
        key = ("train", name.split("-")[0], layer.index)
        if key not in self.folded:          # once per update, not per pass: a batch's subdivisions share it
            self.folded[key] = winograd_filters(weights.reshape(k, -1, 3, 3), self.WINOGRAD[key[1]][1])
        u = self.folded[key]
        with self.running(train=False):      # the gemms in the tasks: BLAS in one thread
            out = self._winograd(layer, x, ACTIVATION_CODES["linear"], name, (u, np.zeros(k, dtype=F)))
        return out.reshape(x.shape[0], k, -1)

    def _conv_train_forward(self, layer, x, state, code):
        """The gemm, then batch norm on the batch's statistics (or add_bias) and the
        activation in one compiled pass; saves what batchnorm.backward reads."""
        p = layer.params
        raw = self._train_convolve(layer, x, p["weights"].reshape(layer.filters, -1))
        if not layer.batch_normalize:
            for image in raw:
                bias_activate(image, p["biases"], code)
            return raw.reshape(x.shape[0], *layer.out_shape)
        k = layer.filters
        x_norm, out = np.empty_like(raw), np.empty_like(raw)
        mean, variance = np.empty(k, dtype=F), np.empty(k, dtype=F)
        batchnorm_train_forward(raw, p["scales"], p["biases"], p["rolling_mean"], p["rolling_variance"],
                                code, x_norm, mean, variance, out)
        shape = (x.shape[0], *layer.out_shape)
        state.saved_for(layer).update(x=raw.reshape(shape), x_norm=x_norm.reshape(shape), mean=mean,
                                      variance=variance)
        return out.reshape(shape)

    def _delta_to_gemm(self, layer, delta, output, state):
        """Layer.delta_to_gemm compiled, for the activations compiled here."""
        code = ACTIVATION_CODES.get(layer.activation)
        if code is None or not delta.flags.c_contiguous:
            return layer.delta_to_gemm(delta, output, state)
        n, k = delta.shape[:2]
        d = delta.reshape(n, k, -1)
        y = np.ascontiguousarray(output).reshape(n, k, -1)
        u = layer.updates
        if not layer.batch_normalize:
            return bias_backward(d, y, code, u["biases"])
        saved = state.saved_for(layer)
        batchnorm_train_backward(d, y, code, saved["x"].reshape(n, k, -1), saved["x_norm"].reshape(n, k, -1),
                                 saved["mean"], saved["variance"], layer.params["scales"],
                                 u["biases"], u["scales"])

    BAND_PIXELS = 2048          # maps from this size convolve band by band (convolve_band)
    # 3x3 convolutions of this many channels or fewer run direct (convolve_few_channels): a
    # first layer at 416 (3 channels), against bands: tiny-voc's 2.7 -> 1.6 ms, yolov2-voc's 3.7 -> 3.2
    FEW_CHANNELS = 4
    BAND_FLOATS = 128 << 10     # columns + products of one band: about 512 KB, in L2

    def _few_channels(self, layer):
        return (layer.in_shape[0] <= self.FEW_CHANNELS and layer.groups == 1
                and (layer.size, layer.stride, layer.padding) == (3, 1, 1))

    def _convolve_few_channels(self, layer, x, weights, bias, code):
        k, oh, ow = layer.out_shape
        tasks = balanced_tasks(oh, k * ow, self.BAND_FLOATS)
        out = np.empty((x.shape[0], *layer.out_shape), dtype=F)
        for i in range(x.shape[0]):
            run_tasks(convolve_few_channels, (np.ascontiguousarray(x[i]), weights.reshape(k, -1, 3, 3), bias, code,
                                              out[i]), tasks)
        return out

    def _direct(self, layer, x, code):
        w, b = self._fold(layer)
        k, oh, ow = layer.out_shape
        if self._few_channels(layer):
            return self._convolve_few_channels(layer, x, w, b, code)
        if self.own_threads and layer.groups == 1 and oh * ow >= self.BAND_PIXELS:
            tasks = balanced_tasks(oh, (w.shape[1] + k) * ow, self.BAND_FLOATS)
            out = np.empty((x.shape[0], *layer.out_shape), dtype=F)
            for i in range(x.shape[0]):
                run_tasks(convolve_band, (np.ascontiguousarray(x[i]), w, b, code, layer.size, layer.stride,
                                          layer.padding, out[i]), tasks)
            return out
        out = self._convolve(layer, x, w)
        for image in out:
            bias_activate(image, b, code)
        return out.reshape(x.shape[0], *layer.out_shape)

    # outputs per max-pool task, at least: waking a second thread (~50 us) costs more than it
    # saves below (one task vs two: 64x104x104 0.055 vs 0.132 ms, 32x416x416 1.25 vs 0.59)
    POOL_TASK_OUTPUTS = 256 << 10

    def _maxpool_forward(self, layer, x, state):
        n, c, h, w = x.shape
        _, oh, ow = layer.out_shape
        out = np.empty((n, c, oh, ow), dtype=F)
        x = np.ascontiguousarray(x)
        argmax = None
        if state.train:        # int32 indices where they fit: half the memory traffic of int64
            argmax = np.empty((n, c, oh, ow), dtype=np.int32 if x.size < 2 ** 31 else np.int64)
            state.saved_for(layer)["flat_argmax"] = argmax
        tiled = (layer.size == layer.stride and layer.padding // 2 == 0 and h % layer.size == 0
                 and w % layer.size == 0 and (oh, ow) == (h // layer.size, w // layer.size))
        if (argmax is None and layer.size == 2 and layer.padding // 2 == 0
                and (oh - 1) * layer.stride < h and (ow - 1) * layer.stride < w):
            tasks = max(1, min(numba.get_num_threads(), out.size // self.POOL_TASK_OUTPUTS))
            run_tasks(maxpool_2x2_task, (x, layer.stride, out), tasks)
        elif tiled:
            maxpool_tiled(x, layer.size, out, argmax)
        else:
            maxpool(x, layer.size, layer.stride, layer.padding // 2, oh, ow, out, argmax)
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
        self._delta_to_gemm(layer, delta, output, state)
        n = x.shape[0]
        k, oh, ow = layer.out_shape
        wmat = p["weights"].reshape(k, -1)
        grad = u["weights"].reshape(k, -1)
        if self._few_channels(layer):       # tiny-voc's first layer, 8 images at 416: 61 -> 31 ms
            delta = np.ascontiguousarray(delta)
            run_tasks(weight_gradient_few_channels, (np.ascontiguousarray(x), delta, grad.reshape(k, -1, 3, 3)),
                      min(k, 2 * numba.get_num_threads()))
            if input_deltas[0] is not None:
                for b in range(n):
                    self._columns_to_delta(layer, wmat.T @ delta[b].reshape(k, oh * ow), input_deltas[0][b])
            return
        if self._batch_gemm(layer, n):
            d = np.ascontiguousarray(delta.reshape(n, k, oh * ow).transpose(1, 0, 2)).reshape(k, -1)
            grad += d @ self._batch_columns(layer, x).T
            if input_deltas[0] is not None:
                dcols = wmat.T @ d
                for b in range(n):
                    self._columns_to_delta(layer, dcols[:, b * oh * ow:(b + 1) * oh * ow], input_deltas[0][b])
            return
        for b in range(n):
            d = np.ascontiguousarray(delta[b].reshape(k, oh * ow))
            cols = self._columns(layer, np.ascontiguousarray(x[b]))
            grad += d @ cols.T
            if input_deltas[0] is not None:
                self._columns_to_delta(layer, wmat.T @ d, input_deltas[0][b])

    def _columns_to_delta(self, layer, dcols, target):
        """col2im of one image's column deltas onto its input delta."""
        _, oh, ow = layer.out_shape
        if layer.size == 1:     # darknet: the 1x1 gemm writes the input delta (beta 0)
            if layer.stride == 1 and layer.padding == 0:
                target[...] = dcols.reshape(target.shape)
            else:
                target[...] = 0
                col2im_add(np.ascontiguousarray(dcols), 1, layer.stride, layer.padding, oh, ow, target)
        else:
            col2im_add(np.ascontiguousarray(dcols), layer.size, layer.stride, layer.padding, oh, ow, target)


numba_warmup.compile_one_at_a_time(value for value in list(globals().values()) if isinstance(value, numba.core.dispatcher.Dispatcher))
