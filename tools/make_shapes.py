#!/usr/bin/env python3
"""Make a small synthetic detection set in VOC layout: shapes on textured backgrounds.

usage: python tools/make_shapes.py OUT [-train 2000] [-valid 200] [-seed 0] [-classify]

Writes OUT/JPEGImages/*.jpg, OUT/Annotations/*.xml (VOC), OUT/labels/*.txt (Darknet's
'class x y w h'), OUT/train.txt and OUT/valid.txt (absolute paths), OUT/shapes.names and
OUT/shapes.data (backup = OUT/backup). Train with:
    darknet_py detector train OUT/shapes.data cfg/yolov2-tiny-shapes.cfg
"""
import argparse
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from darknet_py.data.shapes import SHAPE_CLASSES, render_scene


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
    from PIL import Image
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


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("-train", type=int, default=2000)
    ap.add_argument("-valid", type=int, default=200)
    ap.add_argument("-seed", type=int, default=0)
    ap.add_argument("-classify", action="store_true", help="a classification set instead")
    a = ap.parse_args()
    if a.classify:
        print(make_classification(a.out, a.train, a.valid, a.seed) / "classify.data")
    else:
        print(make(a.out, a.train, a.valid, a.seed) / "shapes.data")
