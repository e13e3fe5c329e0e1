"""The YOLOv2 region loss (darknet: region_layer.c:forward_region_layer, training part).

Deltas are Darknet's (target - output, no logistic gradient; the backward pass adds it).
What Darknet does, and so this does:
- every prediction gets ``noobject_scale * (0 - obj)`` unless its best IoU with any truth
  exceeds ``thresh``;
- while ``seen < 12800`` every anchor is pulled toward the cell centre and its own shape
  with scale .01;
- a truth lands in cell ``(int)(x*w), (int)(y*h)``; its anchor is the best by shape-only
  IoU (with ``bias_match`` the anchors' shapes, else the predicted ones);
- coordinates get ``coord_scale * (2 - w*h)``, objectness ``object_scale * (iou - obj)``
  with ``rescore``, classes ``class_scale * (target - p)``; a later truth in the same cell
  and anchor overwrites an earlier one. The cost is the sum of squared deltas.
"""
import numpy as np

from ..boxes import box_iou, region_boxes

F = np.float32
PRIOR_SEEN = 12800      # darknet: if(*(net.seen) < 12800) pull every anchor toward its prior
MAX_TRUTHS = 30         # darknet's loops run t < 30


def delta_box(truth, pred_box, out_cell, delta_cell, i, j, grid, units, anchor, scale):
    """darknet delta_region_box / delta_yolo_box on one (image, anchor, cell), grid (lw, lh):
    targets ``x*lw - i``, ``y*lh - j``, ``log(w*units_w / anchor_w)``, ``log(h*units_h /
    anchor_h)`` (units: the grid for the region layer's anchors in cells, the network's input
    for yolo's in pixels), deltas ``scale * (target - output)``; returns the IoU."""
    iou = float(box_iou(np.asarray(truth, dtype=F), pred_box[None])[0])
    targets = (F(truth[0]) * F(grid[0]) - F(i), F(truth[1]) * F(grid[1]) - F(j),
               F(np.log(np.float64(F(truth[2]) * F(units[0]) / anchor[0]))),
               F(np.log(np.float64(F(truth[3]) * F(units[1]) / anchor[1]))))
    scale = F(scale)
    for e, target in enumerate(targets):
        delta_cell[e] = scale * (target - out_cell[e])
    return iou


def delta_region_box(layer, truth, pred_box, out_cell, delta_cell, n, i, j, scale):
    """darknet delta_region_box: anchors in grid cells."""
    lh, lw = layer.out_shape[1:]
    return delta_box(truth, pred_box, out_cell, delta_cell, i, j, (lw, lh), (lw, lh), layer.biases[2 * n:2 * n + 2],
                     scale)


def delta_region_class(layer, out_cell, delta_cell, class_id, scale):
    """darknet delta_region_class; returns the probability credited to avg_cat."""
    p = out_cell[layer.coords + 1:]
    d = delta_cell[layer.coords + 1:]
    scale = F(scale)
    tree = layer.tree
    if tree is None:
        target = np.zeros_like(p)
        target[class_id] = 1
        d[...] = scale * (target - p)
        return float(p[class_id])
    pred = F(1)
    while class_id >= 0:                 # the class, then each ancestor's sibling group
        pred *= p[class_id]
        g = tree.group[class_id]
        offset, size = tree.group_offset[g], tree.group_size[g]
        d[offset:offset + size] = scale * (F(0) - p[offset:offset + size])
        d[class_id] = scale * (F(1) - p[class_id])
        class_id = tree.parent[class_id]
    return float(pred)


def image_truths(truth_row, max_boxes=MAX_TRUTHS):
    """Rows (x, y, w, h, class) until the first x == 0 (darknet: if(!truth.x) break), at most
    ``max_boxes`` (the region layer's loops run to 30, the yolo layer's to its max)."""
    rows = truth_row.reshape(-1, 5)[:max_boxes]
    zero = np.flatnonzero(rows[:, 0] == 0)
    return rows[:zero[0]] if len(zero) else rows


def first_largest(values):
    """Darknet's running best from 0 with a strict >: the index of the first largest value
    above 0, else 0 (a NaN never wins)."""
    values = np.where(np.isnan(values), -np.inf, values)
    best = int(np.argmax(values))
    return best if values[best] > 0 else 0


def class_only_delta(layer, out, delta, class_id):
    """darknet's class-only label on one image, out and delta [num, entries, h, w]: the hierarchical
    class deltas at the location whose objectness times the class's path probability is
    largest (strict >, the first wins), no objectness delta there, noobject elsewhere.
    Returns the probability credited to avg_cat."""
    num, _, lh, lw = out.shape
    coords = layer.coords
    probs = out[:, coords + 1:].transpose(0, 2, 3, 1).reshape(-1, layer.classes)
    objs = out[:, coords].reshape(-1)
    scores = objs * np.prod(probs[:, layer.tree.ancestry(class_id)], axis=1)
    n, cell = divmod(first_largest(scores), lh * lw)
    j, i = divmod(cell, lw)
    delta[:, coords] = F(layer.noobject_scale) * (F(0) - out[:, coords])
    credited = delta_region_class(layer, out[n, :, j, i], delta[n, :, j, i], class_id, layer.class_scale)
    delta[n, coords, j, i] = 0
    return credited


def region_loss(layer, out, state):
    """Fill this layer's delta and cost from ``state.truth``; print Darknet's stats line."""
    n_img, num, _, lh, lw = out.shape
    coords = layer.coords
    delta = np.zeros_like(out)
    truth = np.asarray(state.truth, dtype=F).reshape(n_img, -1)
    boxes = region_boxes(out, layer.biases, out.shape[-1], out.shape[-2])
    anchor_w = (layer.biases[0::2] / F(lw)).astype(F)
    anchor_h = (layer.biases[1::2] / F(lh)).astype(F)
    avg_iou = recall = avg_cat = avg_obj = avg_anyobj = 0.0
    count = class_count = 0
    for b in range(n_img):
        truths = image_truths(truth[b])
        if layer.tree is not None:
            only = [t for t in truths if t[0] > 100000 and t[1] > 100000]
            if only:      # darknet: a class-only label trains the best cell's classes alone
                avg_cat += class_only_delta(layer, out[b], delta[b], int(only[0][4]))
                class_count += 1
                continue
        obj = out[b, :, coords]
        avg_anyobj += float(obj.sum(dtype=np.float64))
        delta[b, :, coords] = F(layer.noobject_scale) * (F(0) - obj)
        if len(truths):
            flat = boxes[b].reshape(-1, 4)
            best = np.max([box_iou(t[:4], flat) for t in truths], axis=0).reshape(obj.shape)
            delta[b, :, coords][best > F(layer.thresh)] = 0
        if state.seen < PRIOR_SEEN:
            cols = np.arange(lw, dtype=F)[None, None, :]
            rows = np.arange(lh, dtype=F)[None, :, None]
            tx = ((cols + F(.5)) / F(lw)) * F(lw) - cols
            ty = ((rows + F(.5)) / F(lh)) * F(lh) - rows
            tw = np.log((anchor_w * F(lw) / layer.biases[0::2]).astype(np.float64)).astype(F)[:, None, None]
            th = np.log((anchor_h * F(lh) / layer.biases[1::2]).astype(np.float64)).astype(F)[:, None, None]
            for e, target in enumerate((tx, ty, tw, th)):
                delta[b, :, e] = F(.01) * (target - out[b, :, e])
        for t in truths:
            class_id = int(t[4])
            i = min(int(F(t[0]) * F(lw)), lw - 1)
            j = min(int(F(t[1]) * F(lh)), lh - 1)
            shift = np.array([0, 0, t[2], t[3]], dtype=F)
            if layer.bias_match:
                shapes = np.stack([np.zeros(num, F), np.zeros(num, F), anchor_w, anchor_h], axis=1)
            else:
                shapes = boxes[b, :, j, i].copy()
                shapes[:, :2] = 0
            best_n = first_largest(box_iou(shift, shapes))
            cell_out = out[b, best_n, :, j, i]
            cell_delta = delta[b, best_n, :, j, i]
            iou = delta_region_box(layer, t[:4], boxes[b, best_n, j, i], cell_out, cell_delta,
                                   best_n, i, j, F(layer.coord_scale) * (F(2) - F(t[2]) * F(t[3])))
            if iou > .5:
                recall += 1
            avg_iou += iou
            avg_obj += float(cell_out[coords])
            target = F(iou) if layer.rescore else F(1)
            cell_delta[coords] = F(layer.object_scale) * (target - cell_out[coords])
            if layer.class_map is not None:
                class_id = int(layer.class_map[class_id])
            avg_cat += delta_region_class(layer, cell_out, cell_delta, class_id, layer.class_scale)
            count += 1
            class_count += 1
    saved = state.saved_for(layer)
    saved["delta"] = delta.reshape(n_img, -1, lh, lw)
    saved["cost"] = float(np.square(delta, dtype=np.float64).sum())
    saved["stats"] = dict(iou=_ratio(avg_iou, count), cls=_ratio(avg_cat, class_count),
                          obj=_ratio(avg_obj, count), noobj=avg_anyobj / (lw * lh * num * n_img),
                          recall=_ratio(recall, count), count=count)
    state.log(region_line(saved["stats"]))


def _ratio(total, count):
    return total / count if count else float("nan")


def _fmt(value):
    return "-nan" if np.isnan(value) else f"{value:f}"     # C's printf of 0.f/0


def ratio_text(total, count):
    """printf("%f", total/count) as C prints it, 0/0 included."""
    return _fmt(_ratio(total, count))


def region_line(s):
    return (f"Region Avg IOU: {_fmt(s['iou'])}, Class: {_fmt(s['cls'])}, Obj: {_fmt(s['obj'])}, "
            f"No Obj: {_fmt(s['noobj'])}, Avg Recall: {_fmt(s['recall'])},  count: {s['count']}")
