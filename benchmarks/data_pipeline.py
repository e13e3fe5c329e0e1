#!/usr/bin/env python3
"""Training data pipeline benchmark: images/s of the detection loader with the NumPy reference
augmentation and with the compiled one (data/compiled.py: the same numbers to the bit), for 1
and 2 worker threads, and the compiled one in 1 and 2 worker processes (the trainer's default),
beside the training step's images/s on the same machine and backend, in one sitting.

usage: python benchmarks/data_pipeline.py [-images 64] [-size 416] [-batch 16] [-batches 6]
                                          [-cfg yolov2-tiny-voc] [-backend numba]
                                          [-augmentation place|crop] [-prefetch 2] [-repeat 3]

The images are made here: VOC-sized JPEGs (500x375, quality 90) of shapes on textured
backgrounds, two to four boxes each. Each loader gives -batches batches of -batch samples at
-size as the trainer asks for them (its -prefetch batches made ahead), after two batches of
warm-up (Numba compiles its kernels once, then caches them; worker processes start). The step
rate is one train_step of the cfg at -size on -backend, batch -batch, after one warm-up step.
A loader at or above the step rate keeps training fed."""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def make_images(folder, count):
    from darknet_py.data.shapes import render_scene
    rng = np.random.default_rng(0)
    paths = []
    for k in range(count):
        image, boxes = render_scene(rng, 500, 375, max_objects=4)
        path = folder / "images" / f"{k:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=90)
        label = folder / "labels" / f"{k:05d}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("".join("%d %.6f %.6f %.6f %.6f\n" % b for b in boxes))
        paths.append(str(path))
    return paths


PIPELINES = {"reference": dict(compiled=False), "compiled": dict(compiled=True),
             "compiled, processes": dict(compiled=True, processes=True)}


def loader_rate(paths, head, net, size, batch, batches, workers, pipeline, augmentation, depth):
    from darknet_py.data.loader import DetectionLoader
    loader = DetectionLoader(paths, "bench.list", head, head.jitter, net.net.hue or .1, net.net.saturation or 1.5,
                             net.net.exposure or 1.5, workers=workers, augmentation=augmentation, depth=depth,
                             **PIPELINES[pipeline])
    try:
        loader.batch(0, batch, size, size)                # warm-up: compile, first decode
        loader.batch(1, batch, size, size)
        start = time.perf_counter()
        for b in range(2, batches + 2):                   # as the trainer asks: the next -prefetch made ahead
            loader.batch(b, batch, size, size)
        return batches * batch / (time.perf_counter() - start)
    finally:
        loader.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-images", type=int, default=64)
    ap.add_argument("-size", type=int, default=416)
    ap.add_argument("-batch", type=int, default=16)
    ap.add_argument("-batches", type=int, default=6)
    ap.add_argument("-cfg", default="yolov2-tiny-voc")
    ap.add_argument("-backend", default="numba")
    ap.add_argument("-augmentation", default="place", choices=("place", "crop"))
    ap.add_argument("-prefetch", type=int, default=2, help="batches made ahead, as detector train's -prefetch")
    ap.add_argument("-repeat", type=int, default=3, help="rounds of the four loaders; medians are printed")
    a = ap.parse_args()

    import darknet_py
    from darknet_py.resources import resolve
    cfg = Path(resolve(a.cfg if a.cfg.endswith(".cfg") else f"{a.cfg}.cfg"))
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_images(Path(tmp), a.images)
        net = darknet_py.Network(cfg, backend=a.backend, seed=0)
        head = net.output_layer
        runs = {(pipeline, workers): [] for pipeline in PIPELINES for workers in (1, 2)}
        for _ in range(a.repeat):         # taken in turn: the machine's speed wanders over minutes
            for pipeline, workers in runs:
                runs[pipeline, workers].append(loader_rate(paths, head, net, a.size, a.batch, a.batches, workers,
                                                           pipeline, a.augmentation, a.prefetch))
        rates = {key: float(np.median(values)) for key, values in runs.items()}
        if (net.width, net.height) != (a.size, a.size):
            net.resize(a.size, a.size)
        x = np.random.default_rng(0).random((net.net.batch, 3, a.size, a.size), dtype=np.float32)
        truth = np.zeros((net.net.batch, head.max_boxes * 5), np.float32)
        truth[:, :5] = [.5, .5, .2, .3, 1]
        net.train_step(x, truth, log=lambda line: None)
        start = time.perf_counter()
        net.train_step(x, truth, log=lambda line: None)
        step_rate = net.net.batch / (time.perf_counter() - start)
    print(f"detection loader, {a.augmentation} augmentation, {a.images} JPEGs of 500x375 -> {a.size}x{a.size}, "
          f"{a.batches} batches of {a.batch}, -prefetch {a.prefetch}, medians of {a.repeat} rounds")
    for workers in (1, 2):
        ref = rates["reference", workers]
        label = f"{workers} worker{'s' if workers > 1 else ' '}"
        print(f"  {label}: " + "   ".join(f"{name} {rates[name, workers]:7.1f} img/s ({rates[name, workers] / ref:.2f})"
                                         for name in PIPELINES))
    print("  2 workers / 1 worker: " + ", ".join(f"{pipeline} {rates[pipeline, 2] / rates[pipeline, 1]:.2f}"
                                                 for pipeline in PIPELINES))
    print(f"  training step ({cfg.name}, {a.backend}, batch {net.net.batch} at {a.size}): {step_rate:.1f} img/s; "
          f"compiled loader in 2 processes / step: {rates['compiled, processes', 2] / step_rate:.2f}")


if __name__ == "__main__":
    main()
