"""Numba kernels that compile one process at a time, and the marker files of a warm cache.
Imports nothing of darknet_py: the warm-up helper and the backend both use it.

Two processes (the first inference and the warm-up helper beside it) would otherwise compile
the same kernels at once. Each kernel compiles under a lock file beside its cache, so a
process that needs a kernel the other is compiling waits, then loads it from the cache
(Numba writes its cache files whole, then renames them)."""
import os
import subprocess
import sys
import time
from pathlib import Path

RUNNING_FRESH_S = 120        # a ".running" file older than this is a helper that died


def cache_folder(kernel):
    """The folder of a dispatcher's disk cache, or None where Numba caches nowhere."""
    folder = getattr(getattr(kernel, "_cache", None), "_cache_path", None)
    return Path(folder) if folder else None


def is_running(marker):
    """Whether the helper that writes ``marker`` is compiling now: its ".running" file exists
    and was touched recently."""
    if marker is None:
        return False
    try:
        return time.time() - marker.with_suffix(".running").stat().st_mtime < RUNNING_FRESH_S
    except OSError:
        return False


def lock_compiles(kernels):
    """Make each of ``kernels`` (dispatchers that cache on disk) compile under a lock file
    beside its cache, taken inside Numba's own compiler lock. Callers take their callees'
    locks inside their own, never the reverse: no two processes wait on each other. Only a
    compile or a cache load takes the lock. Not POSIX: no locks."""
    try:
        import fcntl
    except ImportError:
        return
    from numba.core import sigutils
    from numba.core.compiler_lock import global_compiler_lock
    for kernel in kernels:
        folder = cache_folder(kernel)
        if folder is None or "compile" in vars(kernel):
            continue

        def locked(sig, kernel=kernel, compile=kernel.compile,
                   lock=folder / f"darknet_py-compiling-{kernel.__name__}"):
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


def start_helper(marker, module):
    """Start ``python -m module`` beside this process unless ``marker`` says the cache is
    complete, a helper is running, there is nowhere to cache, or DARKNET_PY_WARMUP=0."""
    if os.environ.get("DARKNET_PY_WARMUP") == "0" or marker is None or marker.exists():
        return
    try:                        # nowhere to cache: a helper would compile in vain
        marker.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(marker.parent, os.W_OK):
            return
    except OSError:
        return
    if is_running(marker):
        return
    try:
        subprocess.Popen([sys.executable, "-m", module], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=dict(os.environ, DARKNET_PY_WARMUP="0"))
    except OSError:             # no second process: the first inference compiles it all
        pass
