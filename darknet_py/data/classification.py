"""Darknet's classification data (darknet: data.c:load_data_augment, fill_truth;
image.c:random_augment_image): labels from the path, random scale/rotation/aspect crops."""
import numpy as np

from ..errors import DarknetError, warn
from ..tree import fill_hierarchy
from .augment import rand_scale, random_distort
from .sampling import RandomSamples

F = np.float32


def truth_from_path(path, labels):
    """darknet fill_truth: class k when labels[k] occurs in the path; exactly one must."""
    hits = [k for k, label in enumerate(labels) if label in path]
    return hits


def rotate_crop(im, rad, scale, w, h, dx, dy, aspect):
    """darknet rotate_crop_image: a w x h view rotated by rad, scaled, shifted, bilinear."""
    c, ih, iw = im.shape
    cx, cy = iw / 2., ih / 2.
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    rx = np.cos(rad) * ((xs - w / 2.) / scale * aspect + dx / scale * aspect) \
        - np.sin(rad) * ((ys - h / 2.) / scale + dy / scale) + cx
    ry = np.sin(rad) * ((xs - w / 2.) / scale * aspect + dx / scale * aspect) \
        + np.cos(rad) * ((ys - h / 2.) / scale + dy / scale) + cy
    x0, y0 = np.floor(rx).astype(int), np.floor(ry).astype(int)
    fx, fy = (rx - x0).astype(F), (ry - y0).astype(F)

    def pixel(yy, xx):          # darknet get_pixel_extend: 0 outside the image
        inside = (xx >= 0) & (xx < iw) & (yy >= 0) & (yy < ih)
        return np.where(inside, im[:, np.clip(yy, 0, ih - 1), np.clip(xx, 0, iw - 1)], F(0))
    return ((1 - fy) * (1 - fx) * pixel(y0, x0) + fy * (1 - fx) * pixel(y0 + 1, x0)
            + (1 - fy) * fx * pixel(y0, x0 + 1) + fy * fx * pixel(y0 + 1, x0 + 1)).astype(F)


def random_augment(im, rng, angle, aspect, low, high, w, h):
    """darknet random_augment_image."""
    aspect = rand_scale(rng, aspect)
    r = int(rng.integers(low, high + 1))
    _, ih, iw = im.shape
    smallest = min(ih, iw * aspect)
    scale = r / smallest
    rad = rng.uniform(-angle, angle) * 2 * np.pi / 360.
    dx = (iw * scale / aspect - w) / 2.
    dy = (ih * scale - w) / 2.
    dx, dy = rng.uniform(-abs(dx), abs(dx)), rng.uniform(-abs(dy), abs(dy))
    return rotate_crop(im, rad, scale, w, h, dx, dy, aspect)


class ClassificationLoader(RandomSamples):
    """Batches of (images, one-hot truth), as darknet's load_data_augment makes them: a path
    must name exactly one label. With a class tree (``hierarchy``) the truth is filled up the
    tree and masked where no label is (darknet fill_hierarchy)."""

    def __init__(self, paths, list_path, labels, net_options, seed=0, workers=2, hierarchy=None, allocate=None):
        super().__init__(paths, list_path, seed, workers, allocate=allocate)
        self.labels, self.o = labels, net_options
        self.truth_shape = (len(labels),)
        self.hierarchy = hierarchy
        if hierarchy is not None and hierarchy.n != len(labels):
            raise DarknetError(f"the tree has {hierarchy.n} nodes but the labels file lists {len(labels)} classes",
                               hierarchy.path)

    def annotation(self, index):
        hits = truth_from_path(self.paths[index], self.labels)
        if len(hits) != 1:
            warn(f"{self.paths[index]}: Too many or too few labels: {len(hits)}; sample skipped")
            return None
        return hits[0]

    def make(self, im, cls, rng, w, h):
        o = self.o
        crop = random_augment(im, rng, o.angle, o.aspect, o.min_crop, o.max_crop, w, h)
        if rng.integers(2) and o.flip:          # AlexeyAB's flip=0: never
            crop = crop[:, :, ::-1]
        crop = random_distort(np.ascontiguousarray(crop), rng, o.hue, o.saturation, o.exposure)
        truth = np.zeros(len(self.labels), F)
        truth[cls] = 1
        if self.hierarchy is not None:
            fill_hierarchy(truth, self.hierarchy)
        return crop, truth

    def batch(self, batch_num, n, w, h):
        return self.draw(batch_num, n, w, h)
