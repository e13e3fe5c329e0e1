#!/usr/bin/env python3
"""Write the project's sample image (data/sample.png): synthetic shapes, no photo needed.

usage: python tools/make_sample_image.py [OUT] [-seed 19]
"""
import argparse

import numpy as np

from darknet_py.data.shapes import render_scene

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", nargs="?", default="data/sample.png")
    ap.add_argument("-seed", type=int, default=19)
    a = ap.parse_args()
    image, boxes = render_scene(np.random.default_rng(a.seed), 320, 240)
    image.save(a.out)
    for b in boxes:
        print("%d %.6f %.6f %.6f %.6f" % b)
