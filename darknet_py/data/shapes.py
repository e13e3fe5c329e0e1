"""A synthetic detection scene: a few shape classes on a textured background.

Used for the project's own sample image and (with tools/make_shapes.py) as a small
training set that needs no download.
"""
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SHAPE_CLASSES = ("circle", "square", "triangle", "star")


def background(rng, w, h):
    """Smooth colour noise plus stripes: texture that a detector must learn to ignore."""
    small = rng.uniform(0, 255, (max(2, h // 32), max(2, w // 32), 3)).astype(np.uint8)
    base = Image.fromarray(small).resize((w, h), Image.BICUBIC)
    stripes = (np.sin(np.arange(w) / rng.uniform(3, 12)) * 20).astype(np.int16)
    arr = np.clip(np.asarray(base, dtype=np.int16) + stripes[None, :, None], 0, 255)
    return Image.fromarray(arr.astype(np.uint8)).filter(ImageFilter.GaussianBlur(1))


def star_points(cx, cy, r):
    angles = np.arange(10) * np.pi / 5 - np.pi / 2
    radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
    return [(cx + rr * np.cos(a), cy + rr * np.sin(a)) for a, rr in zip(angles, radii)]


def render_scene(rng, w=416, h=416, max_objects=4):
    """Return (PIL RGB image, [(class_id, x, y, bw, bh)] in Darknet's relative units)."""
    im = background(rng, w, h)
    draw = ImageDraw.Draw(im)
    boxes = []
    for _ in range(rng.integers(1, max_objects + 1)):
        cls = int(rng.integers(len(SHAPE_CLASSES)))
        r = float(rng.uniform(0.06, 0.2) * min(w, h))
        cx, cy = float(rng.uniform(r, w - r)), float(rng.uniform(r, h - r))
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        outline = tuple(255 - v for v in color)
        if cls == 0:
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color, outline=outline, width=2)
        elif cls == 1:
            draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=color, outline=outline, width=2)
        elif cls == 2:
            draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=color, outline=outline)
        else:
            draw.polygon(star_points(cx, cy, r), fill=color, outline=outline)
        boxes.append((cls, cx / w, cy / h, 2 * r / w, 2 * r / h))
    return im, boxes
