"""The Numba backend's Winograd convolutions (3x3, stride 1, pad 1), three ways to run the
kernels of winograd.py, each multiplying by microkernel.py: whole images (every tile
transformed, the products of every point, then the outputs), share by share of tiles (each
task transforms, multiplies and writes its share while it is in the core's cache), and run
by run of filters (small maps, whose few rows of tiles cannot be split among the cores)."""
import numpy as np

from .microkernel import FILTERS, packed_products_task, padded_matrix
from .tasks import balanced_tasks, run_tasks
from .winograd import winograd_fused_task, winograd_input_task, winograd_output_task

F = np.float32


def convolve(b, conv, x, tile, filters, bias, code, how):
    """[N, K, H, W] of Winograd F(tile x tile, 3x3) with the transformed ``filters`` (U packed:
    winograd_filters), then ``bias`` and the activation ``code``; ``how`` is one of WAYS."""
    n, c, h, w = x.shape
    tiles_h, tiles_w = (h + tile - 1) // tile, (w + tile - 1) // tile
    out = np.empty((n, conv.filters, h, w), dtype=F)
    WAYS[how](b, tile, filters, bias, code, x, out, tiles_h, tiles_w)
    return out


def whole_images(b, tile, packed, bias, code, x, out, tiles_h, tiles_w):
    """Every tile of an image (small maps: of the whole batch, for wider products that read the
    filters once; large ones image by image, to bound the transformed tiles' memory)
    transformed, then the products of every point, then the outputs."""
    points, c = packed.shape[0], x.shape[1]
    k = packed.shape[1] * FILTERS
    n, tiles = x.shape[0], tiles_h * tiles_w
    together = n if 4 * points * (c + k) * n * tiles <= b.tuning.winograd_batch_bytes else 1
    v = padded_matrix(points, c, together * tiles)     # a last, shorter group leaves finite values past it
    m = np.empty((points, k, v.shape[2]), dtype=F)
    for start in range(0, n, together):
        images = range(start, min(n, start + together))
        for i in images:
            run_tasks(winograd_input_task, (tile, np.ascontiguousarray(x[i]), tiles_h, tiles_w, v,
                                            (i - start) * tiles), b.tuning.row_tasks)
        run_tasks(packed_products_task, (packed, v, m), points)
        for i in images:
            run_tasks(winograd_output_task, (tile, packed, m, False, (i - start) * tiles, bias, code, out[i],
                                             tiles_h, tiles_w), b.tuning.row_tasks)


def by_shares(b, tile, packed, bias, code, x, out, tiles_h, tiles_w):
    tasks = balanced_tasks(tiles_h * tiles_w, 1, b.tuning.fused_tiles)
    for i in range(x.shape[0]):
        run_tasks(winograd_fused_task, (tile, np.ascontiguousarray(x[i]), packed, bias, code, out[i],
                                        b.tuning.fused_filters), tasks)


def by_filters(b, tile, packed, bias, code, x, out, tiles_h, tiles_w):
    points, c = packed.shape[0], x.shape[1]
    # runs of at least fused_filters filters, in whole blocks
    tasks = max(1, min(4, packed.shape[1] * FILTERS // b.tuning.fused_filters))
    v = padded_matrix(points, c, tiles_h * tiles_w)
    for i in range(x.shape[0]):
        run_tasks(winograd_input_task, (tile, np.ascontiguousarray(x[i]), tiles_h, tiles_w, v, 0),
                  b.tuning.row_tasks)
        run_tasks(winograd_output_task, (tile, packed, v, True, 0, bias, code, out[i], tiles_h, tiles_w), tasks)


WAYS = {"whole": whole_images, "fused": by_shares, "filters": by_filters}
