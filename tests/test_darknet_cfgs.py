"""Every cfg of pjreddie's cfg folder builds (`summary`), or is refused with one line naming
the cfg, the line and why: the layers darknet_py does not build ([local], [crop],
[detection], sequence networks, reorg's 'extra')."""
import shutil

import pytest
from helpers import DARKNET_CFG

from darknet_py.cli import main

PJREDDIE = DARKNET_CFG / "pjreddie"
REFUSED = {          # cfg -> words the one-line reason must hold
    "go.cfg": "'extra' is not supported", "go.test.cfg": "'extra' is not supported",
    "gru.cfg": "sequence (rnn/gru/crnn) network", "rnn.cfg": "sequence (rnn/gru/crnn) network",
    "rnn.train.cfg": "sequence (rnn/gru/crnn) network",
    "strided.cfg": "[crop] is not supported", "vgg-16.cfg": "[crop] is not supported",
    "t1.test.cfg": "[detection] is not supported", "yolov1-tiny.cfg": "[detection] is not supported",
    "yolov1.cfg": "[local] is not supported",
}
CFGS = sorted(p.name for p in PJREDDIE.glob("*.cfg")) if PJREDDIE.is_dir() else []


@pytest.mark.slow
@pytest.mark.parametrize("name", CFGS)
def test_every_pjreddie_cfg_builds_or_says_why(name, tmp_path, monkeypatch, capsys):
    (tmp_path / "data").mkdir()
    for side in ("9k.tree", "coco9k.map"):                # darknet's relative tree= and map= paths
        shutil.copy(DARKNET_CFG / side, tmp_path / "data" / side)
    monkeypatch.chdir(tmp_path)
    rc = main(["summary", str(PJREDDIE / name)])
    captured = capsys.readouterr()
    if name in REFUSED:
        assert rc == 2
        line = captured.err.strip().splitlines()[-1]
        assert line.startswith(f"darknet_py: {PJREDDIE / name}:") and REFUSED[name] in line, line
    else:
        assert rc == 0, captured.err
        assert captured.out.splitlines()[-1].startswith("Total BFLOPS")


def test_the_cfg_folder_is_there():
    assert len(CFGS) == 45, f"pjreddie's cfg folder expected in {PJREDDIE}"


@pytest.mark.slow
def test_darknet53_conv_74_starts_yolov3(tmp_path):
    """`partial darknet53.cfg W darknet53.conv.74 74`: the first 74 layers' parameters (40,620,640
    floats after the 20-byte header), which yolov3.cfg loads as its prefix, as Darknet's
    training recipe does."""
    import darknet_py
    from darknet_py.weights import layer_boundaries
    weights, prefix = tmp_path / "d53.weights", tmp_path / "darknet53.conv.74"
    assert main(["init", str(PJREDDIE / "darknet53.cfg"), str(weights)]) == 0
    assert main(["partial", str(PJREDDIE / "darknet53.cfg"), str(weights), str(prefix), "74"]) == 0
    backbone = darknet_py.load_network(PJREDDIE / "darknet53.cfg", weights)
    floats = layer_boundaries(backbone.layers)[73]
    assert floats == 40_620_640 and prefix.stat().st_size == 20 + 4 * floats
    yolov3 = darknet_py.Network(PJREDDIE / "yolov3.cfg", weights=prefix, allow_prefix=True)
    assert (yolov3.params[:floats] == backbone.params[:floats]).all()
