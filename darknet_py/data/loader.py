"""Training batches for a region network, made by worker threads or processes, ``depth``
batches ahead (darknet: load_data with DETECTION_DATA, in its own thread, one ahead; two ahead
keep two workers busier: they start on the second while the first's last samples are made)."""
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from ..errors import warn
from .augment import augment_detection, place_detection
from .labels import label_path, read_labels
from .sampling import RandomSamples


class DetectionLoader(RandomSamples):
    """Darknet's detection samples: augmented images and their truth rows. A label file with a
    bad line makes its image unusable (each problem warned with its file and line).

    The head says which labels it takes: boxes of ``classes`` classes (with a ``map=``, the
    map's lines), and class-only labels of its tree's nodes where it has a tree."""

    def __init__(self, paths, list_path, head, jitter, hue, saturation, exposure, seed=0, workers=2, rank=0,
                 augmentation="place", flips=True, world=1, compiled=True, depth=2, allocate=None,
                 letter_box=False, processes=False):
        super().__init__(paths, list_path, seed, workers, rank, world, allocate, processes)
        self.classes = head.classes if head.class_map is None else len(head.class_map)
        self.tree_nodes = 0 if head.tree is None else head.tree.n
        self.map_path = head.map_path
        self.truth_shape = (head.max_boxes, 5)
        self.options = dict(jitter=jitter, hue=hue, saturation=saturation, exposure=exposure,
                            max_boxes=head.max_boxes, flips=flips)
        self.place, self.compiled = augmentation == "place", compiled
        if not self.place:
            self.options["letter_box"] = bool(letter_box)
        self.bind_augmentation()
        # the next batches, made at once: the workers start on one while the other's last samples
        # are still being made
        self.prefetch = ThreadPoolExecutor(max_workers=max(1, depth))
        self.pending = {}                                     # (batch, n, w, h): future
        self.depth = depth

    local_attributes = RandomSamples.local_attributes + ("augment", "prefetch", "pending")

    def __setstate__(self, state):            # in a worker process
        self.__dict__.update(state)
        self.bind_augmentation()

    def bind_augmentation(self):
        """The augmentation with its options and kernels bound once; the compiled kernels give
        the reference's numbers to the bit, without the GIL."""
        options = dict(self.options)
        if self.compiled:
            from . import compiled as kernels
            options.update(distort=kernels.distort_image, flip_image=kernels.flip_image)
            if self.place:
                options["place"] = kernels.place_image
            else:
                options["resize"] = kernels.resize_image
        self.augment = partial(place_detection if self.place else augment_detection, **options)

    def annotation(self, index):
        rows, problems = read_labels(label_path(self.paths[index]), self.classes, tree_nodes=self.tree_nodes,
                                     map_path=self.map_path)
        for problem in problems:
            warn(f"{problem}; sample skipped")
        return None if problems else rows

    def make(self, image, boxes, rng, w, h):
        return self.augment(image, boxes, w, h, rng)

    def batch(self, batch_num, n, w, h):
        """The batch for ``batch_num``; the next ``depth`` batches are made in the background
        (a change of size, multi-scale's, drops those made at the old one)."""
        future = self.pending.pop((batch_num, n, w, h), None)
        result = future.result() if future is not None else self.draw(batch_num, n, w, h)
        for key in [key for key in self.pending if key[1:] != (n, w, h) or key[0] < batch_num]:
            self.pending.pop(key).cancel()
        for ahead in range(batch_num + 1, batch_num + 1 + self.depth):
            if (ahead, n, w, h) not in self.pending:
                self.pending[ahead, n, w, h] = self.prefetch.submit(self.draw, ahead, n, w, h)
        return result

    def close(self):
        self.prefetch.shutdown(wait=False, cancel_futures=True)
        super().close()
