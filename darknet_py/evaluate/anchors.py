"""Dimension clusters (YOLO9000 paper, section 2): k-means over the training boxes' widths
and heights with the distance d = 1 - IoU(box, centroid), boxes and centroids sharing a
centre; k-means++ seeding; deterministic for a seed."""
import numpy as np


def shape_iou(boxes, centroids):
    """IoU of [N, 2] (w, h) against [K, 2] (w, h), both centred at the origin."""
    inter = np.minimum(boxes[:, None, 0], centroids[None, :, 0]) * np.minimum(boxes[:, None, 1], centroids[None, :, 1])
    union = boxes[:, 0, None] * boxes[:, 1, None] + centroids[None, :, 0] * centroids[None, :, 1] - inter
    return inter / union


def kmeans_anchors(boxes, k, seed=0, iterations=1000):
    """Return (centroids [k, 2] sorted by area, average IoU of each box with its centroid)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if len(boxes) < k:
        raise ValueError(f"{len(boxes)} boxes cannot make {k} clusters")
    rng = np.random.default_rng(seed)
    centroids = [boxes[rng.integers(len(boxes))]]
    for _ in range(1, k):                                   # k-means++ with d = 1 - IoU
        d = 1 - shape_iou(boxes, np.array(centroids)).max(axis=1)
        p = d ** 2
        centroids.append(boxes[rng.choice(len(boxes), p=p / p.sum()) if p.sum() > 0 else rng.integers(len(boxes))])
    centroids = np.array(centroids)
    assign = None
    for _ in range(iterations):
        new = np.argmax(shape_iou(boxes, centroids), axis=1)
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            members = boxes[assign == j]
            if len(members):
                centroids[j] = members.mean(axis=0)
    order = np.argsort(centroids[:, 0] * centroids[:, 1])
    centroids = centroids[order]
    avg_iou = float(shape_iou(boxes, centroids).max(axis=1).mean())
    return centroids, avg_iou


def training_labels(paths, classes):
    """Every label row (class, x, y, w, h), image-relative, from a training list."""
    from ..data.labels import label_path, read_labels
    found = [read_labels(label_path(p), classes)[0] for p in paths]
    return np.concatenate(found) if found else np.zeros((0, 5))


def scatter_png(path, boxes, centroids, width, height):
    """-show: the boxes (grey) and the clusters (red) in the units asked for, as a PNG."""
    from PIL import Image, ImageDraw

    from ..files import atomic_write
    size, pad = 480, 30
    im = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(im)
    top = max(boxes.max(), centroids.max()) * 1.05
    def sx(v):
        return pad + v / top * (size - 2 * pad)
    def sy(v):
        return size - pad - v / top * (size - 2 * pad)
    for w, h in boxes:
        draw.point((sx(w), sy(h)), fill=(150, 150, 150))
    for w, h in centroids:
        draw.ellipse([sx(w) - 5, sy(h) - 5, sx(w) + 5, sy(h) + 5], outline=(220, 0, 0), width=2)
    draw.text((pad, 5), f"anchor w x h (image = {width} x {height})", fill="black")
    atomic_write(path, lambda f: im.save(f, format="PNG"))
