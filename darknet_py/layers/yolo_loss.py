"""The YOLOv3 loss (darknet: yolo_layer.c:forward_yolo_layer, training part).

Deltas are Darknet's (target - output), passed to the logits without the logistic gradient:
- every prediction gets ``0 - obj`` unless its best IoU with a truth of its image exceeds
  ``ignore_thresh`` (then 0; above ``truth_thresh`` it is trained toward that truth);
- each truth (rows until x == 0, at most ``max``) lands in cell ``(int)(x*w), (int)(y*h)``; its
  anchor is the best of *all* ``num`` anchors by the IoU of centred boxes (pixels / net
  size); a truth whose anchor is not in this layer's mask is left to the other heads;
- there: box deltas ``(2 - w*h) * (target - output)``, objectness ``1 - obj``, classes
  ``(k == class) - p[k]``, except that a cell and anchor an earlier truth already used keeps
  its class deltas and only sets ``1 - p[class]`` (the multi-label cell).
The cost is the sum of squared deltas."""
import numpy as np

from ..boxes import box_iou, yolo_boxes
from .region_loss import delta_box, first_largest, image_truths, ratio_text

F = np.float32


def delta_yolo_box(layer, truth, pred_box, out_cell, delta_cell, anchor, i, j, scale):
    """darknet delta_yolo_box: anchors in input pixels."""
    lh, lw = layer.out_shape[1:]
    return delta_box(truth, pred_box, out_cell, delta_cell, i, j, (lw, lh), (layer.net_width, layer.net_height),
                     layer.biases[2 * anchor:2 * anchor + 2], scale)


def delta_yolo_class(out_cell, delta_cell, class_id):
    """darknet delta_yolo_class; returns the probability credited to avg_cat."""
    p = out_cell[5:]
    d = delta_cell[5:]
    if d[0]:                     # darknet: an earlier truth set this cell's class deltas
        d[class_id] = F(1) - p[class_id]
    else:
        d[:] = -p
        d[class_id] = F(1) - p[class_id]
    return float(p[class_id])


def yolo_loss(layer, out, state):
    """Fill this layer's delta and cost from ``state.truth``; print Darknet's stats line.
    ``out`` is [N, n, 4 + 1 + classes, h, w], after the logistics."""
    n_img, num, _, lh, lw = out.shape
    delta = np.zeros_like(out)
    truth = np.asarray(state.truth, dtype=F).reshape(n_img, -1)
    anchors = layer.biases.reshape(-1, 2)
    boxes = yolo_boxes(out, anchors[layer.mask], lw, lh, layer.net_width, layer.net_height)
    shapes = np.zeros((layer.total, 4), dtype=F)
    shapes[:, 2] = anchors[:, 0] / F(layer.net_width)
    shapes[:, 3] = anchors[:, 1] / F(layer.net_height)
    avg_iou = recall = recall75 = avg_cat = avg_obj = avg_anyobj = 0.0
    count = 0
    for b in range(n_img):
        truths = image_truths(truth[b], layer.max_boxes)
        obj = out[b, :, 4]
        avg_anyobj += float(obj.sum(dtype=np.float64))
        delta[b, :, 4] = F(0) - obj
        if len(truths):
            flat = boxes[b].reshape(-1, 4)
            ious = np.stack([box_iou(t[:4], flat) for t in truths])       # [truths, cells]
            best_iou = ious.max(axis=0).reshape(obj.shape)
            delta[b, :, 4][best_iou > F(layer.ignore_thresh)] = 0
            for n, j, i in zip(*np.nonzero(best_iou > F(layer.truth_thresh))):
                t = truths[int(np.argmax(ious[:, (n * lh + j) * lw + i]))]   # the first best
                cell_out, cell_delta = out[b, n, :, j, i], delta[b, n, :, j, i]
                cell_delta[4] = F(1) - cell_out[4]
                delta_yolo_class(cell_out, cell_delta, int(t[4]))
                delta_yolo_box(layer, t[:4], boxes[b, n, j, i], cell_out, cell_delta, layer.mask[n], i, j,
                               F(2) - F(t[2]) * F(t[3]))
        for t in truths:
            i = min(int(F(t[0]) * F(lw)), lw - 1)       # darknet would index past the grid at x == 1
            j = min(int(F(t[1]) * F(lh)), lh - 1)
            centred = np.array([0, 0, t[2], t[3]], dtype=F)
            best_n = first_largest(box_iou(centred, shapes))
            if best_n not in layer.mask:
                continue
            n = layer.mask.index(best_n)
            cell_out, cell_delta = out[b, n, :, j, i], delta[b, n, :, j, i]
            iou = delta_yolo_box(layer, t[:4], boxes[b, n, j, i], cell_out, cell_delta, best_n, i, j,
                                 F(2) - F(t[2]) * F(t[3]))
            avg_obj += float(cell_out[4])
            cell_delta[4] = F(1) - cell_out[4]
            avg_cat += delta_yolo_class(cell_out, cell_delta, int(t[4]))
            count += 1
            recall += iou > .5
            recall75 += iou > .75
            avg_iou += iou
    saved = state.saved_for(layer)
    saved["delta"] = delta.reshape(n_img, -1, lh, lw)
    saved["cost"] = float(np.square(delta, dtype=np.float64).sum())
    state.log(f"Region {layer.index} Avg IOU: {ratio_text(avg_iou, count)}, Class: {ratio_text(avg_cat, count)}, "
              f"Obj: {ratio_text(avg_obj, count)}, No Obj: {avg_anyobj / (lw * lh * num * n_img):f}, "
              f".5R: {ratio_text(recall, count)}, .75R: {ratio_text(recall75, count)},  count: {count}")
