"""Average precision as the VOC devkit and COCO compute it.

Detections and truths are in pixels, corner form (x1, y1, x2, y2).
- VOC (``points=11`` is VOC2007's 11-point metric, ``points=0`` the area under the curve of
  VOC2010+): IoU with the devkit's +1 pixel convention; a detection matching a *difficult*
  truth counts neither way and difficult truths are not counted; every class is ranked on
  its own, and equal confidences keep their input order.
- COCO (``points=101``): IoU without the +1, at most 100 detections an image, 101 recall
  points, classes without truths left out of the mean.
"""
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ImageTruth:
    boxes: np.ndarray                 # [M, 4] pixels x1 y1 x2 y2
    classes: np.ndarray               # [M] int
    difficult: np.ndarray = None      # [M] bool

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.classes = np.asarray(self.classes, dtype=int).reshape(-1)
        if self.difficult is None:
            self.difficult = np.zeros(len(self.classes), dtype=bool)
        self.difficult = np.asarray(self.difficult, dtype=bool).reshape(-1)


@dataclass
class Detection:
    image: int
    class_id: int
    score: float
    box: tuple                        # pixels x1 y1 x2 y2


def iou_one_to_many(box, boxes, plus_one):
    one = 1.0 if plus_one else 0.0
    iw = np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]) + one
    ih = np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]) + one
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    area = (box[2] - box[0] + one) * (box[3] - box[1] + one)
    areas = (boxes[:, 2] - boxes[:, 0] + one) * (boxes[:, 3] - boxes[:, 1] + one)
    return inter / (area + areas - inter)


def voc_ap(recall, precision, points):
    """The devkit's voc_ap: 11 points (VOC2007) or the area under the monotone curve."""
    if points == 11:
        return float(np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0
                              for t in np.arange(0., 1.1, 0.1)]))
    mrec = np.concatenate(([0.], recall, [1.]))
    mpre = np.concatenate(([0.], precision, [0.]))
    for i in range(len(mpre) - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def coco_ap(recall, precision):
    """COCO's 101-point interpolated precision (pycocotools accumulate)."""
    thresholds = np.linspace(0, 1, 101)
    pr = np.array(precision, dtype=np.float64)
    for i in range(len(pr) - 1, 0, -1):
        pr[i - 1] = max(pr[i - 1], pr[i])
    q = np.zeros(len(thresholds))
    inds = np.searchsorted(recall, thresholds, side="left")
    for ri, pi in enumerate(inds):
        if pi < len(pr):
            q[ri] = pr[pi]
    return float(q.mean())


@dataclass
class ClassResult:
    class_id: int
    ap: float
    positives: int
    tp: np.ndarray = field(repr=False)
    fp: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)
    ious: np.ndarray = field(repr=False)


def evaluate(detections, truths, classes, iou_thresh=.5, points=0):
    """Per-class AP over ``detections`` (list of Detection) against ``truths`` (list of
    ImageTruth, indexed by Detection.image). Returns [ClassResult]."""
    coco = points == 101
    results = []
    for c in range(classes):
        dets = [d for d in detections if d.class_id == c]
        if coco:          # pycocotools keeps the 100 best of each image and category
            per_image = {}
            for d in dets:
                per_image.setdefault(d.image, []).append(d)
            dets = [d for group in per_image.values() for d in _ranked(group)[:100]]
        dets = _ranked(dets)
        taken = [np.zeros(len(t.classes), dtype=bool) for t in truths]
        positives = sum(int(((t.classes == c) & ~t.difficult).sum()) for t in truths)
        tp, fp, ious, scores = [], [], [], []
        for d in dets:
            truth = truths[d.image]
            candidates = np.flatnonzero(truth.classes == c)
            if coco:      # the best truth not yet matched, IoU >= threshold
                candidates = candidates[~taken[d.image][candidates]]
            best, best_iou = -1, 0.0
            if len(candidates):
                overlaps = iou_one_to_many(np.asarray(d.box, np.float64), truth.boxes[candidates], not coco)
                k = int(np.argmax(overlaps))
                if overlaps[k] >= iou_thresh if coco else overlaps[k] > iou_thresh:
                    best, best_iou = candidates[k], float(overlaps[k])
            if best >= 0 and truth.difficult[best]:
                continue                          # VOC: neither a hit nor a miss
            hit = best >= 0 and not taken[d.image][best]
            if hit:
                taken[d.image][best] = True
            tp.append(float(hit))
            fp.append(float(not hit))
            ious.append(best_iou if hit else 0.0)
            scores.append(d.score)
        ctp, cfp = np.cumsum(tp), np.cumsum(fp)
        recall = ctp / positives if positives else np.zeros_like(ctp)
        precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
        if positives == 0:
            ap = float("nan") if coco else 0.0
        elif coco:
            ap = coco_ap(recall, precision)
        else:
            ap = voc_ap(recall, precision, points)
        results.append(ClassResult(c, ap, positives, np.array(tp), np.array(fp),
                                   np.array(scores), np.array(ious)))
    return results


def _ranked(dets):
    """Highest score first; equal scores keep their input order."""
    order = np.argsort([-d.score for d in dets], kind="stable")
    return [dets[i] for i in order]


def mean_ap(results):
    values = [r.ap for r in results if not np.isnan(r.ap)]
    return float(np.mean(values)) if values else 0.0
