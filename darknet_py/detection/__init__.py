"""From the region layer's output to boxes: decoding, the 9k tree, NMS, drawing."""
from ..boxes import box_iou
from .nms import do_nms_sort
from .region import Detections, get_region_detections
from .yolo import get_yolo_detections, join

__all__ = ["Detections", "get_region_detections", "get_yolo_detections", "join", "do_nms_sort", "box_iou"]
