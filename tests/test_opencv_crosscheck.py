"""A second, independent implementation: OpenCV's Darknet importer (opencv-python-headless<5)
agrees with darknet_py layer by layer on yolov2-voc and yolov2-tiny-voc (the NumPy reference,
golden weights) and on yolov3-tiny and AlexeyAB's yolov4-tiny and yolov4 at 416 (generated weights): route
groups, scale_x_y, mish, SPP max-pools, shortcuts, upsampling and the yolo heads' boxes."""
import cv2
import numpy as np
import pytest
from helpers import DARKNET_CFG, assert_close, golden_cases_where, golden_weights, open_h5

import darknet_py
from darknet_py.detection import get_region_detections, get_yolo_detections

RTOL = 1e-4     # per layer, relative to the layer's magnitude; OpenCV measured ~1e-5 here


def opencv_name(layer, names):
    """OpenCV names a Darknet layer i conv_i/bn_i then <activation>_(i+1), pool_i, reorg_i,
    concat_i (identity_i for a one-layer route), detection_out for the region."""
    i = layer.index
    candidates = {"convolutional": [f"{getattr(layer, 'activation', '')}_{i + 1}", f"bn_{i}", f"conv_{i}"],
                  "maxpool": [f"pool_{i}"], "reorg": [f"reorg_{i}"],
                  "route": [f"concat_{i}", f"identity_{i}", f"slice_{i}"], "upsample": [f"upsample_{i}"],
                  "shortcut": [f"{getattr(layer, 'activation', '')}_{i + 1}", f"shortcut_{i}"]}.get(layer.kind, [])
    return next((c for c in candidates if c in names), None)


def region_cases():
    """The det_ cases of region networks (yolov2-voc, yolov2-tiny-voc)."""
    return golden_cases_where(("det",), lambda h5: "heads" not in h5)


@pytest.mark.parametrize("case", region_cases())
def test_reference_agrees_with_opencv(case):
    with open_h5(case) as h5:
        cfg, weights = golden_weights(h5)
        x = h5["input"][()][None]
    cv = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    names = list(cv.getLayerNames())
    cv.setInput(x)
    outputs = dict(zip(names, cv.forward(names)))
    net = darknet_py.load_network(cfg, weights)
    net.forward(x)
    compared = 0
    for layer in net.layers:
        name = opencv_name(layer, names)
        if name is None:
            continue
        assert_close(net.output(layer.index), outputs[name], RTOL, f"layer {layer.index} vs OpenCV {name}")
        compared += 1
    assert compared == len(net.layers) - 1          # every layer but the region
    # region: OpenCV's rows are (cell, anchor) with x, y, w, h, objectness first
    region = net.output_layer
    dets = get_region_detections(region, net.output(region.index)[0], net.width, net.height,
                                 net.width, net.height, thresh=0)
    cells = region.out_shape[1] * region.out_shape[2]
    ours = np.concatenate([dets.boxes, dets.objectness[:, None]], axis=1)
    ours = ours.reshape(region.num, cells, 5).transpose(1, 0, 2).reshape(-1, 5)
    assert_close(ours, outputs["detection_out"][:, :5], RTOL, "region boxes and objectness vs OpenCV")


ALEXEYAB = DARKNET_CFG / "alexeyab"
GAIN = .72


@pytest.mark.parametrize("cfg,backend", [(DARKNET_CFG / "pjreddie" / "yolov3-tiny.cfg", "numpy"),
                                         (ALEXEYAB / "yolov4-tiny.cfg", "numpy"), (ALEXEYAB / "yolov4.cfg", "numba")],
                         ids=["yolov3-tiny", "yolov4-tiny", "yolov4"])
def test_yolo_networks_agree_with_opencv(cfg, backend, tmp_path):
    """Every layer but the yolo heads within RTOL of OpenCV's, then each head's boxes and
    objectness against OpenCV's rows (cell by cell, anchors within: get_yolo_detections at
    threshold -1, every row, boxes relative to the network input). yolov4 runs on the Numba backend (checked
    against the reference layer by layer elsewhere) to keep the suite's time."""
    weights = tmp_path / "generated.weights"
    generated = darknet_py.Network(cfg, seed=11)
    for layer in generated.layers:       # Darknet's initialisation with a gain, as the golden
        if "weights" in layer.params:     # yolov3 case: at gain 1 yolov4's 110 layers grow the
            layer.params["weights"] *= GAIN   # heads' inputs until exp(tw) overflows
    generated.save_weights(weights)
    x = np.random.default_rng(0).random((1, 3, 416, 416), dtype=np.float32)
    cv = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    names = list(cv.getLayerNames())
    cv.setInput(x)
    outputs = dict(zip(names, cv.forward(names)))
    net = darknet_py.load_network(cfg, weights, backend=backend)
    net.resize(416, 416)
    net.forward(x)
    heads = [layer for layer in net.layers if layer.kind == "yolo"]
    assert all(np.isfinite(net.output(head.index)).all() for head in heads)
    compared = 0
    for layer in net.layers:
        name_cv = opencv_name(layer, names)
        if name_cv is not None:
            assert_close(net.output(layer.index), outputs[name_cv], RTOL, f"layer {layer.index} vs OpenCV {name_cv}")
            compared += 1
    assert compared == len(net.layers) - len(heads)
    for head in heads:
        dets = get_yolo_detections(head, net.output(head.index)[0], 416, 416, 416, 416, thresh=-1)
        rows = outputs[f"yolo_{head.index}"]
        ours = np.concatenate([dets.boxes, dets.objectness[:, None]], axis=1)
        assert_close(ours, rows[:, :5], RTOL, f"yolo {head.index} boxes and objectness vs OpenCV")
