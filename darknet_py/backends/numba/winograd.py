"""Winograd F(4x4,3x3) and F(2x2,3x3) (Lavin & Gray) convolutions: the filter transform, the
input and output transforms by rows of tiles (F(6x6,3x3)'s in winograd6.py), and the tasks
that run any of them share by share."""
import numpy as np
from numba import njit, prange

from .activations import bias_activate_line
from .microkernel import FILTERS, padded_matrix, point_products
from .winograd6 import G6, winograd6_input_row, winograd6_output_columns, winograd6_output_rows
from .winograd_tiles import image_row, pad_columns, row_share, share_rows, tile_columns, winograd_scratch

F = np.float32


# Winograd F(4x4, 3x3): Y = A^T [(G g G^T) * (B^T d B)] A on 6x6 input tiles.
# B^T and A^T are written out in the row transforms below; G transforms the filters once.
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=np.float64)


@njit(parallel=True, cache=True)
def transform_filters(weights, g, u):
    """U[a*t + b, k, c] = (g w g^T)[a, b] for every 3x3 filter w = weights[k, c], in float64,
    written where pack_filters puts it: u[a*t + b, k // 4, c*4 + k % 4]."""
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
                u[a * t + b, k // FILTERS, c * FILTERS + k % FILTERS] = np.float32(r0 * g[b, 0] + r1 * g[b, 1]
                                                                             + r2 * g[b, 2])


def winograd_filters(weights, g=G):
    """U[t*t, K, C] = g w g^T for every 3x3 filter w (float64 math; t = 6 for F(4x4, 3x3)),
    packed for microkernel.py (pack_filters' layout) without U itself: the largest layers'
    filters are 64 MB, and each copy of them stays in the process's heap."""
    k, c = weights.shape[:2]
    u = np.zeros((len(g) ** 2, -(-k // FILTERS), c * FILTERS), dtype=F)
    transform_filters(np.ascontiguousarray(weights, dtype=F), g, u)
    return u


F2, F4, F5, F8 = np.float32(2), np.float32(4), np.float32(5), np.float32(8)


@njit(cache=True, fastmath=True)
def winograd4_input_row(x, ch, ty, tx0, tx1, v, base, cols, zeros):
    """v[36, ch, base:base + tx1 - tx0] = B^T d B for the 6x6 tiles d (stride 4, from -1: pad 1)
    tx0..tx1 - 1 of row ty of tiles. B^T first runs down the six rows along the tiles' columns
    (cols[r, j] = (B^T d)[r] at image column 4*tx0 - 1 + j, contiguous loops), then along each
    tile's six columns: no per-tile gather. cols, zeros: winograd_scratch."""
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
    inside the loop over tiles, with the test for the last tile, kept it scalar."""
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
    """The input pass of any variant. The tile numbers as int64s: a caller's literal 0
    would have Numba compile the rows once more for it."""
    tx0, tx1, base = np.int64(tx0), np.int64(tx1), np.int64(base)
    if tile == 6:
        winograd6_input_row(x, ch, ty, tx0, tx1, v, base, cols, zeros)
    elif tile == 4:
        winograd4_input_row(x, ch, ty, tx0, tx1, v, base, cols, zeros)
    else:
        winograd2_input_row(x, ch, ty, tx0, tx1, v, base, cols, zeros)


@njit(inline="always")
def winograd_output_share(tile, m, k, first, t0, t1, tiles_w, b, code, plane, tmp):
    """Filter k's outputs over the share [t0, t1) of a map's tiles (row-major), whose products
    are m[points, k, first:first + t1 - t0]: the first pass over the whole share, the second
    row of tiles by row. tmp: winograd_scratch's, for t1 - t0 tiles. ``first`` as an int64:
    a caller's literal 0 would have Numba compile the passes once more for it."""
    first = np.int64(first)
    if tile == 6:
        winograd6_output_columns(m, k, first, t1 - t0, tmp)
    elif tile == 4:
        winograd4_output_columns(m, k, first, t1 - t0, tmp)
    else:
        winograd2_output_columns(m, k, first, t1 - t0, tmp)
    for ty in share_rows(t0, t1, tiles_w):
        tx0, tx1, at = row_share(t0, t1, ty, tiles_w)
        if tile == 6:
            winograd6_output_rows(tmp, at, tx0, tx1, b, code, plane, ty)
        elif tile == 4:
            winograd4_output_rows(tmp, at, tx0, tx1, b, code, plane, ty)
        else:
            winograd2_output_rows(tmp, at, tx0, tx1, b, code, plane, ty)


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
def winograd_fused_task(tile, x, packed, bias, code, out, k_block, tasks, task):
    """One piece of a Winograd convolution of x [C, H, W] sized for the cache: task ``task`` of
    ``tasks`` takes its share of the tiles (row-major, an equal count each: whole rows of
    tiles would leave one core waiting on small maps), transforms them (V [points, C, T]),
    multiplies them by ``k_block`` filters (in whole blocks of 4, one at least) of packed
    (pack_filters) at a time and writes those filters' outputs. V and M stay in the core's cache, where the
    whole-image kernels send both through memory."""
    c, h, w = x.shape
    points, blocks, k_count = packed.shape[0], packed.shape[1], out.shape[0]
    tiles_w = (w + tile - 1) // tile
    total = ((h + tile - 1) // tile) * tiles_w
    t0, t1 = task * total // tasks, (task + 1) * total // tasks
    v = padded_matrix(points, c, t1 - t0)
    cols, zeros, out_tmp = winograd_scratch(tile, tiles_w, t1 - t0)
    for ch in range(c):
        for ty in share_rows(t0, t1, tiles_w):
            tx0, tx1, base = row_share(t0, t1, ty, tiles_w)
            winograd_input_row(tile, x, ch, ty, tx0, tx1, v, base, cols, zeros)
    run = max(1, k_block // FILTERS)
    m = np.empty((points, min(run, blocks) * FILTERS, v.shape[2]), dtype=np.float32)
    for b0 in range(0, blocks, run):
        b1 = min(blocks, b0 + run)
        for p in range(points):
            point_products(packed, v, m, p, b0, b1, 0, v.shape[2])
        for k in range(b0 * FILTERS, min(k_count, b1 * FILTERS)):
            winograd_output_share(tile, m, k - b0 * FILTERS, 0, t0, t1, tiles_w, bias[k], code, out[k], out_tmp)


@njit(cache=True, nogil=True)
def winograd_output_task(tile, packed, v, multiply, first, bias, code, out, tiles_h, tiles_w, tasks, task):
    """out[K, H, W] = A^T m A per tile, cropped, plus bias and the activation, for task
    ``task``'s run of the filters (whole blocks of 4), each filter's first pass over all its
    tiles at once. With ``multiply``, m = U V for the run first, while it is in cache
    (packed: pack_filters' U; v [points, C, T], T padded as point_products wants): small
    maps, whose few rows of tiles cannot be split among the cores without each task reading
    all the filters. Without, v already holds the products m [points, K, first:first + T]
    of every filter (the whole-image path) and packed is not read. One kernel for both: each
    kernel that calls the output passes compiles them again."""
    k_count, blocks = out.shape[0], (out.shape[0] + FILTERS - 1) // FILTERS
    b0, b1 = task * blocks // tasks, (task + 1) * blocks // tasks
    k0, k1 = b0 * FILTERS, min(k_count, b1 * FILTERS)
    tiles = tiles_h * tiles_w
    _, _, tmp = winograd_scratch(tile, tiles_w, tiles)
    m, row0, offset = v, 0, first
    if multiply:
        m = np.empty((packed.shape[0], (b1 - b0) * FILTERS, v.shape[2]), dtype=np.float32)
        for p in range(packed.shape[0]):
            point_products(packed, v, m, p, b0, b1, 0, v.shape[2])
        row0, offset = k0, 0
    for k in range(k0, k1):
        winograd_output_share(tile, m, k - row0, offset, 0, tiles, tiles_w, bias[k], code, out[k], tmp)


# the filter transform of each variant, by its output tile
FILTER_TRANSFORMS = {6: G6, 4: G, 2: G2}
