"""darknet region_layer.c:get_region_detections + correct_region_boxes (the tree walk is tree.py's).

Detection k covers anchor ``k // (h*w)`` and cell ``k % (h*w)``, Darknet's order.
"""
from dataclasses import dataclass

import numpy as np

from ..boxes import region_boxes
from ..data.image import letterbox_size
from ..tree import hierarchy_predictions, hierarchy_top_prediction

F = np.float32


@dataclass
class Detections:
    boxes: np.ndarray        # [N, 4] x, y, w, h (image-relative unless relative=0)
    objectness: np.ndarray   # [N] obj where obj > thresh, else 0
    prob: np.ndarray         # [N, classes]

    def __len__(self):
        return len(self.objectness)


def correct_region_boxes(boxes, w, h, netw, neth, relative):
    """Undo the letterbox with Darknet's integer new_w/new_h; boxes [N, 4] float32."""
    new_w, new_h = letterbox_size(w, h, netw, neth)
    b = boxes.astype(np.float64)
    b[:, 0] = (b[:, 0] - (netw - new_w) / 2. / netw) / F(new_w / netw)
    b[:, 1] = (b[:, 1] - (neth - new_h) / 2. / neth) / F(new_h / neth)
    b[:, 2] *= F(netw / new_w)
    b[:, 3] *= F(neth / new_h)
    if not relative:
        b *= [w, h, w, h]
    return b.astype(F)


def get_region_detections(layer, output, w, h, netw, neth, thresh, hier_thresh=.5, relative=True, class_map=None):
    """Decode one image's region output [C, H, W] into Detections (darknet get_network_boxes).

    On a class tree, each box takes one class, the node where hierarchy_top_prediction's walk
    down the tree stops (below ``hier_thresh``), with the objectness as its probability; with
    a ``class_map`` (a .data file's map=, e.g. inet9k.map) it takes instead a probability for
    each mapped class j, objectness times the absolute probability of node class_map[j].
    The output is not changed: the tree products are taken on a copy."""
    lh, lw = output.shape[1:]
    cells = lh * lw
    coords = layer.coords
    entries = output.reshape(layer.num, coords + 1 + layer.classes, cells)
    boxes = region_boxes(entries.reshape(layer.num, -1, lh, lw), layer.biases, lw, lh)
    boxes = boxes.reshape(-1, 4)
    scale = entries[:, coords].reshape(-1)
    objectness = np.where(scale > F(thresh), scale, F(0)).astype(F)
    classes = entries[:, coords + 1:].transpose(0, 2, 1).reshape(-1, layer.classes)
    if layer.tree is not None:
        p = classes.copy()
        hierarchy_predictions(p, layer.tree)
        if class_map is not None:
            prob = scale[:, None] * p[:, class_map]
            prob = np.where(prob > F(thresh), prob, F(0)).astype(F)
        else:
            prob = np.zeros_like(p)
            for k in range(len(p)):
                j = hierarchy_top_prediction(p[k], layer.tree, hier_thresh)
                prob[k, j] = objectness[k]
    else:
        prob = scale[:, None] * classes
        prob = np.where((prob > F(thresh)) & (objectness[:, None] > 0), prob, F(0)).astype(F)
    boxes = correct_region_boxes(boxes, w, h, netw, neth, relative)
    return Detections(boxes, objectness, prob)
