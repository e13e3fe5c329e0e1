"""Images decoded and letterboxed on reader threads ahead of the network, for the jobs that run
a detector over a list (detector valid, map, test over a folder): Pillow's decode and the
compiled letterbox both run without the GIL, so the readers keep up while the network runs."""
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from .compiled import letterbox_image
from .image import load_image


def prepared(path, width, height):
    """One image as detector test prepares it: (the image [3, H, W], letterboxed to the net)."""
    image = load_image(path)
    return image, letterbox_image(image, width, height)


def read_ahead(paths, width, height, ahead, readers=None):
    """Yield (path, future of ``prepared``) in the list's order, ``ahead`` images in flight on
    ``readers`` threads (the cores, at most 8). A future's result() raises the image's error
    (DarknetError naming the file) where the caller reads it; images not yet read when the
    caller stops are dropped."""
    readers = readers or min(8, os.cpu_count() or 1)
    pending = deque()
    paths = iter(paths)
    pool = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="darknet_py-reader")
    try:
        for path in paths:
            pending.append((path, pool.submit(prepared, path, width, height)))
            if len(pending) > ahead:
                yield pending.popleft()
        while pending:
            yield pending.popleft()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
