"""-half: inference convolutions in fp16/bf16 on the torch backend. Not a parity check (Darknet
has no half path): the stated accuracy loss against our own fp32, and the same detections."""
import numpy as np
import pytest
from helpers import NEEDS_CUDA, REPO

import darknet_py

torch = pytest.importorskip("torch")

# Worst region-output error relative to its largest value, on the shipped shapes model.
# Measured on the CPU: fp16 2.0e-3, bf16 2.3e-2 (bf16 keeps 8 mantissa bits, fp16 11).
MAX_ERROR = {"fp16": 5e-3, "bf16": 4e-2}
CASES = [("cpu", "fp16"), ("cpu", "bf16"),
         pytest.param(("cuda", "fp16"), marks=NEEDS_CUDA), pytest.param(("cuda", "bf16"), marks=NEEDS_CUDA)]


def _detections(device, precision):
    from darknet_py.data.image import letterbox_image, load_image
    from darknet_py.detection.detector import detect
    from darknet_py.detection.draw import draw_detections
    net = darknet_py.load_network(REPO / "cfg" / "yolov2-tiny-shapes.cfg",
                                  REPO / "weights" / "yolov2-tiny-shapes.weights",
                                  backend="torch", device=device, precision=precision)
    image = load_image(REPO / "data" / "sample.png")
    sized = letterbox_image(image, net.width, net.height)[None]     # before boxes are drawn on it
    result = detect(net, image, .24, .5, .45)
    names = (REPO / "data" / "shapes.names").read_text().split()
    drawn = draw_detections(image, result.dets, result.order, .24, names)
    labels = [text.split(":")[0] for text, _ in drawn]
    boxes = result.dets.boxes[[i for _, i in drawn]]
    return net.predict(sized), labels, boxes


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(c))
def test_half_precision_keeps_the_detections(case):
    device, precision = case
    full, labels, boxes = _detections(device, "fp32")
    half, half_labels, half_boxes = _detections(device, precision)
    error = np.abs(half - full).max() / np.abs(full).max()
    assert 0 < error <= MAX_ERROR[precision], f"{precision} error {error:.2e}"
    assert half_labels == labels and len(labels) == 3
    np.testing.assert_allclose(half_boxes, boxes, atol=.005)     # of the image's size


def test_half_is_for_the_torch_backend_only():
    with pytest.raises(darknet_py.DarknetError, match="fp32 only"):
        darknet_py.load_network(REPO / "cfg" / "yolov2-tiny-shapes.cfg", backend="numba", precision="fp16")
    with pytest.raises(darknet_py.DarknetError, match="precision 'fp8'"):
        darknet_py.load_network(REPO / "cfg" / "yolov2-tiny-shapes.cfg", backend="torch", device="cpu",
                                precision="fp8")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=NEEDS_CUDA)])
def test_half_training_step_follows_fp32(device, tmp_path):
    """Under -half, training convolves in bf16 (forward and both gradients) with fp32
    updates: one step's parameter change stays close to fp32's."""
    cfg = REPO / "cfg" / "yolov2-tiny-shapes.cfg"
    weights = REPO / "weights" / "yolov2-tiny-shapes.weights"
    x = np.random.default_rng(0).random((2, 3, 224, 224), dtype=np.float32)
    truth = np.zeros((2, 30, 5), np.float32)
    truth[:, 0] = [.5, .5, .3, .4, 1]
    changes = {}
    for precision in ("fp32", "fp16"):
        net = darknet_py.load_network(cfg, weights, backend="torch", device=device, precision=precision)
        net.net.batch, net.net.subdivisions = 2, 1
        before = net.params.copy()
        net.train_step(x, truth, log=lambda s: None)
        net.backend.sync_params(net)
        changes[precision] = net.params - before
    full, half = changes["fp32"], changes["fp16"]
    assert np.abs(full).max() > 0
    # measured on the CPU: 1.3e-3 of the largest change, correlation 0.999999
    assert np.abs(half - full).max() <= 1e-2 * np.abs(full).max()
    assert np.corrcoef(half, full)[0, 1] > .999


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(c))
def test_half_runs_yolov3(case, tmp_path):
    """-half through YOLOv3's layers (route, upsample, two [yolo] heads) on yolov3-tiny.cfg with
    Darknet's initialisation: the last head's output within the same stated loss of fp32."""
    device, precision = case
    from darknet_py.data.image import letterbox_image, load_image
    cfg = REPO / "cfg" / "yolov3-tiny.cfg"
    weights = tmp_path / "yolov3-tiny.weights"
    darknet_py.load_network(cfg).save_weights(weights)
    x = letterbox_image(load_image(REPO / "data" / "sample.png"), 416, 416)[None]
    full, half = (darknet_py.load_network(cfg, weights, backend="torch", device=device, precision=p).predict(x)
                  for p in ("fp32", precision))
    assert full.shape == (1, 255, 26, 26)
    error = np.abs(half - full).max() / np.abs(full).max()
    assert 0 < error <= MAX_ERROR[precision], f"{precision} error {error:.2e}"
