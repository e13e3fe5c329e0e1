#!/usr/bin/env python3
"""detector demo benchmark: end-to-end frames per second of the demo on a video file (decode,
letterbox, network, decode boxes, NMS, draw, encode the -out_filename video) beside the
network's forward-only rate on the same machine and backend, in one sitting.

usage: python benchmarks/demo.py [-cfg yolov2-tiny-voc] [-backend numba] [-frames 150]
                                 [-size 640x480] [-out .avi] [-runs 3]

The video is made here (moving shapes on a textured background, MJPG in .avi like a camera's
recording); the weights are generated (Darknet's initialisation). The demo runs at Darknet's
-thresh .5, where these weights draw about one box a frame, as a trained model on a street
would draw a few (at .25 they draw 73, and the drawing of 73 labels is what gets measured).
The ratio is demo FPS / forward FPS: 1.0
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
    ap.add_argument("-runs", type=int, default=3, help="pairs of forward-only and demo runs")
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
        names = [f"class{k}" for k in range(net.output_layer.classes)]

        def forward_fps(seconds=4):
            start, count = time.perf_counter(), 0
            while count < 10 or time.perf_counter() - start < seconds:
                net.predict(sized)
                count += 1
            return count / (time.perf_counter() - start)

        def demo_fps(kind, run):
            sinks = Sinks(video=VideoOutput(tmp / f"out{run}{a.out}", 25)) if kind == "video" else Sinks()
            summary = run_demo(net, open_source(str(video)), names, DemoOptions(thresh=.5), sinks,
                               out=lambda *args: None)
            return summary.fps

        # the machine's speed wanders: each demo run is taken beside a forward-only run, and the
        # ratios are of those pairs
        rows = {"forward": [], "printed only": [], f"-out_filename {a.out}": []}
        for run in range(a.runs):
            rows["forward"].append(forward_fps())
            rows["printed only"].append(demo_fps("print", run))
            rows[f"-out_filename {a.out}"].append(demo_fps("video", run))
    print(f"{cfg.name} at {net.width}x{net.height} on {a.backend}, {a.frames} frames of {width}x{height} "
          f"(MJPG .avi in), {a.runs} runs, medians")
    forward = np.median(rows["forward"])
    print(f"  {'forward only (predict)':28s} {forward:7.1f} FPS")
    for name in list(rows)[1:]:
        ratios = np.array(rows[name]) / np.array(rows["forward"])
        print(f"  {'demo, ' + name:28s} {np.median(rows[name]):7.1f} FPS   ratio {np.median(ratios):.2f} "
              f"(runs: {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
