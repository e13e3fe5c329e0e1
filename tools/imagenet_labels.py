#!/usr/bin/env python3
"""Class-only labels for ImageNet images, for YOLO9000's joint training (README, "YOLO9000:
joint training"): each image of IMAGENET/<wnid>/ gets a label file with one line
'NODE 0 0 1 1', NODE being the line of <wnid> in Darknet's 9k.labels (the node of 9k.tree);
x = y = 0 makes it a class-only label, which the region loss trains at the one location that
scores that class best.

usage: python tools/imagenet_labels.py IMAGENET 9k.labels OUT.list [-per_class N]

IMAGENET holds one folder per WordNet id (ILSVRC's train/ layout); folders whose id is not in
9k.labels are skipped (and counted). The label file goes where Darknet looks for it: the
image's path with images -> labels, JPEGImages -> labels and the extension -> .txt (beside
the image for ILSVRC's layout). OUT.list gets the absolute image paths; cat it with COCO's
list (trainvalno5k.txt) into the .data file's train= (Darknet's combine9k.train.list).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from darknet_py.data.labels import label_path  # noqa: E402

SUFFIXES = (".jpeg", ".jpg", ".png")


def write_labels(imagenet, labels_file, out_list, per_class=0):
    """Returns (images labelled, folders skipped)."""
    nodes = {wnid.strip(): k for k, wnid in enumerate(Path(labels_file).read_text().split())}
    paths, skipped = [], 0
    for folder in sorted(p for p in Path(imagenet).iterdir() if p.is_dir()):
        node = nodes.get(folder.name)
        if node is None:
            skipped += 1
            continue
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)
        for image in images[:per_class or None]:
            label = label_path(image.resolve())
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(f"{node} 0 0 1 1\n")
            paths.append(str(image.resolve()))
    Path(out_list).write_text("".join(p + "\n" for p in paths))
    return len(paths), skipped


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("imagenet")
    ap.add_argument("labels")
    ap.add_argument("out")
    ap.add_argument("-per_class", type=int, default=0, help="at most N images a class (0: all)")
    a = ap.parse_args()
    count, skipped = write_labels(a.imagenet, a.labels, a.out, a.per_class)
    print(f"{count} images labelled; {skipped} folders not in {a.labels} skipped; list: {a.out}")
