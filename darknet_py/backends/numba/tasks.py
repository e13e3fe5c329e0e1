"""A small crew of threads that runs compiled tasks (kernels that release the GIL), and how
to split work into tasks that keep every core busy to the end."""
import itertools
import threading

import numba


class Crew:
    """``workers`` threads, each asleep on a lock of its own until ``run`` releases it: one
    lock handed over per worker and one back, where a ThreadPoolExecutor's futures, queue and
    conditions cost twice that per call (an inference makes ~30 calls). One job at a time;
    callers on other threads wait their turn."""

    def __init__(self, workers):
        self.turn = threading.Lock()
        self.wake = [threading.Lock() for _ in range(workers)]
        self.done = [threading.Lock() for _ in range(workers)]
        for lock in self.wake + self.done:
            lock.acquire()
        self.job = None
        self.failed = None
        for i in range(workers):
            threading.Thread(target=self._serve, args=(i,), daemon=True, name=f"darknet_py-{i}").start()

    def _serve(self, i):
        while True:
            self.wake[i].acquire()
            try:
                _take_tasks(*self.job)
            except BaseException as error:     # handed to the caller, which raises it
                self.failed = error
            finally:
                self.done[i].release()

    def run(self, task, args, tasks):
        with self.turn:
            self.failed = None
            self.job = (task, args, tasks, itertools.count())
            for lock in self.wake:
                lock.release()
            try:
                _take_tasks(*self.job)
            finally:
                for lock in self.done:
                    lock.acquire()
            if self.failed is not None:
                raise self.failed


def _take_tasks(task, args, tasks, claimed):
    """task(*args, tasks, i) for the next unclaimed i until none is left: a core slowed by a
    neighbour takes fewer (next() on a count is atomic under the GIL)."""
    for i in iter(claimed.__next__, None):
        if i >= tasks:
            return
        task(*args, tasks, i)


_crews: dict[int, Crew] = {}     # threads -> a crew of threads - 1 workers
_hiring = threading.Lock()


def run_tasks(task, args, tasks):
    """task(*args, tasks, i) for every i < tasks, on the calling thread and Numba's thread count
    less one crew threads. Not a prange loop: Numba's parallel passes re-optimise everything a
    loop body calls and take seconds per kernel to compile."""
    threads = min(numba.get_num_threads(), tasks)
    if threads <= 1:
        for i in range(tasks):
            task(*args, tasks, i)
        return
    with _hiring:
        if threads not in _crews:
            _crews[threads] = Crew(threads - 1)
    _crews[threads].run(task, args, tasks)


def balanced_tasks(rows, size_of_row, most):
    """How many tasks to split ``rows`` rows (or tiles) into: a multiple of Numba's threads, so
    that equal tasks keep every core busy to the end, each about ``most`` in size where the
    rows allow, every task at least one row."""
    threads = numba.get_num_threads()
    per_thread = max(1, -(-rows * size_of_row // (threads * most)))
    return max(1, min(rows, threads * per_thread))
