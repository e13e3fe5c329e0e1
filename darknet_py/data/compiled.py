"""Compiled image preparation (Numba, without the GIL): darknet's letterbox_image bit for bit
as the NumPy reference in data/image.py computes it (the same float32 operations in the same
order; tests hold the two together), for the pipelines that prepare frames on one thread while
the network runs on another (detector demo)."""
import numba
import numpy as np

from .image import letterbox_size

F = np.float32


@numba.njit(cache=True, nogil=True)
def _resize_into(im, w, h, out, top, left):
    """image.py resize_image, written into out[:, top:top + h, left:left + w]."""
    c, im_h, im_w = im.shape
    w_scale = F(im_w - 1) / F(w - 1) if w > 1 else F(0)
    h_scale = F(im_h - 1) / F(h - 1) if h > 1 else F(0)
    inner_cols = w - 1 if im_w > 1 else 0
    part = np.empty((im_h, w), dtype=np.float32)
    for k in range(c):
        for r in range(im_h):
            for x in range(inner_cols):
                sx = F(x) * w_scale
                ix = int(sx)
                dx = sx - F(ix)
                right = min(ix + 1, im_w - 1)
                part[r, x] = (F(1) - dx) * im[k, r, ix] + dx * im[k, r, right]
            for x in range(inner_cols, w):
                part[r, x] = im[k, r, im_w - 1]
        for y in range(h):
            sy = F(y) * h_scale
            iy = int(sy)
            dy = sy - F(iy)
            for x in range(w):
                value = (F(1) - dy) * part[iy, x]
                if im_h > 1 and y < h - 1:
                    value += dy * part[iy + 1, x]
                out[k, top + y, left + x] = value


def letterbox_image(im, w, h):
    """data.image.letterbox_image, compiled: the same array to the bit."""
    c, im_h, im_w = im.shape
    new_w, new_h = letterbox_size(im_w, im_h, w, h)
    boxed = np.full((c, h, w), F(.5), dtype=F)
    _resize_into(np.ascontiguousarray(im, dtype=F), new_w, new_h, boxed, (h - new_h) // 2, (w - new_w) // 2)
    return boxed
