"""Compiles the Numba backend's inference kernels into Numba's cache, in a second process.

A first inference after an install compiles ~11 s of kernels, one after another (Numba
compiles under one lock). The backend starts this helper beside itself when the cache lacks
them: while the first inference compiles what its first layers run (the first layer's direct
kernel, the max-pool, the fused Winograd), the helper compiles what it needs next, so the
two cores share the work and each process loads from the cache what the other saved (Numba's
cache files are written whole, then renamed). Each kernel compiles under a lock file, so
that neither process compiles one the other is compiling. A marker records that the cache is
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

# a 3x3 layer and a max-pool, in the sizes that take each path
CFG = """[net]
width={size}
height={size}
channels={channels}
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


def compile_one_at_a_time(kernels):
    """Make each of ``kernels`` (Numba dispatchers that cache on disk) compile under a lock file
    beside its cache, taken inside Numba's own compiler lock: a process that needs a kernel
    another process is compiling waits for it, then loads it from the cache, instead of
    compiling it too (the helper and the first inference both compiled the output passes and
    the im2col path, ~3 s of a core, whenever their timing crossed). Callers take their
    callees' locks inside their own, never the reverse: no two processes wait on each other.
    Only a compile or a cache load takes the lock; not POSIX: no locks."""
    try:
        import fcntl
    except ImportError:
        return
    from numba.core import sigutils
    from numba.core.compiler_lock import global_compiler_lock
    for kernel in kernels:
        folder = getattr(getattr(kernel, "_cache", None), "_cache_path", None)
        if not folder or "compile" in vars(kernel):
            continue

        def locked(sig, kernel=kernel, compile=kernel.compile,
                   lock=Path(folder) / f"darknet_py-compiling-{kernel.__name__}"):
            if tuple(sigutils.normalize_signature(sig)[0]) in kernel.overloads:
                return compile(sig)
            with global_compiler_lock:
                try:
                    held = open(lock, "a")
                except OSError:             # the cache folder is read-only: compile alone
                    return compile(sig)
                with held:
                    fcntl.flock(held, fcntl.LOCK_EX)
                    return compile(sig)     # a cache load when another process compiled it meanwhile
        kernel.compile = locked


def compile_all():
    import tempfile
    import darknet_py
    from ..network import ForwardState
    done = marker()
    running = done.with_suffix(".running")
    running.touch()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            nets = {}
            for channels, size in ((16, 13), (16, 52), (3, 13)):
                cfg = Path(tmp) / f"warm{channels}-{size}.cfg"
                cfg.write_text(CFG.format(channels=channels, size=size))
                nets[channels, size] = darknet_py.load_network(cfg, backend="numba")

            def run(channels, size, *names):
                net = nets[channels, size]
                with net.backend.running(train=False):
                    for name in names:
                        out = net.backend._run(name, net.layers[0], np.zeros((1, channels, size, size), np.float32), 1)
                    return out

            # The first inference compiles its first layer's direct kernel, the max-pool, then
            # the fused Winograd (its input rows first, its output passes last), then needs the
            # whole-image kernels, the bands and the im2col path (26x26 and below). The helper
            # compiles, in the order they are needed, what it can finish first: the filters'
            # transform, the per-point gemms, the im2col path, the bands, the input and output
            # tasks (their rows by then compiled by the inference)...
            backend, conv = nets[16, 13].backend, nets[16, 13].layers[0]
            with backend.running(train=False):
                u, _ = backend._winograd_filters(conv, "winograd2")
                backend._matmul(u, np.zeros((u.shape[0], 16, 49), dtype=np.float32))
            run(16, 13, "direct")
            run(16, 52, "direct")
            run(16, 13, "winograd2-filters")
            # ...then every path, which by now mostly loads what either has compiled
            run(16, 13, "winograd2")
            run(3, 13, "direct")
            out = run(16, 52, "winograd4", "winograd4-fused")
            net = nets[16, 52]
            with net.backend.running(train=False):
                net.backend.forward_layer(net.layers[1], [out], ForwardState())
        done.touch()
    finally:
        running.unlink(missing_ok=True)


if __name__ == "__main__":
    compile_all()
