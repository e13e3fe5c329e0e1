"""Compiled image preparation (Numba, without the GIL): letterbox_image (data/image.py) and the
training sample's place_image and distort_image (data/augment.py), each bit for bit as the NumPy
reference computes it (the same float32 operations in the same order; tests hold them together),
for the pipelines that prepare images on threads while the network runs (detector demo, the
training loader, evaluation)."""
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


@numba.njit(cache=True, nogil=True)
def _place_into(im, w, h, dx, dy, canvas):
    """augment.place_image: im scaled to w x h (bilinear, 0 beyond the edge) into canvas at (dx, dy).
    Plane by plane and along rows, the columns' sources worked out once: the same operations
    per value as the reference, written in the canvas's order."""
    c, ih, iw = im.shape
    _, ch, cw = canvas.shape
    one, zero = F(1), F(0)
    x0, x1 = max(0, -dx), min(w, cw - dx)
    y0, y1 = max(0, -dy), min(h, ch - dy)
    if x1 <= x0 or y1 <= y0:
        return
    ixs = np.empty(x1 - x0, dtype=np.int64)
    fxs = np.empty(x1 - x0, dtype=np.float32)
    for x in range(x0, x1):
        rx = (F(x) / F(w)) * F(iw)
        ixs[x - x0] = int(np.floor(rx))
        fxs[x - x0] = rx - F(ixs[x - x0])
    for k in range(c):
        for y in range(y0, y1):
            ry = (F(y) / F(h)) * F(ih)
            iy = int(np.floor(ry))
            fy = ry - F(iy)
            below = iy + 1 < ih
            row0, row1 = im[k, iy], im[k, min(iy + 1, ih - 1)]
            out = canvas[k, y + dy]
            for j in range(x1 - x0):
                ix, fx = ixs[j], fxs[j]
                right = ix + 1 < iw
                p00 = row0[ix]
                p10 = row1[ix] if below else zero
                p01 = row0[ix + 1] if right else zero
                p11 = row1[ix + 1] if below and right else zero
                out[x0 + j + dx] = ((one - fy) * (one - fx) * p00 + fy * (one - fx) * p10
                                    + (one - fy) * fx * p01 + fy * fx * p11)


@numba.njit(inline="always")
def _rgb_to_hsv(r, g, b):
    """augment.rgb_to_hsv on one pixel."""
    mx = max(r, max(g, b))
    mn = min(r, min(g, b))
    delta = mx - mn
    s = F(0) if mx == 0 else delta / mx
    if delta == 0:
        return F(0), s, mx
    if r == mx:
        hue = (g - b) / delta
    elif g == mx:
        hue = F(2) + (b - r) / delta
    else:
        hue = F(4) + (r - g) / delta
    if hue < 0:
        hue = hue + F(6)
    return hue / F(6), s, mx


@numba.njit(inline="always")
def _hsv_to_rgb(hue, s, v):
    """augment.hsv_to_rgb on one pixel."""
    if s == 0:
        return v, v, v
    one = F(1)
    h6 = hue * F(6)
    index = np.floor(h6)
    f = h6 - index
    p = v * (one - s)
    q = v * (one - s * f)
    t = v * (one - s * (one - f))
    i = int(index) % 6
    if i == 0:
        return v, t, p
    if i == 1:
        return q, v, p
    if i == 2:
        return p, v, t
    if i == 3:
        return p, q, v
    if i == 4:
        return t, p, v
    return v, p, q


@numba.njit(cache=True, nogil=True)
def _distort(im, dhue, dsat, dexp):
    """augment.distort_image on each pixel, in place: the scales, the hue shift with one wrap,
    the clamp."""
    _, rows, cols = im.shape
    zero, one = F(0), F(1)
    for y in range(rows):
        for x in range(cols):
            hue, s, v = _rgb_to_hsv(im[0, y, x], im[1, y, x], im[2, y, x])
            s = s * dsat
            v = v * dexp
            hue = hue + dhue
            if hue > 1:
                hue = hue - one
            elif hue < 0:
                hue = hue + one
            out = _hsv_to_rgb(hue, s, v)
            for k in range(3):
                im[k, y, x] = min(max(out[k], zero), one)


def resize_image(im, w, h):
    """image.resize_image, compiled."""
    out = np.empty((im.shape[0], h, w), dtype=F)
    _resize_into(np.ascontiguousarray(im, dtype=F), w, h, out, 0, 0)
    return out


def place_image(im, w, h, dx, dy, canvas):
    """augment.place_image, compiled."""
    _place_into(np.ascontiguousarray(im, dtype=F), w, h, dx, dy, canvas)
    return canvas


def distort_image(im, dhue, dsat, dexp):
    """augment.distort_image, compiled (in place on ``im``, which it returns)."""
    _distort(im, F(dhue), F(dsat), F(dexp))
    return im


@numba.njit(cache=True, nogil=True)
def _flip(im):
    c, rows, cols = im.shape
    for k in range(c):
        for y in range(rows):
            for x in range(cols // 2):
                im[k, y, x], im[k, y, cols - 1 - x] = im[k, y, cols - 1 - x], im[k, y, x]


def flip_image(im):
    """augment.flip_image, compiled (in place on ``im``, which it returns)."""
    _flip(im)
    return im
