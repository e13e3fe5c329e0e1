"""What the benchmarks share: timing a call, and a cfg that trains a whole batch in one pass."""
import re
import time
from pathlib import Path

import numpy as np


def first_and_median(fn, runs, sync=None):
    """(seconds of the first call, median seconds of ``runs`` more). ``sync`` waits for an
    asynchronous device (torch.cuda.synchronize) before each clock reading."""
    sync = sync or (lambda: None)
    start = time.perf_counter()
    fn()
    sync()
    first = time.perf_counter() - start
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return first, float(np.median(times))


def whole_batch_cfg(cfg, batch, folder):
    """A copy of ``cfg`` in ``folder`` with batch=``batch`` and subdivisions=1."""
    text = re.sub(r"(?m)^subdivisions=\d+", "subdivisions=1", Path(cfg).read_text())
    text = re.sub(r"(?m)^batch=\d+", f"batch={batch}", text)
    path = Path(folder) / Path(cfg).name
    path.write_text(text)
    return path
