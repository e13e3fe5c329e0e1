"""Training batches for a region network, made in worker threads one batch ahead
(darknet: load_data with DETECTION_DATA, in its own thread)."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import DarknetError, warn
from .augment import augment_detection
from .image import load_image
from .labels import label_path, read_labels


class DetectionLoader:
    """Samples images at random with replacement (darknet get_random_paths), augments
    them, and fills Darknet's truth rows. Everything random is seeded by (seed, batch
    number), so a resumed run draws what an uninterrupted one would.

    A sample whose image is missing or unreadable, or whose label file has a bad line, is
    warned about once (file and line) and skipped; another image takes its place."""

    def __init__(self, paths, list_path, classes, max_boxes, jitter, hue, saturation, exposure,
                 seed=0, workers=2, rank=0):
        self.paths = list(paths)
        self.list_path = str(list_path)
        self.classes, self.max_boxes = classes, max_boxes
        self.jitter, self.hue, self.saturation, self.exposure = jitter, hue, saturation, exposure
        self.seed, self.rank = seed, rank
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers))
        self.prefetch = ThreadPoolExecutor(max_workers=1)    # the next batch, one ahead
        self.bad = set()
        self.labels = {}
        self.pending = None

    def _labels(self, index):
        if index not in self.labels:
            rows, problems = read_labels(label_path(self.paths[index]), self.classes)
            self.labels[index] = None if problems else rows
            for problem in problems:
                warn(f"{problem}; sample skipped")
        return self.labels[index]

    def _sample(self, rng, w, h):
        for _ in range(100):
            index = int(rng.integers(len(self.paths)))
            if index in self.bad:
                continue
            boxes = self._labels(index)
            if boxes is None:
                self.bad.add(index)
                continue
            try:
                image = load_image(self.paths[index])
            except DarknetError as err:
                warn(f"{self.list_path}:{index + 1}: {err}; sample skipped")
                self.bad.add(index)
                continue
            return augment_detection(image, boxes, w, h, rng, self.jitter, self.hue,
                                     self.saturation, self.exposure, self.max_boxes)
        raise DarknetError("no usable image found in 100 draws", self.list_path)

    def _make(self, batch_num, n, w, h):
        seeds = np.random.SeedSequence([self.seed, batch_num, self.rank]).spawn(n)
        samples = list(self.pool.map(lambda s: self._sample(np.random.default_rng(s), w, h), seeds))
        return (np.stack([s[0] for s in samples]).astype(np.float32),
                np.stack([s[1] for s in samples]).astype(np.float32))

    def batch(self, batch_num, n, w, h):
        """The batch for ``batch_num``; the next one is started in the background."""
        key = (batch_num, n, w, h)
        if self.pending is not None and self.pending[0] == key:
            result = self.pending[1].result()
        else:
            result = self._make(batch_num, n, w, h)
        self.pending = ((batch_num + 1, n, w, h),
                        self.prefetch.submit(self._make, batch_num + 1, n, w, h))
        return result

    def close(self):
        self.prefetch.shutdown(wait=False, cancel_futures=True)
        self.pool.shutdown(wait=False, cancel_futures=True)
