"""mAP against independent implementations on a fixed set of detections and truths with
several classes, difficult flags and ties in confidence: the VOC devkit's voc_eval
(written out here from the devkit's formulas) and pycocotools."""
import numpy as np
import pytest

from darknet_py.evaluate.ap import Detection, ImageTruth, evaluate, mean_ap

CLASSES = 4


def make_set(seed=0, images=30, with_difficult=True):
    rng = np.random.default_rng(seed)
    truths, detections = [], []
    for i in range(images):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, 300, (n, 2))
        wh = rng.uniform(10, 120, (n, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1).round(1)
        classes = rng.integers(0, CLASSES, n)
        difficult = rng.random(n) < (.15 if with_difficult else 0)
        truths.append(ImageTruth(boxes, classes, difficult))
        for b, c in zip(boxes, classes):                     # near-hits, some duplicates
            for _ in range(int(rng.integers(0, 3))):
                jitter = rng.normal(0, 8, 4)
                detections.append(Detection(i, int(c if rng.random() < .85 else rng.integers(CLASSES)),
                                            float(np.round(rng.uniform(.05, 1), 2)), tuple(b + jitter)))
        for _ in range(int(rng.integers(0, 4))):             # false alarms
            xy = rng.uniform(0, 300, 2)
            detections.append(Detection(i, int(rng.integers(CLASSES)), float(np.round(rng.uniform(.05, 1), 2)),
                                        tuple(np.concatenate([xy, xy + rng.uniform(10, 100, 2)]))))
    scores = [d.score for d in detections]
    assert len(scores) != len(set(scores)), "the set must contain ties in confidence"
    return detections, truths


# -- the VOC devkit (VOCevaldet.m / py-faster-rcnn voc_eval.py), written from its formulas --
def devkit_ap(rec, prec, use_07):
    if use_07:
        ap = 0.
        for t in np.arange(0., 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.
        return ap
    mrec = np.concatenate(([0.], rec, [1.]))
    mpre = np.concatenate(([0.], prec, [0.]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def devkit_eval(detections, truths, cls, use_07, ovthresh=.5):
    recs = {}
    npos = 0
    for i, t in enumerate(truths):
        keep = t.classes == cls
        recs[i] = {"bbox": t.boxes[keep], "difficult": t.difficult[keep], "det": [False] * int(keep.sum())}
        npos += int((~t.difficult[keep]).sum())
    dets = [d for d in detections if d.class_id == cls]
    confidence = np.array([d.score for d in dets])
    order = np.argsort(-confidence, kind="mergesort")        # ties keep their order
    BB = np.array([d.box for d in dets]).reshape(-1, 4)[order]
    ids = [dets[k].image for k in order]
    tp, fp = np.zeros(len(ids)), np.zeros(len(ids))
    for d in range(len(ids)):
        R = recs[ids[d]]
        bb = BB[d]
        ovmax = -np.inf
        BBGT = R["bbox"]
        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], bb[0])
            iymin = np.maximum(BBGT[:, 1], bb[1])
            ixmax = np.minimum(BBGT[:, 2], bb[2])
            iymax = np.minimum(BBGT[:, 3], bb[3])
            iw = np.maximum(ixmax - ixmin + 1., 0.)
            ih = np.maximum(iymax - iymin + 1., 0.)
            inters = iw * ih
            uni = ((bb[2] - bb[0] + 1.) * (bb[3] - bb[1] + 1.) +
                   (BBGT[:, 2] - BBGT[:, 0] + 1.) * (BBGT[:, 3] - BBGT[:, 1] + 1.) - inters)
            overlaps = inters / uni
            ovmax = np.max(overlaps)
            jmax = np.argmax(overlaps)
        if ovmax > ovthresh:
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[d] = 1.
                    R["det"][jmax] = 1
                else:
                    fp[d] = 1.
        else:
            fp[d] = 1.
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return devkit_ap(rec, prec, use_07)


@pytest.mark.parametrize("points,use_07", [(11, True), (0, False)], ids=["VOC2007-11pt", "VOC2010-AUC"])
def test_voc_map_equals_the_devkit(points, use_07):
    detections, truths = make_set()
    mine = evaluate(detections, truths, CLASSES, .5, points)
    theirs = [devkit_eval(detections, truths, c, use_07) for c in range(CLASSES)]
    for r, ap in zip(mine, theirs):
        assert r.ap == pytest.approx(ap, abs=1e-6)
    assert mean_ap(mine) == pytest.approx(np.mean(theirs), abs=1e-6)
    assert 0.1 < mean_ap(mine) < 0.95


def test_coco_map_equals_pycocotools():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    detections, truths = make_set(seed=1, with_difficult=False)
    gt = {"images": [{"id": i + 1} for i in range(len(truths))],
          "categories": [{"id": c + 1} for c in range(CLASSES)], "annotations": []}
    for i, t in enumerate(truths):
        for b, c in zip(t.boxes, t.classes):
            w, h = b[2] - b[0], b[3] - b[1]
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i + 1,
                                      "category_id": int(c) + 1, "bbox": [b[0], b[1], w, h],
                                      "area": w * h, "iscrowd": 0})
    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    results = coco.loadRes([{"image_id": d.image + 1, "category_id": d.class_id + 1, "score": d.score,
                             "bbox": [d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1]]}
                            for d in detections])
    ev = COCOeval(coco, results, "bbox")
    ev.params.iouThrs = np.array([.5])
    ev.evaluate()
    ev.accumulate()
    precision = ev.eval["precision"][0, :, :, 0, 2]          # IoU .5, all areas, 100 dets
    per_class = [precision[:, k].mean() if (precision[:, k] > -1).all() else np.nan for k in range(CLASSES)]
    mine = evaluate(detections, truths, CLASSES, .5, points=101)
    for r, ap in zip(mine, per_class):
        assert r.ap == pytest.approx(ap, abs=1e-6, nan_ok=True)
    assert mean_ap(mine) == pytest.approx(np.nanmean(per_class), abs=1e-6)
