#!/usr/bin/env python3
"""Make a small synthetic detection set in VOC layout: shapes on textured backgrounds.

usage: python tools/make_shapes.py OUT [-train 2000] [-valid 200] [-seed 0] [-classify | -tree]

Writes OUT/JPEGImages/*.jpg, OUT/Annotations/*.xml (VOC), OUT/labels/*.txt (Darknet's
'class x y w h'), OUT/train.txt and OUT/valid.txt (absolute paths), OUT/shapes.names and
OUT/shapes.data (backup = OUT/backup). Train with:
    darknet_py detector train OUT/shapes.data cfg/yolov2-tiny-shapes.cfg

-tree writes YOLO9000's joint training in miniature instead (darknet_py/data/shape_tree.py):
-train detection scenes without two of the leaves, as many class-only images of every leaf,
and -valid scenes of the never-boxed leaves; train with cfg/yolo9000-shapes.cfg.
"""
import argparse

from darknet_py.data.shape_tree import make_tree
from darknet_py.data.shapes_dataset import make, make_classification

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("-train", type=int, default=2000)
    ap.add_argument("-valid", type=int, default=200)
    ap.add_argument("-seed", type=int, default=0)
    ap.add_argument("-classify", action="store_true", help="a classification set instead")
    ap.add_argument("-tree", action="store_true", help="a class tree with class-only images (YOLO9000)")
    a = ap.parse_args()
    if a.tree:
        print(make_tree(a.out, a.train, a.train, a.valid, a.seed) / "shapes-tree.data")
    elif a.classify:
        print(make_classification(a.out, a.train, a.valid, a.seed) / "classify.data")
    else:
        print(make(a.out, a.train, a.valid, a.seed) / "shapes.data")
