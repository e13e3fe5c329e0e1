"""Darknet's detector application (examples/detector.c): test, train, valid, recall, map and
calc_anchors over the Python API. The command line (cli.py) parses words and calls these."""
import json
import sys
import time
from pathlib import Path

import numpy as np

from .cfg import head_classes
from .data.datafile import DataConfig
from .data.image import load_image, save_image
from .data.labels import read_list
from .data.read_ahead import read_ahead
from .data.sources import image_sources, is_many
from .detection.detector import detect, detection_layer, json_objects
from .detection.draw import draw_and_describe
from .errors import DarknetError, warn
from .files import atomic_write, atomic_write_all, check_writable
from .loading import load_verbose
from .resources import bundled_root, resolve

PACKAGE_CFG = bundled_root() / "cfg"


def test_detector(datacfg, cfg, weights, filename, thresh, hier_thresh, nms, outfile, json_path, backend,
                  ext_output=False):
    """darknet test_detector: print and draw the detections of one image, of each image of a
    folder or list (an unreadable one is reported and skipped; the -json file is a valid JSON
    array after every image), or of each path typed at the prompt. Returns 1 if an image of
    a folder or list failed, else 0."""
    data = DataConfig(datacfg)
    data.names()                               # a missing names file fails before the network loads
    many = is_many(filename)
    if json_path:
        check_writable(json_path)
    if outfile or not many:
        check_writable(Path(outfile, "x") if many else (outfile or "predictions"))
    net = load_verbose(cfg, weights, backend)
    names = data.names(detection_layer(net).classes)
    frames, failed = [], 0
    sources = image_sources(filename)
    # a folder or list: the next images decoded and letterboxed on reader threads meanwhile
    prepared = read_ahead(sources, net.width, net.height, ahead=2) if many else ((path, None) for path in sources)
    for path, reading in prepared:
        try:
            image, sized = reading.result() if reading else (load_image(path), None)
            start = time.time()
            result = detect(net, image, thresh, hier_thresh, nms, sized=sized)
        except DarknetError as err:
            err = err if err.path else DarknetError(err.message, path)
            if not many:
                raise err from None
            warn(f"darknet_py: {err} (skipped)")
            failed += 1
            continue
        print(f"{path}: Predicted in {time.time() - start:f} seconds.")
        for text in draw_and_describe(image, result, thresh, names, ext_output):
            print(text)
        if not many:
            print(f"Saved {save_image(image, outfile or 'predictions')}", file=sys.stderr)
        elif outfile:            # a folder of drawn images
            save_image(image, Path(outfile) / Path(path).stem)
        if json_path:
            frames.append({"frame_id": len(frames) + 1, "filename": path,
                           "objects": json_objects(result, names, thresh)})
            text = json.dumps(frames, indent=1).encode()
            atomic_write(json_path, lambda f, text=text: f.write(text))
    if failed:
        warn(f"darknet_py: {failed} image(s) could not be read")
    return 1 if failed else 0


def default_data_for(cfg):
    """darknet detect reads cfg/coco.data; darknet_py takes the first .data file (in the cfg's
    folder, ./cfg, then the project's cfg/) whose classes equal the network's and whose names
    file lists as many names, Darknet's usual name for that count first."""
    cfg = resolve(cfg)
    classes = head_classes(cfg)
    usual = {20: "voc.data", 80: "coco.data", 9418: "combine9k.data"}.get(classes)
    seen = set()
    for folder in (Path(cfg).parent, Path("cfg"), PACKAGE_CFG):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.data"), key=lambda p: (p.name != usual, p.name)):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                data = DataConfig(path)
                if data.int("classes", 20) == classes and len(data.names()) >= classes:
                    print(f"Using {path} ({classes} classes)", file=sys.stderr)
                    return str(path)
            except DarknetError:       # a .data file of another layout: not this network's
                continue
    raise DarknetError(f"no .data file with {classes} classes and their names beside the cfg or in cfg/: "
                       "use detector test DATA CFG WEIGHTS", cfg)


def train(datacfg, cfg, weights, gpus, nogpu, backend, **options):
    """darknet train_detector on one device, one process per device of ``gpus``, or this
    process's rank of a torchrun job."""
    from .train.distributed import launched_by_torchrun
    from .train.trainer import train_detector
    if launched_by_torchrun():
        from .train.distributed import train_torchrun
        train_torchrun(nogpu=nogpu, precision=backend[2], datacfg=datacfg, cfgfile=cfg, weightfile=weights,
                       **options)
        return 0
    if len(gpus) > 1:
        from .train.distributed import train_distributed
        train_distributed(gpus, nogpu=nogpu, precision=backend[2], datacfg=datacfg, cfgfile=cfg,
                          weightfile=weights, **options)
        return 0
    try:
        train_detector(backend=backend, datacfg=datacfg, cfgfile=cfg, weightfile=weights, **options)
    except KeyboardInterrupt:
        return 130
    return 0


def evaluate(sub, datacfg, cfg, weights, backend, outfile, iou_thresh, points, thresh, batch, hier_thresh=.5):
    """detector valid | recall | map."""
    from .evaluate import validate
    net = load_verbose(cfg, weights, backend)
    # images per network pass: batches pay on a GPU; on the CPU one at a time is as fast
    batch = batch or (8 if net.backend.on_gpu else 1)
    if sub == "valid":
        for path in validate.validate_detector(datacfg, net, outfile, batch):
            print(f"Wrote {path}", file=sys.stderr)
    elif sub == "recall":
        validate.validate_detector_recall(datacfg, net)
    else:
        validate.validate_detector_map(datacfg, net, iou_thresh, points, thresh, batch=batch, hier_thresh=hier_thresh)
    return 0


def calc_anchors(datacfg, clusters, width, height, seed, show):
    """AlexeyAB's detector calc_anchors: k-means (1 - IoU) over the training labels' sizes
    times -width and -height: pass the grid (13 13 for a 416 YOLOv2) for a [region]'s anchors,
    the network's size (416 416) for [yolo]'s, in pixels. Prints them sorted by area and writes
    anchors.txt and counters_per_class.txt (the boxes of each class) as AlexeyAB does."""
    from .evaluate.anchors import kmeans_anchors, scatter_png, training_labels
    for path in ("anchors.txt", "counters_per_class.txt") + (("cloud.png",) if show else ()):
        check_writable(path)
    data = DataConfig(datacfg)
    train_list = data.file("train", "data/train.list")
    classes = data.int("classes", 20)
    rows = training_labels(read_list(train_list), classes)
    if len(rows) < clusters:
        raise DarknetError(f"{len(rows)} label boxes cannot make {clusters} clusters", train_list)
    sizes = rows[:, 3:5] * [width, height]
    centroids, avg_iou = kmeans_anchors(sizes, clusters, seed)
    print(f" num_of_clusters = {clusters}, width = {width}, height = {height} ")
    print(f" read labels from {len(rows)} boxes")
    counts = np.bincount(rows[:, 0].astype(int), minlength=classes)
    counters = "counters_per_class = " + ", ".join(str(c) for c in counts)
    print(counters)
    print(f" avg IoU = {avg_iou * 100:2.2f} % ")
    form = "{:3.0f},{:3.0f}" if width > 32 else "{:2.4f},{:2.4f}"     # AlexeyAB: pixels, or cells
    anchors = ", ".join(form.format(w, h) for w, h in centroids)
    print("Saving anchors to the file: anchors.txt ")
    print(f"anchors = {anchors}")
    atomic_write_all({"anchors.txt": lambda f: f.write(anchors.encode()),
                      "counters_per_class.txt": lambda f: f.write(counters.encode())})
    if show:
        scatter_png("cloud.png", sizes, centroids, width, height)
        print("Wrote cloud.png", file=sys.stderr)
    return 0
