"""detector valid / recall / map over a .data file's validation list
(darknet detector.c:validate_detector, validate_detector_recall; AlexeyAB's
validate_detector_map for the mAP report)."""
import io
import os
import sys
from contextlib import closing
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..boxes import box_iou
from ..data.datafile import DataConfig
from ..data.image import load_image, resize_image
from ..data.labels import label_path, read_labels, read_list
from ..data.read_ahead import read_ahead
from ..detection.detector import decoded_results, detection_layer, head_outputs
from ..detection.nms import do_nms_obj
from ..detection.region import get_region_detections
from ..errors import DarknetError
from ..files import atomic_write_all, check_writable
from ..tree import read_map
from .ap import Detection, ImageTruth, evaluate, mean_ap
from .printf import printf

# darknet coco.c: the 80 COCO category ids in class order
COCO_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
            27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51,
            52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77,
            78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90]


IMAGENET_CLASSES = 200     # darknet validate_detector: eval=imagenet scores the 200 detection classes
F = np.float32


def validation_list(data):
    paths = read_list(data.file("valid", "data/train.list"))
    return paths


def check_labels(paths, classes):
    """Every label file of the list read once before the pass: a malformed or out-of-range line
    is one error naming its file and line, before any time is spent (a missing file is an
    image without boxes, as in Darknet)."""
    for path in paths:
        _, problems = read_labels(label_path(path), classes)
        if problems:
            raise DarknetError(problems[0])


def coco_image_id(path):
    """darknet get_coco_image_id: atoi of what follows the last '_' (0 when not a number)."""
    digits = ""
    for ch in Path(path).stem.rsplit("_", 1)[-1]:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else 0


def basecfg(path):
    """darknet basecfg: the file name without folders and extension."""
    return Path(path).stem


def detections_over(net, paths, thresh, nms, hier=.5, desc="valid", batch=1, class_map=None, then=None):
    """Yield (index, path, width, height, Result with pixel boxes, what ``then`` made of them)
    for every image, with a progress bar on stderr. ``batch`` images go through the network at
    a time; reader threads decode and letterbox the next two batches meanwhile, and the images
    of a batch have their boxes decoded and NMSed, and ``then(index, path, width, height,
    result)`` run, on threads while the network runs the next (NumPy's arrays and the compiled
    loops let go of the GIL), so the network waits on none of it."""
    from concurrent.futures import ThreadPoolExecutor

    def finish(index, path, image, outputs):
        result = decoded_results(net, [image], [outputs], thresh, hier, nms, False, class_map)[0]
        h, w = image.shape[1:]
        return index, path, w, h, result, then(index, path, w, h, result) if then else None
    finished = []             # the futures of the batch before
    with tqdm(total=len(paths), desc=desc, unit="img", file=sys.stderr, disable=len(paths) < 2) as bar, \
            ThreadPoolExecutor(max_workers=min(batch, os.cpu_count() or 1),
                               thread_name_prefix="darknet_py-decode") as decoder, \
            closing(read_ahead(paths, net.width, net.height, ahead=2 * batch)) as reading:
        for start in range(0, len(paths) + batch, batch):
            chunk = [(path, *future.result()) for path, future in islice(reading, batch)]
            decoding = []
            if chunk:
                names, images, sized = zip(*chunk)
                decoding = [decoder.submit(finish, start + k, path, image, outputs)
                            for k, (path, image, outputs) in enumerate(zip(names, images,
                                                                         head_outputs(net, np.stack(sized))))]
            for future in finished:
                yield future.result()
            bar.update(len(finished))
            if not chunk:
                break
            finished = decoding


def data_class_map(data, layer, classes=None):
    """The .data file's map= (darknet validate_detector: read_map), onto the nodes of the
    network's class tree; with ``classes``, the map must hold a line for each. None without a
    map, or without a tree (get_region_detections reads the map on a tree only)."""
    if not data.get("map") or layer.tree is None:
        return None
    path = data.file("map")
    class_map = read_map(path, layer.classes)
    if classes is not None:
        if len(class_map) < classes:
            raise DarknetError(f"map file has {len(class_map)} lines; eval=imagenet needs one for each of "
                               f"the {classes} ImageNet detection classes", path, len(class_map) + 1)
        class_map = class_map[:classes]
    return class_map


def validate_detector(datacfg, net, outfile=None, batch=1):
    """Write results/<outfile><class>.txt (VOC), results/<outfile>.json (eval=coco) or
    results/<outfile>.txt (eval=imagenet: print_imagenet_detections through the .data map)."""
    data = DataConfig(datacfg)
    paths = validation_list(data)
    prefix = Path(data.get("results", "results"))
    layer = detection_layer(net)
    kind = data.get("eval", "voc")
    imagenet = kind == "imagenet"
    classes = IMAGENET_CLASSES if imagenet else layer.classes
    class_map = data_class_map(data, layer, classes if imagenet else None)
    names = None if imagenet else data.names(classes)        # checked before any image is read
    check_writable(prefix / "x")
    single = kind in ("coco", "imagenet")
    lines = [io.StringIO() for _ in range(1 if single else classes)]

    def printed(index, path, w, h, result):
        """The image's lines, as (result file, text): Darknet's print_* loops, box then class."""
        dets, order = result.dets, result.order
        rows, columns = np.nonzero(dets.prob[order, :classes])
        probs = dets.prob[order[rows], columns]
        corners = printed_corners(dets.boxes[order[rows]], w, h, one=0 if single else 1)
        if kind == "coco":               # darknet print_cocos: x, y, w, h of the clamped box
            corners[:, 2:] -= corners[:, :2]
            categories = np.array(COCO_IDS)[columns] if classes == 80 else columns
            line = f'{{"image_id":{coco_image_id(path)}, "category_id":%d, "bbox":[%f, %f, %f, %f], "score":%f}},\n'
            return [(0, printf(line, categories, corners, probs))]
        if imagenet:                     # darknet print_imagenet_detections: 1-based image and class
            return [(0, printf(f"{index + 1} %d %f %f %f %f %f\n", columns + 1, probs, corners))]
        by_class = np.argsort(columns, kind="stable")   # print_detector_detections: a file per class
        text = printf(basecfg(path).replace("%", "%%") + " %f %f %f %f %f\n", probs[by_class], corners[by_class])
        lines_of = text.split("\n")          # a list's names hold no newline
        starts = np.searchsorted(columns[by_class], np.arange(classes + 1))
        return [(j, "\n".join(lines_of[starts[j]:starts[j + 1]]) + "\n") for j in np.flatnonzero(np.diff(starts))]

    for *_, pieces in detections_over(net, paths, .005, .45, batch=batch, class_map=class_map, then=printed):
        for j, text in pieces:
            lines[j].write(text)
    if kind == "coco":
        texts = {prefix / f"{outfile or 'coco_results'}.json": "[\n" + lines[0].getvalue().rstrip(",\n") + "\n]\n"}
    elif imagenet:
        texts = {prefix / f"{outfile or 'imagenet-detection'}.txt": lines[0].getvalue()}
    else:
        texts = {prefix / f"{outfile or 'comp4_det_test_'}{names[j]}.txt": lines[j].getvalue() for j in range(classes)}
    atomic_write_all({path: lambda f, text=text: f.write(text.encode()) for path, text in texts.items()})
    return list(texts)


def printed_corners(boxes, w, h, one):
    """Centre-size boxes [N, 4] in pixels to the corners Darknet prints, [N, 4] float32: each
    worked in double and stored in a float (``float xmin = x - w/2. + one``), then clamped to
    [one, w] and [one, h] (print_detector_detections: one=1; print_cocos and
    print_imagenet_detections: one=0)."""
    x, y, bw, bh = np.asarray(boxes, dtype=np.float64).T
    corners = np.stack([x - bw / 2 + one, y - bh / 2 + one, x + bw / 2 + one, y + bh / 2 + one], axis=1).astype(F)
    corners[:, :2] = np.maximum(corners[:, :2], F(one))
    corners[:, 2] = np.minimum(corners[:, 2], F(w))
    corners[:, 3] = np.minimum(corners[:, 3], F(h))
    return corners


def image_truth(path, w, h, classes):
    rows, problems = read_labels(label_path(path), classes, with_difficult=True)
    if problems:
        raise DarknetError(problems[0])
    x, y, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
    boxes = np.stack([x - bw / 2 + 1, y - bh / 2 + 1, x + bw / 2 + 1, y + bh / 2 + 1], axis=1)
    return ImageTruth(boxes, rows[:, 0].astype(int), rows[:, 5] > 0), rows


def validate_detector_recall(datacfg, net, out=print):
    """darknet validate_detector_recall: resize (not letterbox), thresh .001, do_nms_obj .4,
    a proposal is right when its IoU with a truth exceeds .5."""
    data = DataConfig(datacfg)
    paths = validation_list(data)
    layer = detection_layer(net)
    check_labels(paths, layer.classes)
    thresh, iou_thresh, nms = .001, .5, .4
    total = correct = proposals = 0
    avg_iou = 0.0
    for i, path in enumerate(paths):
        image = load_image(path)
        output = net.predict(resize_image(image, net.width, net.height)[None])[0]
        dets = get_region_detections(layer, output, net.width, net.height, net.width, net.height, thresh)
        do_nms_obj(dets, nms)
        rows, problems = read_labels(label_path(path), layer.classes)
        if problems:
            raise DarknetError(problems[0])
        proposals += int((dets.objectness > thresh).sum())
        live = dets.objectness > thresh
        for row in rows:
            total += 1
            ious = box_iou(row[1:5], dets.boxes[live]) if live.any() else np.zeros(1)
            best = float(ious.max()) if len(ious) else 0.0
            avg_iou += best
            correct += best > iou_thresh
        if total:
            out(f"{i:5d} {correct:5d} {total:5d}\tRPs/Img: {proposals / (i + 1):.2f}\t"
                f"IOU: {avg_iou * 100 / total:.2f}%\tRecall:{100. * correct / total:.2f}%")
    return correct / total if total else 0.0


def validate_detector_map(datacfg, net, iou_thresh=.5, points=0, thresh=.25, out=print, batch=1, hier_thresh=.5):
    """mAP over the validation list, printed as AlexeyAB's darknet prints it. On a class tree
    each box is scored as the node where the walk down the tree stops below ``hier_thresh``;
    with a .data map= (as detector valid's eval=imagenet scores YOLO9000), the labels' classes
    are the map's lines and each is scored as objectness times its node's absolute probability."""
    data = DataConfig(datacfg)
    paths = validation_list(data)
    layer = detection_layer(net)
    class_map = data_class_map(data, layer)
    classes = layer.classes if class_map is None else len(class_map)
    names = data.names(classes)
    check_labels(paths, classes)
    detections, truths = [], []
    for index, path, w, h, result, _ in detections_over(net, paths, .005, .45, hier_thresh, desc="map", batch=batch,
                                                        class_map=class_map):
        truth, _ = image_truth(path, w, h, classes)
        truths.append(truth)
        dets, order = result.dets, result.order       # scored as detector valid prints them
        corners = [tuple(box) for box in printed_corners(dets.boxes[order], w, h, one=1).tolist()]
        rows, columns = np.nonzero(dets.prob[order])
        for k, j, p in zip(rows.tolist(), columns.tolist(), dets.prob[order[rows], columns].tolist()):
            detections.append(Detection(index, j, p, corners[k]))
    results = evaluate(detections, truths, classes, iou_thresh, points)
    unique_truths = sum(len(t.classes) for t in truths)
    out(f" detections_count = {len(detections)}, unique_truth_count = {unique_truths}  ")
    tp_all = fp_all = 0
    iou_sum = 0.0
    for r in results:
        above = r.scores >= thresh
        tp, fp = int(r.tp[above].sum()), int(r.fp[above].sum())
        tp_all, fp_all = tp_all + tp, fp_all + fp
        iou_sum += float(r.ious[above].sum())
        ap = 0.0 if np.isnan(r.ap) else r.ap
        out(f"class_id = {r.class_id}, name = {names[r.class_id]}, ap = {ap * 100:2.2f}%   \t "
            f"(TP = {tp}, FP = {fp}) ")
    positives = sum(r.positives for r in results)
    precision = tp_all / (tp_all + fp_all) if tp_all + fp_all else 0.0
    recall = tp_all / positives if positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    out(f"\n for conf_thresh = {thresh:1.2f}, precision = {precision:1.2f}, recall = {recall:1.2f}, "
        f"F1-score = {f1:1.2f} ")
    avg_iou = iou_sum / (tp_all + fp_all) if tp_all + fp_all else 0.0
    out(f" for conf_thresh = {thresh:0.2f}, TP = {tp_all}, FP = {fp_all}, FN = {positives - tp_all}, "
        f"average IoU = {avg_iou * 100:2.2f} % ")
    value = mean_ap(results)
    how = f"used {points} Recall-points" if points else "used Area-Under-Curve for each unique Recall"
    out(f"\n IoU threshold = {iou_thresh * 100:2.0f} %, {how} ")
    out(f" mean average precision (mAP@{iou_thresh:0.2f}) = {value:f}, or {value * 100:2.2f} % ")
    return value, results
