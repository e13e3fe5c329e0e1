"""Convolutions without a whole-image column matrix: im2col + gemm band by band of output
rows, and a 3x3 kernel for layers of few channels (a first layer's), forward and weight gradient."""
import numpy as np
from numba import njit

from .activations import activate, bias_activate_line
from .im2col import im2col_line
from .microkernel import FILTERS, padded_matrix, point_products


@njit(inline="always")
def band_of(oh, tasks, task):
    """Task ``task``'s share of ``oh`` output rows: (its first row, its rows)."""
    oy0 = task * oh // tasks
    return oy0, (task + 1) * oh // tasks - oy0


@njit(inline="always")
def band_columns(x, size, stride, pad, oy0, rows, ow, cols):
    """cols[row, :rows*ow] = darknet im2col_cpu's ``row`` over output rows oy0..oy0 + rows - 1."""
    for row in range(x.shape[0] * size * size):
        for r in range(rows):
            im2col_line(x, row, size, stride, pad, oy0 + r, cols[row, r * ow:(r + 1) * ow])


@njit(inline="always")
def write_band(m, bias, code, out, oy0, rows):
    """out[k, oy0:oy0 + rows] = activate(m[k, :rows*ow] + bias[k]): a band's products written."""
    ow = out.shape[2]
    for k in range(out.shape[0]):
        b = bias[k]
        for r in range(rows):
            dest = out[k, oy0 + r]
            for ox in range(ow):
                dest[ox] = activate(m[k, r * ow + ox] + b, code)


@njit(cache=True, nogil=True)
def convolve_band(x, weights, bias, code, size, stride, pad, out, tasks, task):
    """im2col + gemm + bias + activation of one band of one image: task ``task`` of ``tasks``
    takes its share of the rows of out [K, oh, ow], lays out their columns (darknet
    im2col_cpu's rows), multiplies them by weights [K, C*size*size] (BLAS in this thread) and
    writes the band. The columns and products stay in cache instead of crossing memory whole."""
    k_count, oh, ow = out.shape
    oy0, rows = band_of(oh, tasks, task)
    cols = np.empty((weights.shape[1], rows * ow), dtype=np.float32)
    band_columns(x, size, stride, pad, oy0, rows, ow, cols)
    m = np.empty((k_count, rows * ow), dtype=np.float32)
    np.dot(weights, cols, m)
    write_band(m, bias, code, out, oy0, rows)


@njit(cache=True, nogil=True)
def convolve_band_packed(x, packed, bias, code, size, stride, pad, out, tasks, task):
    """convolve_band with microkernel.py's products: the band's columns padded to whole
    vectors, multiplied by packed (pack_filters of the weights [K, C*size*size])."""
    _, oh, ow = out.shape
    oy0, rows = band_of(oh, tasks, task)
    # one point, as an int64: a literal 1 would have Numba compile padded_matrix once more
    cols = padded_matrix(np.int64(1), x.shape[0] * size * size, rows * ow)
    band_columns(x, size, stride, pad, oy0, rows, ow, cols[0])
    m = np.empty((1, packed.shape[1] * FILTERS, cols.shape[2]), dtype=np.float32)
    point_products(packed, cols, m, 0, 0, packed.shape[1], 0, cols.shape[2])
    write_band(m[0], bias, code, out, oy0, rows)


@njit(inline="always")
def padded_rows(x, oy, rows):
    """rows[ch, ky, 1:W + 1] = x[ch, oy - 1 + ky] (zeros above and below the map; the first and
    last column stay the zeros of the padding). Element by element: slice assignments
    compile far slower in convolve_few_channels."""
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


@njit(inline="always")
def phase_rows(x, oy, rows):
    """The three input rows of output row ``oy`` of a stride-2 convolution, each split by column
    phase so that every tap reads a contiguous run: rows[ch, 2*ky, j] = x[ch, 2*oy - 1 + ky,
    2*j - 1] and rows[ch, 2*ky + 1, j] = x[ch, 2*oy - 1 + ky, 2*j], zero outside the map. Output
    column ox then reads taps kx = 0, 1, 2 at rows[.., 2*ky, ox], rows[.., 2*ky + 1, ox] and
    rows[.., 2*ky, ox + 1]."""
    c, h, w = x.shape
    n = rows.shape[2]
    for ch in range(c):
        for ky in range(3):
            before, at, iy = rows[ch, 2 * ky], rows[ch, 2 * ky + 1], 2 * oy - 1 + ky
            if 0 <= iy < h:
                src = x[ch, iy]
                for j in range(n):
                    before[j] = src[2 * j - 1] if 0 < j and 2 * j - 1 < w else np.float32(0)
                    at[j] = src[2 * j] if 2 * j < w else np.float32(0)
            else:
                for j in range(n):
                    before[j] = 0
                    at[j] = 0


@njit(inline="always")
def add_taps(dest, f, rows, stride):
    """dest[i] += the 3x3 filter f over output column i, tap (ky, kx) read at rows[stride*ky + kx
    % stride, i + kx // stride]: the zero-padded rows at stride 1 (padded_rows), the phases at
    stride 2 (phase_rows). One vector expression along the row."""
    p, q = 1 // stride, 2 // stride
    a0, b0, c0 = rows[0], rows[1 % stride], rows[2 % stride]
    a1, b1, c1 = rows[stride], rows[stride + 1 % stride], rows[stride + 2 % stride]
    a2, b2, c2 = rows[2 * stride], rows[2 * stride + 1 % stride], rows[2 * stride + 2 % stride]
    f00, f01, f02, f10, f11, f12 = f[0, 0], f[0, 1], f[0, 2], f[1, 0], f[1, 1], f[1, 2]
    f20, f21, f22 = f[2, 0], f[2, 1], f[2, 2]
    for i in range(dest.size):
        dest[i] += (f00 * a0[i] + f01 * b0[i + p] + f02 * c0[i + q] + f10 * a1[i] + f11 * b1[i + p]
                    + f12 * c1[i + q] + f20 * a2[i] + f21 * b2[i + p] + f22 * c2[i + q])


@njit(cache=True, nogil=True, fastmath=True)
def convolve_few_channels(x, weights, bias, code, stride, out, tasks, task):
    """A 3x3, pad 1, stride 1 or 2 convolution of x [C, H, W] with few channels (an image's: 27
    products a pixel make a thin gemm, and im2col's columns are 9x the image), task ``task``
    of ``tasks`` taking its share of the rows of out [K, oh, ow]: per output row, each
    filter's row summed channel by channel from three zero-padded input rows (at stride 2 split
    by column phase, phase_rows), each term a vector along the row, then bias and activation.
    weights [K, C, 3, 3]."""
    c, h, w = x.shape
    oh, ow = out.shape[1], out.shape[2]
    if stride == 1:
        rows = np.zeros((c, 3, w + 2), dtype=np.float32)
    else:
        rows = np.zeros((c, 6, ow + 1), dtype=np.float32)
    for oy in range(task * oh // tasks, (task + 1) * oh // tasks):
        if stride == 1:
            padded_rows(x, oy, rows)
        else:
            phase_rows(x, oy, rows)
        for k in range(out.shape[0]):
            dest = out[k, oy]
            for i in range(ow):
                dest[i] = 0
            for ch in range(c):       # the stride a constant in each: the taps' offsets known
                if stride == 1:
                    add_taps(dest, weights[k, ch], rows[ch], 1)
                else:
                    add_taps(dest, weights[k, ch], rows[ch], 2)
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
