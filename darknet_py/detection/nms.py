"""darknet box.c: do_nms_sort and do_nms_obj, in float32 like Darknet."""
import numba
import numpy as np

from ..boxes import box_diou_matrix, box_iou, box_iou_matrix

F = np.float32


@numba.njit(cache=True, nogil=True)
def suppress(ranked, rows, ious, prob, nms):
    """do_nms_sort's inner loop for one class: each box of ``ranked`` (best first) whose
    probability is still above zero zeroes those after it that overlap it by more than ``nms``.
    ``rows[k]``: box k's row and column in ``ious``. Compiled, as an image at a low threshold
    (detector valid's .005) holds hundreds of boxes per class; ``suppress.py_func`` is the same
    loop interpreted (the tests hold the two together)."""
    for i in range(len(ranked)):
        a = ranked[i]
        if prob[a] == 0:
            continue
        for j in range(i + 1, len(ranked)):
            if ious[rows[a], rows[ranked[j]]] > nms:
                prob[ranked[j]] = 0


def do_nms_sort(dets, nms, overlap=box_iou_matrix):
    """Darknet's do_nms_sort on Detections: zeroes suppressed probs in place.

    Returns the order Darknet leaves the array in (indices into the original order):
    zero-objectness entries swapped to the end, the rest sorted per class in turn
    (glibc's qsort is a stable merge sort, so ties keep their order). ``overlap``: what a
    box's overlap with a higher one is (AlexeyAB's diounms_sort is this loop with DIoU)."""
    order = np.arange(len(dets))
    objectness = dets.objectness
    k = len(order) - 1
    i = 0
    while i <= k:                       # darknet swaps each empty entry with the k-th
        if objectness[order[i]] == 0:
            order[i], order[k] = order[k], order[i]
            k -= 1
        else:
            i += 1
    total = k + 1
    prob, boxes = dets.prob, dets.boxes
    active = order[:total]
    # only a box with some probability suppresses or is suppressed: their IoUs, taken at once
    candidates = active[(prob[active] > 0).any(axis=1)]
    where = np.empty(len(order), dtype=int)
    where[candidates] = np.arange(len(candidates))
    ious = overlap(boxes[candidates])
    for c in np.flatnonzero((prob[active] > 0).any(axis=0)):
        active = active[np.argsort(-prob[active, c], kind="stable")]
        ranked = active[prob[active, c] > 0]         # a zero neither suppresses nor changes
        column = np.ascontiguousarray(prob[:, c])
        suppress(ranked, where, ious, column, F(nms))
        prob[:, c] = column
    order[:total] = active
    return order


def do_nms_obj(dets, nms):
    """darknet do_nms_obj: one ranking by objectness for all classes; a suppressed box
    loses its objectness and every class probability."""
    order = np.argsort(-dets.objectness, kind="stable")
    order = order[dets.objectness[order] > 0]
    for i, a in enumerate(order):
        if dets.objectness[a] == 0:
            continue
        rest = order[i + 1:]
        rest = rest[dets.objectness[rest] > 0]
        hit = rest[box_iou(dets.boxes[a], dets.boxes[rest]) > F(nms)]
        dets.objectness[hit] = 0
        dets.prob[hit] = 0


GREEDY_BETA = .6     # AlexeyAB's box_diou: the exponent greedynms uses, whatever beta_nms says


def nms_sort(dets, nms, kind="default", beta=.6):
    """The NMS a head asks for (AlexeyAB's [yolo] nms_kind): Darknet's do_nms_sort, or
    diounms_sort with greedynms (DIoU, exponent .6) or diounms (DIoU, exponent beta_nms)."""
    if kind == "default":
        return do_nms_sort(dets, nms)
    exponent = GREEDY_BETA if kind == "greedynms" else beta
    return do_nms_sort(dets, nms, overlap=lambda boxes: box_diou_matrix(boxes, exponent))
