"""Sample workers as processes writing into a batch in shared memory: each worker has its own
interpreter, so the Python between the compiled kernels (decoding, label rows, random draws)
runs beside the other workers and the training step instead of taking turns with them for one
GIL. The workers write into a file in /dev/shm that they and the loader map; the loader copies
the complete batch out (into the backend's pinned memory on CUDA, as PyTorch's pin-memory thread
does) and uses the file again for the next batch of that size, so its pages are neither
zeroed nor faulted in again."""
import math
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import weakref

import numpy as np

SHARED_MEMORY = "/dev/shm"
_BATCHES_ROOM = 4         # /dev/shm is used while it has room for this many batches, else the temp folder

_samples = None           # in a worker: the RandomSamples it makes samples of
_mapped = {}              # in a worker: file -> its array, the few last written into
_MAPPINGS_KEPT = 3


def map_batch(path, shape, create=False):
    """The float32 array of ``shape`` held by the file at ``path`` (made that size when
    ``create``), shared with every process that maps it."""
    import mmap
    nbytes = math.prod(shape) * 4
    fd = os.open(path, os.O_RDWR)
    try:
        if create:
            os.ftruncate(fd, nbytes)
        pages = mmap.mmap(fd, nbytes, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
    finally:
        os.close(fd)
    return np.frombuffer(pages, np.float32).reshape(shape)


def batch_folder(nbytes):
    if os.path.isdir(SHARED_MEMORY) and shutil.disk_usage(SHARED_MEMORY).free >= _BATCHES_ROOM * nbytes:
        return SHARED_MEMORY
    return None           # a container's small /dev/shm: the temp folder's page cache serves as well


def _keep_freed_memory():
    """A worker allocates and frees the same few megabyte arrays for every sample; glibc's
    defaults hand them back to the system and fault them in afresh each time, which made a
    worker process take twice a thread's time per sample. Kept on the heap, they are reused."""
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 128 << 20)
    except (OSError, AttributeError):       # not glibc: its allocator, its defaults
        pass


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3     # glibc's malloc.h


def _adopt(samples):
    global _samples
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C is the trainer's to handle, once
    _keep_freed_memory()
    _samples = samples


def _make_row(path, shape, k, seed, w, h):
    """In a worker: sample ``k`` of the batch held at ``path``; its image goes into the batch,
    its truth comes back (a few hundred bytes)."""
    if path not in _mapped:
        if len(_mapped) >= _MAPPINGS_KEPT:      # a size multi-scale has left: its file is gone
            del _mapped[next(iter(_mapped))]
        _mapped[path] = map_batch(path, shape)
    image, truth = _samples.sample(np.random.default_rng(seed), w, h)
    _mapped[path][k] = image
    return truth


def _remove(paths):
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    paths.clear()


class WorkerProcesses:
    """``workers`` processes, started once (spawned: nothing of the trainer's threads, CUDA
    context or open files is inherited), each holding a copy of ``samples``."""

    def __init__(self, samples, workers):
        from concurrent.futures import ProcessPoolExecutor
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_adopt, initargs=(samples,))
        self.free = []          # (file, its array) not being written, of the last size asked for
        self.lock = threading.Lock()
        self.files = []
        self.remove_files = weakref.finalize(self, _remove, self.files)    # at close, or exit

    def _take(self, shape):
        with self.lock:
            for k, (_, array) in enumerate(self.free):
                if array.shape == shape:
                    return self.free.pop(k)
            stale = [path for path, array in self.free]       # multi-scale moved on
            self.free.clear()
            for path in stale:
                self.files.remove(path)
            _remove(stale)
            fd, path = tempfile.mkstemp(prefix="darknet_py-batch-", dir=batch_folder(math.prod(shape) * 4))
            os.close(fd)
            self.files.append(path)
        return path, map_batch(path, shape, create=True)

    def fill(self, seeds, inputs, truths):
        """Sample k made from ``seeds[k]`` into ``inputs[k]`` and ``truths[k]``."""
        path, shared = self._take(inputs.shape)
        h, w = inputs.shape[2:]
        futures = [self.pool.submit(_make_row, path, inputs.shape, k, seed, w, h) for k, seed in enumerate(seeds)]
        try:
            for k, future in enumerate(futures):
                truths[k] = future.result()
                inputs[k] = shared[k]          # while the workers make the rest
        except BaseException:
            for future in futures:
                future.cancel()
            raise               # the file is not reused: a worker may still be writing into it
        with self.lock:
            self.free.append((path, shared))

    def shutdown(self, wait=True, cancel_futures=False):
        self.pool.shutdown(wait=wait, cancel_futures=cancel_futures)
        self.remove_files()
