"""One image through a detection network, as darknet detector.c:test_detector does it."""
from dataclasses import dataclass

import numpy as np

from ..data.compiled import letterbox_image  # the reference's to the bit, without the GIL
from ..errors import DarknetError
from .nms import nms_sort
from .region import Detections, get_region_detections
from .yolo import get_yolo_detections, join


@dataclass
class Result:
    dets: Detections   # probabilities after NMS
    order: np.ndarray  # the order Darknet leaves them in (what it prints and draws)


def detection_layer(net):
    """The network's last layer, a [region] or [yolo] head (its classes are the detections')."""
    layer = net.output_layer
    if layer.kind not in ("region", "yolo"):
        raise DarknetError(f"the network ends in [{layer.kind}], not [region] or [yolo]: not a detector",
                           net.cfg_path)
    return layer


def yolo_heads(net):
    return [layer for layer in net.layers if layer.kind == "yolo"]


def detection_heads(net):
    """The layers whose outputs Darknet decodes into boxes: every [yolo] head, or the region."""
    return yolo_heads(net) or [detection_layer(net)]


def head_outputs(net, sized):
    """Each image's outputs of the detection heads, [image][head] (copies), for a batch of
    prepared inputs. The region path runs predict (a backend's fast path); [yolo] needs every
    head's output, so it runs forward."""
    heads = yolo_heads(net)
    if not heads:
        return [[output] for output in net.predict(sized)]
    net.forward(sized)
    outputs = [net.output(head.index) for head in heads]
    return [[out[k].copy() for out in outputs] for k in range(len(sized))]


def decode_outputs(net, outputs, w, h, thresh, hier_thresh, relative, class_map=None):
    """darknet get_network_boxes on one image's head outputs (``head_outputs``' [head] list)
    for an image of w x h pixels. ``class_map``: a .data file's map= onto a class tree's nodes
    (get_region_detections)."""
    heads = detection_heads(net)
    if heads[0].kind == "region":
        return get_region_detections(heads[0], outputs[0], w, h, net.width, net.height, thresh, hier_thresh,
                                     relative, class_map)
    return join([get_yolo_detections(head, out, w, h, net.width, net.height, thresh, relative)
                 for head, out in zip(heads, outputs)])


def decoded_results(net, images, outputs, thresh, hier_thresh, nms, relative, class_map=None):
    """darknet get_network_boxes and the head's NMS for each image, from ``head_outputs``."""
    results = []
    for image, image_outputs in zip(images, outputs):
        dets = decode_outputs(net, image_outputs, image.shape[2], image.shape[1], thresh, hier_thresh, relative,
                              class_map)
        results.append(Result(dets, nms_order(net, dets, nms)))
    return results


def detect(net, image: np.ndarray, thresh: float = .5, hier_thresh: float = .5, nms: float = .45,
           relative: bool = True, sized: np.ndarray | None = None) -> Result:
    """Letterbox ``image`` [3, H, W] to the net (unless ``sized`` is it, letterboxed already),
    run it, decode and NMS the boxes (image-relative, or pixels with ``relative=False``)."""
    if sized is None:
        return detect_batch(net, [image], thresh, hier_thresh, nms, relative)[0]
    return decoded_results(net, [image], head_outputs(net, sized[None]), thresh, hier_thresh, nms, relative)[0]


def detect_batch(net, images: list, thresh: float = .5, hier_thresh: float = .5, nms: float = .45,
                 relative: bool = True, class_map=None) -> list[Result]:
    """``detect`` for several images in one network pass (a batch: faster on a GPU)."""
    sized = np.stack([letterbox_image(image, net.width, net.height) for image in images])
    return decoded_results(net, images, head_outputs(net, sized), thresh, hier_thresh, nms, relative, class_map)


def nms_order(net, dets, nms):
    """The NMS the network asks for on one image's Detections (zeroing suppressed probabilities):
    the kind of its last layer, where AlexeyAB's detector takes nms_kind from; none at nms 0.
    Returns the order the boxes are left in (``Result.order``)."""
    if not nms:
        return np.arange(len(dets))
    head = detection_layer(net)
    return nms_sort(dets, nms, head.nms_kind, head.beta_nms)


def json_objects(result, names, thresh):
    """AlexeyAB's -json layout: one object per box and class above the threshold."""
    dets = result.dets
    objects = []
    for i in result.order:
        for j in np.flatnonzero(dets.prob[i] > thresh):
            x, y, w, h = (round(float(v), 6) for v in dets.boxes[i])
            objects.append({"class_id": int(j), "name": names[j] if j < len(names) else str(j),
                            "relative_coordinates": {"center_x": x, "center_y": y,
                                                     "width": w, "height": h},
                            "confidence": round(float(dets.prob[i, j]), 6)})
    return objects
