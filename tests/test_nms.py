"""AlexeyAB's NMS kinds for [yolo] heads (box.c: box_diou, box_diounms, diounms_sort): DIoU
against a hand computation, and the boxes each kind keeps."""
import math

import numpy as np
import pytest
from helpers import DARKNET_CFG

import darknet_py
from darknet_py.boxes import box_iou, pair_overlap
from darknet_py.detection.nms import nms_sort, sort_and_suppress, suppress
from darknet_py.detection.region import Detections


def diou(a, b, beta):
    """box_diou by hand, in Python floats."""
    def corners(box):
        x, y, w, h = box
        return x - w / 2, y - h / 2, x + w / 2, y + h / 2
    (al, at, ar, ab), (bl, bt, br, bb) = corners(a), corners(b)
    inter = max(0, min(ar, br) - max(al, bl)) * max(0, min(ab, bb) - max(at, bt))
    iou = inter / (a[2] * a[3] + b[2] * b[3] - inter)
    c = (max(ar, br) - min(al, bl)) ** 2 + (max(ab, bb) - min(at, bt)) ** 2
    d = (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2
    return iou - (d / c) ** beta if c else iou


def overlaps(boxes, beta):
    """pair_overlap of every box [N, 4] with every other: IoU (beta < 0) or DIoU."""
    return np.array([[pair_overlap(*a, *b, beta) for b in boxes] for a in boxes], np.float32)


@pytest.mark.parametrize("beta", [.6, .8])
def test_diou_is_the_formula(beta):
    boxes = np.random.default_rng(4).uniform(.05, .9, (40, 4)).astype(np.float32)
    matrix = overlaps(boxes, beta)
    expected = np.array([[diou(a, b, beta) for b in boxes.tolist()] for a in boxes.tolist()])
    np.testing.assert_allclose(matrix, expected, rtol=1e-5, atol=1e-6)
    # the worked pair: IoU 1/3, enclosing diagonal .13, centre distance .01
    pair = np.array([[.5, .5, .2, .2], [.6, .5, .2, .2]], np.float32)
    assert pair_overlap(*pair[0], *pair[1], .6) == pytest.approx(1 / 3 - (.01 / .13) ** .6, abs=1e-6)


def overlapping_pair():
    """Two boxes of one class with IoU .5 (above .45) whose DIoU is below .45."""
    boxes = np.array([[.5, .5, .3, .3], [.6, .5, .3, .3]], np.float32)
    return Detections(boxes, np.array([.9, .8], np.float32), np.array([[.9], [.8]], np.float32))


@pytest.mark.parametrize("kind, kept", [("default", 1), ("greedynms", 2), ("diounms", 2)])
def test_each_kind_keeps_what_its_overlap_allows(kind, kept):
    dets = overlapping_pair()
    assert overlaps(dets.boxes, .6)[0, 1] < .45 < 0.5
    nms_sort(dets, .45, kind, .6)
    assert int((dets.prob > 0).sum()) == kept


def crowd(n, seed):
    """n boxes that overlap a lot, with empty, repeated and concentric ones among them."""
    boxes = np.random.default_rng(seed).uniform(.3, .7, (n, 4)).astype(np.float32)
    boxes[:10, 2:] = 0
    boxes[10:20] = boxes[20:30]
    boxes[30:40, :2] = boxes[40:50, :2]
    return boxes


def test_the_compiled_iou_is_box_iou_to_the_bit():
    """The NMS loop takes each pair's IoU as it reaches it: the same float32 value as box_iou
    (what the losses and the golden detections use), NaN where it gives NaN (empty boxes)."""
    boxes = crowd(120, 4)
    expected = np.stack([box_iou(box, boxes) for box in boxes])
    assert np.array_equal(overlaps(boxes, -1.0), expected, equal_nan=True)


@pytest.mark.parametrize("beta", [-1.0, .6])
def test_the_compiled_nms_is_the_code_it_compiles(beta):
    """do_nms_sort's loops compiled and interpreted (sort_and_suppress.py_func, suppress.py_func:
    NumPy's stable sort beside Numba's) leave the same order and zero the same probabilities,
    exactly, over a crowd of overlapping boxes: empty ones, tied probabilities, some zero."""
    rng = np.random.default_rng(5)
    boxes = crowd(300, 6)
    objectness = rng.random(300).astype(np.float32) * (rng.random(300) > .1)
    prob = np.round(rng.random((300, 4)), 2).astype(np.float32)        # rounded: many ties
    prob *= (rng.random((300, 4)) > .3) * (objectness > 0)[:, None]
    compiled, interpreted = prob.copy(), prob.copy()
    order = sort_and_suppress(objectness, compiled, boxes, np.float32(.45), beta)
    expected = sort_and_suppress.py_func(objectness, interpreted, boxes, np.float32(.45), beta)
    assert np.array_equal(order, expected) and np.array_equal(compiled, interpreted)
    assert 0 < int((compiled > 0).sum()) < int((prob > 0).sum())
    column = prob[:, 0].copy()
    ranked = np.argsort(-column, kind="stable")
    ranked = ranked[column[ranked] > 0]
    by_loop = column.copy()
    suppress.py_func(ranked, boxes, by_loop, np.float32(.45), beta)
    suppress(ranked, boxes, column, np.float32(.45), beta)
    assert np.array_equal(column, by_loop)


def test_yolov4_heads_read_their_nms_kind():
    heads = [layer for layer in darknet_py.load_network(DARKNET_CFG / "alexeyab" / "yolov4-tiny.cfg").layers
             if layer.kind == "yolo"]
    assert heads and all(h.nms_kind == "greedynms" and h.beta_nms == pytest.approx(.6) for h in heads)
    assert math.isclose(heads[0].scale_x_y, 1.05)


def test_the_last_head_names_the_nms(tmp_path, monkeypatch):
    """AlexeyAB's detector takes nms_kind from the network's last layer: with heads that
    disagree, the last one's kind is used."""
    from helpers import MAXPOOL, conv

    from darknet_py.detection import detector
    head = ("[yolo]\nmask={mask}\nanchors=6,6, 10,10, 14,14, 20,20, 28,28, 40,40\nclasses=4\nnum=6\n{kind}")
    cfg = tmp_path / "two.cfg"
    cfg.write_text("[net]\nwidth=64\nheight=64\nchannels=3\n" + conv(8) + MAXPOOL + conv(27, 1, False, "linear")
                   + head.format(mask="3,4,5", kind="") + "[route]\nlayers=-3\n" + conv(27, 1, False, "linear")
                   + head.format(mask="0,1,2", kind="nms_kind=diounms\nbeta_nms=.7\n"))
    net = darknet_py.load_network(cfg)
    used = []
    monkeypatch.setattr(detector, "nms_sort", lambda dets, nms, kind, beta: used.append((kind, beta)) or
                        np.arange(len(dets)))
    detector.detect(net, np.random.default_rng(0).random((3, 50, 60), dtype=np.float32), .1)
    assert used == [("diounms", pytest.approx(.7))]
