"""Darknet's augmentation for detection training (darknet: data.c:load_data_detection,
image.c:place_image and random_distort_image, data.c:fill_truth_detection). Two ways to make a
sample: ``place_detection``, the reference commit's (aspect jitter, the image placed on grey),
the default; ``augment_detection``, the jitter crop stretched to the network of the YOLOv2
paper's code and AlexeyAB's (``[net] augmentation=crop``). Images are float32 [3, H, W] in [0, 1]."""
import numpy as np

from .image import resize_image
from .labels import class_only

F = np.float32


def crop_image(im, dx, dy, w, h):
    """darknet crop_image: a w x h window at (dx, dy); outside cells clamp to the edge."""
    _, ih, iw = im.shape
    rows = np.clip(np.arange(h) + dy, 0, ih - 1)
    cols = np.clip(np.arange(w) + dx, 0, iw - 1)
    return im[:, rows][:, :, cols]


def rgb_to_hsv(im):
    """darknet rgb_to_hsv: h in [0, 1), s, v in [0, 1]."""
    r, g, b = im
    mx, mn = im.max(axis=0), im.min(axis=0)
    delta = mx - mn
    v = mx
    s = np.where(mx == 0, F(0), delta / np.where(mx == 0, F(1), mx))
    safe = np.where(delta == 0, F(1), delta)
    h = np.where(r == mx, (g - b) / safe, np.where(g == mx, F(2) + (b - r) / safe, F(4) + (r - g) / safe))
    h = np.where(h < 0, h + F(6), h) / F(6)
    h = np.where(delta == 0, F(0), h)
    return np.stack([h, s, v]).astype(F)


def hsv_to_rgb(im):
    """darknet hsv_to_rgb."""
    h, s, v = im
    h6 = h * F(6)
    index = np.floor(h6)
    f = h6 - index
    p = v * (F(1) - s)
    q = v * (F(1) - s * f)
    t = v * (F(1) - s * (F(1) - f))
    index = index.astype(int) % 6
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.empty_like(im)
    for k in range(3):
        out[k] = np.choose(index, [c[k] for c in choices])
    gray = s == 0
    out[:, gray] = v[gray]
    return out


def rand_scale(rng, s):
    """darknet rand_scale: a factor in [1, s], or its inverse, with even odds."""
    scale = rng.uniform(1, s) if s >= 1 else rng.uniform(s, 1)
    return scale if rng.integers(2) else 1 / scale


def distort_draws(rng, hue, saturation, exposure):
    """random_distort_image's draws: a hue shift in [-hue, hue], saturation and exposure scales."""
    dhue = rng.uniform(-hue, hue)
    dsat, dexp = rand_scale(rng, saturation), rand_scale(rng, exposure)
    return F(dhue), F(dsat), F(dexp)


def distort_image(im, dhue, dsat, dexp):
    """darknet distort_image: shift hue (wrapped once), scale saturation and value, clamp."""
    hsv = rgb_to_hsv(im)
    hsv[1] *= dsat
    hsv[2] *= dexp
    hsv[0] += dhue
    hsv[0] = np.where(hsv[0] > 1, hsv[0] - 1, np.where(hsv[0] < 0, hsv[0] + 1, hsv[0]))
    return np.clip(hsv_to_rgb(hsv), 0, 1)


def random_distort(im, rng, hue, saturation, exposure):
    """darknet random_distort_image."""
    return distort_image(im, *distort_draws(rng, hue, saturation, exposure))


CLASS_ONLY = F(999999)     # darknet correct_boxes' mark on a class-only label (x = y = 0)


def correct_boxes(boxes, dx, dy, sx, sy, flip):
    """darknet correct_boxes on label rows (class, x, y, w, h): crop/scale/flip, clamp to
    the image, back to centre and size. A class-only label gets 999999 in all four box
    fields instead, which the region loss recognises (x, y > 100000)."""
    out = boxes.astype(F).copy()
    marked = class_only(out)
    left = (out[:, 1] - out[:, 3] / 2) * sx - dx
    right = (out[:, 1] + out[:, 3] / 2) * sx - dx
    top = (out[:, 2] - out[:, 4] / 2) * sy - dy
    bottom = (out[:, 2] + out[:, 4] / 2) * sy - dy
    if flip:
        left, right = 1 - right, 1 - left
    left, right, top, bottom = (np.clip(v, 0, 1) for v in (left, right, top, bottom))
    out[:, 1] = (left + right) / 2
    out[:, 2] = (top + bottom) / 2
    out[:, 3] = np.clip(right - left, 0, 1)
    out[:, 4] = np.clip(bottom - top, 0, 1)
    out[marked, 1:5] = CLASS_ONLY
    return out


def flip_image(im):
    """darknet flip_image: left and right swapped."""
    return np.ascontiguousarray(im[:, :, ::-1])


def augment_detection(im, boxes, w, h, rng, jitter, hue, saturation, exposure, max_boxes, flips=True,
                      resize=resize_image, distort=distort_image, flip_image=flip_image, letter_box=False):
    """One training sample by the jitter crop: crop, resize to w x h, random flip, HSV
    distortion; the labels follow and fill Darknet's truth rows (x, y, w, h, class).
    ``resize``, ``distort`` and ``flip_image``: the reference's, or data/compiled.py's.
    ``letter_box``: AlexeyAB's letterboxed crop (letterbox_crop)."""
    _, oh, ow = im.shape
    dw, dh = int(ow * jitter), int(oh * jitter)
    pleft, pright = (int(rng.uniform(-dw, dw)) for _ in range(2))
    ptop, pbot = (int(rng.uniform(-dh, dh)) for _ in range(2))
    if letter_box:
        pleft, pright, ptop, pbot = letterbox_crop(pleft, pright, ptop, pbot, ow, oh, w, h)
    swidth, sheight = ow - pleft - pright, oh - ptop - pbot
    sx, sy = swidth / ow, sheight / oh
    flip = bool(rng.integers(2)) and flips
    sized = resize(crop_image(im, pleft, ptop, swidth, sheight), w, h)
    if flip:
        sized = flip_image(sized)
    sized = distort(sized, *distort_draws(rng, hue, saturation, exposure))
    dx, dy = (pleft / ow) / sx, (ptop / oh) / sy
    return np.ascontiguousarray(sized), fill_truth(boxes, rng, max_boxes, dx, dy, 1 / sx, 1 / sy, flip)


def letterbox_crop(pleft, pright, ptop, pbot, ow, oh, w, h):
    """AlexeyAB's load_data_detection with letter_box=1: the jittered crop widened (or made
    taller) on both sides by half the difference to the network's aspect, so the resize keeps
    the image's aspect; what lies beyond the image is its edge, as crop_image clamps. float32 as
    in C, each side truncated back to an int."""
    img_ar = F(ow) / F(oh)
    net_ar = F(w) / F(h)
    if img_ar / net_ar > 1:             # too wide: taller crop
        delta_h = (F(ow) / net_ar - F(oh)) / F(2)
        ptop, pbot = int(F(ptop) - delta_h), int(F(pbot) - delta_h)
    else:
        delta_w = (F(oh) * net_ar - F(ow)) / F(2)
        pleft, pright = int(F(pleft) - delta_w), int(F(pright) - delta_w)
    return pleft, pright, ptop, pbot


def place_image(im, w, h, dx, dy, canvas):
    """darknet place_image: ``im`` scaled to w x h by bilinear_interpolate (0 beyond its edge)
    and written into ``canvas`` [3, H, W] at (dx, dy), cells outside the canvas skipped."""
    c, ih, iw = im.shape
    padded = np.zeros((c, ih + 1, iw + 1), dtype=F)       # get_pixel_extend: 0 outside
    padded[:, :ih, :iw] = im
    rx = (np.arange(w, dtype=F) / F(w)) * F(iw)
    ry = (np.arange(h, dtype=F) / F(h)) * F(ih)
    ix, iy = np.floor(rx).astype(int), np.floor(ry).astype(int)
    fx, fy = (rx - ix.astype(F))[None, None, :], (ry - iy.astype(F))[None, :, None]
    rows, cols = iy[:, None], ix[None, :]
    val = ((F(1) - fy) * (F(1) - fx) * padded[:, rows, cols] + fy * (F(1) - fx) * padded[:, rows + 1, cols]
           + (F(1) - fy) * fx * padded[:, rows, cols + 1] + fy * fx * padded[:, rows + 1, cols + 1])
    _, ch, cw = canvas.shape
    top, left = max(dy, 0), max(dx, 0)
    bottom, right = min(dy + h, ch), min(dx + w, cw)
    if bottom > top and right > left:
        canvas[:, top:bottom, left:right] = val[:, top - dy:bottom - dy, left - dx:right - dx]
    return canvas


def placement_draws(rng, ow, oh, w, h, jitter):
    """load_data_detection's draws for an ow x oh image on a w x h network: the jittered aspect
    new_ar = (ow + U(-dw, dw)) / (oh + U(-dh, dh)) (dw, dh = jitter times the image's size), the
    scaled size (nw, nh) filling the width (or height), the offset (dx, dy); float32 as in C."""
    dw, dh = F(jitter) * F(ow), F(jitter) * F(oh)
    new_ar = F(F(ow) + F(rng.uniform(-dw, dw))) / F(F(oh) + F(rng.uniform(-dh, dh)))
    if new_ar < 1:
        nh = F(h)
        nw = nh * new_ar
    else:
        nw = F(w)
        nh = nw / new_ar
    dx = F(rng.uniform(*sorted((0, float(F(w) - nw)))))     # rand_uniform swaps a reversed range
    dy = F(rng.uniform(*sorted((0, float(F(h) - nh)))))
    return nw, nh, dx, dy


def place_detection(im, boxes, w, h, rng, jitter, hue, saturation, exposure, max_boxes, flips=True,
                    place=place_image, distort=distort_image, flip_image=flip_image):
    """One training sample as the reference commit makes it (data.c:load_data_detection): the
    image scaled at the jittered aspect to fill the network's width (or height) and placed at
    a uniform offset on a canvas of 0.5; HSV distortion; then a random flip; the labels follow
    through fill_truth_detection's formulas. ``place``, ``distort`` and ``flip_image``: this
    module's functions, or data/compiled.py's (the same numbers, compiled)."""
    _, oh, ow = im.shape
    nw, nh, dx, dy = placement_draws(rng, ow, oh, w, h, jitter)
    sized = np.full((3, h, w), F(.5), dtype=F)
    place(im, int(nw), int(nh), int(dx), int(dy), sized)          # darknet passes them as int
    sized = distort(sized, *distort_draws(rng, hue, saturation, exposure))
    flip = bool(rng.integers(2)) and flips
    if flip:
        sized = flip_image(sized)
    truth = fill_truth(boxes, rng, max_boxes, -dx / F(w), -dy / F(h), nw / F(w), nh / F(h), flip)
    return sized, truth


def fill_truth(boxes, rng, max_boxes, dx=0.0, dy=0.0, sx=1.0, sy=1.0, flip=False):
    """darknet fill_truth_detection: shuffle, correct, keep at most max_boxes, drop boxes
    thinner than .001; rows (x, y, w, h, class), zero padded."""
    truth = np.zeros((max_boxes, 5), dtype=F)
    if len(boxes) == 0:
        return truth
    boxes = boxes[rng.permutation(len(boxes))]
    fixed = correct_boxes(boxes, dx, dy, sx, sy, flip)[:max_boxes]
    keep = fixed[(fixed[:, 3] >= .001) & (fixed[:, 4] >= .001)]
    truth[:len(keep), :4] = keep[:, 1:]
    truth[:len(keep), 4] = keep[:, 0]
    return truth
