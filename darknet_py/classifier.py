"""darknet classifier train | valid | predict (darknet: examples/classifier.c), for
Darknet-19 and its 448 fine-tune. The .data file names ``labels`` (the class strings looked
for in each image path), ``names`` (what to print; defaults to labels), ``train``,
``valid``, ``backup`` and ``top``."""
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .data.classification import ClassificationLoader, truth_from_path
from .data.datafile import DataConfig, read_names
from .data.image import letterbox_image, load_image, resize_image
from .data.labels import read_list
from .data.sources import image_sources
from .errors import DarknetError
from .tree import hierarchy_predictions, read_tree


def class_names(data, outputs=None):
    """(labels, names) of a classification .data file; with ``outputs`` (the network's), a
    names list shorter than the outputs is an error before any image is read."""
    labels = read_names(data.file("labels", "data/labels.list"))
    names_file = data.get("names")
    names = read_names(data.file("names")) if names_file else labels
    if outputs is not None and len(names) < outputs:
        raise DarknetError(f"lists {len(names)} names for the network's {outputs} outputs",
                           data.file("names") if names_file else data.file("labels", "data/labels.list"))
    return labels, names


def leaf_probabilities(net, sized):
    """The network's class probabilities for one prepared image; on a tree, darknet's
    hierarchy_predictions(..., only_leaves=1): each leaf's absolute probability, 0 elsewhere."""
    out = net.predict(sized[None])[0].reshape(-1).copy()
    tree = net.hierarchy
    if tree is not None:
        p = out[None]
        hierarchy_predictions(p, tree)
        out = np.where(tree.leaf, p[0], 0)
    return out


def predictions(net, image):
    """darknet predict_classifier: letterbox to the net, run, apply the tree if any."""
    return leaf_probabilities(net, letterbox_image(image, net.width, net.height))


def top_k(values, k):
    return list(np.argsort(-values, kind="stable")[:k])


def predict_classifier(datacfg, net, filename, top=None, out=print):
    data = DataConfig(datacfg)
    _, names = class_names(data, net.output_layer.outputs)
    top = top or data.int("top", 1)
    for path in image_sources(filename):
        image = load_image(path)
        start = time.time()
        p = predictions(net, image)
        print(f"{path}: Predicted in {time.time() - start:f} seconds.", file=sys.stderr)
        for index in top_k(p, top):
            out(f"{p[index] * 100:5.2f}%: {names[index]}")


def validate_classifier(datacfg, net, out=print):
    """darknet validate_classifier_single: resize the short side to the net, centre crop."""
    data = DataConfig(datacfg)
    labels, _ = class_names(data)
    paths = read_list(data.file("valid", "data/train.list"))
    topk = data.int("top", 1)
    top1 = topn = 0.0
    for i, path in enumerate(tqdm(paths, desc="valid", unit="img", file=sys.stderr, disable=len(paths) < 2)):
        hits = truth_from_path(path, labels)
        if len(hits) != 1:
            raise DarknetError(f"Too many or too few labels: {len(hits)} (the path must contain one label)", path)
        image = load_image(path)
        _, h, w = image.shape
        side = net.width
        rw, rh = (side, h * side // w) if w < h else (w * side // h, side)     # darknet resize_min
        resized = resize_image(image, rw, rh)
        top, left = (rh - net.height) // 2, (rw - net.width) // 2
        crop = resized[:, max(top, 0):max(top, 0) + net.height, max(left, 0):max(left, 0) + net.width]
        if crop.shape[1:] != (net.height, net.width):
            crop = resize_image(crop, net.width, net.height)
        ranked = top_k(leaf_probabilities(net, crop), topk)
        top1 += ranked[0] == hits[0]
        topn += hits[0] in ranked
        out(f"{i}: top 1: {top1 / (i + 1):f}, top {topk}: {topn / (i + 1):f}")
    return top1 / len(paths), topn / len(paths)


def train_classifier(datacfg, cfgfile, weightfile=None, backend=("numpy", None, "fp32"), clear=False,
                     seed=0, max_batches=None, workers=2, out=print):
    """darknet train_classifier: one line per batch
    ``batch, epoch: loss, avg avg, rate rate, seconds seconds, images images``; NAME.backup
    every 100 batches, NAME_EPOCH.weights at each new epoch, NAME.weights at the end."""
    from .train.checkpoints import Checkpoints
    from .train.trainer import start_network, stop_on_term
    data = DataConfig(datacfg)
    labels, _ = class_names(data)
    train_list = data.file("train", "data/train.list")
    paths = read_list(train_list)
    backup = Path(data.get("backup", "backup"))
    base = Path(cfgfile).stem
    out(base)
    net = start_network(cfgfile, weightfile, backend, seed, clear)
    if net.output_layer.outputs != len(labels):
        raise DarknetError(f"the network has {net.output_layer.outputs} outputs but the labels file "
                           f"lists {len(labels)} classes", cfgfile)
    # darknet: the .data file's tree= replaces the softmax's for the labels' hierarchy
    hierarchy = read_tree(data.file("tree")) if data.get("tree") else net.hierarchy
    out(f"Learning Rate: {net.net.learning_rate:g}, Momentum: {net.net.momentum:g}, Decay: {net.net.decay:g}")
    images = net.net.batch * net.net.subdivisions
    limit = max_batches or net.net.max_batches
    checkpoints = Checkpoints(net, backup, base, out)
    checkpoints.check(limit, cfgfile)
    loader = ClassificationLoader(paths, train_list, labels, net.net, seed, workers, hierarchy,
                                  allocate=net.backend.host_buffer)
    epoch = net.seen // len(paths)
    avg_loss = -1.0
    stop_on_term()
    try:
        while net.batch_num < limit:
            start = time.time()
            x, truth = loader.batch(net.batch_num, images, net.width, net.height)
            loss = net.train_step(x, truth, log=out)
            avg_loss = loss if avg_loss < 0 else avg_loss * .9 + loss * .1
            out(f"{net.batch_num}, {net.seen / len(paths):.3f}: {loss:f}, {avg_loss:f} avg, "
                f"{net.learning_rate():f} rate, {time.time() - start:f} seconds, {net.seen} images")
            if net.seen // len(paths) > epoch:
                epoch = net.seen // len(paths)
                checkpoints.save(f"_{epoch}.weights")
            if net.batch_num % 100 == 0:
                checkpoints.save(".backup")
    except KeyboardInterrupt:
        checkpoints.save(".backup")
        raise
    finally:
        loader.close()
    checkpoints.save(".weights")
    return net
