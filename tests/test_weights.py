"""The .weights format: byte-for-byte round trips, header variants, partial files, bad sizes."""
import hashlib

import numpy as np
import pytest
from helpers import golden_cases, golden_weights, open_h5

import darknet_py
from darknet_py import DarknetError
from darknet_py.cli import main

SMALL_CFG = """[net]
width=8
height=8
channels=3
[convolutional]
batch_normalize=1
filters=4
size=3
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[connected]
output=5
activation=linear
[connected]
batch_normalize=1
output=3
activation=logistic
"""


@pytest.fixture
def small(tmp_path):
    cfg = tmp_path / "small.cfg"
    cfg.write_text(SMALL_CFG)
    net = darknet_py.load_network(cfg)
    net.params[:] = np.random.default_rng(0).standard_normal(net.params.size)
    for layer in net.layers:
        if "rolling_variance" in layer.params:
            layer.params["rolling_variance"][:] = 1.5
    net.seen = 123
    path = tmp_path / "small.weights"
    net.save_weights(path)
    return cfg, path, net


def test_round_trip_is_byte_for_byte(tmp_path):
    for case in golden_cases("det")[:1]:
        with open_h5(case.values[0]) as h5:
            cfg, weights = golden_weights(h5)
    net = darknet_py.load_network(cfg, weights)
    out = tmp_path / "again.weights"
    net.save_weights(out)
    assert out.read_bytes() == weights.read_bytes()


def test_layout_is_darknets(small):
    """biases, [scales, mean, var], weights for conv; connected keeps BN after weights."""
    cfg, path, net = small
    data = path.read_bytes()
    header = np.frombuffer(data[:12], "<i4")
    assert list(header) == [0, 2, 0]
    assert int(np.frombuffer(data[12:20], "<u8")[0]) == 123
    body = np.frombuffer(data[20:], "<f4")
    conv, _, fc1, fc2 = net.layers
    expect = [conv.params[k].ravel() for k in ("biases", "scales", "rolling_mean", "rolling_variance", "weights")]
    expect += [fc1.params["biases"], fc1.params["weights"].ravel()]
    expect += [fc2.params[k].ravel() for k in ("biases", "weights", "scales", "rolling_mean", "rolling_variance")]
    assert np.array_equal(body, np.concatenate(expect))
    assert fc1.params["weights"].shape == (5, 4 * 4 * 4)


def test_32bit_seen_header(small, tmp_path):
    cfg, path, net = small
    body = path.read_bytes()[20:]
    old = tmp_path / "old.weights"
    old.write_bytes(np.array([0, 1, 0, 77], "<i4").tobytes() + body)
    loaded = darknet_py.load_network(cfg, old)
    assert loaded.seen == 77
    assert np.array_equal(loaded.params, net.params)


def test_transposed_connected_weights(small, tmp_path):
    cfg, path, net = small
    parts = []
    for layer in net.layers:
        for name, _ in layer.param_shapes():
            value = layer.params[name]
            parts.append(value.T.ravel() if layer.kind == "connected" and name == "weights" else value.ravel())
    odd = tmp_path / "transposed.weights"
    odd.write_bytes(np.array([0, 1001, 0, 5], "<i4").tobytes() + np.concatenate(parts).astype("<f4").tobytes())
    loaded = darknet_py.load_network(cfg, odd)
    assert np.array_equal(loaded.params, net.params)


@pytest.mark.parametrize("delta", [-4, -1, 1, 4])
def test_wrong_size_is_a_clear_error(small, tmp_path, delta):
    cfg, path, net = small
    data = path.read_bytes()
    bad = tmp_path / "bad.weights"
    bad.write_bytes(data[:delta] if delta < 0 else data + b"\0" * delta)
    with pytest.raises(DarknetError) as err:
        darknet_py.load_network(cfg, bad)
    message = str(err.value)
    assert str(bad) in message
    assert f"needs {len(data)} bytes" in message and f"found {len(data) + delta}" in message


def test_prefix_files_load_only_when_asked(small, tmp_path):
    cfg, path, net = small
    cut = tmp_path / "small.conv.1"
    net.save_weights(cut, cutoff=1)
    with pytest.raises(DarknetError, match="too short"):
        darknet_py.load_network(cfg, cut)
    part = darknet_py.load_network(cfg, cut, allow_prefix=True)
    conv = part.layers[0]
    assert np.array_equal(conv.params["weights"], net.layers[0].params["weights"])


@pytest.mark.parametrize("case", golden_cases("partial"))
def test_partial_matches_darknet(case, tmp_path, capsys):
    """darknet partial CFG IN OUT N: exactly the bytes Darknet wrote (sha256 and size)."""
    with open_h5(case) as h5:
        cfg, weights = golden_weights(h5)
        assert hashlib.sha256(weights.read_bytes()).hexdigest() == h5.attrs["input_sha256"]
        out = tmp_path / "out.conv"
        assert main(["partial", str(cfg), str(weights), str(out), str(int(h5.attrs["cutoff"]))]) == 0
        data = out.read_bytes()
        assert len(data) == int(h5.attrs["output_size"])
        assert hashlib.sha256(data).hexdigest() == h5.attrs["output_sha256"]
        assert np.array_equal(np.frombuffer(data[:12], "<i4"), h5["output_header_int32"][()])
        assert np.frombuffer(data[12:20], "<u8")[0] == h5["output_seen_uint64"][0]
        floats = np.frombuffer(data[20:], "<f4")
        assert np.array_equal(floats[:256], h5["output_first_floats"][()])
        assert np.array_equal(floats[-256:], h5["output_last_floats"][()])
