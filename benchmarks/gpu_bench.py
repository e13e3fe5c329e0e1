#!/usr/bin/env python3
"""GPU benchmark (run on a machine with CUDA): yolov2-voc and yolov2-tiny-voc at 416.

usage: python benchmarks/gpu_bench.py [-out docs/gpu.md] [-runs 20]

Measures, per network: batch-1 latency (fp32, BN folded, channels_last, CUDA graph), batch-64
throughput in fp32 and fp16 (with fp16's worst error against fp32 on the region output), and
one Darknet training step (forward, region loss, backward, update) at batch 64 on the torch
backend. Appends a dated table naming the card to the -out file. Published anchor: Darknet's
67 FPS on a Titan X for yolov2-voc at 416."""
import argparse
import datetime
import time
from pathlib import Path

import numpy as np
import torch

import darknet_py
from darknet_py.export import inference_module

REPO = Path(__file__).resolve().parent.parent


def timed(fn, runs):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def graphed(module, x):
    """Capture the forward pass once as a CUDA graph; replaying it skips the launch cost."""
    static = x.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.inference_mode():
        for _ in range(3):
            module(static)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.inference_mode():
        out = module(static)
    return lambda: graph.replay(), out


def bench(name, runs):
    cfg = REPO / "cfg" / f"{name}.cfg"
    net = darknet_py.load_network(cfg)
    net.resize(416, 416)
    module = inference_module(net).cuda().to(memory_format=torch.channels_last)
    rows = {}
    x1 = torch.rand(1, 3, 416, 416, device="cuda").to(memory_format=torch.channels_last)
    replay, _ = graphed(module, x1)
    rows["batch-1 latency fp32 (ms)"] = 1000 * timed(replay, runs)
    x64 = torch.rand(64, 3, 416, 416, device="cuda").to(memory_format=torch.channels_last)
    with torch.inference_mode():
        reference = module(x64).float()
        rows["batch-64 fp32 (img/s)"] = 64 / timed(lambda: module(x64), runs)
        half = inference_module(net).cuda().half().to(memory_format=torch.channels_last)
        xh = x64.half()
        rows["batch-64 fp16 (img/s)"] = 64 / timed(lambda: half(xh), runs)
        err = (half(xh).float() - reference).abs().max() / reference.abs().max()
        rows["fp16 worst error vs fp32 (of max)"] = float(err)
    # one training step at batch 64 on the torch backend
    train_cfg = Path("/tmp") / f"{name}-b64.cfg"
    text = cfg.read_text().replace("batch=64\nsubdivisions=8", "batch=64\nsubdivisions=1")
    train_cfg.write_text(text)
    trainer = darknet_py.load_network(train_cfg, backend="torch", device="cuda")
    x = np.random.default_rng(0).random((64, 3, 416, 416), dtype=np.float32)
    truth = np.zeros((64, 30, 5), np.float32)
    truth[:, 0] = [.5, .5, .2, .3, 1]
    rows["training step batch 64 (s)"] = timed(lambda: trainer.train_step(x, truth, log=lambda s: None), max(3, runs // 5))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-out", default=str(REPO / "docs" / "gpu.md"))
    ap.add_argument("-runs", type=int, default=20)
    a = ap.parse_args()
    card = torch.cuda.get_device_name(0)
    lines = [f"\n## {datetime.date.today().isoformat()}: {card}, torch {torch.__version__}\n",
             "| network | measure | value |", "|---|---|---|"]
    for name in ("yolov2-voc", "yolov2-tiny-voc"):
        for measure, value in bench(name, a.runs).items():
            lines.append(f"| {name} | {measure} | {value:.4g} |")
    lines.append("\nAnchor: Darknet reports 67 FPS for yolov2-voc at 416 on a Titan X.\n")
    text = "\n".join(lines)
    print(text)
    with open(a.out, "a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
