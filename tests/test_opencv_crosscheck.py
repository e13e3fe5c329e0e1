"""A second, independent implementation: OpenCV's Darknet importer (opencv-python-headless<5)
agrees with the NumPy reference layer by layer on yolov2-voc and yolov2-tiny-voc."""
import cv2
import numpy as np
import pytest
from helpers import assert_close, golden_cases, golden_weights, open_h5

import darknet_py
from darknet_py.detection import get_region_detections

RTOL = 1e-4     # per layer, relative to the layer's magnitude; OpenCV measured ~1e-5 here


def opencv_name(layer, names):
    """OpenCV names a Darknet layer i conv_i/bn_i then <activation>_(i+1), pool_i, reorg_i,
    concat_i (identity_i for a one-layer route), detection_out for the region."""
    i = layer.index
    candidates = {"convolutional": [f"{getattr(layer, 'activation', '')}_{i + 1}", f"bn_{i}", f"conv_{i}"],
                  "maxpool": [f"pool_{i}"], "reorg": [f"reorg_{i}"],
                  "route": [f"concat_{i}", f"identity_{i}"]}.get(layer.kind, [])
    return next((c for c in candidates if c in names), None)


def region_cases():
    """The det_ cases of region networks (yolov2-voc, yolov2-tiny-voc)."""
    found = []
    for param in golden_cases("det"):
        with open_h5(param.values[0]) as h5:
            if "heads" not in h5:
                found.append(param)
    return found


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
