"""Scoring like the papers do: mAP (VOC and COCO conventions), recall, anchor clustering."""
