#!/usr/bin/env python3
"""detector demo benchmark: end-to-end frames per second of the demo on a video file (decode,
letterbox, network, decode boxes, NMS, draw, encode the -out_filename video) beside the
network's forward-only rate on the same machine and backend, in one sitting.

usage: python benchmarks/demo.py [-cfg yolov2-tiny-voc] [-backend numba] [-frames 150]
                                 [-size 640x480] [-out .avi] [-runs 2]

The video is made here (moving shapes on a textured background, MJPG in .avi like a camera's
recording); the weights are generated (Darknet's initialisation; the demo runs at its usual
-thresh .25): speed does not depend on their values. The ratio is demo FPS / forward FPS: 1.0
means the video decoding, letterboxing, drawing and encoding are entirely hidden behind the
network."""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def make_video(path, frames, width, height):
    import cv2
    from PIL import ImageDraw

    from darknet_py.data.shapes import background
    base = background(np.random.default_rng(1), width, height)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (width, height))
    for t in range(frames):
        im = base.copy()
        draw = ImageDraw.Draw(im)
        x = (40 + 4 * t) % width
        draw.ellipse([x - 50, 80, x + 50, 180], fill=(200, 40, 40))
        draw.rectangle([width - x - 40, 250, width - x + 40, 330], fill=(40, 60, 200))
        writer.write(np.ascontiguousarray(np.asarray(im)[:, :, ::-1]))
    writer.release()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-cfg", default="yolov2-tiny-voc")
    ap.add_argument("-backend", default="numba")
    ap.add_argument("-frames", type=int, default=150)
    ap.add_argument("-size", default="640x480")
    ap.add_argument("-out", default=".avi", help="the -out_filename container (.avi, .mp4, .mkv)")
    ap.add_argument("-runs", type=int, default=2, help="demo runs; the best is reported")
    a = ap.parse_args()

    import darknet_py
    from darknet_py.data.image import letterbox_image
    from darknet_py.demo import DemoOptions, Sinks, run_demo
    from darknet_py.resources import resolve
    from darknet_py.video import VideoOutput, open_source

    width, height = (int(v) for v in a.size.split("x"))
    cfg = Path(resolve(a.cfg if a.cfg.endswith(".cfg") else f"{a.cfg}.cfg"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = tmp / "moving.avi"
        make_video(video, a.frames, width, height)
        weights = tmp / "w.weights"
        darknet_py.Network(cfg, seed=0).save_weights(weights)
        net = darknet_py.load_network(cfg, weights, backend=a.backend)
        frame = np.random.default_rng(0).random((3, height, width), dtype=np.float32)
        sized = letterbox_image(frame, net.width, net.height)[None]
        for _ in range(3):                      # compile, choose algorithms
            net.predict(sized)
        start = time.perf_counter()
        count = 0
        while count < 20 or time.perf_counter() - start < 5:
            net.predict(sized)
            count += 1
        forward_fps = count / (time.perf_counter() - start)
        names = [f"class{k}" for k in range(net.output_layer.classes)]
        best = None
        for run in range(a.runs):
            sinks = Sinks(video=VideoOutput(tmp / f"out{run}{a.out}", 25))
            summary = run_demo(net, open_source(str(video)), names, DemoOptions(thresh=.25), sinks,
                               out=lambda *args: None)
            best = summary if best is None or summary.fps > best.fps else best
    print(f"{cfg.name} at {net.width}x{net.height} on {a.backend}, {a.frames} frames of {width}x{height} "
          f"(MJPG .avi in, {a.out} out)")
    print(f"  forward only (predict):          {forward_fps:7.1f} FPS")
    print(f"  demo end to end (best of {a.runs}):    {best.fps:7.1f} FPS   ratio {best.fps / forward_fps:.2f}")
    print(f"  demo's network + box decoding:   {best.frames / best.network_seconds:7.1f} FPS")


if __name__ == "__main__":
    main()
