"""Nothing lost, nothing silently wrong, no tracebacks: every command against a folder it
cannot write, mutated cfgs, training that would overwrite newer weights, batch work that meets
a bad file, arguments out of range, and output files' permissions."""
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, assert_close

import darknet_py
from darknet_py.cli import USAGES, main
from darknet_py.data.shapes_dataset import make as make_shapes
from darknet_py.errors import DarknetError

CFG = REPO / "cfg" / "yolov2-tiny-shapes.cfg"
WEIGHTS = REPO / "weights" / "yolov2-tiny-shapes.weights"
DATA = REPO / "cfg" / "shapes.data"
SAMPLE = REPO / "data" / "sample.png"
SMALL = ("[net]\nbatch=2\nsubdivisions=1\nwidth=64\nheight=64\nchannels=3\nlearning_rate=.001\nmax_batches={max}\n"
         "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
         "[maxpool]\nsize=2\nstride=2\n"
         "[convolutional]\nfilters=45\nsize=1\nstride=1\npad=1\nactivation=linear\n"
         "[region]\nanchors=1,1, 2,2, 3,3, 4,4, 5,5\nclasses=4\nnum=5\nrandom=0\n")


def one_line_error(capsys, rc):
    """The command failed with exit 2 and one line on stderr, no traceback."""
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert err and err[-1].startswith("darknet_py: ") and not any("Traceback" in line for line in err), err
    return err[-1]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    make_shapes(root, 8, 3, seed=5)
    return root


@pytest.fixture
def unwritable(tmp_path):
    """A folder this process cannot write in: read-only by mode, or (as root, whom modes do not
    stop) /sys, which refuses new files to everyone."""
    if os.geteuid() == 0:
        return Path("/sys/darknet_py_out")
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def test_every_command_refuses_an_unwritable_folder(shapes, unwritable, tmp_path, capsys, monkeypatch):
    out = unwritable
    data = tmp_path / "out.data"
    data.write_text((shapes / "shapes.data").read_text().replace(str(shapes / "backup"), str(out / "backup"))
                    + f"results={out / 'results'}\n")
    cfg = tmp_path / "small.cfg"
    cfg.write_text(SMALL.format(max=2))
    commands = [
        ["detector", "test", str(DATA), str(CFG), str(WEIGHTS), str(SAMPLE), "-out", str(out / "pred")],
        ["detector", "test", str(DATA), str(CFG), str(WEIGHTS), str(SAMPLE), "-json", str(out / "r.json"),
         "-out", str(tmp_path / "pred")],
        ["init", str(CFG), str(out / "w.weights")],
        ["partial", str(CFG), str(WEIGHTS), str(out / "p.weights"), "3"],
        ["dump", str(CFG), str(WEIGHTS), str(SAMPLE), str(out / "d.h5")],
        ["detector", "valid", str(data), str(CFG), str(WEIGHTS)],
        ["detector", "train", str(data), str(cfg)],
        ["detector", "train", str(shapes / "shapes.data"), str(cfg), "-chart", str(out / "chart.png")],
    ]
    if importlib.util.find_spec("torch") and importlib.util.find_spec("onnx"):
        commands.append(["export", str(CFG), str(WEIGHTS), str(out / "m.onnx")])
    for argv in commands:
        line = one_line_error(capsys, main(argv + ["-backend", "numpy"] if argv[0] == "detector" else argv))
        assert str(out) in line, line
    monkeypatch.chdir(out if out.exists() else out.parent)
    line = one_line_error(capsys, main(["detector", "calc_anchors", str(shapes / "shapes.data"), "-show"]))
    assert "anchors.txt" in line                   # its first output (then counters_per_class.txt, cloud.png)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(40))
def test_mutated_cfgs_build_or_fail_in_one_line(tmp_path, seed):
    """Real cfgs with sections swapped, dropped, duplicated or retyped, and numbers changed:
    each builds and runs a forward pass on every backend, or is refused with DarknetError
    (never another exception). The [connected] -> [maxpool] case crashed two backends."""
    rng = np.random.default_rng(seed)
    source = (REPO / "cfg" / str(rng.choice(["yolov2-tiny-voc.cfg", "darknet19.cfg", "yolov2-tiny-shapes.cfg"])))
    sections = source.read_text().split("\n[")
    head, body = sections[0], ["[" + s for s in sections[1:]]
    for _ in range(int(rng.integers(1, 4))):
        i = int(rng.integers(len(body)))
        kind = int(rng.integers(5))
        if kind == 0 and len(body) > 1:
            del body[i]
        elif kind == 1:
            body.insert(i, body[int(rng.integers(len(body)))])
        elif kind == 2:
            new = str(rng.choice(["[maxpool]", "[connected]", "[convolutional]", "[avgpool]", "[route]", "[reorg]",
                                  "[softmax]", "[dropout]", "[cost]"]))
            body[i] = new + body[i][body[i].index("]") + 1:]
        elif kind == 3:
            body.insert(i, str(rng.choice(["[connected]\noutput=7\nactivation=leaky\n", "[maxpool]\nsize=2\nstride=2\n",
                                           "[avgpool]\n", "[route]\nlayers=-2\n"])))
        else:
            lines = body[i].split("\n")
            j = int(rng.integers(len(lines)))
            if "=" in lines[j]:
                key = lines[j].split("=")[0]
                lines[j] = f"{key}={rng.choice(['0', '-1', '3', '1000000', 'x', '2.5'])}"
            body[i] = "\n".join(lines)
    head = re.sub(r"(?m)^(width|height)=\d+", r"\1=64", head)
    cfg = tmp_path / "mutant.cfg"
    cfg.write_text(head + "\n" + "\n".join(body))
    for backend, device in (("numpy", None), ("numba", None), ("torch", "cpu")):
        if backend == "torch":
            pytest.importorskip("torch")
        try:
            net = darknet_py.load_network(cfg, backend=backend, device=device)
            if net.params.size > 5_000_000 or sum(layer.bflops for layer in net.layers) > .5:
                return                  # builds; too large to run in a test
            net.forward(np.random.default_rng(0).random((1, net.channels, net.height, net.width), np.float32))
        except DarknetError:
            return


def train(data, cfg, *flags):
    return main(["detector", "train", str(data), str(cfg), "-backend", "numpy", "-workers", "1", *flags])


def test_training_never_replaces_newer_weights(shapes, tmp_path, capsys):
    """A backup from a longer run (more images seen) is kept: a new run from scratch says so
    at the start and does not write over it, at its own backups or when interrupted; the
    files it writes at the end hold its own state."""
    cfg = tmp_path / "keep.cfg"
    cfg.write_text(SMALL.format(max=100))
    backup = shapes / "backup" / "keep.backup"
    net = darknet_py.load_network(cfg)
    net.seen = 1600
    net.save_weights(backup)
    before = backup.read_bytes()
    assert train(shapes / "shapes.data", cfg) == 0
    out = capsys.readouterr().out
    assert "holds seen 1600, ahead of this run (seen 0)" in out
    assert "Kept " in out and backup.read_bytes() == before          # iteration 100's backup skipped
    assert darknet_py.load_network(cfg, shapes / "backup" / "keep_final.weights").seen == 200


def test_max_batches_not_past_the_weights_is_refused_before_writing(shapes, tmp_path, capsys):
    cfg = tmp_path / "done.cfg"
    cfg.write_text(SMALL.format(max=4))
    start = tmp_path / "trained.weights"
    net = darknet_py.load_network(cfg)
    net.seen = 8 * 2                      # batch 8 reached
    net.save_weights(start)
    final = shapes / "backup" / "done_final.weights"
    final.write_bytes(b"earlier work")
    line = one_line_error(capsys, train(shapes / "shapes.data", cfg, str(start)))
    assert "max_batches 4 is not past the weights' batch 8" in line
    assert final.read_bytes() == b"earlier work"
    line = one_line_error(capsys, train(shapes / "shapes.data", cfg, "-max_batches", "-5"))
    assert "-max_batches must be in [0" in line


def test_detect_finds_the_data_file_that_fits(tmp_path, capsys, monkeypatch):
    """detect takes the .data whose classes and names fit the network: the shapes model's
    circles and stars, not COCO's names."""
    monkeypatch.chdir(tmp_path)
    assert main(["detect", str(CFG), str(WEIGHTS), str(SAMPLE), "-backend", "numpy", "-thresh", ".4"]) == 0
    captured = capsys.readouterr()
    names = {line.split(":")[0] for line in captured.out.splitlines()[1:]}
    assert names and names <= {"circle", "square", "triangle", "star"}, captured.out
    assert "shapes.data" in captured.err
    from darknet_py.detector import default_data_for
    assert default_data_for(REPO / "cfg" / "yolov3-tiny.cfg").endswith("coco.data")    # a [yolo] head
    assert default_data_for(REPO / "cfg" / "yolov3-voc.cfg").endswith("voc.data")
    lonely = tmp_path / "seven.cfg"
    lonely.write_text(CFG.read_text().replace("classes=4", "classes=7").replace("filters=45", "filters=60"))
    monkeypatch.setattr("darknet_py.detector.PACKAGE_CFG", tmp_path / "none")
    line = one_line_error(capsys, main(["detect", str(lonely), str(WEIGHTS), str(SAMPLE)]))
    assert "detector test DATA" in line


def test_batch_detector_test_goes_on_past_a_bad_image(tmp_path, capsys):
    """A list with an unreadable image in the middle: it is named, the others are done, the
    JSON holds them, and the exit status is 1."""
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{SAMPLE}\n{bad}\n{SAMPLE}\n")
    out_json = tmp_path / "r.json"
    rc = main(["detector", "test", str(DATA), str(CFG), str(WEIGHTS), str(listing), "-json", str(out_json),
               "-backend", "numpy"])
    captured = capsys.readouterr()
    assert rc == 1
    assert any("bad.png" in line and "skipped" in line for line in captured.err.splitlines())
    frames = json.loads(out_json.read_text())
    assert [f["filename"] for f in frames] == [str(SAMPLE), str(SAMPLE)] and frames[0]["objects"]


def test_arguments_are_checked(capsys):
    base = ["detector", "test", str(DATA), str(CFG), str(WEIGHTS), str(SAMPLE)]
    assert "-thresh must be in [0, 1]" in one_line_error(capsys, main(base + ["-thresh", "nan"]))
    assert "-iou_thresh must be in (0, 1]" in one_line_error(
        capsys, main(["detector", "map", str(DATA), str(CFG), str(WEIGHTS), "-iou_thresh", "2"]))
    assert "-num_of_clusters must be in [1" in one_line_error(
        capsys, main(["detector", "calc_anchors", str(DATA), "-num_of_clusters", "0"]))
    assert "-batch must be in [1" in one_line_error(capsys, main(["bench", str(CFG), "-batch", "0"]))
    assert "-opset must be in [17, 20]" in one_line_error(
        capsys, main(["export", str(CFG), str(WEIGHTS), "m.onnx", "-opset", "99"]))
    assert "unknown option '-bogus'" in one_line_error(capsys, main(base + ["-bogus"]))
    assert "-show_imgs (showing augmented images" in one_line_error(
        capsys, main(["detector", "train", str(DATA), str(CFG), "-show_imgs"]))
    assert "no CUDA device" in one_line_error(capsys, main(["detector", "train", str(DATA), str(CFG),
                                                            "-gpus", "0,1"])) or os.path.exists("/dev/nvidiactl")


@pytest.mark.parametrize("command", sorted(USAGES))
def test_help_on_every_command(command, capsys):
    assert main(command.split() + ["-h"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: darknet_py {command}")


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"darknet_py {darknet_py.__version__}"


def test_partial_with_a_negative_count_writes_the_header_only(tmp_path):
    out = tmp_path / "none.weights"
    assert main(["partial", str(CFG), str(WEIGHTS), str(out), "-1"]) == 0
    assert out.stat().st_size == 20


def test_output_files_keep_the_umask_and_an_existing_mode(tmp_path):
    out = tmp_path / "w.weights"
    old = os.umask(0o022)
    try:
        assert main(["init", str(CFG), str(out)]) == 0
        assert out.stat().st_mode & 0o777 == 0o644
        out.chmod(0o640)
        assert main(["init", str(CFG), str(out)]) == 0
        assert out.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_a_closed_pipe_ends_quietly():
    """``darknet_py summary CFG | head -1``: the reader goes away; no traceback."""
    read, write = os.pipe()
    os.close(read)
    done = subprocess.run([sys.executable, "-m", "darknet_py", "summary", str(REPO / "cfg" / "yolov2-voc.cfg")],
                          stdout=write, stderr=subprocess.PIPE, text=True)
    os.close(write)
    assert "Traceback" not in done.stderr and "Exception" not in done.stderr, done.stderr
    assert done.returncode == 141


def test_a_one_pixel_high_image_is_refused_in_one_line(tmp_path, capsys):
    """1x5000 letterboxes to 0 rows: Darknet would divide by it; here one line, exit 2."""
    from PIL import Image
    thin = tmp_path / "thin.png"
    Image.new("RGB", (5000, 1), (200, 10, 10)).save(thin)
    line = one_line_error(capsys, main(["detector", "test", str(DATA), str(CFG), str(WEIGHTS), str(thin),
                                        "-backend", "numpy", "-out", str(tmp_path / "p")]))
    assert "too thin to letterbox" in line and "thin.png" in line


def evaluation_data(tmp_path, shapes, names_text=None):
    data = tmp_path / "eval.data"
    names = shapes / "shapes.names"
    if names_text is not None:
        names = tmp_path / "short.names"
        names.write_text(names_text)
    data.write_text(f"classes=4\nvalid={shapes / 'valid.txt'}\nnames={names}\nresults={tmp_path / 'results'}\n")
    return data


def test_evaluation_checks_names_and_labels_before_the_pass(shapes, tmp_path, capsys):
    data = evaluation_data(tmp_path, shapes, "circle\nsquare\n")
    for sub in ("map", "valid"):
        line = one_line_error(capsys, main(["detector", sub, str(data), str(CFG), str(WEIGHTS), "-backend", "numpy"]))
        assert "short.names" in line and "2 names for the network's 4 classes" in line
    assert not (tmp_path / "results").exists()                      # nothing half-written
    images = (shapes / "valid.txt").read_text().split()
    label = shapes / "labels" / (os.path.splitext(os.path.basename(images[0]))[0] + ".txt")
    kept = label.read_text()
    try:
        label.write_text("0 0.5 0.5 0.2\n")
        line = one_line_error(capsys, main(["detector", "map", str(evaluation_data(tmp_path, shapes)), str(CFG),
                                            str(WEIGHTS), "-backend", "numpy"]))
        assert f"{label}:1: malformed label line" in line
        label.unlink()                      # a missing label file: an image without boxes, as in Darknet
        assert main(["detector", "map", str(evaluation_data(tmp_path, shapes)), str(CFG), str(WEIGHTS),
                     "-backend", "numpy"]) == 0
    finally:
        label.write_text(kept)


@pytest.mark.parametrize("after", ["[maxpool]\nsize=2\nstride=2\n",
                                   "[convolutional]\nfilters=3\nsize=1\nactivation=leaky\n"])
def test_a_connected_output_feeds_the_next_layer_as_an_image(tmp_path, after):
    """Darknet's [connected] output is out_c x 1 x 1; the next layer sees that image, forward
    and backward, on every backend alike."""
    cfg = tmp_path / "flat.cfg"
    cfg.write_text("[net]\nbatch=2\nwidth=6\nheight=5\nchannels=3\nlearning_rate=.1\n"
                   "[connected]\noutput=12\nactivation=leaky\n" + after + "[cost]\ntype=sse\n")
    x = np.random.default_rng(1).random((2, 3, 5, 6), np.float32)
    nets = [darknet_py.Network(cfg, backend=name, device=device, seed=2)
            for name, device in (("numpy", None), ("numba", None), ("torch", "cpu"))
            if name != "torch" or importlib.util.find_spec("torch")]
    truth = np.random.default_rng(3).random((2, nets[0].output_layer.outputs), np.float32)
    losses = [net.train_step(x, truth, log=lambda line: None) for net in nets]
    for net, loss in zip(nets[1:], losses[1:]):
        net.backend.sync_params(net)
        assert loss == pytest.approx(losses[0], rel=1e-4)
        assert_close(net.params, nets[0].params, 1e-4, f"{net.backend.name} parameters after a step")


def test_training_what_is_implemented_for_inference_only_is_refused(shapes, tmp_path, capsys):
    """AlexeyAB's mish (its gradient needs the input) and yolov4's loss options run inference
    only: training them is one line naming the option's line, before anything is written."""
    cfg = tmp_path / "mish.cfg"
    cfg.write_text(SMALL.format(max=4).replace("activation=leaky", "activation=mish"))
    line = one_line_error(capsys, train(shapes / "shapes.data", cfg))
    assert f"{cfg}:15: [convolutional] training with activation=mish is not implemented" in line
    assert not (shapes / "backup" / "mish_final.weights").exists()
    net = darknet_py.load_network(cfg)                       # inference runs
    assert np.isfinite(net.forward(np.zeros((1, 3, 64, 64), np.float32))).all()
