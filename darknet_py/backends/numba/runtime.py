"""The process-wide set-up the Numba backend needs, done once when the first backend is made
(not at import): Numba's threading layer, glibc's allocator thresholds, and a way to hold
BLAS to one thread while Numba's threads call it."""
import functools
import os

import numba


@functools.lru_cache(maxsize=1)
def configure():
    """Numba's OpenMP threads start a parallel loop faster than its workqueue's, and an
    inference launches many; passive, so they sleep as soon as a loop ends instead of spinning
    beside BLAS's threads in training. The workqueue where libgomp cannot be loaded. Takes
    effect at the first parallel launch, so it must run before any kernel does."""
    if "NUMBA_THREADING_LAYER" not in os.environ:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        numba.config.THREADING_LAYER_PRIORITY = ["omp", "workqueue", "tbb"]
        numba.config.THREADING_LAYER = "default"
    keep_large_allocations()


def keep_large_allocations():
    """glibc serves arrays above 32 MB with fresh mmap pages, which the kernel zeroes on every
    training step. Raising the mmap and trim thresholds lets freed activations be reused
    instead; the price is that the process keeps its peak heap. Both values must fit a C int
    (a larger trim threshold wraps to 0 and trims the heap after every free)."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)      # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)      # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """Made on first use: it lists the BLAS libraries loaded by then (SciPy's, which Numba's
    np.dot calls, imported first so that it is among them)."""
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController()


def blas_on_one_thread():
    """A context in which BLAS runs on the calling thread only."""
    return _blas_controller().limit(limits=1, user_api="blas")
