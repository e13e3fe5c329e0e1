#!/usr/bin/env python3
"""Whether the data keeps the network busy: `detector train` end to end against train_step alone
on one fixed batch, and `detector valid` end to end against predict alone on one fixed batch,
the same cfg, backend, device and batch, in one sitting.

usage: python benchmarks/train_feed.py [-cfg yolov2-tiny-voc] [-backend numba] [-device cpu]
                                       [-batch 8] [-batches 4] [-images 64] [-size 416]
                                       [-workers 2] [-worker_processes] [-prefetch 2] [-out FILE]

Issue 17's targets, on a GPU (`-backend torch -device cuda -cfg yolov2-voc -batch 64`): train
within 15% of the step-only rate, valid at 50% of predict's or more. On the CPU the network is
so much slower than the loader that both ratios are near 1: a check of the script there.

The images are made here (VOC-sized JPEGs of shapes, as benchmarks/data_pipeline.py makes
them), listed for training and validation. The cfg is trained at -size with multi-scale off
(random=0) and batch=-batch subdivisions=1. Train: images/s over -batches iterations after two
of warm-up, timed between the iteration lines it prints. Valid: images/s over the whole list
after a warm-up pass of one batch, at -batch images a pass; then again with the network's pass
replaced by outputs taken once, the most the rest of valid can feed.

The network is untrained: every one of its boxes passes valid's .005 threshold in several
classes, the most lines the result files can take (a trained one writes far fewer)."""
import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_common import cfg_with, first_and_median
from data_pipeline import make_images

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def bench_files(folder, cfg, images, size, batch, classes):
    paths = make_images(folder, images)
    (folder / "all.txt").write_text("".join(p + "\n" for p in paths))
    (folder / "bench.names").write_text("".join(f"class{k}\n" for k in range(classes)))
    data = folder / "bench.data"
    data.write_text(f"classes={classes}\ntrain={folder / 'all.txt'}\nvalid={folder / 'all.txt'}\n"
                    f"names={folder / 'bench.names'}\nbackup={folder / 'backup'}\n")
    (folder / "backup").mkdir()
    return data, cfg_with(cfg, folder, batch=batch, subdivisions=1, width=size, height=size, random=0)


def train_rate(data, cfg, backend, batches, workers, processes, prefetch):
    """Images/s of detector train between its iteration lines, after two of warm-up."""
    from darknet_py.train.trainer import train_detector
    stamps = []

    def out(line):
        if re.match(r"^\d+: ", line):
            stamps.append(time.perf_counter())
    net = train_detector(str(data), str(cfg), backend=backend, max_batches=batches + 2, workers=workers,
                         worker_processes=processes, prefetch=prefetch, out=out)
    return batches * net.net.batch / (stamps[-1] - stamps[1])


def valid_without_network(data, net, folder, batch, images):
    """Images/s of detector valid with the network's pass replaced by a copy of outputs taken
    once: the rate at which reading, box decoding, NMS and the result files could feed it."""
    from darknet_py.detection.detector import head_outputs
    from darknet_py.evaluate import validate
    from darknet_py.evaluate.validate import validate_detector
    x = np.random.default_rng(1).random((batch, 3, net.height, net.width), dtype=np.float32)
    taken = head_outputs(net, x)
    validate.head_outputs = lambda net, sized: [[out.copy() for out in taken[k % batch]] for k in range(len(sized))]
    try:
        start = time.perf_counter()
        list(validate_detector(str(data), net, str(folder / "feed_"), batch=batch))
        return images / (time.perf_counter() - start)
    finally:
        validate.head_outputs = head_outputs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-cfg", default="yolov2-tiny-voc")
    ap.add_argument("-backend", default="numba")
    ap.add_argument("-device", default=None)
    ap.add_argument("-batch", type=int, default=8)
    ap.add_argument("-batches", type=int, default=4)
    ap.add_argument("-images", type=int, default=64)
    ap.add_argument("-size", type=int, default=416)
    ap.add_argument("-workers", type=int, default=2)
    ap.add_argument("-worker_processes", action="store_true")
    ap.add_argument("-prefetch", type=int, default=2)
    ap.add_argument("-out", help="append the figures, dated, to this markdown file (docs/gpu.md)")
    a = ap.parse_args()

    import darknet_py
    from darknet_py.evaluate.validate import validate_detector
    from darknet_py.resources import resolve
    cfg = Path(resolve(a.cfg if a.cfg.endswith(".cfg") else f"{a.cfg}.cfg"))
    backend = (a.backend, a.device, "fp32")
    sync = None
    if a.device and a.device.startswith("cuda"):
        import torch
        sync = torch.cuda.synchronize
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        classes = darknet_py.load_network(cfg).output_layer.classes
        data, sized = bench_files(folder, cfg, a.images, a.size, a.batch, classes)

        net = darknet_py.load_network(sized, backend=a.backend, device=a.device)
        x = np.random.default_rng(0).random((a.batch, 3, a.size, a.size), dtype=np.float32)
        truth = np.zeros((a.batch, net.output_layer.max_boxes, 5), np.float32)
        truth[:, 0] = [.5, .5, .2, .3, 1]
        step = first_and_median(lambda: net.train_step(x, truth, log=lambda line: None), a.batches, sync)[1]
        step_rate = a.batch / step
        train = train_rate(data, sized, backend, a.batches, a.workers, a.worker_processes, a.prefetch)

        net = darknet_py.load_network(sized, backend=a.backend, device=a.device)
        predict = first_and_median(lambda: net.predict(x), max(3, a.batches), sync)[1]
        predict_rate = a.batch / predict
        valid_list = folder / "all.txt"
        warm = folder / "warm.txt"
        warm.write_text("".join(valid_list.read_text().splitlines(keepends=True)[:a.batch]))
        data.write_text(data.read_text().replace(f"valid={valid_list}", f"valid={warm}"))
        list(validate_detector(str(data), net, str(folder / "warm_"), batch=a.batch))
        data.write_text(data.read_text().replace(f"valid={warm}", f"valid={valid_list}"))
        start = time.perf_counter()
        list(validate_detector(str(data), net, str(folder / "bench_"), batch=a.batch))
        valid_rate = a.images / (time.perf_counter() - start)
        feed_rate = valid_without_network(data, net, folder, a.batch, a.images)

    where = f"{cfg.name} at {a.size}, {a.backend}{' on ' + a.device if a.device else ''}, batch {a.batch}"
    loader = f"{a.workers} worker {'processes' if a.worker_processes else 'threads'}, -prefetch {a.prefetch}"
    lines = [f"{where}; {loader}",
             f"  train_step alone    {step_rate:9.1f} img/s",
             f"  detector train      {train:9.1f} img/s   {train / step_rate:.2f} of the step (target >= 0.85)",
             f"  predict alone       {predict_rate:9.1f} img/s",
             f"  detector valid      {valid_rate:9.1f} img/s   {valid_rate / predict_rate:.2f} of predict "
             "(target >= 0.50)",
             f"  valid, no network   {feed_rate:9.1f} img/s   {feed_rate / predict_rate:.2f} of predict "
             "(what reading, decoding and writing can feed)"]
    print("\n".join(lines))
    if a.out:
        with open(a.out, "a") as f:
            f.write(f"\n### Feeding the network, {time.strftime('%Y-%m-%d')}, {device_name(a.device)} "
                    f"(benchmarks/train_feed.py)\n\n```\n" + "\n".join(lines) + "\n```\n")


def device_name(device):
    if device and device.startswith("cuda"):
        import torch
        return torch.cuda.get_device_name(torch.device(device))
    import platform
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


if __name__ == "__main__":
    main()
