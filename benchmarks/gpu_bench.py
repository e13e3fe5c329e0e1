#!/usr/bin/env python3
"""GPU benchmark (run on a machine with CUDA): yolov2-voc, yolov2-tiny-voc and yolov3 at 416.

usage: python benchmarks/gpu_bench.py [-out docs/gpu.md] [-runs 20] [-cfgs yolov2-voc,yolov2-tiny-voc,yolov3]
                                      [-batch 64] [-device cuda|cpu]

Per network, in one process and one sitting, each beside the peer PyTorch eager (the same
network as a plain nn.Module, BN folded, channels_last, no graph):
  - darknet_py's torch backend: ``Network.forward`` (Darknet's unfolded math, every layer's
    output kept, fp32 with TF32 off) and ``Network.predict`` as the CLI runs it (numpy in and
    out, BN folded, channels_last, a CUDA graph per shape), fp32 and -half, batch 1 and 64;
  - the same graphs fed from the GPU (the device time alone);
  - OpenCV's Darknet importer, where its build has a CUDA target (pip wheels have none);
  - one Darknet training step (forward, region or yolo loss, backward, update) at batch 64, fp32
    and -half (bf16 convolutions, fp32 updates).
Prints ms per image, images per second, peak GPU memory and the ratio to PyTorch eager, and
appends the table, dated and naming the card, to the -out file. fp16's error is stated
against fp32 on the region output. Published anchor: Darknet's 67 FPS on a Titan X for
yolov2-voc at 416. Weights are Darknet's initialisation: speed does not depend on values.
``-device cpu -batch 2 -runs 1 -out /tmp/x.md`` runs every path but the CUDA graphs on the CPU:
a check of the script before a lent GPU's minutes are spent on it, not a measurement."""
import argparse
import datetime
import gc
import tempfile
from pathlib import Path

import numpy as np
import torch
from bench_common import cfg_with, first_and_median

import darknet_py
from darknet_py.backends.torch.inference import capture_graph, inference_module

REPO = Path(__file__).resolve().parent.parent
SIZE = 416
BIG = 64                # the large batch: -batch
DEVICE = "cuda"         # -device


def timed(fn, runs):
    """Median seconds of ``runs`` synchronised calls, after a warm-up."""
    return first_and_median(fn, runs, sync=torch.cuda.synchronize if DEVICE == "cuda" else None)[1]


def free_memory():
    gc.collect()            # a Network and its backend refer to each other: free cycles first
    if DEVICE == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory():
    return torch.cuda.max_memory_allocated() / 2**20 if DEVICE == "cuda" else float("nan")


def graphed(module, x):
    """The forward pass captured once as a CUDA graph, as Network.predict does it."""
    with torch.inference_mode():
        captured = capture_graph(module, x.clone())

    def replay():        # holds the captured input and output: the graph reads and writes them
        if captured is None:
            raise RuntimeError("CUDA graph capture failed")
        captured[2].replay()
        return captured
    return replay


class Table:
    def __init__(self, name):
        self.name, self.rows = name, []

    def measure(self, path, batch, fn, runs):
        """Time ``fn`` (one call = ``batch`` images) and its peak GPU memory; a failure is a row."""
        free_memory()
        try:
            seconds = timed(fn, runs)
        except Exception as err:                     # a peer that cannot run is reported, not fatal
            self.rows.append((path, batch, None, f"failed: {type(err).__name__}: {str(err)[:80]}"))
            return
        self.rows.append((path, batch, seconds / batch, peak_memory()))

    def lines(self):
        eager = {batch: per for path, batch, per, _ in self.rows if path.startswith("PyTorch eager fp32")}
        out = [f"\n### {self.name} at {SIZE}\n",
               "| path | batch | ms/image | images/s | peak GPU MB | vs PyTorch eager fp32 |",
               "|---|---|---|---|---|---|"]
        for path, batch, per, memory in self.rows:
            if per is None:
                out.append(f"| {path} | {batch} | {memory} | | | |")
                continue
            ratio = per / eager[batch] if batch in eager else float("nan")
            out.append(f"| {path} | {batch} | {1000 * per:.3f} | {1 / per:,.0f} | {memory:,.0f} | {ratio:.2f} |")
        return out


def bench(name, runs, tmp):
    cfg = cfg_with(REPO / "cfg" / f"{name}.cfg", tmp, width=SIZE, height=SIZE)   # yolov3.cfg says 608
    table = Table(name)
    notes = []
    net = darknet_py.load_network(cfg, backend="torch", device=DEVICE)
    head = net.output_layer
    weights = Path(tmp) / f"{name}.weights"
    net.save_weights(weights)
    half_net = darknet_py.load_network(cfg, weights, backend="torch", device=DEVICE, precision="fp16")
    rng = np.random.default_rng(0)
    host = {b: rng.random((b, 3, SIZE, SIZE), dtype=np.float32) for b in (1, BIG)}
    dev = {b: torch.from_numpy(host[b]).to(DEVICE).to(memory_format=torch.channels_last) for b in (1, BIG)}

    eager = inference_module(net).to(DEVICE).to(memory_format=torch.channels_last).eval()
    eager_half = inference_module(net).to(DEVICE).half().to(memory_format=torch.channels_last).eval()
    with torch.inference_mode():
        for b in (1, BIG):
            table.measure("PyTorch eager fp32 (peer)", b, lambda b=b: eager(dev[b]), runs)
        table.measure("PyTorch eager fp16 (peer)", BIG, lambda: eager_half(dev[BIG].half()), runs)
    for b in (1, BIG):
        # Darknet's layer-by-layer math, every layer's output kept (dump, parity tests)
        table.measure("darknet_py forward fp32", b, lambda b=b: net.forward(host[b]), runs)
    for b in (1, BIG):
        # the CLI's path (detector test/valid/map): numpy in, folded graph, region output back
        table.measure("darknet_py predict fp32", b, lambda b=b: net.predict(host[b]), runs)
        table.measure("darknet_py predict -half", b, lambda b=b: half_net.predict(host[b]), runs)
    for b in (1, BIG) if DEVICE == "cuda" else ():
        # the same graphs with the input already on the GPU: the device time alone
        replay = graphed(eager, dev[b])
        table.measure("folded + CUDA graph, input on GPU, fp32", b, replay, runs)
        replay = graphed(eager_half, dev[b].half())
        table.measure("folded + CUDA graph, input on GPU, fp16", b, replay, runs)
    full_out = net.forward(host[BIG])
    largest = max(float(np.abs(net.output(i)).max()) for i in range(len(net.layers)))
    errors = [np.abs(out - full_out).max() / np.abs(full_out).max()
              for out in (net.predict(host[BIG]), half_net.predict(host[BIG]))]
    notes.append("fp32 is true fp32 throughout (TF32 off, as the torch backend sets it for Darknet's numbers)")
    notes.append(f"worst error on the {head.kind} output against forward fp32, of its largest value: "
                 f"predict fp32 {errors[0]:.1e}, predict -half {errors[1]:.1e} (largest activation in fp32: "
                 f"{largest:.3g}; fp16 ends at 65504, which Darknet's untrained initialisation passes on yolov3)")
    try:
        import cv2
        cvnet = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
        cvnet.setPreferableBackend(cv2.dnn.DNN_BACKEND_CUDA)
        cvnet.setPreferableTarget(cv2.dnn.DNN_TARGET_CUDA)
        blob = host[1]

        def opencv():
            cvnet.setInput(blob)
            return cvnet.forward()
        opencv()
        table.measure("OpenCV DNN CUDA", 1, opencv, runs)
    except Exception as err:
        notes.append(f"OpenCV DNN on CUDA: not available here ({type(err).__name__}: {str(err)[:100]})")
    net = half_net = eager = eager_half = None       # free the GPU memory before training
    free_memory()

    truth = np.zeros((BIG, head.max_boxes, 5), np.float32)        # 30 rows for [region], 90 for [yolo]
    truth[:, 0] = [.5, .5, .2, .3, 1]
    truth[:, 1] = [.25, .7, .1, .2, 7]
    for precision, label in (("fp32", "fp32"), ("fp16", "-half (bf16 convolutions)")):
        what = f"training step {label} (forward, {head.kind} loss, backward, update) at batch {BIG}"
        try:        # yolov3 at batch 64 in one pass may not fit an 80 GB card: a note, not the end
            trainer = darknet_py.load_network(cfg_with(cfg, tmp, batch=BIG, subdivisions=1), weights, backend="torch",
                                              device=DEVICE, precision=precision)
            free_memory()
            step = timed(lambda trainer=trainer: trainer.train_step(host[BIG], truth, log=lambda s: None),
                         max(3, runs // 5))
            notes.append(f"{what}: {step:.3f} s, {BIG / step:,.0f} images/s, peak GPU {peak_memory():,.0f} MB")
        except Exception as err:
            notes.append(f"{what}: failed: {type(err).__name__}: {str(err)[:120]}")
        trainer = None
        free_memory()
    return table.lines() + [""] + [f"- {n}" for n in notes]


def main():
    global BIG, DEVICE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-out", default=str(REPO / "docs" / "gpu.md"))
    ap.add_argument("-runs", type=int, default=20)
    ap.add_argument("-cfgs", default="yolov2-voc,yolov2-tiny-voc,yolov3")
    ap.add_argument("-batch", type=int, default=BIG)
    ap.add_argument("-device", default=DEVICE, choices=("cuda", "cpu"))
    a = ap.parse_args()
    BIG, DEVICE = a.batch, a.device
    card = torch.cuda.get_device_name(0) if DEVICE == "cuda" else "CPU (a check of the script, not a measurement)"
    lines = [f"\n## {datetime.date.today().isoformat()}: {card}, torch {torch.__version__}, "
             f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"]
    with tempfile.TemporaryDirectory() as tmp:
        print(lines[0], flush=True)
        for name in a.cfgs.split(","):
            rows = bench(name, a.runs, tmp)
            print("\n".join(rows), flush=True)
            lines += rows
    lines.append("\nAnchor: Darknet reports 67 FPS for yolov2-voc at 416 on a Titan X.\n")
    text = "\n".join(lines)
    with open(a.out, "a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
