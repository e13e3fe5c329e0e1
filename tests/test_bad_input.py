"""Bad input: one line naming the file and line (or byte offset), exit status 2, no
traceback, nothing half-written."""
import pytest
from helpers import REPO

from darknet_py.cli import main

NET = "[net]\nwidth=32\nheight=32\nchannels=3\n"
CONV = "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"

BAD_CFGS = {
    # name: (cfg text, line the error must name, words the message must hold)
    "unknown section": (NET + "[bogus]\nx=1\n", 5, "unknown section [bogus]"),
    "unsupported section": (NET + "[local]\nfilters=3\n", 5, "not supported"),
    "option without value": (NET + CONV + "stride\n", 10, "without '=value'"),
    "option with empty value": (NET + CONV + "stride=\n", 10, "no value"),
    "non-numeric value": (NET + CONV.replace("filters=4", "filters=four"), 6, "must be an integer"),
    "route out of range": (NET + CONV + "[route]\nlayers=-3\n", 11, "out of range"),
    "route forward": (NET + CONV + "[route]\nlayers=1\n", 11, "out of range"),
    "reorg stride does not divide": (NET + CONV + "[reorg]\nstride=3\n", 11, "does not divide"),
    "negative size": (NET + CONV.replace("size=3", "size=-3"), 7, "must be positive"),
    "negative filters": (NET + CONV.replace("filters=4", "filters=-4"), 6, "must be positive"),
    "window larger than input": (NET + "[maxpool]\nsize=64\nstride=1\npadding=0\n", 5, "does not fit"),
    "absurd filters": (NET + CONV.replace("filters=4", "filters=999999999"), 6, "absurdly large"),
    "terabyte activations": ("[net]\nwidth=30000\nheight=30000\nchannels=3\n" +
                             CONV.replace("filters=4", "filters=100000"), 5, "absurdly large"),
    "unknown activation": (NET + CONV.replace("leaky", "leakyy"), 9, "unknown activation"),
    "region filter mismatch": (NET + CONV + "[region]\nclasses=2\nnum=1\n", 11, "does not match"),
    "missing net": (CONV, 1, "first section must be [net]"),
    "option before section": ("width=3\n" + NET, 1, "before any [section]"),
    "unterminated header": (NET + "[convolutional\n", 5, "without ']'"),
}


def run_cli(argv, capsys):
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.err.strip().splitlines()


@pytest.fixture
def files(tmp_path):
    weights = tmp_path / "w.weights"
    good_cfg = tmp_path / "good.cfg"
    good_cfg.write_text(NET + CONV + "[convolutional]\nfilters=30\nsize=1\nactivation=linear\n"
                        "[region]\nclasses=1\nnum=5\n")
    assert main(["init", str(good_cfg), str(weights)]) == 0
    data = tmp_path / "good.data"
    data.write_text(f"classes=1\nnames={tmp_path / 'one.names'}\n")
    (tmp_path / "one.names").write_text("thing\n")
    return tmp_path, good_cfg, weights, data


@pytest.mark.parametrize("name", sorted(BAD_CFGS))
def test_bad_cfg(name, files, capsys):
    tmp, _, weights, data = files
    text, line, words = BAD_CFGS[name]
    cfg = tmp / "bad.cfg"
    cfg.write_text(text)
    capsys.readouterr()
    rc, err = run_cli(["detector", "test", str(data), str(cfg), str(weights),
                       str(REPO / "data" / "sample.png"), "-out", str(tmp / "out")], capsys)
    assert rc == 2
    last = err[-1]
    assert last.startswith(f"darknet_py: {cfg}:{line}:"), last
    assert words in last
    assert not any("Traceback" in e for e in err)
    assert not (tmp / "out.jpg").exists()


@pytest.mark.parametrize("cut", [-5, 7])
def test_bad_weights(files, capsys, cut):
    tmp, cfg, weights, data = files
    body = weights.read_bytes()
    bad = tmp / "bad.weights"
    bad.write_bytes(body[:cut] if cut < 0 else body + b"x" * cut)
    capsys.readouterr()
    rc, err = run_cli(["detector", "test", str(data), str(cfg), str(bad),
                       str(REPO / "data" / "sample.png"), "-out", str(tmp / "out")], capsys)
    assert rc == 2
    assert err[-1].startswith(f"darknet_py: {bad}: at byte ")
    assert f"needs {len(body)} bytes" in err[-1] and f"found {len(body) + cut}" in err[-1]
    assert not (tmp / "out.jpg").exists()


def test_header_only_weights(files, capsys):
    tmp, cfg, weights, data = files
    bad = tmp / "tiny.weights"
    bad.write_bytes(weights.read_bytes()[:10])
    rc, err = run_cli(["partial", str(cfg), str(bad), str(tmp / "p.weights"), "1"], capsys)
    assert rc == 2 and "too short for a header" in err[-1] and str(bad) in err[-1]
    assert not (tmp / "p.weights").exists()


@pytest.mark.parametrize("kind", ["missing", "not an image", "empty"])
def test_bad_image(files, capsys, kind):
    tmp, cfg, weights, data = files
    image = tmp / "pic.jpg"
    if kind == "not an image":
        image.write_text("hello")
    elif kind == "empty":
        image.write_bytes(b"")
    rc, err = run_cli(["detector", "test", str(data), str(cfg), str(weights), str(image),
                       "-out", str(tmp / "out")], capsys)
    assert rc == 2
    assert err[-1].startswith(f"darknet_py: {image}: cannot ")
    assert not (tmp / "out.jpg").exists()


def test_data_file_naming_missing_names(files, capsys):
    tmp, cfg, weights, _ = files
    data = tmp / "bad.data"
    data.write_text("classes=1\ntrain=x.txt\nnames=nowhere/none.names\n")
    rc, err = run_cli(["detector", "test", str(data), str(cfg), str(weights),
                       str(REPO / "data" / "sample.png")], capsys)
    assert rc == 2
    assert err[-1] == f"darknet_py: {data}:3: names file 'nowhere/none.names' not found"


def test_debug_shows_the_traceback(files):
    tmp, cfg, weights, data = files
    from darknet_py import DarknetError
    with pytest.raises(DarknetError):
        main(["--debug", "detector", "test", str(data), str(cfg), str(weights), str(tmp / "none.png")])


def test_unknown_command(capsys):
    rc, err = run_cli(["frobnicate"], capsys)
    assert rc == 2 and "unknown command 'frobnicate'" in err[0]
