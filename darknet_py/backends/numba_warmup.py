"""Compiles the Numba backend's inference kernels into Numba's cache, in a second process.

A first inference after an install compiles ~12 s of kernels, one after another (Numba
compiles under one lock). The backend starts this helper beside itself when the cache lacks
them: the helper compiles in the opposite order (the whole-image Winograd and im2col paths
first, the fused Winograd last) while the first inference compiles from its first layer on,
so the two cores share the work and each process loads from the cache what the other saved
(Numba's cache files are written whole, then renamed). A marker records that the cache is
complete for this source and Numba version.

    python -m darknet_py.backends.numba_warmup
"""
import functools
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# one 3x3 layer per path, the order in which the helper compiles them
CFG = """[net]
width={size}
height={size}
channels=16
batch=1
[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
"""


@functools.lru_cache(maxsize=1)
def marker():
    """The file that says the cache holds this source's kernels; None if Numba's cache has
    no place on disk."""
    from . import numba_cpu
    cache = getattr(numba_cpu.winograd_fused_task, "_cache", None)
    folder = getattr(cache, "_cache_path", None)
    if not folder:
        return None
    return Path(folder) / f"darknet_py-warm-{numba_cpu.kernels_version()}"


def compiling():
    """Whether a helper is compiling now (its ".running" file, touched in the last 120 s: an
    older one is a helper that died)."""
    done = marker()
    if done is None:
        return False
    try:
        return time.time() - done.with_suffix(".running").stat().st_mtime < 120
    except OSError:
        return False


def start_beside():
    """Start the helper unless the cache is complete, one is running, or DARKNET_PY_WARMUP=0."""
    if os.environ.get("DARKNET_PY_WARMUP") == "0":
        return
    done = marker()
    if done is None or done.exists():
        return
    try:                        # nowhere to cache: a helper would compile in vain
        done.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(done.parent, os.W_OK):
            return
    except OSError:
        return
    if compiling():
        return
    try:
        subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=dict(os.environ, DARKNET_PY_WARMUP="0"))
    except OSError:             # no second process: the first inference compiles it all
        pass


def compile_all():
    import tempfile
    import darknet_py
    from ..network import ForwardState
    done = marker()
    running = done.with_suffix(".running")
    running.touch()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for size, names in ((13, ("winograd2", "winograd2-filters", "direct")),
                                (52, ("winograd4", "direct", "winograd4-fused"))):
                cfg = Path(tmp) / f"warm{size}.cfg"
                cfg.write_text(CFG.format(size=size))
                net = darknet_py.load_network(cfg, backend="numba")
                x = np.zeros((1, 16, size, size), dtype=np.float32)
                backend, conv, pool = net.backend, net.layers[0], net.layers[1]
                with backend.running(train=False):
                    for name in names:
                        out = backend._run(name, conv, x, 1)
                    backend.forward_layer(pool, [out], ForwardState())
        done.touch()
    finally:
        running.unlink(missing_ok=True)


if __name__ == "__main__":
    compile_all()
