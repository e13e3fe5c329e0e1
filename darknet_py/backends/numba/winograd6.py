"""Winograd F(6x6, 3x3) (Lavin & Gray; interpolation points 0, +-1, +-2, +-1/2 and infinity,
the matrices NNPACK and OpenCV use): 8x8 input tiles at stride 6, 64 products per 36 outputs
where F(4x4, 3x3) needs 81. Its rounding grows with the points' spread; for inference only,
as F(4x4, 3x3), and measured within the project's 1e-4 on every golden case. The row
transforms here; winograd.py's tasks run them."""
import numpy as np
from numba import njit

from .activations import bias_activate_line
from .winograd_tiles import image_row, pad_columns, tile_columns

# G of F(6x6, 3x3): U = G g G^T, 8x8 per 3x3 filter.
G6 = np.array([[1, 0, 0], [-2 / 9, -2 / 9, -2 / 9], [-2 / 9, 2 / 9, -2 / 9],
               [1 / 90, 1 / 45, 2 / 45], [1 / 90, -1 / 45, 2 / 45],
               [32 / 45, 16 / 45, 8 / 45], [32 / 45, -16 / 45, 8 / 45], [0, 0, 1]], dtype=np.float64)

F = np.float32
F2, F4, F5, F8, F16, F32 = F(2), F(4), F(5), F(8), F(16), F(32)
HALF, QUARTER, EIGHTH, SIXTEENTH, THIRTY_SECOND = F(.5), F(.25), F(.125), F(.0625), F(.03125)
F21_4, F17_4, F5_2, F5_4 = F(21 / 4), F(17 / 4), F(5 / 2), F(5 / 4)


@njit(inline="always")
def input_transform(a0, a1, a2, a3, a4, a5, a6, a7):
    """B^T a for one column (or row) of 8 values of a tile."""
    p1 = a1 + a5 - F17_4 * a3
    p2 = a2 + a6 - F17_4 * a4
    q1 = HALF * a1 - F5_2 * a3 + F2 * a5
    q2 = QUARTER * a2 - F5_4 * a4 + a6
    s1 = F2 * a1 - F5_2 * a3 + HALF * a5
    s2 = F4 * a2 - F5 * a4 + a6
    return (a0 - a6 + F21_4 * (a4 - a2), p2 + p1, p2 - p1, q2 + q1, q2 - q1, s2 + s1, s2 - s1,
            a7 - a1 + F21_4 * (a3 - a5))


@njit(inline="always")
def output_transform(m0, m1, m2, m3, m4, m5, m6, m7):
    """A^T m for one column (or row) of 8 products: 6 outputs."""
    e1, o1 = m1 + m2, m1 - m2
    e2, o2 = m3 + m4, m3 - m4
    e3, o3 = m5 + m6, m5 - m6
    return (m0 + e1 + e2 + e3, o1 + F2 * o2 + HALF * o3, e1 + F4 * e2 + QUARTER * e3,
            o1 + F8 * o2 + EIGHTH * o3, e1 + F16 * e2 + SIXTEENTH * e3, o1 + F32 * o2 + THIRTY_SECOND * o3 + m7)


@njit(cache=True, fastmath=True)
def winograd6_input_row(x, ch, ty, tx0, tx1, v, base, cols, zeros):
    """v[64, ch, base:base + tx1 - tx0] = B^T d B for the 8x8 tiles d (stride 6, from -1: pad 1)
    tx0..tx1 - 1 of row ty of tiles: down the eight rows first (contiguous), then along each
    tile's eight columns, as winograd4_input_row."""
    first, lo, hi = tile_columns(6, tx0, tx1, x.shape[2])
    y = ty * 6 - 1
    d0, d1, d2, d3 = (image_row(x, ch, y, zeros), image_row(x, ch, y + 1, zeros),
                      image_row(x, ch, y + 2, zeros), image_row(x, ch, y + 3, zeros))
    d4, d5, d6, d7 = (image_row(x, ch, y + 4, zeros), image_row(x, ch, y + 5, zeros),
                      image_row(x, ch, y + 6, zeros), image_row(x, ch, y + 7, zeros))
    for j in range(lo, hi):
        i = first + j
        t0, t1, t2, t3, t4, t5, t6, t7 = input_transform(d0[i], d1[i], d2[i], d3[i], d4[i], d5[i], d6[i], d7[i])
        cols[0, j], cols[1, j], cols[2, j], cols[3, j] = t0, t1, t2, t3
        cols[4, j], cols[5, j], cols[6, j], cols[7, j] = t4, t5, t6, t7
    pad_columns(cols, lo, hi, 6 * (tx1 - tx0) + 2)
    for r in range(8):
        cr = cols[r]
        for tx in range(tx1 - tx0):
            i = 6 * tx
            t0, t1, t2, t3, t4, t5, t6, t7 = input_transform(cr[i], cr[i + 1], cr[i + 2], cr[i + 3],
                                                             cr[i + 4], cr[i + 5], cr[i + 6], cr[i + 7])
            p, at = r * 8, base + tx
            v[p, ch, at], v[p + 1, ch, at], v[p + 2, ch, at], v[p + 3, ch, at] = t0, t1, t2, t3
            v[p + 4, ch, at], v[p + 5, ch, at], v[p + 6, ch, at], v[p + 7, ch, at] = t4, t5, t6, t7


@njit(cache=True, fastmath=True)
def winograd6_output_columns(m, k, first, n, tmp):
    """tmp[r, j, :n] = (A^T m)[r, j] for the n tiles whose products are m[64, k, first:first + n],
    as winograd4_output_columns."""
    for j in range(8):
        s0, s1 = m[j, k, first:first + n], m[8 + j, k, first:first + n]
        s2, s3 = m[16 + j, k, first:first + n], m[24 + j, k, first:first + n]
        s4, s5 = m[32 + j, k, first:first + n], m[40 + j, k, first:first + n]
        s6, s7 = m[48 + j, k, first:first + n], m[56 + j, k, first:first + n]
        for t in range(n):
            o0, o1, o2, o3, o4, o5 = output_transform(s0[t], s1[t], s2[t], s3[t], s4[t], s5[t], s6[t], s7[t])
            tmp[0, j, t], tmp[1, j, t], tmp[2, j, t] = o0, o1, o2
            tmp[3, j, t], tmp[4, j, t], tmp[5, j, t] = o3, o4, o5


@njit(cache=True, fastmath=True)
def winograd6_output_rows(tmp, at, tx0, tx1, b, code, plane, ty):
    """plane[6*ty:6*ty + 6, 6*tx0:6*tx1] = (A^T m) A + b, activated, cropped to the plane, for
    tiles tx0..tx1 - 1 of row ty, as winograd4_output_rows."""
    h, w = plane.shape
    n = tx1 - tx0
    for r in range(6):
        oy = ty * 6 + r
        if oy >= h:
            break
        row = plane[oy, 6 * tx0:min(w, 6 * tx1)]
        q0, q1, q2, q3 = tmp[r, 0, at:at + n], tmp[r, 1, at:at + n], tmp[r, 2, at:at + n], tmp[r, 3, at:at + n]
        q4, q5, q6, q7 = tmp[r, 4, at:at + n], tmp[r, 5, at:at + n], tmp[r, 6, at:at + n], tmp[r, 7, at:at + n]
        full = max(0, min(n, w // 6 - tx0))    # tiles whose 6 columns all lie inside the map
        for tx in range(full):
            o0, o1, o2, o3, o4, o5 = output_transform(q0[tx], q1[tx], q2[tx], q3[tx], q4[tx], q5[tx], q6[tx], q7[tx])
            ox = 6 * tx
            row[ox], row[ox + 1], row[ox + 2], row[ox + 3], row[ox + 4], row[ox + 5] = o0, o1, o2, o3, o4, o5
        for tx in range(full, n):
            o = output_transform(q0[tx], q1[tx], q2[tx], q3[tx], q4[tx], q5[tx], q6[tx], q7[tx])
            for s in range(row.size - 6 * tx):
                row[6 * tx + s] = o[s]
        bias_activate_line(row, row, b, code)
