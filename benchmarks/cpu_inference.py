#!/usr/bin/env python3
"""CPU inference benchmark: darknet_py's backends beside OpenCV's Darknet importer and
PyTorch eager (channels_last), each in its own process, in one sitting.

usage: python benchmarks/cpu_inference.py [-cfgs yolov2-voc,yolov2-tiny-voc,PATH.cfg] [-size 416]
                                          [-batches 1,8] [-runs 5] [-repeat 1] [-fresh]
                                          [-peers numpy,torch,opencv,pytorch,numba@DIR]

Prints ms per image, images per second, peak RSS and each figure's ratio to OpenCV's, with
the GEMM bound (the network's FLOPs at a measured sgemm rate), each peer's first-call time
(for Numba: its compiled code cached, its per-layer algorithm timing not yet remembered) and
each process's ms per image (the machine's spread). A peer BACKEND@DIR runs that backend from
another checkout of darknet_py (e.g. a git worktree of an earlier commit): before and after
a change, in one sitting.
Weights are generated (Darknet's initialisation): speed does not depend on their values.
With -repeat N every peer runs in N fresh processes, taken in turn (numba, opencv, numba,
...), and each figure is the median over them: on a shared machine whose speed wanders,
a single process per peer can land in a slow spell."""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_common import first_and_median

REPO = Path(__file__).resolve().parent.parent


def peer_run(peer, cfg, weights, size, batch, runs):
    """In a fresh process: first-call time, then the median of ``runs`` timed calls."""
    x = np.random.default_rng(0).random((batch, 3, size, size), dtype=np.float32)
    start = time.perf_counter()
    if peer == "opencv":
        import cv2
        net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))

        def run():
            net.setInput(x)
            return net.forward()
    elif peer == "pytorch":
        import torch

        import darknet_py
        from darknet_py.backends.torch.inference import inference_module
        module = inference_module(darknet_py.load_network(cfg, weights)).to(memory_format=torch.channels_last)
        tx = torch.from_numpy(x).to(memory_format=torch.channels_last)

        def run():
            with torch.inference_mode():
                return module(tx)
    else:
        import darknet_py
        net = darknet_py.load_network(cfg, weights, backend=peer.split("@")[0])
        if (size, size) != (net.width, net.height):
            net.resize(size, size)

        def run():
            return net.forward(x)
    setup = time.perf_counter() - start
    first, median = first_and_median(run, runs)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"first_s": setup + first, "ms_per_image": 1000 * median / batch, "peak_rss_mb": rss}


def sgemm_gflops():
    a = np.random.rand(1024, 4608).astype(np.float32)
    b = np.random.rand(4608, 676).astype(np.float32)
    a @ b
    t = time.perf_counter()
    for _ in range(5):
        a @ b
    return 2 * 1024 * 4608 * 676 * 5 / (time.perf_counter() - t) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-cfgs", default="yolov2-voc,yolov2-tiny-voc")
    ap.add_argument("-size", type=int, default=416)
    ap.add_argument("-batches", default="1,8")
    ap.add_argument("-runs", type=int, default=5)
    ap.add_argument("-peers", default="numpy,numba,torch,opencv,pytorch")
    ap.add_argument("-repeat", type=int, default=1)
    ap.add_argument("-fresh", action="store_true", help="Numba with an empty compile cache, as after an install")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        peer, cfg, weights, size, batch, runs = json.loads(a.child)
        print(json.dumps(peer_run(peer, cfg, weights, size, batch, runs)))
        return
    import darknet_py
    gflops = sgemm_gflops()
    print(f"machine: {os.cpu_count()} cores; measured sgemm {gflops:.0f} GFLOP/s")
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.cfgs.split(","):
            # a project cfg by name, or any cfg by path (AlexeyAB's yolov4-tiny.cfg...)
            cfg = Path(name) if name.endswith(".cfg") else REPO / "cfg" / f"{name}.cfg"
            name = cfg.stem
            net = darknet_py.load_network(cfg)
            net.resize(a.size, a.size)
            weights = Path(tmp) / f"{name}.weights"
            net.save_weights(weights)
            flops = sum(layer.bflops for layer in net.layers)
            for batch in (int(b) for b in a.batches.split(",")):
                runs = {peer: [] for peer in a.peers.split(",")}
                for turn in range(a.repeat):
                    for peer in runs:
                        child = json.dumps([peer, str(cfg), str(weights), a.size, batch, a.runs])
                        # nothing remembered: "first s" includes the Numba backend's algorithm timing
                        choices = Path(tmp) / f"choices-{peer}-{name}-{batch}-{turn}"
                        env = dict(os.environ, DARKNET_PY_CACHE=str(choices))
                        if "@" in peer:    # another checkout's darknet_py first on the path
                            env["PYTHONPATH"] = peer.split("@", 1)[1]
                        if a.fresh:        # "first s" then includes compiling every kernel it runs
                            env["NUMBA_CACHE_DIR"] = str(Path(tmp) / f"numba-{peer}-{name}-{batch}-{turn}")
                        done = subprocess.run([sys.executable, __file__, "--child", child], capture_output=True,
                                              text=True, env=env)
                        if done.returncode:
                            print(f"  {peer}: failed: {done.stderr.strip().splitlines()[-1:]}")
                            continue
                        runs[peer].append(json.loads(done.stdout.strip().splitlines()[-1]))
                rows = {peer: {key: float(np.median([r[key] for r in results])) for key in results[0]}
                        for peer, results in runs.items() if results}
                base = rows.get("opencv")
                print(f"\n{name} at {a.size}, batch {batch}: {flops:.2f} BFLOPs/image, GEMM bound "
                      f"{1000 * flops / gflops:.0f} ms/image" + (f"; medians of {a.repeat} processes each"
                                                                  if a.repeat > 1 else ""))
                print(f"  {'peer':10s} {'ms/img':>8s} {'img/s':>8s} {'peak MB':>8s} {'first s':>8s} {'vs OpenCV':>10s}"
                      "  ms/img per process")
                for peer, r in rows.items():
                    ratio = r["ms_per_image"] / base["ms_per_image"] if base else float("nan")
                    each = " ".join(f"{result['ms_per_image']:.1f}" for result in runs[peer])
                    print(f"  {peer:10s} {r['ms_per_image']:8.1f} {1000 / r['ms_per_image']:8.2f} "
                          f"{r['peak_rss_mb']:8.0f} {r['first_s']:8.2f} {ratio:10.2f}  {each}")


if __name__ == "__main__":
    main()
