"""darknet yolo_layer.c:get_yolo_detections + correct_yolo_boxes: one image's detections from
every [yolo] head, in Darknet's compacted order (heads in network order; within a head, cell
by cell, the anchors of each cell in turn; only those whose objectness exceeds the threshold)."""
import numpy as np

from ..boxes import yolo_boxes
from .region import Detections, correct_region_boxes

F = np.float32


def get_yolo_detections(layer, output, w, h, netw, neth, thresh, relative=True):
    """Detections of one [yolo] head's output [C, H, W] for an image of w x h pixels. Classes
    are independent: prob[k] = objectness * p[k] where above ``thresh``, else 0."""
    lh, lw = output.shape[1:]
    entries = output.reshape(layer.num, 5 + layer.classes, lh, lw)
    anchors = layer.biases.reshape(-1, 2)[layer.mask]
    boxes = yolo_boxes(entries, anchors, lw, lh, netw, neth).reshape(layer.num, lh * lw, 4)
    objectness = entries[:, 4].reshape(layer.num, -1)
    cells, anchor = np.nonzero(objectness.T > F(thresh))        # cell by cell, anchors within
    obj = objectness[anchor, cells]
    classes = entries[:, 5:].reshape(layer.num, layer.classes, -1)[anchor, :, cells]
    prob = obj[:, None] * classes
    prob = np.where(prob > F(thresh), prob, F(0)).astype(F)
    # correct_yolo_boxes is correct_region_boxes' formula
    return Detections(correct_region_boxes(boxes[anchor, cells], w, h, netw, neth, relative), obj.astype(F), prob)


def join(detections):
    """The detections of several heads as one array, in order."""
    return Detections(np.concatenate([d.boxes for d in detections]).reshape(-1, 4),
                      np.concatenate([d.objectness for d in detections]),
                      np.concatenate([d.prob for d in detections]))
