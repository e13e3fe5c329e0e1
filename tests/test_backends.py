"""Backend selection: torch is optional and imported only when asked for."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO

import darknet_py
from darknet_py import DarknetError
from darknet_py.cli import Args, backend_choice


def test_numpy_path_never_imports_torch():
    code = ("import sys, numpy as np, darknet_py\n"
            f"net = darknet_py.load_network(r'{REPO / 'cfg' / 'yolov2-tiny-voc.cfg'}')\n"
            "net.resize(64, 64); net.forward(np.zeros((1, 3, 64, 64), np.float32))\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_torch_missing_says_how_to_install():
    """Without PyTorch, asking for its backend is one line saying how to install it."""
    code = ("import sys\n"
            "sys.modules['torch'] = None\n"
            "from darknet_py.backends import get_backend\n"
            "from darknet_py.errors import DarknetError\n"
            "try:\n"
            "    get_backend('torch', 'cpu')\n"
            "except DarknetError as err:\n"
            "    print(err)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'darknet_py[torch]'" in done.stdout


@pytest.mark.parametrize("argv,expected", [
    (["-backend", "numpy"], ("numpy", None, "fp32")),
    (["-backend", "torch", "-nogpu"], ("torch", "cpu", "fp32")),
    (["-i", "1"], ("torch", "cuda:1", "fp32")),
    (["-gpus", "2,3"], ("torch", "cuda:2", "fp32")),
    (["-nogpu"], ("numba", "cpu", "fp32")),
    (["-backend", "torch", "-nogpu", "-half"], ("torch", "cpu", "fp16")),
])
def test_darknet_device_flags(argv, expected):
    assert backend_choice(Args(argv)) == expected


def test_unknown_backend_and_missing_cuda(tmp_path, capsys):
    cfg = REPO / "cfg" / "yolov2-tiny-voc.cfg"
    with pytest.raises(DarknetError, match="unknown backend 'tensorflow'"):
        darknet_py.load_network(cfg, backend="tensorflow")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        with pytest.raises(DarknetError, match="CUDA is not available"):
            darknet_py.load_network(cfg, backend="torch", device="cuda")


def test_torch_parameters_share_the_weights_buffer(tmp_path):
    """On the CPU the torch tensors are the NumPy buffer: saving needs no copy, and a
    training update is visible in net.params."""
    pytest.importorskip("torch")
    net = darknet_py.load_network(REPO / "cfg" / "yolov2-tiny-voc.cfg", backend="torch", device="cpu")
    before = net.params.copy()
    net.backend.layer_params(net.layers[0])["biases"] += 1
    assert np.array_equal(net.params[:16], before[:16] + 1)
    out = tmp_path / "t.weights"
    net.save_weights(out)
    assert np.array_equal(np.frombuffer(out.read_bytes()[20:20 + 64], "<f4"), before[:16] + 1)


# run first in a process: ``compiled`` then lists the Numba kernels it compiles (not those it
# loads from the cache)
COMPILE_LOG = ("import numpy as np\n"
               "from numba.core import event\n"
               "from darknet_py.backends.numba import kernels\n"
               "compiled = []\n"
               "class Compiled(event.Listener):\n"
               "    def on_start(self, ev): compiled.append(ev.data['dispatcher'].__name__)\n"
               "    def on_end(self, ev): pass\n"
               "event.register('numba:compile', Compiled())\n")


@pytest.mark.slow
def test_numba_warmup_fills_an_empty_cache(tmp_path):
    """The helper a fresh install starts beside the first inference compiles every inference
    kernel into an empty Numba cache, each once (a literal 0 passed where another caller
    passes an int64 compiles a kernel twice), and marks the cache complete, as another
    process sees it (no later backend starts the helper again). The first inference then
    compiles nothing: tiny-voc at 416 with nothing remembered times every algorithm."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), DARKNET_PY_WARMUP="0")
    helper = COMPILE_LOG + ("from darknet_py.backends.numba import warmup\n"
                            "warmup.compile_all()\n"
                            "names = {kernel.__name__ for kernel in kernels.all_kernels()}\n"
                            "print(','.join(name for name in compiled if name in names))\n")
    done = subprocess.run([sys.executable, "-c", helper], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    kernels = done.stdout.strip().split(",")
    assert sorted(kernels) == sorted(set(kernels)), f"compiled twice: {sorted(kernels)}"
    assert {"winograd_fused_task", "winograd_input_task", "winograd_output_task", "packed_products_task", "gemm_rows",
            "convolve_band", "im2col", "transform_filters", "maxpool_2x2_task"} <= set(kernels)
    assert len(list(tmp_path.rglob("darknet_py-warm-*"))) == 1
    probe = ("import darknet_py.backends.numba.kernels as k, sys; "
             "sys.exit(0 if k.warm_marker().exists() else 1)")
    assert subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env).returncode == 0
    first = COMPILE_LOG + ("import darknet_py\n"
                           f"net = darknet_py.load_network(r'{REPO / 'cfg' / 'yolov2-tiny-voc.cfg'}', "
                           "backend='numba')\n"
                           "net.forward(np.zeros((1, 3, 416, 416), np.float32))\n"
                           "print(compiled)\n")
    done = subprocess.run([sys.executable, "-c", first], cwd=REPO, capture_output=True, text=True,
                          env=dict(env, DARKNET_PY_CACHE=str(tmp_path / "choices")))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"compiled after the helper: {done.stdout}"


def blocked_on(lock, process, timeout=120):
    """Whether ``process`` comes to wait on the flock of file ``lock`` (Linux lists a waiter in
    /proc/locks with "->" and the file's inode) while it is still running."""
    import time
    inode = f":{os.stat(lock).st_ino} "
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with open("/proc/locks") as f:
            if any("->" in line and inode in line for line in f):
                return True
        time.sleep(.05)
    return False


def test_numba_kernels_compile_one_process_at_a_time(tmp_path):
    """A process that needs a kernel another process is compiling waits for it, then loads it
    from the cache instead of compiling it too: with the kernel's lock held (as the other
    process holds it while it compiles) the process waits; once the kernel is in the cache
    and the lock released, it runs it without compiling."""
    import fcntl
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), DARKNET_PY_WARMUP="0")
    call = "kernels.activations.bias_activate(np.zeros((2, 3), np.float32), np.zeros(2, np.float32), 1)\n"
    where = "print(kernels.activations.bias_activate._cache._cache_path)"
    folder = subprocess.run([sys.executable, "-c", COMPILE_LOG + where],
                            cwd=REPO, env=env, check=True, capture_output=True, text=True).stdout.strip()
    lock = Path(folder) / "darknet_py-compiling-bias_activate"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiting = subprocess.Popen([sys.executable, "-c", COMPILE_LOG + call + "print(compiled)"],
                                   cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
        assert blocked_on(lock, waiting), "ran without waiting for the lock"
        # meanwhile the lock's holder compiles it (here without taking the lock)
        subprocess.run([sys.executable, "-c", COMPILE_LOG + "del kernels.activations.bias_activate.compile\n" + call
                        + "assert compiled == ['bias_activate'], compiled"], cwd=REPO, env=env, check=True)
    out, _ = waiting.communicate(timeout=120)
    assert waiting.returncode == 0
    assert out.strip() == "[]", f"compiled what the lock's holder had compiled: {out}"


def test_numba_warmup_compiling_reads_the_helpers_running_file(tmp_path, monkeypatch):
    """compiling() is true while a helper's ".running" file is fresh: not before it starts, not
    for one older than 120 s (a helper that died)."""
    import time

    from darknet_py.backends.numba import kernels
    monkeypatch.setattr(kernels, "warm_marker", lambda: tmp_path / "darknet_py-warm-0123")
    running = tmp_path / "darknet_py-warm-0123.running"
    assert not kernels.helper_compiling()
    running.touch()
    assert kernels.helper_compiling()
    os.utime(running, (time.time() - 200, time.time() - 200))
    assert not kernels.helper_compiling()
    monkeypatch.setattr(kernels, "warm_marker", lambda: None)          # Numba caches nowhere
    assert not kernels.helper_compiling()


def test_numba_crew_runs_each_task_once_and_reports_failures():
    """run_tasks hands compiled tasks to a crew of threads woken by locks: every task runs
    once, whichever thread takes it, for callers on several threads at once; a task's error
    reaches its caller, and the crew serves the next call."""
    import threading

    import numba
    from numba import njit

    from darknet_py.backends.numba.tasks import run_tasks

    @njit(nogil=True)
    def count(hits, tasks, task):
        hits[task] += 1

    @njit(nogil=True)
    def divide(values, tasks, task):
        values[task] = 1 // (task - 3)

    previous = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        hits = [np.zeros(37, dtype=np.int64) for _ in range(4)]

        def call(h):
            for _ in range(50):
                run_tasks(count, (h,), h.size)
        callers = [threading.Thread(target=call, args=(h,)) for h in hits]
        for t in callers:
            t.start()
        for t in callers:
            t.join()
        assert all((h == 50).all() for h in hits)
        with pytest.raises(ZeroDivisionError):
            run_tasks(divide, (np.zeros(8, dtype=np.int64),), 8)
        again = np.zeros(5, dtype=np.int64)
        run_tasks(count, (again,), 5)
        assert (again == 1).all()
    finally:
        numba.set_num_threads(previous)
