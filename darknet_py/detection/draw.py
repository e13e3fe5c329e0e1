"""darknet image.c:draw_detections: boxes of width h*.006 in get_color's palette, a label
(black text on the box colour) above the box."""
import numpy as np
from PIL import Image, ImageDraw, ImageFont

F = np.float32
_COLORS = np.array([[1, 0, 1], [0, 0, 1], [0, 1, 1], [0, 1, 0], [1, 1, 0], [1, 0, 0]], dtype=F)


def get_color(c, x, max_value):
    """darknet get_color: interpolate the 6-colour ramp."""
    ratio = x / max_value * 5
    i, j = int(np.floor(ratio)), int(np.ceil(ratio))
    ratio -= i
    return (1 - ratio) * _COLORS[i][c] + ratio * _COLORS[j][c]


def class_color(class_id, classes):
    offset = class_id * 123457 % classes
    return F(get_color(2, offset, classes)), F(get_color(1, offset, classes)), F(get_color(0, offset, classes))


def draw_box(im, x1, y1, x2, y2, rgb):
    """darknet draw_box: a one-pixel rectangle, corners clamped into the image."""
    _, h, w = im.shape
    x1, x2 = (min(max(v, 0), w - 1) for v in (x1, x2))
    y1, y2 = (min(max(v, 0), h - 1) for v in (y1, y2))
    for k in range(3):
        im[k, y1, x1:x2 + 1] = rgb[k]
        im[k, y2, x1:x2 + 1] = rgb[k]
        im[k, y1:y2 + 1, x1] = rgb[k]
        im[k, y1:y2 + 1, x2] = rgb[k]


def draw_label(im, top, left, text, rgb):
    """A label like darknet's: the box colour behind black text, above the box if it fits."""
    _, h, w = im.shape
    size = max(8, int(h * .03))
    font = ImageFont.load_default(size=size)
    x0, y0, x1, y1 = font.getbbox(text)
    pad = max(1, size // 4)
    lw, lh = int(x1 + 2 * pad), int(y1 + 2 * pad)
    canvas = Image.new("L", (lw, lh), 255)
    ImageDraw.Draw(canvas).text((pad, pad), text, font=font, fill=0)
    label = np.asarray(canvas, dtype=F) / F(255)
    if top - lh >= 0:
        top -= lh
    lh, lw = min(lh, h - top), min(lw, w - left)
    if lh <= 0 or lw <= 0:
        return
    for k in range(3):
        im[k, top:top + lh, left:left + lw] = rgb[k] * label[:lh, :lw]


def draw_detections(im, dets, order, thresh, names):
    """Draw in place on ``im`` [3, H, W]; return Darknet's printed lines, in its order, as
    (text, detection index) pairs."""
    _, h, w = im.shape
    classes = dets.prob.shape[1]
    lines = []
    for i in order:
        picked = [j for j in range(classes) if dets.prob[i, j] > thresh]
        if not picked:
            continue
        lines += [(f"{names[j]}: {dets.prob[i, j] * 100:.0f}%", i) for j in picked]
        rgb = class_color(picked[0], classes)
        x, y, bw, bh = (float(v) for v in dets.boxes[i])
        left, right = int((x - bw / 2) * w), int((x + bw / 2) * w)
        top, bot = int((y - bh / 2) * h), int((y + bh / 2) * h)
        left, top = max(left, 0), max(top, 0)
        right, bot = min(right, w - 1), min(bot, h - 1)
        width = int(h * .006)
        for d in range(max(width, 1)):          # darknet draw_box_width
            draw_box(im, left + d, top + d, right - d, bot - d, rgb)
        draw_label(im, top + width, left, ", ".join(names[j] for j in picked), rgb)
    return lines


def draw_and_describe(im, result, thresh, names, ext_output=False):
    """draw_detections on ``im`` for a detect() Result; Darknet's printed lines, with AlexeyAB's
    -ext_output box in pixels after each when asked."""
    _, h, w = im.shape
    lines = []
    for text, i in draw_detections(im, result.dets, result.order, thresh, names):
        if ext_output:
            x, y, bw, bh = (float(v) for v in result.dets.boxes[i])
            text += (f"\t(left_x: {(x - bw / 2) * w:4.0f}   top_y: {(y - bh / 2) * h:4.0f}   "
                     f"width: {bw * w:4.0f}   height: {bh * h:4.0f})")
        lines.append(text)
    return lines
