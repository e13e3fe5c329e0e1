"""Training samples drawn at random with replacement from a list of images (darknet
get_random_paths), made in worker threads or processes, every random draw seeded by (seed, batch, the
sample's place in the whole batch of all ranks) so a resumed run draws what an uninterrupted one
would, and ranks draw between them what one process would. A sample whose image or annotation is
unusable is warned about once (file and line) and another image takes its place."""
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import DarknetError, warn
from .image import load_image

DRAWS = 100          # draws per sample before the list is declared unusable


class RandomSamples:
    """Subclasses say what an image's annotation is (``annotation``: None when unusable, having
    warned), how an image and its annotation become an (input [3, h, w], truth) pair (``make``)
    and the shape of a truth (``truth_shape``).

    The batch comes from ``allocate(shape)``, the backend's host memory (pinned on CUDA, so the
    copy to the device runs asynchronously). Worker threads write each sample into its row as
    they finish; worker processes (``processes=True``, worker_processes.py) into a shared batch
    the loader copies out. A worker process holds a copy of the loader (``__getstate__``), so
    its annotations are read, and a bad one warned about, once per worker."""

    truth_shape: tuple

    def __init__(self, paths, list_path, seed=0, workers=2, rank=0, world=1, allocate=None, processes=False):
        self.allocate = allocate
        self.paths = list(paths)
        self.list_path = str(list_path)
        self.seed, self.rank, self.world = seed, rank, world
        self.annotations = {}
        self.workers, self.in_processes = max(1, workers), processes
        self.pool = None           # started at the first batch, when the subclass is complete
        self.starting = threading.Lock()

    local_attributes = ("pool", "allocate", "starting")

    def __getstate__(self):
        """What a worker process is sent: the loader less its pools and the trainer's memory."""
        return {key: value for key, value in self.__dict__.items() if key not in self.local_attributes}

    def _workers(self):
        with self.starting:         # batches are made at once by the prefetch threads
            if self.pool is None:
                if self.in_processes:
                    from .worker_processes import WorkerProcesses
                    self.pool = WorkerProcesses(self, self.workers)
                else:
                    self.pool = ThreadPoolExecutor(max_workers=self.workers)
        return self.pool

    def annotation(self, index):
        raise NotImplementedError

    def make(self, image, annotation, rng, w, h):
        raise NotImplementedError

    def _annotation(self, index):
        if index not in self.annotations:
            self.annotations[index] = self.annotation(index)
        return self.annotations[index]

    def sample(self, rng, w, h):
        for _ in range(DRAWS):
            index = int(rng.integers(len(self.paths)))
            annotation = self._annotation(index)
            if annotation is None:
                continue
            try:
                image = load_image(self.paths[index])
            except DarknetError as err:
                warn(f"{self.list_path}:{index + 1}: {err}; sample skipped")
                self.annotations[index] = None
                continue
            return self.make(image, annotation, rng, w, h)
        raise DarknetError(f"no usable image found in {DRAWS} draws", self.list_path)

    def draw(self, batch_num, n, w, h):
        """n samples for batch ``batch_num``: (inputs, truths) as float32, assembled in place."""
        # sample k of rank r is sample r*n + k of the whole batch: the processes of a distributed
        # run draw, between them, the images one process of their total batch would draw
        seeds = np.random.SeedSequence([self.seed, batch_num, 0]).spawn(n * self.world)[self.rank * n:][:n]
        shape = (n, 3, h, w)                        # load_image gives 3 channels, as darknet's
        truths = np.empty((n, *self.truth_shape), dtype=np.float32)
        inputs = np.empty(shape, np.float32) if self.allocate is None else self.allocate(shape)
        if self.in_processes:
            self._workers().fill(seeds, inputs, truths)
            return inputs, truths

        def fill(k):        # NumPy copies without the GIL
            inputs[k], truths[k] = self.sample(np.random.default_rng(seeds[k]), w, h)
        list(self._workers().map(fill, range(n)))
        return inputs, truths

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
