"""YOLO9000 in miniature: a class tree of shapes, a detection split in which some leaves never
have a box, and a classification split (class-only labels, Darknet's ``CLASS 0 0 1 1``) that
covers every leaf. What ``tools/make_shapes.py -tree`` writes and cfg/yolo9000-shapes.cfg trains
on; the never-boxed leaves' validation split asks whether the tree carries them over from the
classification data to detection, as YOLO9000 does for the ImageNet classes COCO lacks."""
from pathlib import Path

import numpy as np
from PIL import ImageDraw

from .shapes import background, star_points

# darknet tree format: name and parent line (node id = line number); siblings on consecutive lines
SHAPE_TREE = (("round", -1), ("angular", -1),
              ("circle", 0), ("ring", 0), ("ellipse", 0),
              ("triangle", 1), ("square", 1), ("star", 1), ("diamond", 1))
NODES = [name for name, _ in SHAPE_TREE]
LEAVES = [k for k, (name, _) in enumerate(SHAPE_TREE) if all(parent != k for _, parent in SHAPE_TREE)]
NEVER_BOXED = (NODES.index("ring"), NODES.index("diamond"))
BOXED = tuple(k for k in LEAVES if k not in NEVER_BOXED)


def tree_text():
    return "".join(f"{name} {parent}\n" for name, parent in SHAPE_TREE)


def draw_leaf(draw, leaf, cx, cy, r, rng):
    """One shape of leaf class ``leaf`` centred at (cx, cy), radius r; returns its box's
    half width and half height."""
    color = tuple(int(v) for v in rng.integers(0, 256, 3))
    outline = tuple(255 - v for v in color)
    name = NODES[leaf]
    if name == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color, outline=outline, width=2)
    elif name == "ring":            # a thick annulus: the background shows through its middle
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=color, width=max(2, int(r * .35)))
    elif name == "ellipse":
        if rng.integers(2):
            draw.ellipse([cx - r, cy - r * .55, cx + r, cy + r * .55], fill=color, outline=outline, width=2)
            return r, r * .55
        draw.ellipse([cx - r * .55, cy - r, cx + r * .55, cy + r], fill=color, outline=outline, width=2)
        return r * .55, r
    elif name == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=color, outline=outline)
    elif name == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=color, outline=outline, width=2)
    elif name == "star":
        draw.polygon(star_points(cx, cy, r), fill=color, outline=outline)
    else:                           # diamond: a square standing on a corner
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=color, outline=outline)
    return r, r


def render_tree_scene(rng, w, h, leaves, max_objects=3):
    """(PIL image, [(leaf, x, y, bw, bh)] relative) with 1..max_objects shapes of ``leaves``."""
    im = background(rng, w, h)
    draw = ImageDraw.Draw(im)
    boxes = []
    for _ in range(rng.integers(1, max_objects + 1)):
        leaf = int(rng.choice(leaves))
        r = float(rng.uniform(0.08, 0.22) * min(w, h))
        cx, cy = float(rng.uniform(r, w - r)), float(rng.uniform(r, h - r))
        hw, hh = draw_leaf(draw, leaf, cx, cy, r, rng)
        boxes.append((leaf, cx / w, cy / h, 2 * hw / w, 2 * hh / h))
    return im, boxes


def classification_image(rng, leaf):
    """An image known only by its class, as an ImageNet photo is: one shape of ``leaf``, at the
    scales the detection scenes have (so the class-only label trains the anchors that detect
    such shapes)."""
    image, _ = render_tree_scene(rng, int(rng.integers(160, 257)), int(rng.integers(160, 257)), [leaf],
                                 max_objects=1)
    return image


def make_tree(out, n_detect, n_classify, n_valid, seed):
    """Write OUT/JPEGImages + labels (Darknet's layout), the tree, the names (one per node), and:
    train.txt (boxes of the boxed leaves + class-only images of every leaf), train-boxes.txt
    (the boxes alone: the baseline without classification data), valid.txt (scenes of the
    never-boxed leaves only), valid-boxed.txt (scenes of the boxed leaves); shapes-tree.data
    and shapes-tree-boxes.data name them (backup/ and backup-boxes/ apart)."""
    out = Path(out).resolve()
    for sub in ("JPEGImages", "labels", "backup"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)          # a stream per split: each split depends on its own size only
    lists = {"train-boxes": [], "classify": [], "valid": [], "valid-boxed": []}

    def save(name, image, lines, split):
        path = out / "JPEGImages" / f"{name}.jpg"
        image.save(path, quality=95)
        (out / "labels" / f"{name}.txt").write_text("".join(lines))
        lists[split].append(str(path))

    for k in range(n_detect):
        image, boxes = render_tree_scene(rng, int(rng.integers(160, 257)), int(rng.integers(160, 257)), BOXED)
        save(f"detect_{k:06d}", image, ["%d %.6f %.6f %.6f %.6f\n" % b for b in boxes], "train-boxes")
    rng = np.random.default_rng([seed, 1])
    for k in range(n_classify):
        leaf = LEAVES[k % len(LEAVES)]
        save(f"classify_{k:06d}", classification_image(rng, leaf), [f"{leaf} 0 0 1 1\n"], "classify")
    rng = np.random.default_rng([seed, 2])
    for split, leaves in (("valid", NEVER_BOXED), ("valid-boxed", BOXED)):
        for k in range(n_valid):
            image, boxes = render_tree_scene(rng, int(rng.integers(160, 257)), int(rng.integers(160, 257)), leaves)
            save(f"{split}_{k:06d}", image, ["%d %.6f %.6f %.6f %.6f\n" % b for b in boxes], split)
    lists["train"] = lists["train-boxes"] + lists["classify"]
    for split in ("train", "train-boxes", "valid", "valid-boxed"):
        (out / f"{split}.txt").write_text("".join(p + "\n" for p in lists[split]))
    (out / "shapes.tree").write_text(tree_text())
    (out / "shapes-tree.names").write_text("".join(name + "\n" for name in NODES))
    for data, train, backup in (("shapes-tree.data", "train.txt", "backup"),
                                ("shapes-tree-boxes.data", "train-boxes.txt", "backup-boxes")):
        (out / backup).mkdir(exist_ok=True)
        (out / data).write_text(f"classes={len(NODES)}\ntrain={out / train}\nvalid={out / 'valid.txt'}\n"
                                f"names={out / 'shapes-tree.names'}\nbackup={out / backup}\n")
    return out
