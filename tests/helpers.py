"""What the tests share: where the golden cases and Darknet's originals live, their weights,
the backends every parity test runs on, the parity assertion, small cfg pieces.

The golden folder is ../shared/golden beside the repository, or $DARKNET_PY_GOLDEN.
Every case is found by its file name's kind (fwd_, det_, img_, partial_, train_), so a
new file of a known kind is checked with no code change.
"""
import hashlib
import importlib.util
import json
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("DARKNET_PY_SHARED", REPO.parent / "shared"))
GOLDEN = Path(os.environ.get("DARKNET_PY_GOLDEN", SHARED / "golden"))
DARKNET_CFG = SHARED / "darknet-cfg"
IMAGES = SHARED / "images"
# generated weights and the Numba backend's remembered timings: $DARKNET_PY_TEST_CACHE to keep
# them between runs, else a temporary folder that conftest.py removes when the run ends
WEIGHTS_CACHE = Path(os.environ.get("DARKNET_PY_TEST_CACHE") or tempfile.mkdtemp(prefix="darknet_py_tests-"))
TEMPORARY_CACHE = "DARKNET_PY_TEST_CACHE" not in os.environ
os.environ.setdefault("DARKNET_PY_CACHE", str(WEIGHTS_CACHE / "numba"))


def _torch_cuda():
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


# tests that need a GPU carry the ``cuda`` marker (``pytest -m cuda`` runs them); conftest.py
# skips them, with this reason, where there is none
HAS_CUDA = _torch_cuda()
NEEDS_CUDA = pytest.mark.cuda

# Every parity test runs on each backend; CUDA only where there is a GPU.
BACKENDS = [
    pytest.param(("numpy", None), id="numpy"),
    pytest.param(("numba", None), id="numba"),
    pytest.param(("torch", "cpu"), id="torch-cpu"),
    pytest.param(("torch", "cuda"), id="torch-cuda", marks=NEEDS_CUDA),
]


def conv(filters, size=3, bn=True, activation="leaky"):
    """A [convolutional] section for the small cfgs the tests write."""
    return (f"[convolutional]\n{'batch_normalize=1' + chr(10) if bn else ''}filters={filters}\n"
            f"size={size}\nstride=1\npad=1\nactivation={activation}\n")


MAXPOOL = "[maxpool]\nsize=2\nstride=2\n"


# the subfolders discovered beside the golden folder, by kind
GOLDEN_SUBFOLDERS = {"fwd": ("yolov3",), "det": ("yolov3",), "train": ("yolov3", "yolo9000")}
# side files a case's cfg names (tree=, map=): the attribute holding the text, the one naming the file
SIDE_FILES = (("tree_text", "tree_file"), ("map_text", "map_file"))


def golden_cases(kind):
    """Every golden file of a kind, as pytest params named after the file."""
    folders = [GOLDEN] + [GOLDEN / sub for sub in GOLDEN_SUBFOLDERS.get(kind, ())]
    files = sorted(f for folder in folders for f in folder.glob(f"{kind}_*.h5"))
    return [pytest.param(f, id=f.stem) for f in files]


def golden_cases_where(kinds, keep):
    """golden_cases of the ``kinds`` whose file passes ``keep(h5)`` (an open h5 file)."""
    found = []
    for kind in kinds:
        for param in golden_cases(kind):
            with open_h5(param.values[0]) as h5:
                if keep(h5):
                    found.append(param)
    return found


def _make_weights_module():
    spec = importlib.util.spec_from_file_location("make_weights", SHARED / "tools" / "make_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generated_weights(cfg, seed, seen=0, gain=1.0):
    """Weights for ``cfg`` by the golden data's own generator (make_weights.py), cached by
    the cfg's text and the arguments. Returns the path."""
    key = hashlib.sha256(f"{Path(cfg).read_text()}|{seed}|{seen}|{gain}".encode()).hexdigest()[:16]
    weights = WEIGHTS_CACHE / key / "generated.weights"
    if not weights.exists():
        weights.parent.mkdir(parents=True, exist_ok=True)
        tmp = weights.with_suffix(".tmp")
        _make_weights_module().make_weights(str(cfg), seed, str(tmp), seen, gain)
        tmp.replace(weights)
    return weights


def golden_weights(h5):
    """Write the case's cfg_text and the weights its attributes name (cached by content).

    Returns (cfg_path, weights_path). make_weights.py is the golden data's own generator."""
    cfg_text = h5.attrs["cfg_text"]
    seed, seen = int(h5.attrs["weights_seed"]), int(h5.attrs["weights_seen"])
    gain = float(h5.attrs.get("weights_gain", 1.0))
    key = hashlib.sha256(f"{cfg_text}|{seed}|{seen}|{gain}".encode()).hexdigest()[:16]
    folder = WEIGHTS_CACHE / key
    cfg = folder / "case.cfg"
    weights = folder / "case.weights"
    if not weights.exists():
        folder.mkdir(parents=True, exist_ok=True)
        cfg.write_text(cfg_text)
        for text, name in SIDE_FILES:      # written beside the cfg, where darknet_py finds them
            if text in h5.attrs:
                (folder / str(h5.attrs[name]).split()[0]).write_text(str(h5.attrs[text]))
        tmp = folder / "case.weights.tmp"
        _make_weights_module().make_weights(str(cfg), seed, str(tmp), seen, gain)
        tmp.replace(weights)
    return cfg, weights


def layer_shapes(h5):
    return json.loads(h5.attrs["layer_shapes"])


def assert_close(actual, expected, rtol=1e-4, what=""):
    """Float32 parity: |a - e| <= rtol*|e| + rtol*max|e| elementwise.

    The absolute part is the same relative bound taken on the tensor's scale, so values
    near zero in a large tensor are held to float32 noise of that tensor, not to zero."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    err = np.abs(actual - expected)
    bound = rtol * np.abs(expected) + rtol * scale
    worst = float((err - bound).max()) if err.size else 0.0
    assert worst <= 0, (f"{what}: max abs err {err.max():.3g} (scale {scale:.3g}) exceeds "
                        f"rtol {rtol:g}; {int((err > bound).sum())} of {err.size} values off")


def open_h5(path):
    return h5py.File(path, "r")
