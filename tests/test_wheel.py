"""Installable like a library: the wheel built from this tree carries the cfgs, names, sample
image and shapes model; installed into a fresh virtual environment, the README's first
command runs from an empty folder and prints the shapes model's detections."""
import importlib.util
import os
import subprocess
import sys
import zipfile

import pytest
from helpers import REPO

pytestmark = pytest.mark.slow


def readme_main_job():
    """The darknet_py command of the README's first line (after ``pip install -e . &&``)."""
    first = next(line for line in (REPO / "README.md").read_text().splitlines() if line.startswith("pip install"))
    return first.split("&&", 1)[1].split()


def test_wheel_installs_and_runs_the_main_job_from_an_empty_folder(tmp_path):
    # this environment's setuptools builds it where there is one (no download); else pip's own
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", *isolation,
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True)
    wheel, = (tmp_path / "dist").glob("darknet_py-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("cfg/shapes.data", "cfg/yolov2-tiny-shapes.cfg", "cfg/yolov2-voc.cfg", "data/shapes.names",
                    "data/sample.png", "weights/yolov2-tiny-shapes.weights", "cfg/yolo9000-shapes.cfg",
                    "cfg/shapes.tree", "cfg/shapes-tree.data", "data/shapes-tree.names",
                    "weights/yolo9000-shapes.weights"):
        assert f"darknet_py/bundled/{shipped}" in names, shipped
    assert any(name.endswith("/licenses/LICENSE") or name.endswith("/LICENSE") for name in names)

    venv = tmp_path / "venv"
    # the dependencies (NumPy, Numba...) from this environment; darknet_py itself from the wheel
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    where = subprocess.run([python, "-c", "import darknet_py; print(darknet_py.__file__)"], cwd=empty,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv)), where
    command = readme_main_job()
    assert command[0] == "darknet_py"
    done = subprocess.run([venv / "bin" / "darknet_py", *command[1:]], cwd=empty, capture_output=True, text=True,
                          env=dict(os.environ, DARKNET_PY_CACHE=str(tmp_path / "choices")))
    assert done.returncode == 0, done.stderr
    names = {line.split(":")[0] for line in done.stdout.splitlines()[1:]}
    assert names == {"circle", "star"}, done.stdout
    assert (empty / "predictions.jpg").is_file()
    listing = subprocess.run([venv / "bin" / "darknet_py", "models"], cwd=empty, capture_output=True, text=True)
    assert "yolov2-tiny-shapes.cfg" in listing.stdout and "weights yolov2-tiny-shapes.weights" in listing.stdout
    version = subprocess.run([venv / "bin" / "darknet_py", "--version"], capture_output=True, text=True).stdout
    meta = subprocess.run([python, "-c", "from importlib.metadata import version; print(version('darknet_py'))"],
                          capture_output=True, text=True).stdout
    assert version.split() == ["darknet_py", meta.strip()]
