"""Network.predict, the inference path detector test/valid/map run: on the torch backend the
folded deployment module (a CUDA graph per shape on a GPU). Checked against forward (Darknet's
layer-by-layer math) at the parity tolerance; the golden detections run through it too."""
import numpy as np
import pytest
from helpers import BACKENDS, REPO, assert_close, conv

import darknet_py

RTOL = 1e-4


@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_is_forward(backend, tmp_path):
    net = darknet_py.load_network(REPO / "cfg" / "yolov2-voc.cfg", backend=backend[0], device=backend[1])
    net.resize(96, 128)
    x = np.random.default_rng(1).random((2, 3, 128, 96), dtype=np.float32)
    assert_close(net.predict(x), net.forward(x), RTOL, "predict vs forward")
    assert_close(net.predict(x[:1]), net.forward(x[:1]), RTOL, "a second input shape")


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b.values[0][0] == "torch"])
def test_predict_sees_new_weights(backend, tmp_path):
    """The folded module is rebuilt after an update, a weights load and a resize."""
    cfg = tmp_path / "small.cfg"
    cfg.write_text("[net]\nbatch=2\nsubdivisions=1\nwidth=32\nheight=32\nchannels=3\nlearning_rate=.1\n"
                   "momentum=.9\ndecay=.0005\n" + conv(8) + conv(4, size=1, bn=False, activation="linear")
                   + "[cost]\n")
    net = darknet_py.load_network(cfg, backend=backend[0], device=backend[1])
    x = np.random.default_rng(2).random((2, 3, 32, 32), dtype=np.float32)
    before = net.predict(x)
    net.train_step(x, np.ones((2, 4 * 32 * 32), np.float32), log=lambda s: None)
    after = net.predict(x)
    assert np.abs(after - before).max() > 1e-3
    assert_close(after, net.forward(x), RTOL, "after an update")
    other = darknet_py.Network(cfg, seed=7)
    path = tmp_path / "other.weights"
    other.save_weights(path)
    net.load_weights(path)
    assert_close(net.predict(x), other.forward(x), RTOL, "after load_weights")
    net.resize(64, 64)
    big = np.random.default_rng(3).random((2, 3, 64, 64), dtype=np.float32)
    assert_close(net.predict(big), net.forward(big), RTOL, "after resize")
