"""classifier train / valid / predict on a synthetic classification set, the 9k tree on
predict, and the 224 -> 448 fine-tune (Darknet-19's weights fit darknet19_448)."""
import re

import numpy as np
import pytest
from helpers import MAXPOOL, REPO, conv

import darknet_py
from darknet_py.cli import main
from darknet_py.data.shapes_dataset import make_classification

SMALL = """[net]
batch=16
subdivisions=1
width=32
height=32
channels=3
momentum=0.9
decay=0.0005
max_crop=40
min_crop=32
angle=7
hue=.1
saturation=.75
exposure=.75
aspect=.75
learning_rate=0.05
policy=poly
power=4
max_batches=1000
""" + conv(16) + MAXPOOL + conv(32) + MAXPOOL + conv(64) + conv(4, size=1, bn=False, activation="linear") + """[avgpool]
[softmax]
groups=1
"""


@pytest.fixture(scope="module")
def classify(tmp_path_factory):
    root = tmp_path_factory.mktemp("classify")
    make_classification(root, 160, 24, seed=2, size=32)
    cfg = root / "small.cfg"
    cfg.write_text(SMALL)
    return root, cfg


@pytest.mark.slow
def test_train_valid_predict(classify, capsys):
    root, cfg = classify
    data = str(root / "classify.data")
    assert main(["classifier", "train", data, str(cfg), "-max_batches", "150"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if re.match(r"^\d+, [\d.]+: ", line)]
    assert len(lines) == 150
    assert re.match(r"^1, 0\.100: [\d.]+, [\d.]+ avg, [\d.]+ rate, [\d.]+ seconds, 16 images$", lines[0])
    losses = [float(line.split(": ")[1].split(",")[0]) for line in lines]
    assert np.mean(losses[-20:]) < 0.85 * np.mean(losses[:20]), losses
    weights = root / "backup" / "small.weights"
    assert weights.exists() and (root / "backup" / "small_1.weights").exists()   # epoch 1 of 160 images
    assert main(["classifier", "valid", data, str(cfg), str(weights)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    top1, top2 = (float(v) for v in re.match(r"^23: top 1: ([\d.]+), top 2: ([\d.]+)$", last).groups())
    assert top1 > 0.4 and top2 >= top1            # four classes: chance is 0.25 (measured 0.58)
    image = (root / "valid.list").read_text().split()[0]
    assert main(["classifier", "predict", data, str(cfg), str(weights), image, "-top", "3"]) == 0
    predicted = capsys.readouterr().out.strip().splitlines()
    assert len(predicted) == 3 and all(re.match(r"^[ \d]\d\.\d\d%: \w+$", line) for line in predicted)


def test_tree_predict_gives_leaf_probabilities(tmp_path, capsys):
    """With [softmax] tree=, predictions are absolute (parent times child), leaves only."""
    tree = tmp_path / "t.tree"
    tree.write_text("animal -1\nthing -1\ndog 0\ncat 0\ncup 1\nmug 1\n")
    (tmp_path / "t.labels").write_text("animal\nthing\ndog\ncat\ncup\nmug\n")
    cfg = tmp_path / "t.cfg"
    cfg.write_text(f"[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=6\nsize=1\nstride=1\n"
                   f"pad=1\nactivation=linear\n[avgpool]\n[softmax]\ngroups=1\ntree={tree}\n")
    data = tmp_path / "t.data"
    data.write_text(f"labels={tmp_path / 't.labels'}\ntop=6\n")
    weights = tmp_path / "t.weights"
    assert main(["init", str(cfg), str(weights)]) == 0
    image = REPO / "data" / "sample.png"
    capsys.readouterr()
    assert main(["classifier", "predict", str(data), str(cfg), str(weights), str(image)]) == 0
    rows = [line.split("%: ") for line in capsys.readouterr().out.strip().splitlines()]
    probs = {name: float(p) / 100 for p, name in rows}
    assert probs["animal"] == 0 and probs["thing"] == 0           # inner nodes are not leaves
    assert sum(probs.values()) == pytest.approx(1, abs=2e-4)       # leaves of a two-level tree


def test_darknet19_weights_fit_the_448_finetune(tmp_path):
    small = darknet_py.load_network(REPO / "cfg" / "darknet19.cfg")
    big = darknet_py.load_network(REPO / "cfg" / "darknet19_448.cfg")
    assert small.params.size == big.params.size and (big.width, big.height) == (448, 448)
    assert [layer.param_shapes() for layer in small.layers] == [layer.param_shapes() for layer in big.layers]
