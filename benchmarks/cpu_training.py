#!/usr/bin/env python3
"""CPU training-step benchmark: one Darknet training iteration (forward, region loss,
backward, update) of yolov2-tiny-voc at 416, batch 8, on darknet_py's backends beside a
PyTorch eager model of the same layers (Conv2d + BatchNorm2d + LeakyReLU + MaxPool, autograd,
SGD), each in its own process.

usage: python benchmarks/cpu_training.py [-cfg yolov2-tiny-voc] [-size 416] [-batch 8] [-runs 3]
                                         [-peers numpy,numba,torch,pytorch]"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from bench_common import cfg_with, first_and_median

import darknet_py  # noqa: F401  before NumPy, as the CLI: it sets OpenBLAS's thread timeout

REPO = Path(__file__).resolve().parent.parent


def eager_model(net):
    import torch
    layers = []
    for layer in net.layers:
        if layer.kind == "convolutional":
            conv = torch.nn.Conv2d(layer.in_shape[0], layer.filters, layer.size, layer.stride, layer.padding,
                                   bias=not layer.batch_normalize)
            layers.append(conv)
            if layer.batch_normalize:
                layers.append(torch.nn.BatchNorm2d(layer.filters))
            if layer.activation == "leaky":
                layers.append(torch.nn.LeakyReLU(.1))
        elif layer.kind == "maxpool":
            pad = layer.padding
            layers.append(torch.nn.ZeroPad2d((pad // 2, pad - pad // 2, pad // 2, pad - pad // 2)))
            layers.append(torch.nn.MaxPool2d(layer.size, layer.stride))
    return torch.nn.Sequential(*layers).to(memory_format=torch.channels_last)


def child(peer, cfg, size, batch, runs):
    rng = np.random.default_rng(0)
    x = rng.random((batch, 3, size, size), dtype=np.float32)
    truth = np.zeros((batch, 30, 5), np.float32)
    truth[:, 0] = [.5, .5, .3, .4, 1]
    truth[:, 1] = [.2, .3, .1, .2, 5]
    if peer == "pytorch":
        import torch
        net = darknet_py.load_network(cfg)
        model = eager_model(net)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=.9, weight_decay=5e-4)
        tx = torch.from_numpy(x).to(memory_format=torch.channels_last)

        def step():
            opt.zero_grad()
            out = model(tx)
            (out * out).sum().backward()
            opt.step()
    else:
        whole = cfg_with(cfg, tempfile.mkdtemp(), batch=batch, subdivisions=1)
        net = darknet_py.load_network(whole, backend=peer, device="cpu" if peer == "torch" else None)
        net.resize(size, size)

        def step():
            net.train_step(x, truth, log=lambda line: None)
    first, median = first_and_median(step, runs)
    return {"first_s": first, "s_per_step": median,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-cfg", default="yolov2-tiny-voc")
    ap.add_argument("-size", type=int, default=416)
    ap.add_argument("-batch", type=int, default=8)
    ap.add_argument("-runs", type=int, default=3)
    ap.add_argument("-peers", default="numpy,numba,torch,pytorch")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(*json.loads(a.child))))
        return
    cfg = REPO / "cfg" / f"{a.cfg}.cfg"
    rows = {}
    for peer in a.peers.split(","):
        request = json.dumps([peer, str(cfg), a.size, a.batch, a.runs])
        done = subprocess.run([sys.executable, __file__, "--child", request], capture_output=True, text=True)
        rows[peer] = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
        if rows[peer] is None:
            print(f"{peer}: failed: {done.stderr.strip().splitlines()[-1:]}")
    base = rows.get("pytorch")
    print(f"{a.cfg} at {a.size}, batch {a.batch}: one training step (forward, loss, backward, update)")
    print(f"  {'peer':10s} {'s/step':>8s} {'img/s':>8s} {'peak MB':>8s} {'first s':>8s} {'vs PyTorch':>10s}")
    for peer, r in rows.items():
        if r:
            ratio = r["s_per_step"] / base["s_per_step"] if base else float("nan")
            print(f"  {peer:10s} {r['s_per_step']:8.2f} {a.batch / r['s_per_step']:8.2f} {r['peak_rss_mb']:8.0f} "
                  f"{r['first_s']:8.2f} {ratio:10.2f}")


if __name__ == "__main__":
    main()
