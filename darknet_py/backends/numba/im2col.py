"""darknet im2col_cpu / col2im_cpu: the columns a convolution multiplies, compiled."""
import numpy as np
from numba import njit, prange


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
