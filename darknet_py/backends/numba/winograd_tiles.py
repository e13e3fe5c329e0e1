"""Where Winograd tiles sit on a map, shared by the F(2x2), F(4x4) and F(6x6) transforms: the
input rows (zeros beyond the map), the columns a row of tiles reads, a task's share of tiles,
and the scratch buffers a task allocates once."""
import numpy as np
from numba import njit


@njit(inline="always")
def image_row(x, ch, iy, zeros):
    """Row iy of channel ch, or zeros above and below the map (pad 1)."""
    if iy < 0 or iy >= x.shape[1]:
        return zeros
    return x[ch, iy]


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
def winograd_scratch(tile, tiles_w, tiles):
    """A task's buffers for the transforms, allocated once per task, not per row (allocation
    is a visible share of a small layer's time): the input rows down-transformed, [tile + 2,
    tile * tiles_w + 2], a row of zeros for the padding, and A^T m for a share of ``tiles``
    tiles, [tile, tile + 2, tiles]."""
    size = tile + 2
    return (np.empty((size, tile * tiles_w + 2), dtype=np.float32), np.zeros(tile * tiles_w, dtype=np.float32),
            np.empty((tile, size, tiles), dtype=np.float32))
