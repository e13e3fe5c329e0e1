"""The Numba backend's convolutions by im2col + gemm and directly (bands of rows, a first
layer's few channels), forward and backward. Each function takes the backend (its gemm, its
workspace, its tuning) and a convolution: a layer, or anything with its shape attributes
(``ConvShape``)."""
from dataclasses import dataclass

import numpy as np

from .activations import ACTIVATION_CODES, bias_activate
from .conv_direct import convolve_band, convolve_band_packed, convolve_few_channels, weight_gradient_few_channels
from .im2col import col2im_add, im2col
from .microkernel import FILTERS, LANES, padded_matrix, padded_tiles, pointwise_task
from .tasks import balanced_tasks, run_tasks

F = np.float32
LINEAR = ACTIVATION_CODES["linear"]


@dataclass(frozen=True)
class ConvShape:
    """A convolution's shape without a layer: what the kernels read of one (the warm-up
    compiles them on these)."""
    in_shape: tuple
    filters: int
    size: int = 3
    stride: int = 1
    padding: int = 1
    groups: int = 1
    index: int = 0

    @property
    def out_shape(self):
        _, h, w = self.in_shape
        return (self.filters, (h + 2 * self.padding - self.size) // self.stride + 1,
                (w + 2 * self.padding - self.size) // self.stride + 1)


def few_channels(b, conv):
    """A 3x3 convolution of few channels (a first layer's), stride 1 or 2, convolved without
    im2col (its weights' gradient too, at stride 1)."""
    return (conv.in_shape[0] <= b.tuning.few_channels and conv.groups == 1
            and conv.size == 3 and conv.padding == 1 and conv.stride in (1, 2))


def columns(b, conv, image):
    """im2col of one image (a view of the image itself for a plain 1x1 convolution)."""
    _, oh, ow = conv.out_shape
    if conv.size == 1 and conv.stride == 1 and conv.padding == 0:
        return image.reshape(image.shape[0], -1)
    cols = b.work(image.shape[0] * conv.size * conv.size, oh * ow)
    im2col(image[None], conv.size, conv.stride, conv.padding, oh, ow, cols)
    return cols


def batch_gemm(b, conv, n):
    """Whether one gemm over the whole batch's columns beats one per image: small maps make
    thin gemms, and the batch-wide column matrix is bounded."""
    c = conv.in_shape[0]
    _, oh, ow = conv.out_shape
    return (conv.groups == 1 and n > 1 and oh * ow <= b.tuning.batch_gemm_pixels
            and 4 * c * conv.size ** 2 * n * oh * ow <= b.tuning.batch_gemm_bytes)


def batch_columns(b, conv, x):
    """Every image's im2col side by side: [C*k*k, N*oh*ow]."""
    n = x.shape[0]
    _, oh, ow = conv.out_shape
    pixels = oh * ow
    if conv.size == 1 and conv.stride == 1 and conv.padding == 0:
        return np.ascontiguousarray(x.reshape(n, x.shape[1], pixels).transpose(1, 0, 2)).reshape(x.shape[1], -1)
    cols = b.work(x.shape[1] * conv.size ** 2, n * pixels)
    im2col(np.ascontiguousarray(x), conv.size, conv.stride, conv.padding, oh, ow, cols)
    return cols


def convolve(b, conv, x, weights):
    """The raw convolution [N, K, oh*ow] = weights [K, C*k*k] @ columns, per image and group."""
    n = x.shape[0]
    k, oh, ow = conv.out_shape
    if few_channels(b, conv):
        return convolve_few(b, conv, x, weights, np.zeros(k, dtype=F), LINEAR).reshape(n, k, oh * ow)
    if batch_gemm(b, conv, n):
        out = b.gemm(weights, batch_columns(b, conv, x))
        return np.ascontiguousarray(out.reshape(k, n, oh * ow).transpose(1, 0, 2))
    g = conv.groups
    out = np.empty((n, k, oh * ow), dtype=F)
    cg, kg = x.shape[1] // g, k // g
    for i in range(n):
        for j in range(g):
            cols = columns(b, conv, np.ascontiguousarray(x[i, j * cg:(j + 1) * cg]))
            b.gemm(weights[j * kg:(j + 1) * kg], cols, out[i, j * kg:(j + 1) * kg])
    return out


def convolve_few(b, conv, x, weights, bias, code):
    """convolve_few_channels over a batch, each image's rows shared among tasks."""
    k, oh, ow = conv.out_shape
    tasks = balanced_tasks(oh, k * ow, b.tuning.band_floats)
    out = np.empty((x.shape[0], *conv.out_shape), dtype=F)
    for i in range(x.shape[0]):
        run_tasks(convolve_few_channels, (np.ascontiguousarray(x[i]), weights.reshape(k, -1, 3, 3), bias, code,
                                          conv.stride, out[i]), tasks)
    return out


def direct(b, conv, weights, bias, code, x):
    """Inference without Winograd, on the folded weights: the few-channel kernel, band by band
    on large maps (in Numba's threads), else convolve, then bias and the activation."""
    k, oh, ow = conv.out_shape
    if few_channels(b, conv):
        return convolve_few(b, conv, x, weights, bias, code)
    if b.own_threads and conv.groups == 1 and oh * ow >= b.tuning.band_pixels:
        tasks = balanced_tasks(oh, (weights.shape[1] + k) * ow, b.tuning.band_floats)
        out = np.empty((x.shape[0], *conv.out_shape), dtype=F)
        for i in range(x.shape[0]):
            run_tasks(convolve_band, (np.ascontiguousarray(x[i]), weights, bias, code, conv.size, conv.stride,
                                      conv.padding, out[i]), tasks)
        return out
    out = convolve(b, conv, x, weights)
    for image in out:
        bias_activate(image, bias, code)
    return out.reshape(x.shape[0], *conv.out_shape)


def packed(b, conv, filters, bias, code, x):
    """im2col + gemm + bias + activation with microkernel.py's products in place of BLAS's
    (which packs the columns again on every call), band by band of output rows, or for a
    plain 1x1 convolution on the map itself (pointwise). filters: pack_filters of the folded
    weights [K, C*k*k]."""
    if (conv.size, conv.stride, conv.padding) == (1, 1, 0):
        return pointwise(b, conv, filters, bias, code, x)
    k, oh, ow = conv.out_shape
    tasks = balanced_tasks(oh, (filters.shape[2] // FILTERS + k) * ow, b.tuning.band_floats)
    out = np.empty((x.shape[0], *conv.out_shape), dtype=F)
    for i in range(x.shape[0]):
        run_tasks(convolve_band_packed, (np.ascontiguousarray(x[i]), filters, bias, code, conv.size, conv.stride,
                                         conv.padding, out[i]), tasks)
    return out


def pointwise(b, conv, filters, bias, code, x):
    """A 1x1 convolution (stride 1, no padding) by microkernel.py's products, each image's
    columns shared among tasks, then bias and the activation."""
    n, c, h, w = x.shape
    k, pixels = conv.filters, h * w
    columns = padded_tiles(pixels)
    padded = padded_matrix(1, c, pixels) if columns > pixels else None
    tasks = balanced_tasks(columns // LANES, LANES * filters.shape[1] * FILTERS, b.tuning.band_floats)
    out = np.empty((n, k, h, w), dtype=F)
    m = np.empty((1, filters.shape[1] * FILTERS, columns), dtype=F)
    for i in range(n):
        if padded is None:
            v = np.ascontiguousarray(x[i]).reshape(1, c, pixels)
        else:                  # whole vectors: the map copied beside the zero columns
            padded[0, :, :pixels] = x[i].reshape(c, pixels)
            v = padded
        run_tasks(pointwise_task, (filters, v, m, bias, code, out[i].reshape(k, pixels)), tasks)
    return out


def backward(b, layer, x, delta, input_deltas):
    """darknet backward_convolutional_layer after delta_to_gemm: the weights' gradient and the
    input's delta, with compiled im2col/col2im and BLAS gemms."""
    n = x.shape[0]
    k, oh, ow = layer.out_shape
    wmat = layer.params["weights"].reshape(k, -1)
    grad = layer.updates["weights"].reshape(k, -1)
    if few_channels(b, layer) and layer.stride == 1:
        delta = np.ascontiguousarray(delta)
        run_tasks(weight_gradient_few_channels, (np.ascontiguousarray(x), delta, grad.reshape(k, -1, 3, 3)),
                  min(k, 2 * b.threads()))
        if input_deltas[0] is not None:
            for i in range(n):
                columns_to_delta(layer, wmat.T @ delta[i].reshape(k, oh * ow), input_deltas[0][i])
        return
    if batch_gemm(b, layer, n):
        d = np.ascontiguousarray(delta.reshape(n, k, oh * ow).transpose(1, 0, 2)).reshape(k, -1)
        grad += d @ batch_columns(b, layer, x).T
        if input_deltas[0] is not None:
            dcols = wmat.T @ d
            for i in range(n):
                columns_to_delta(layer, dcols[:, i * oh * ow:(i + 1) * oh * ow], input_deltas[0][i])
        return
    for i in range(n):
        d = np.ascontiguousarray(delta[i].reshape(k, oh * ow))
        grad += d @ columns(b, layer, np.ascontiguousarray(x[i])).T
        if input_deltas[0] is not None:
            columns_to_delta(layer, wmat.T @ d, input_deltas[0][i])


def columns_to_delta(conv, dcols, target):
    """col2im of one image's column deltas, added onto its input delta. 1x1 convolutions add
    too, as cuDNN does (CPU Darknet's gemm overwrites with beta 0, which drops whatever else
    feeds that delta; see the quirks doc)."""
    _, oh, ow = conv.out_shape
    if conv.size == 1 and conv.stride == 1 and conv.padding == 0:
        target += dcols.reshape(target.shape)
    else:
        col2im_add(np.ascontiguousarray(dcols), conv.size, conv.stride, conv.padding, oh, ow, target)
