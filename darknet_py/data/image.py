"""Darknet's image handling (darknet: image.c): decode, resize_image, letterbox_image, save.

Images are float32 [C, H, W] in [0, 1], as Darknet's ``image`` struct holds them.
"""
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DarknetError
from ..files import atomic_write

F = np.float32
# images larger than this are refused before they are decoded (-max_pixels); Pillow's own
# decompression-bomb check is replaced by it
MAX_PIXELS = 400_000_000
Image.MAX_IMAGE_PIXELS = None
SIXTEEN_BIT_GREY = ("I;16", "I;16B", "I;16L", "I;16N")


def set_max_pixels(limit):
    global MAX_PIXELS
    MAX_PIXELS = int(limit)


def _rgb_bytes(im):
    """[H, W, 3] uint8 as Darknet's stb_image gives it: 16-bit samples keep their high byte
    (stbi__convert_16_to_8: value >> 8), grey is replicated, alpha dropped. Pillow already
    reduces 16-bit RGB and grey+alpha that way; 16-bit grey it keeps whole, and its RGB
    conversion would clip every value above 255 to white."""
    if im.mode in SIXTEEN_BIT_GREY or (im.mode == "I" and im.format == "PNG"):
        grey = (np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def load_image(path):
    """darknet load_image_color: 3 channels (grey replicated, alpha dropped), byte/255."""
    return image_from_rgb(load_rgb(path))


def image_from_rgb(rgb):
    """darknet's image of uint8 RGB pixels [H, W, 3] (a file's, a video frame's): [3, H, W]
    float32, byte / 255."""
    return rgb.transpose(2, 0, 1).astype(F) / F(255)


def load_rgb(path):
    """An image file's pixels as Darknet's stb_image reads them, [H, W, 3] uint8; images over
    -max_pixels are refused before they are decoded."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise DarknetError(f"image of {w}x{h} pixels is over the limit of {MAX_PIXELS:,} "
                                   "(-max_pixels)", path)
            im.load()
            data = _rgb_bytes(im)
    except FileNotFoundError:
        raise DarknetError("cannot open image: no such file", path) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DarknetError(f"cannot decode image: {err}", path) from None
    return data


def resize_image(im, w, h):
    """darknet resize_image: two bilinear passes with scale (in-1)/(out-1), in float32.

    The last column copies the edge; the vertical pass writes (1-dy)*a, then adds dy*b
    except on the last row (where Darknet skips it, whatever dy is)."""
    c, im_h, im_w = im.shape
    part = np.empty((c, im_h, w), dtype=F)
    w_scale = F(im_w - 1) / F(w - 1) if w > 1 else F(0)
    h_scale = F(im_h - 1) / F(h - 1) if h > 1 else F(0)
    cols = np.arange(w - 1 if im_w > 1 else 0)
    sx = cols.astype(F) * w_scale
    ix = sx.astype(np.int64)
    dx = sx - ix.astype(F)
    part[:, :, cols] = (F(1) - dx) * im[:, :, ix] + dx * im[:, :, np.minimum(ix + 1, im_w - 1)]
    part[:, :, len(cols):] = im[:, :, im_w - 1:im_w]
    rows = np.arange(h)
    sy = rows.astype(F) * h_scale
    iy = sy.astype(np.int64)
    dy = (sy - iy.astype(F))[:, None]
    out = (F(1) - dy) * part[:, iy, :]
    if im_h > 1:
        inner = rows[:-1]
        out[:, inner, :] += dy[inner] * part[:, iy[inner] + 1, :]
    return out


def letterbox_size(im_w, im_h, w, h):
    """darknet letterbox_image / correct_region_boxes: the size the image is scaled to. An
    image so thin that a side would scale to 0 pixels is refused (Darknet would divide by it)."""
    if F(w) / F(im_w) < F(h) / F(im_h):
        size = w, (im_h * w) // im_w
    else:
        size = (im_w * h) // im_h, h
    if min(size) < 1:
        raise DarknetError(f"an image of {im_w}x{im_h} pixels is too thin to letterbox into {w}x{h}")
    return size


def letterbox_image(im, w, h):
    """darknet letterbox_image: keep the aspect, fill with 0.5, centre with integer offsets."""
    c, im_h, im_w = im.shape
    new_w, new_h = letterbox_size(im_w, im_h, w, h)
    boxed = np.full((c, h, w), F(.5), dtype=F)
    top, left = (h - new_h) // 2, (w - new_w) // 2
    boxed[:, top:top + new_h, left:left + new_w] = resize_image(im, new_w, new_h)
    return boxed


def to_uint8(im):
    """darknet save_image: (unsigned char)(255 * value), i.e. truncation, after clamping."""
    return (np.clip(im, 0, 1) * F(255)).astype(np.uint8).transpose(1, 2, 0)


def save_image(im, path):
    """darknet save_image: ``path`` plus ".jpg" (stb's JPEG writer, quality 80, as Darknet built
    without OpenCV writes it), atomically. A name ending in .png, .jpg or .jpeg is kept as it
    is, in that format."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        path = path.with_name(path.name + ".jpg")
    pil = Image.fromarray(to_uint8(im))
    if path.suffix.lower() == ".png":
        atomic_write(path, lambda f: pil.save(f, format="PNG"))
    else:
        atomic_write(path, lambda f: pil.save(f, format="JPEG", quality=80))
    return path
