"""Which convolution algorithm is fastest depends on the map, the channels and the machine:
timing rounds that pick it, and the choices remembered on disk per machine and kernels'
version (like FFTW's wisdom) so that later processes skip the timing."""
import json
import os
import platform
import time

import numpy as np

from ...files import atomic_write


def fastest(candidates, run, rounds, drop):
    """The candidate whose run(candidate) took least, in ``rounds`` rounds taken in turn (a busy
    moment hits them all), each keeping its best round; after two rounds, candidates ``drop``
    times slower than the best stop. Returns (it, the last run's output). No untimed run
    first: a compile or a cold start lands in round 0."""
    timings = dict.fromkeys(candidates, np.inf)
    running = list(candidates)
    out = None
    for round_ in range(rounds):
        for name in running:
            start = time.perf_counter()
            out = run(name)
            timings[name] = min(timings[name], time.perf_counter() - start)
        if round_ == 1:
            best = min(timings.values())
            running = [name for name in running if timings[name] <= drop * best]
    return min(timings, key=timings.__getitem__), out


class RememberedChoices:
    """The algorithm timed fastest per convolution signature, in $DARKNET_PY_CACHE (else
    ~/.cache/darknet_py)/numba-choices.json under "CPU, threads, kernels VERSION". Another
    version's timings on this machine are dropped, not reused: a change to a kernel changes
    which is fastest. Delete the file to time again."""

    def __init__(self, threads, version):
        root = os.environ.get("DARKNET_PY_CACHE") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "darknet_py")
        self.path = os.path.join(root, "numba-choices.json")
        self.cpu = f"{cpu_model()}, {threads} threads"
        self.machine = f"{self.cpu}, kernels {version}"
        self.all = None

    def _load(self):
        if self.all is None:
            try:
                with open(self.path) as f:
                    self.all = json.load(f)
            except (OSError, ValueError):     # none yet, or unreadable: time again
                self.all = {}
            for stale in [m for m in self.all if m != self.machine and m.split(", kernels ")[0] == self.cpu]:
                del self.all[stale]           # this machine's timings of other kernels' versions
        return self.all.setdefault(self.machine, {})

    def get(self, signature):
        return self._load().get(signature)

    def put(self, signature, name):
        self._load()[signature] = name
        text = json.dumps(self.all, indent=1, sort_keys=True).encode()
        try:
            atomic_write(self.path, lambda f: f.write(text))
        except OSError:                       # a read-only home: the choice lasts this process
            pass


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
