#!/usr/bin/env python3
"""Convert a VOCdevkit to Darknet's labels and lists, as Darknet's scripts/voc_label.py does.

usage: python tools/voc_label.py VOCDEVKIT [-sets 2007:train,2007:val,2007:test,2012:train,2012:val]

For each (year, set): reads VOC{year}/ImageSets/Main/{set}.txt, writes
VOC{year}/labels/{id}.txt ('class x y w h', centre and size relative to the image; objects
marked difficult are skipped, as Darknet's script does) and {year}_{set}.txt listing the
absolute JPEG paths, in the current directory. Then, as Darknet's README says:
    cat 2007_train.txt 2007_val.txt 2012_*.txt > train.txt
"""
import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
           "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
           "train", "tvmonitor"]


def convert(size, box):
    """VOC's 1-based (xmin, xmax, ymin, ymax) to Darknet's relative (x, y, w, h)."""
    dw, dh = 1. / size[0], 1. / size[1]
    x, y = (box[0] + box[1]) / 2.0 - 1, (box[2] + box[3]) / 2.0 - 1
    return x * dw, y * dh, (box[1] - box[0]) * dw, (box[3] - box[2]) * dh


def convert_annotation(xml_path, label_path, classes=CLASSES):
    root = ET.parse(xml_path).getroot()
    size = root.find("size")
    w, h = int(size.find("width").text), int(size.find("height").text)
    lines = []
    for obj in root.iter("object"):
        difficult = obj.find("difficult")
        name = obj.find("name").text
        if name not in classes or (difficult is not None and int(difficult.text) == 1):
            continue
        b = obj.find("bndbox")
        box = tuple(float(b.find(k).text) for k in ("xmin", "xmax", "ymin", "ymax"))
        lines.append("%d %s\n" % (classes.index(name), " ".join(str(v) for v in convert((w, h), box))))
    Path(label_path).write_text("".join(lines))


def main(devkit, sets):
    devkit = Path(devkit).resolve()
    for year, image_set in sets:
        base = devkit / f"VOC{year}"
        ids_file = base / "ImageSets" / "Main" / f"{image_set}.txt"
        if not ids_file.exists():
            sys.exit(f"voc_label.py: {ids_file}: not found")
        (base / "labels").mkdir(exist_ok=True)
        ids = ids_file.read_text().split()
        with open(f"{year}_{image_set}.txt", "w") as listing:
            for image_id in ids:
                listing.write(f"{base / 'JPEGImages' / (image_id + '.jpg')}\n")
                convert_annotation(base / "Annotations" / f"{image_id}.xml",
                                   base / "labels" / f"{image_id}.txt")
        print(f"{year}_{image_set}.txt: {len(ids)} images")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("devkit")
    ap.add_argument("-sets", default="2007:train,2007:val,2007:test,2012:train,2012:val")
    a = ap.parse_args()
    main(a.devkit, [tuple(s.split(":")) for s in a.sets.split(",")])
