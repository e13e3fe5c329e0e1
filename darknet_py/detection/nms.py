"""darknet box.c: do_nms_sort and do_nms_obj, in float32 like Darknet."""
import numba
import numpy as np

from ..boxes import box_iou, pair_overlap

F = np.float32


NO_DIOU = -1.0      # suppress's ``beta`` for Darknet's IoU


@numba.njit(cache=True, nogil=True)
def suppress(ranked, boxes, prob, nms, beta):
    """do_nms_sort's inner loop for one class: each box of ``ranked`` (best first) whose
    probability is still above zero zeroes those after it that overlap it by more than ``nms``
    (pair_overlap, taken only for the pairs the loop reaches)."""
    for i in range(len(ranked)):
        a = ranked[i]
        if prob[a] == 0:
            continue
        ax, ay, aw, ah = boxes[a, 0], boxes[a, 1], boxes[a, 2], boxes[a, 3]
        for j in range(i + 1, len(ranked)):
            b = ranked[j]          # one zeroed already stays zero: its overlap is not needed
            if prob[b] != 0 and pair_overlap(ax, ay, aw, ah, boxes[b, 0], boxes[b, 1], boxes[b, 2], boxes[b, 3],
                                             beta) > nms:
                prob[b] = 0


@numba.njit(cache=True, nogil=True)
def sort_and_suppress(objectness, prob, boxes, nms, beta):
    """do_nms_sort's loops on arrays (prob [N, classes] zeroed in place); returns the order.
    Compiled, so that an image at detector valid's .005 threshold (hundreds of boxes a class)
    takes milliseconds and the images of a batch decode on threads at once;
    ``sort_and_suppress.py_func`` is the same code interpreted (the tests hold the two
    together, and the golden detections hold them to Darknet's)."""
    order = np.arange(len(objectness))
    k = len(order) - 1
    i = 0
    while i <= k:                       # darknet swaps each empty entry with the k-th
        if objectness[order[i]] == 0:
            order[i], order[k] = order[k], order[i]
            k -= 1
        else:
            i += 1
    active = order[:k + 1].copy()
    for c in range(prob.shape[1]):
        column = prob[:, c]
        if not (column[active] > 0).any():
            continue                    # nothing to rank: Darknet's sort would not move a box
        active = active[np.argsort(-column[active], kind="mergesort")]   # stable, as glibc's qsort
        suppress(active[column[active] > 0], boxes, column, nms, beta)   # a zero neither suppresses nor changes
    order[:k + 1] = active
    return order


def do_nms_sort(dets, nms, beta=NO_DIOU):
    """Darknet's do_nms_sort on Detections: zeroes suppressed probs in place.

    Returns the order Darknet leaves the array in (indices into the original order):
    zero-objectness entries swapped to the end, the rest sorted per class in turn
    (glibc's qsort is a stable merge sort, so ties keep their order). ``beta`` >= 0: a box's
    overlap with a higher one is their DIoU with that exponent (AlexeyAB's diounms_sort is
    this loop with DIoU)."""
    return sort_and_suppress(dets.objectness, dets.prob, np.ascontiguousarray(dets.boxes, dtype=F), F(nms),
                             float(beta))


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
    return do_nms_sort(dets, nms, beta=GREEDY_BETA if kind == "greedynms" else beta)
