"""The cfg grammar and Darknet's option semantics; every original cfg parses and builds."""
import numpy as np
import pytest
from helpers import DARKNET_CFG, REPO
from hypothesis import given, settings
from hypothesis import strategies as st

import darknet_py
from darknet_py import DarknetError
from darknet_py.cfg import parse_cfg_text
from darknet_py.network import build_layers

ORIGINAL_CFGS = sorted(DARKNET_CFG.glob("*.cfg"))


def test_there_are_original_cfgs():
    assert len(ORIGINAL_CFGS) >= 8


@pytest.mark.parametrize("cfg", ORIGINAL_CFGS, ids=lambda p: p.name)
def test_every_original_cfg_parses_and_builds(cfg, monkeypatch):
    monkeypatch.chdir(DARKNET_CFG)      # yolo9000's tree= path is relative to darknet's folder
    net = darknet_py.load_network(cfg)
    assert net.layers and net.params.size > 0
    assert net.summary().splitlines()[0].startswith("layer     filters    size")


def test_syntax_darknet_accepts():
    text = ("# a comment\r\n; another\r\n[net]\r\nwidth = 32\r\n height=32 \r\nchannels=3\r\n\r\n"
            "[conv]\nfilters=4 # trailing comment\nfilters=8\nsize = 3\nactivation=leaky\n"
            "anchors =  1, 2,  3\n[max]\n")
    sections = parse_cfg_text(text, "t.cfg")
    assert [s.kind for s in sections] == ["net", "conv", "max"]
    assert sections[0].int("height") == 32
    conv = sections[1]
    assert conv.int("filters") == 4               # the first of repeated keys wins
    assert conv.str("anchors") == "1,2,3"         # darknet strips every whitespace character
    assert conv.options["size"][1] == 11          # line numbers are kept


def test_unused_keys_are_warned(tmp_path, capsys):
    cfg = tmp_path / "u.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n[maxpool]\nsize=2\nstride=2\nbogus=1\n")
    darknet_py.load_network(cfg)
    assert "Unused field: 'bogus = 1'" in capsys.readouterr().err


@pytest.mark.parametrize("alias,kind", [("conv", "convolutional"), ("max", "maxpool"),
                                        ("avg", "avgpool"), ("soft", "softmax"),
                                        ("conn", "connected")])
def test_section_aliases(tmp_path, alias, kind):
    extra = "output=3\n" if alias == "conn" else ""
    cfg = tmp_path / "a.cfg"
    cfg.write_text(f"[network]\nwidth=8\nheight=8\nchannels=3\n[{alias}]\n{extra}")
    assert darknet_py.load_network(cfg).layers[0].kind == kind


def same_network(a, b):
    """Two built networks are the same: kinds, shapes, parameters layout, and options."""
    training_batch = ("batch", "subdivisions")     # ours train as shipped; Darknet's say batch=1
    assert ({k: v for k, v in vars(a.net).items() if k not in training_batch}
            == {k: v for k, v in vars(b.net).items() if k not in training_batch})
    assert len(a.layers) == len(b.layers)
    for x, y in zip(a.layers, b.layers):
        assert (x.kind, x.in_shape, x.out_shape, x.input_layers) == (y.kind, y.in_shape, y.out_shape, y.input_layers)
        assert x.param_shapes() == y.param_shapes()
        for attr in ("activation", "batch_normalize", "size", "stride", "padding", "groups",
                     "classes", "num", "coords", "softmax", "rescore", "bias_match", "thresh",
                     "object_scale", "noobject_scale", "class_scale", "coord_scale", "absolute",
                     "random", "jitter", "temperature"):
            assert getattr(x, attr, None) == getattr(y, attr, None), (x.index, attr)
        if x.kind == "region":
            assert np.array_equal(x.biases, y.biases)
            assert (x.tree is None) == (y.tree is None)


PROJECT_CFGS = sorted((REPO / "cfg").glob("*.cfg"))
PROJECT_ONLY = {"yolov2-tiny-shapes.cfg", "yolo9000-shapes.cfg"}      # ours, for the synthetic shapes sets


@pytest.mark.parametrize("cfg", PROJECT_CFGS, ids=lambda p: p.name)
def test_every_project_cfg_builds(cfg, tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    for side in ("9k.tree", "coco9k.map"):                # darknet's relative tree= and map= paths
        (tmp_path / "data" / side).symlink_to(DARKNET_CFG / side)
    monkeypatch.chdir(tmp_path)
    assert darknet_py.load_network(cfg).layers


@pytest.mark.parametrize("cfg", [c for c in PROJECT_CFGS if c.name not in PROJECT_ONLY], ids=lambda p: p.name)
def test_project_cfgs_build_the_original_networks(cfg, tmp_path, monkeypatch):
    original = DARKNET_CFG / cfg.name
    if not original.exists():
        original = DARKNET_CFG / "pjreddie" / cfg.name       # the YOLOv3 cfgs
    assert original.exists(), f"no original for {cfg.name}"
    (tmp_path / "data").mkdir()
    for side in ("9k.tree", "coco9k.map"):                # darknet's relative tree= and map= paths
        (tmp_path / "data" / side).symlink_to(DARKNET_CFG / side)
    monkeypatch.chdir(tmp_path)
    same_network(darknet_py.load_network(REPO / "cfg" / cfg.name), darknet_py.load_network(original))


# Darknet's parse_network_cfg output for yolov2-voc.cfg at 416 (format strings of
# convolutional_layer.c, maxpool_layer.c, route_layer.c, reorg_layer.c, region_layer.c).
YOLOV2_VOC_SUMMARY_HEAD = """\
layer     filters    size              input                output
    0 conv     32  3 x 3 / 1   416 x 416 x   3   ->   416 x 416 x  32  0.299 BFLOPs
    1 max          2 x 2 / 2   416 x 416 x  32   ->   208 x 208 x  32
    2 conv     64  3 x 3 / 1   208 x 208 x  32   ->   208 x 208 x  64  1.595 BFLOPs"""
YOLOV2_VOC_SUMMARY_TAIL = """\
   24 conv   1024  3 x 3 / 1    13 x  13 x1024   ->    13 x  13 x1024  3.190 BFLOPs
   25 route  16
   26 conv     64  1 x 1 / 1    26 x  26 x 512   ->    26 x  26 x  64  0.044 BFLOPs
   27 reorg              / 2    26 x  26 x  64   ->    13 x  13 x 256
   28 route  27 24
   29 conv   1024  3 x 3 / 1    13 x  13 x1280   ->    13 x  13 x1024  3.987 BFLOPs
   30 conv    125  1 x 1 / 1    13 x  13 x1024   ->    13 x  13 x 125  0.043 BFLOPs
   31 detection"""


def test_summary_matches_darknet():
    text = darknet_py.load_network(DARKNET_CFG / "yolov2-voc.cfg").summary()
    assert text.startswith(YOLOV2_VOC_SUMMARY_HEAD)
    assert YOLOV2_VOC_SUMMARY_TAIL in text
    assert len(text.splitlines()) == 1 + 32 + 1
    total = float(text.splitlines()[-1].split()[-1])
    assert round(total, 1) == 29.4


def test_resize_keeps_parameters():
    net = darknet_py.load_network(DARKNET_CFG / "yolov2-tiny-voc.cfg")
    params = net.params
    net.resize(320, 256)
    assert net.params is params
    assert net.layers[-1].out_shape == (125, 8, 10)
    assert net.forward(np.zeros((1, 3, 256, 320), np.float32)).shape == (1, 125, 8, 10)


# -- property-based fuzz: the parser and builder raise DarknetError or succeed, nothing else --
KEYS = ["batch", "width", "height", "channels", "filters", "size", "stride", "pad", "padding",
        "activation", "layers", "classes", "num", "anchors", "groups", "output", "batch_normalize",
        "coords", "probability", "temperature", "tree", "reverse"]
VALUES = st.one_of(st.integers(-5, 70).map(str), st.sampled_from(["leaky", "linear", "x", "", "1,2",
                   "-1", "-1,-3", "1e9", "99999999999", "0.5", "2,3,4"]))
SECTIONS = ["net", "conv", "convolutional", "maxpool", "avgpool", "route", "reorg", "region",
            "softmax", "dropout", "connected", "cost", "bogus"]


@st.composite
def cfg_texts(draw):
    lines = ["[net]", "width=%d" % draw(st.integers(1, 40)), "height=%d" % draw(st.integers(1, 40)),
             "channels=%d" % draw(st.integers(1, 4))]
    for _ in range(draw(st.integers(0, 6))):
        lines.append("[%s]" % draw(st.sampled_from(SECTIONS)))
        for _ in range(draw(st.integers(0, 4))):
            lines.append("%s=%s" % (draw(st.sampled_from(KEYS)), draw(VALUES)))
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.text(max_size=12)))
    return "\n".join(lines)


@settings(max_examples=300, deadline=None)
@given(cfg_texts())
def test_fuzz_parser_raises_only_darknet_errors(text):
    try:
        sections = parse_cfg_text(text, "fuzz.cfg")
        build_layers(sections, "fuzz.cfg")
    except DarknetError as err:
        assert str(err).startswith("fuzz.cfg")


@pytest.mark.parametrize("section, option", [
    ("[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n", "dilation=2"),
    ("[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n", "antialiasing=1"),
    ("[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n", "stride_x=2"),
    ("[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n", "xnor=1"),
    ("[maxpool]\nsize=2\nstride=2\n", "maxpool_depth=1"),
    ("[maxpool]\nsize=2\nstride=2\n", "stride_y=1"),
])
def test_options_that_change_the_numbers_are_refused_not_ignored(tmp_path, section, option):
    """AlexeyAB's options darknet_py does not compute: one error at their line, never a
    network built without them; their defaults (and a stride_x equal to stride) are fine."""
    from darknet_py.errors import DarknetError
    cfg = tmp_path / "x.cfg"
    cfg.write_text(f"[net]\nwidth=16\nheight=16\nchannels=3\n{section}{option}\n")
    with pytest.raises(DarknetError) as err:
        darknet_py.load_network(cfg)
    assert str(err.value).startswith(f"{cfg}:{6 + section.count(chr(10)) - 1}:")
    assert f"'{option}' is not supported by darknet_py" in str(err.value)
    key = option.split("=")[0]
    harmless = {"dilation": 1, "antialiasing": 0, "stride_x": 1, "xnor": 0, "maxpool_depth": 0, "stride_y": 2}[key]
    cfg.write_text(f"[net]\nwidth=16\nheight=16\nchannels=3\n{section}{key}={harmless}\n")
    assert darknet_py.load_network(cfg).layers


def test_letter_box_reaches_either_augmentation(tmp_path):
    """AlexeyAB's letter_box=1 keeps training images at their aspect: the placement always does,
    the crop widens itself (letterbox_crop, tests/test_augment.py); the option reaches the net."""
    cfg = tmp_path / "lb.cfg"
    cfg.write_text("[net]\nwidth=32\nheight=32\nchannels=3\naugmentation=crop\nletter_box=1\n[maxpool]\n")
    net = darknet_py.load_network(cfg).net
    assert (net.augmentation, net.letter_box) == ("crop", 1)
    cfg.write_text("[net]\nwidth=32\nheight=32\nchannels=3\n[maxpool]\n")
    assert (darknet_py.load_network(cfg).net.augmentation, darknet_py.load_network(cfg).net.letter_box) == ("place", 0)
