"""Products M[p] = U[p] V[p] by a register-blocked kernel instead of BLAS: the Winograd
products and, where it times faster, im2col's: the filters packed once per update, 4 at a
time interleaved along the channels, each block of 4 filters by 24, 16 or 8 columns (tiles,
pixels) summed over the channels in 12, 8 or 4 AVX registers. An LLVM intrinsic, because
Numba's own loops over such a block stay scalar (and spill) however they are written. BLAS
packs U again on every call, and U is the large operand of the Winograd products (25-169
tiles against 64-512 filters x channels), docs/benchmarks.md."""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .activations import bias_activate_line

FILTERS = 4         # filters per block: with 3 vectors of tiles and a broadcast, 16 registers
LANES = 8           # float32 lanes of an AVX register
PANEL_FLOATS = 64 << 10     # the filters' panels over one run of channels: half an L2 (256 KB)


def _block(vectors):
    """An intrinsic block(panel, v, v_start, v_stride, m, m_start, m_stride, count, add):
    m[m_start + i*m_stride + l] (+)= sum over c < count of panel[c*FILTERS + i] * v[v_start +
    c*v_stride + l], for i < FILTERS and l < LANES*vectors, added to what m holds with
    ``add``; every array float32, C-ordered."""
    @intrinsic
    def block(typingctx, panel, v, v_start, v_stride, m, m_start, m_stride, count, add):
        sig = types.void(panel, v, types.intp, types.intp, m, types.intp, types.intp, types.intp, types.boolean)

        def codegen(context, builder, signature, args):
            panel_ptr = context.make_array(signature.args[0])(context, builder, args[0]).data
            v_ptr = context.make_array(signature.args[1])(context, builder, args[1]).data
            m_ptr = context.make_array(signature.args[4])(context, builder, args[4]).data
            v_start, v_stride, m_start, m_stride, count, add = args[2], args[3], args[5], args[6], args[7], args[8]
            intp = context.get_value_type(types.intp)
            vector = ir.VectorType(ir.FloatType(), LANES)
            undefined = ir.Constant(vector, ir.Undefined)
            lane0 = ir.Constant(ir.IntType(32), 0)
            splat = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
            # fused multiply-add where the target has one, multiply and add where not
            fmuladd = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vector, [vector] * 3),
                                                     f"llvm.fmuladd.v{LANES}f32")

            def m_vector(i, j):
                start = builder.add(m_start, builder.mul(ir.Constant(intp, i), m_stride))
                return builder.bitcast(builder.gep(m_ptr, [builder.add(start, ir.Constant(intp, LANES * j))]),
                                       vector.as_pointer())
            zero = ir.Constant(vector, [0.0] * LANES)
            # the sums start from m's values or from zero; registers, after LLVM's mem2reg
            sums = [[cgutils.alloca_once_value(builder, builder.select(add, builder.load(m_vector(i, j), align=4),
                                                                       zero))
                     for j in range(vectors)] for i in range(FILTERS)]
            with cgutils.for_range(builder, count) as loop:
                c = loop.index
                row = builder.gep(v_ptr, [builder.add(v_start, builder.mul(c, v_stride))])
                tiles = [builder.load(builder.bitcast(builder.gep(row, [ir.Constant(intp, LANES * j)]),
                                                      vector.as_pointer()), align=4) for j in range(vectors)]
                first = builder.mul(c, ir.Constant(intp, FILTERS))
                for i in range(FILTERS):
                    weight = builder.load(builder.gep(panel_ptr, [builder.add(first, ir.Constant(intp, i))]))
                    weights = builder.shuffle_vector(builder.insert_element(undefined, weight, lane0), undefined, splat)
                    for j, sum_ in enumerate(sums[i]):
                        builder.store(builder.call(fmuladd, [weights, tiles[j], builder.load(sum_)]), sum_)
            for i in range(FILTERS):
                for j in range(vectors):
                    builder.store(builder.load(sums[i][j]), m_vector(i, j), align=4)
            return context.get_dummy_value()
        return sig, codegen
    return block


block24, block16, block8 = _block(3), _block(2), _block(1)


def pack_filters(u):
    """U [points, K, C] -> [points, ceil(K / 4), C * 4]: each block of 4 filters interleaved along
    the channels (panel[c*4 + i] = U[p, 4*b + i, c]), the last block's missing filters zero."""
    points, k, c = u.shape
    packed = np.zeros((points, -(-k // FILTERS), c, FILTERS), dtype=np.float32)
    for i in range(FILTERS):
        rows = u[:, i::FILTERS]
        packed[:, :rows.shape[1], :, i] = rows
    return packed.reshape(points, packed.shape[1], c * FILTERS)


@njit(cache=True)
def padded_tiles(tiles):
    """The columns of V and M for ``tiles`` tiles: whole vectors (the padding's products unread)."""
    return -(-tiles // LANES) * LANES


@njit(cache=True)
def padded_matrix(points, rows, columns):
    """An empty V for point_products, [points, rows, columns padded to whole vectors]: the
    padding zero (its products are not read, but kept finite), the rest for the caller to fill."""
    v = np.empty((points, rows, padded_tiles(columns)), dtype=np.float32)
    v[:, :, columns:] = 0
    return v


@njit(inline="always")
def tiles_by_block(panel, v, v_start, t, width, m, m_start, count, add):
    """One block of filters by ``width`` columns (a multiple of LANES) of rows t apart, 24, 16
    then 8 at a time."""
    t0 = 0
    while t0 + 3 * LANES <= width:
        block24(panel, v, v_start + t0, t, m, m_start + t0, t, count, add)
        t0 += 3 * LANES
    if t0 + 2 * LANES <= width:
        block16(panel, v, v_start + t0, t, m, m_start + t0, t, count, add)
        t0 += 2 * LANES
    if t0 < width:
        block8(panel, v, v_start + t0, t, m, m_start + t0, t, count, add)


@njit(inline="always")
def point_products(packed, v, m, p, b0, b1, t0, t1):
    """m[p, 4*(b - b0) + i, t0:t1] = (U[p, 4*b + i] v[p])[t0:t1] for the blocks b0 <= b < b1 of
    filters: packed (pack_filters) [points, blocks, C*4], v [points, C, T], m [points, >= 4*(b1
    - b0), T]; T, t0 and t1 multiples of LANES (columns past the tiles zero in v). The
    channels in runs whose panels fit half an L2, so that U crosses memory once, each run's
    sums added to the runs' before; the columns in spans whose V fits there too."""
    c, t = v.shape[1], v.shape[2]
    run = max(16, min(c, PANEL_FLOATS // ((b1 - b0) * FILTERS)))
    span = max(3 * LANES, PANEL_FLOATS // run // (3 * LANES) * (3 * LANES))
    vf, mf = v[p].reshape(-1), m[p].reshape(-1)
    for c0 in range(0, c, run):
        count = min(run, c - c0)
        for first in range(t0, t1, span):
            width = min(span, t1 - first)
            for b in range(b0, b1):
                tiles_by_block(packed[p, b, c0 * FILTERS:(c0 + count) * FILTERS], vf, c0 * t + first, t, width, mf,
                               (b - b0) * FILTERS * t + first, count, c0 > 0)


@njit(cache=True, nogil=True)
def packed_products_task(packed, v, m, tasks, task):
    """m[p] = U[p] v[p] (point_products) for task ``task``'s run of the points."""
    points = packed.shape[0]
    for p in range(task * points // tasks, (task + 1) * points // tasks):
        point_products(packed, v, m, p, 0, packed.shape[1], 0, v.shape[2])


@njit(cache=True, nogil=True)
def pointwise_task(packed, v, m, bias, code, out, tasks, task):
    """A 1x1 convolution's share of the columns: m = W v (point_products, one point: packed
    [1, blocks, C*4], v [1, C, T]), then out[k, j] = activate(m[k, j] + bias[k]) for the
    share's columns j < out.shape[1] (the map's pixels; T padded to whole vectors)."""
    t = v.shape[2]
    vectors = t // LANES
    t0, t1 = task * vectors // tasks * LANES, (task + 1) * vectors // tasks * LANES
    point_products(packed, v, m, 0, 0, packed.shape[1], t0, t1)
    last = min(t1, out.shape[1])
    for k in range(out.shape[0]):
        bias_activate_line(out[k, t0:last], m[0, k, t0:last], bias[k], code)
