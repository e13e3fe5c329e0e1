"""One image through a detection network, as darknet detector.c:test_detector does it."""
from dataclasses import dataclass

import numpy as np

from ..data.image import letterbox_image
from ..errors import DarknetError
from .nms import do_nms_sort
from .region import get_region_detections


@dataclass
class Result:
    dets: object      # Detections, probabilities after NMS
    order: np.ndarray  # the order Darknet leaves them in (what it prints and draws)


def region_layer(net):
    layer = net.output_layer
    if layer.kind != "region":
        raise DarknetError(f"the network ends in [{layer.kind}], not [region]: not a detector",
                           net.cfg_path)
    return layer


def detect(net, image, thresh=.24, hier_thresh=.5, nms=.45, relative=True):
    """Letterbox ``image`` [3, H, W] to the net, run it, decode and NMS the boxes
    (image-relative, or pixels with ``relative=False``)."""
    layer = region_layer(net)
    _, h, w = image.shape
    sized = letterbox_image(image, net.width, net.height)
    output = net.predict(sized[None])[0]
    dets = get_region_detections(layer, output, w, h, net.width, net.height, thresh, hier_thresh,
                                 relative)
    order = do_nms_sort(dets, nms) if nms else np.arange(len(dets))
    return Result(dets, order)


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
