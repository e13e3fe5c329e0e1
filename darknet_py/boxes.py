"""darknet box.c and the region layer's box decode, in float32 like Darknet: shared by the
region loss and by detection."""
import numba
import numpy as np

F = np.float32


def _overlap(x1, w1, x2, w2):
    left = np.maximum(x1 - w1 / F(2), x2 - w2 / F(2))
    right = np.minimum(x1 + w1 / F(2), x2 + w2 / F(2))
    return right - left


def box_iou(a, b):
    """IoU of box a [4] with boxes b [M, 4] (x, y, w, h), darknet's float32 formula."""
    return _iou(a.astype(F), np.atleast_2d(b).astype(F).T)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def pair_overlap(ax, ay, aw, ah, bx, by, bw, bh, beta):
    """box_iou of boxes a and b (centre x, y, width, height) compiled, one pair at a time for the
    NMS loop: the same float32 operations in the same order, so the same to the bit. With
    ``beta`` >= 0, AlexeyAB's box_diou (beta .6) / box_diounms: the IoU less (d / c) ** beta, d
    the squared distance of the centres, c the squared diagonal of the smallest box enclosing
    both (the IoU alone where c is 0), the power taken in double."""
    two, zero = F(2), F(0)
    w = min(ax + aw / two, bx + bw / two) - max(ax - aw / two, bx - bw / two)
    h = min(ay + ah / two, by + bh / two) - max(ay - ah / two, by - bh / two)
    inter = zero if (w < zero or h < zero) else w * h
    iou = inter / (aw * ah + bw * bh - inter)
    if beta < 0:
        return iou
    cw = max(ax + aw / two, bx + bw / two) - min(ax - aw / two, bx - bw / two)
    ch = max(ay + ah / two, by + bh / two) - min(ay - ah / two, by - bh / two)
    c = cw * cw + ch * ch
    if c == zero:
        return iou
    d = (ax - bx) * (ax - bx) + (ay - by) * (ay - by)
    return iou - F(np.float64(d / c) ** beta)


def _iou(a, b):
    """darknet box_iou on coordinates (x, y, w, h) along the first axis, broadcast."""
    w = _overlap(a[0], a[2], b[0], b[2])
    h = _overlap(a[1], a[3], b[1], b[3])
    inter = np.where((w < 0) | (h < 0), F(0), w * h)
    union = a[2] * a[3] + b[2] * b[3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def region_boxes(entries, anchors, lw, lh):
    """darknet get_region_box for every anchor and cell: yolo_boxes with Darknet's flat biases
    (w, h pairs) as anchors in grid cells."""
    return yolo_boxes(entries, np.asarray(anchors).reshape(-1, 2), lw, lh, lw, lh)


def yolo_boxes(entries, anchors, lw, lh, units_w, units_h):
    """darknet get_yolo_box (and get_region_box) for every anchor and cell: x = (i + tx) / lw,
    y = (j + ty) / lh, w = exp(tw) * anchor_w / units_w, h = exp(th) * anchor_h / units_h, the
    anchors in the network's input pixels for [yolo] (units = its size), in grid cells for
    [region] (units = the grid). ``entries`` [..., n, >= 4, lh, lw]; ``anchors`` [n, 2];
    returns [..., n, lh, lw, 4] float32."""
    cols = np.arange(lw, dtype=F)
    rows = np.arange(lh, dtype=F)[:, None]
    anchors = np.asarray(anchors, dtype=np.float64)
    boxes = np.empty((*entries.shape[:-3], lh, lw, 4), dtype=F)
    boxes[..., 0] = (cols + entries[..., 0, :, :]) / F(lw)
    boxes[..., 1] = (rows + entries[..., 1, :, :]) / F(lh)
    boxes[..., 2] = np.exp(entries[..., 2, :, :].astype(np.float64)) * anchors[:, 0, None, None] / units_w
    boxes[..., 3] = np.exp(entries[..., 3, :, :].astype(np.float64)) * anchors[:, 1, None, None] / units_h
    return boxes
