"""Darknet's training lists and label files (darknet: data.c:fill_truth_detection)."""
from pathlib import Path

import numpy as np

from ..errors import DarknetError

# darknet find_replace, in this order
LABEL_RULES = (("images", "labels"), ("JPEGImages", "labels"), ("raw", "labels"),
               (".jpg", ".txt"), (".png", ".txt"), (".JPG", ".txt"), (".JPEG", ".txt"),
               (".jpeg", ".txt"), (".bmp", ".txt"))


def label_path(image_path):
    """images -> labels, JPEGImages -> labels, the image extension -> .txt: each rule
    replaces its first occurrence, as darknet's find_replace does."""
    path = str(image_path)
    for old, new in LABEL_RULES:
        path = path.replace(old, new, 1)
    return Path(path)


def read_list(path):
    """A list file: one image path per line (darknet get_paths)."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DarknetError(f"cannot read list file: {err}", path) from None
    paths = [line.strip() for line in lines if line.strip()]
    if not paths:
        raise DarknetError("list file names no images", path)
    return paths


def read_labels(path, classes, with_difficult=False, tree_nodes=0, map_path=None):
    """Label lines 'class x y w h' (image-relative), optionally followed by a 0/1
    'difficult' flag (what VOC marks difficult; used by detector map). Returns (rows,
    problems): problems are one-line messages naming the file and line of each malformed
    or out-of-range line. A missing label file means an image without boxes. With
    ``with_difficult`` the rows have a sixth column.

    A line with x = y = 0 is Darknet's class-only label (an image known only by its class,
    YOLO9000's classification data): kept as it is, x = y = 0, where a class tree of
    ``tree_nodes`` nodes can take it, its class a node of the tree (anything else there is
    an error, not a skipped sample: the tree and the labels disagree). With the ``map_path``
    of a [region] map, ``classes`` is its length, and a class past its end is such an error too."""
    path = Path(path)
    if not path.exists():
        return np.zeros((0, 6 if with_difficult else 5), dtype=np.float32), []
    rows, problems = [], []
    for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) not in (5, 6):
                raise ValueError(f"expected 5 fields, found {len(fields)}")
            cls = int(fields[0])
            x, y, w, h = (float(v) for v in fields[1:5])
            difficult = int(fields[5]) if len(fields) == 6 else 0
        except ValueError as err:
            problems.append(f"{path}:{lineno}: malformed label line '{line.strip()}' ({err})")
            continue
        if x == 0 and y == 0:
            if not tree_nodes:
                problems.append(f"{path}:{lineno}: class-only label (x = y = 0) needs a [region] with tree=")
            elif not 0 <= cls < tree_nodes:
                raise DarknetError(f"class-only label names class {cls}, outside the {tree_nodes} nodes "
                                   "of the tree", path, lineno)
            else:
                rows.append((cls, 0, 0, w, h, difficult))
        elif map_path is not None and not 0 <= cls < classes:
            raise DarknetError(f"class {cls} has no line in the map file {map_path} ({classes} lines)", path, lineno)
        elif not 0 <= cls < classes:
            problems.append(f"{path}:{lineno}: class {cls} is out of range (classes={classes})")
        elif not (0 < x <= 1 and 0 < y <= 1 and 0 < w <= 1 and 0 < h <= 1):
            problems.append(f"{path}:{lineno}: box {x} {y} {w} {h} is not inside the image")
        else:
            rows.append((cls, x, y, w, h, difficult))
    rows = np.array(rows, dtype=np.float32).reshape(-1, 6)
    return (rows if with_difficult else rows[:, :5]), problems


def class_only(rows):
    """Which label rows are class-only (x = y = 0)."""
    return (rows[:, 1] == 0) & (rows[:, 2] == 0)
