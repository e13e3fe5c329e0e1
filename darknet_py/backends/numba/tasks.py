"""A small pool of threads that runs compiled tasks (kernels that release the GIL), and how
to split work into tasks that keep every core busy to the end."""
import itertools
from concurrent.futures import ThreadPoolExecutor

import numba

_pools: dict[int, ThreadPoolExecutor] = {}     # threads -> a pool of threads - 1 workers


def run_tasks(task, args, tasks):
    """task(*args, tasks, i) for every i < tasks, on the calling thread and Numba's thread count
    less one pool threads, each taking the next task when it is done with one (a core slowed
    by a neighbour then takes fewer). Not a prange loop: Numba's parallel passes re-optimise
    everything a loop body calls and take seconds per kernel to compile."""
    threads = min(numba.get_num_threads(), tasks)
    if threads <= 1:
        for i in range(tasks):
            task(*args, tasks, i)
        return
    claimed = itertools.count()        # next() on a count is atomic under the GIL

    def work():
        for i in iter(claimed.__next__, None):
            if i >= tasks:
                return
            task(*args, tasks, i)
    if threads not in _pools:
        _pools[threads] = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="darknet_py")
    others = [_pools[threads].submit(work) for _ in range(threads - 1)]
    work()
    for future in others:
        future.result()


def balanced_tasks(rows, size_of_row, most):
    """How many tasks to split ``rows`` rows (or tiles) into: a multiple of Numba's threads, so
    that equal tasks keep every core busy to the end, each about ``most`` in size where the
    rows allow, every task at least one row."""
    threads = numba.get_num_threads()
    per_thread = max(1, -(-rows * size_of_row // (threads * most)))
    return max(1, min(rows, threads * per_thread))
