"""What the benchmarks share: timing a call, and a copy of a cfg with some of its values changed."""
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


def cfg_with(cfg, folder, **values):
    """A copy of ``cfg`` in ``folder`` with each ``key=`` line set to its value (batch=8,
    subdivisions=1: a whole batch in one pass; width=416, height=416; random=0)."""
    text = Path(cfg).read_text()
    for key, value in values.items():
        text = re.sub(rf"(?m)^{key}=[\d.]+", f"{key}={value}", text)
    path = Path(folder) / Path(cfg).name
    path.write_text(text)
    return path
