"""Compiles the Numba backend's inference kernels into Numba's cache, in a second process.

A first inference after an install compiles its kernels one after another (Numba compiles
under one lock). The backend starts this helper beside itself when the cache lacks them:
while the first inference compiles what its first layers run (the first layer's direct
kernel, the max-pool, the fused Winograd), the helper compiles what it needs next, so two
cores share the work, and compile_lock keeps them from compiling the same kernel. It runs
the kernels through the algorithm registry on synthetic arrays; a marker records that the
cache is complete for this version of the kernels.

    python -m darknet_py.backends.numba.warmup
"""
import numpy as np

from .activations import ACTIVATION_CODES
from .algorithms import ALGORITHMS
from .backend import NumbaBackend
from .convolution import ConvShape
from .kernels import warm_marker
from .maxpool import maxpool_2x2_task
from .microkernel import packed_products_task
from .tasks import run_tasks


def compile_all():
    """Run every inference path once on small synthetic convolutions (16 channels at 13x13 and
    52x52, 3 channels at 13x13) and a 2x2 max-pool, in the order the first inference will
    need them after its first layers, then mark the cache complete."""
    done = warm_marker()
    running = done.with_suffix(".running")
    running.touch()
    leaky = ACTIVATION_CODES["leaky"]
    backend = NumbaBackend()
    rng = np.random.default_rng(0)

    def run(channels, size, *names, kernel=3):
        conv = ConvShape((channels, size, size), 16, size=kernel, padding=kernel // 2)
        weights = rng.standard_normal((16, channels * kernel * kernel)).astype(np.float32)
        bias = np.zeros(16, np.float32)
        x = np.zeros((1, channels, size, size), np.float32)
        out = None
        with backend.running(train=False):
            for name in names:
                algorithm = ALGORITHMS[name]
                out = algorithm.run(backend, conv, algorithm.filters(weights), bias, leaky, x)
        return out

    try:
        # what the first inference needs next: the filters' transform and packing, the
        # products, the im2col path, the bands, the input and output tasks...
        packed = ALGORITHMS["winograd2"].filters(np.zeros((16, 16 * 9), np.float32))
        run_tasks(packed_products_task, (packed, np.zeros((16, 16, 56), np.float32),
                                         np.empty((16, 16, 56), np.float32)), 1)
        run(16, 13, "direct")
        run(16, 52, "direct")
        run(16, 13, "winograd2-filters")
        # ...then every path, which by now mostly loads what either process has compiled
        run(16, 13, "winograd2")
        run(16, 13, "packed", kernel=1)
        run(16, 13, "packed")
        run(3, 13, "direct")
        out = run(16, 52, "winograd4", "winograd4-fused")
        pooled = np.empty((1, 16, 26, 26), np.float32)
        run_tasks(maxpool_2x2_task, (out, 2, pooled), 1)
        done.touch()
    finally:
        running.unlink(missing_ok=True)


if __name__ == "__main__":
    compile_all()
