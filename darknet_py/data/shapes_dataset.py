"""Datasets of synthetic shapes that need no download, written in VOC's layout (detection)
or Darknet's classification layout: what tools/make_shapes.py writes and the tests train on."""
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image

from .shapes import SHAPE_CLASSES, render_scene


def voc_xml(name, w, h, boxes):
    objects = []
    for cls, x, y, bw, bh in boxes:
        x1, y1 = round((x - bw / 2) * w) + 1, round((y - bh / 2) * h) + 1
        x2, y2 = round((x + bw / 2) * w), round((y + bh / 2) * h)
        objects.append(f"""  <object>
    <name>{escape(SHAPE_CLASSES[cls])}</name>
    <difficult>0</difficult>
    <bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>
  </object>""")
    return f"""<annotation>
  <folder>shapes</folder>
  <filename>{name}.jpg</filename>
  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>
{chr(10).join(objects)}
</annotation>
"""


def make(out, n_train, n_valid, seed):
    out = Path(out).resolve()
    for sub in ("JPEGImages", "Annotations", "labels", "backup"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lists = {"train": [], "valid": []}
    for k in range(n_train + n_valid):
        split = "train" if k < n_train else "valid"
        w, h = int(rng.integers(200, 321)), int(rng.integers(200, 321))
        image, boxes = render_scene(rng, w, h)
        name = f"shapes_{k:06d}"
        image.save(out / "JPEGImages" / f"{name}.jpg", quality=95)
        (out / "Annotations" / f"{name}.xml").write_text(voc_xml(name, w, h, boxes))
        (out / "labels" / f"{name}.txt").write_text(
            "".join("%d %.6f %.6f %.6f %.6f\n" % b for b in boxes))
        lists[split].append(str(out / "JPEGImages" / f"{name}.jpg"))
    write_dataset(out, lists, ".txt", "names", "shapes.names", "shapes.data")
    return out


def write_dataset(out, lists, list_suffix, names_key, names_file, data_file, extra=""):
    """The lists, the class names and the .data file that ties them together."""
    for split, paths in lists.items():
        (out / f"{split}{list_suffix}").write_text("".join(p + "\n" for p in paths))
    (out / names_file).write_text("".join(c + "\n" for c in SHAPE_CLASSES))
    (out / data_file).write_text(
        f"classes={len(SHAPE_CLASSES)}\ntrain={out / ('train' + list_suffix)}\n"
        f"valid={out / ('valid' + list_suffix)}\n{names_key}={out / names_file}\n"
        f"backup={out / 'backup'}\n{extra}")


def make_classification(out, n_train, n_valid, seed, size=64):
    """A classification set: one shape an image, its class name in the file name (Darknet
    finds a sample's label by looking for each label string in its path)."""
    out = Path(out).resolve()
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "backup").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    lists = {"train": [], "valid": []}
    for k in range(n_train + n_valid):
        split = "train" if k < n_train else "valid"
        image, boxes = render_scene(rng, size * 2, size * 2, max_objects=1)
        cls, x, y, w, h = boxes[0]
        side = max(w, h) * size * 2 * 1.3
        cx, cy = x * size * 2, y * size * 2
        crop = image.crop((int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2)))
        path = out / "images" / f"{k:05d}_{SHAPE_CLASSES[cls]}.png"
        crop.resize((size, size), Image.BILINEAR).save(path)
        lists[split].append(str(path))
    write_dataset(out, lists, ".list", "labels", "labels.txt", "classify.data", "top=2\n")
    return out
