"""darknet maxpool_layer.c compiled: the general window, windows that tile the map, and a
vectorised 2x2 window for inference; the backward's scatter."""
import numpy as np
from numba import njit, prange


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
    the stride a constant, the loads vectorise (indices clamped to the map would not)."""
    for ox in range(first, last):
        left = ox * stride
        line[ox] = first_maximum(top[left], top[left + 1], bottom[left], bottom[left + 1])


@njit(cache=True, nogil=True)
def maxpool_2x2_task(x, stride, out, tasks, task):
    """maxpool without the argmax (inference) for 2x2 windows starting inside the map (no
    padding before), task ``task``'s run of the planes. A cell past the map's edge is read as
    its neighbour inside, which cannot change a maximum. Tasks, not a prange loop: a
    parallel loop compiles several times longer."""
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
