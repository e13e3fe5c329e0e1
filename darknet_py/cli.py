"""darknet_py's command line: Darknet's command words over the Python API."""
import json
import sys
import time
from pathlib import Path

from .errors import DarknetError

USAGE = """usage: darknet_py <function>
  detector test DATA CFG WEIGHTS [IMAGE|FOLDER|LIST.txt] [-thresh .24] [-hier .5] [-nms .45] [-out predictions]
                [-ext_output] [-dont_show]
                [-json FILE] [-backend numpy|numba|torch] [-i N | -gpus 0,1 | -nogpu] [-half]
  detector train DATA CFG [WEIGHTS] [-clear] [-gpus 0,1] [-nogpu] [-backend B] [-chart chart.png] [-half]
                [-max_batches N] [-seed 0]
  detector valid DATA CFG WEIGHTS [-out PREFIX] [-batch N]   results/comp4_det_test_CLASS.txt (or COCO json)
  detector recall DATA CFG WEIGHTS
  detector map DATA CFG WEIGHTS [-iou_thresh 0.5] [-points 0|11|101] [-thresh .25] [-batch N]
  detector calc_anchors DATA [-num_of_clusters 5] [-width 416] [-height 416] [-show] [-seed 0]
  classifier train DATA CFG [WEIGHTS] | valid DATA CFG WEIGHTS | predict DATA CFG WEIGHTS [IMAGE] [-top 5]
  detect CFG WEIGHTS [IMAGE]               detector test with the matching cfg/*.data
  partial CFG WEIGHTS OUT N                the first N layers' weights, seen = 0
  dump CFG WEIGHTS INPUT OUT.h5 [-backend B]
  compare A.h5 B.h5 [-rtol 1e-4]
  export CFG WEIGHTS model.onnx [-opset 17]  an ONNX inference graph (needs torch and onnx)
  init CFG OUT.weights [-seed 0]           untrained weights, Darknet's initialisation
  summary CFG [-width W -height H]         the layer table
  bench CFG [-size 416] [-batch 1] [-backend B] [-runs 5] [-half]  per-layer milliseconds and GFLOP/s
Add --debug to any command for a traceback on errors."""


class Args:
    """Darknet's find_arg / find_float_arg: flags anywhere, taken out, the rest positional."""

    def __init__(self, argv):
        self.argv = list(argv)

    def _take(self, flag):
        if flag in self.argv:
            i = self.argv.index(flag)
            if i + 1 >= len(self.argv):
                raise DarknetError(f"{flag} needs a value")
            value = self.argv[i + 1]
            del self.argv[i:i + 2]
            return value
        return None

    def _number(self, flag, default, cast, kind):
        value = self._take(flag)
        try:
            return default if value is None else cast(value)
        except ValueError:
            raise DarknetError(f"{flag} needs {kind}, got '{value}'") from None

    def float(self, flag, default):
        return self._number(flag, default, float, "a number")

    def int(self, flag, default):
        return self._number(flag, default, int, "an integer")

    def str(self, flag, default=None):
        value = self._take(flag)
        return default if value is None else value

    def flag(self, flag):
        if flag in self.argv:
            self.argv.remove(flag)
            return True
        return False

    def positional(self, count, usage, optional=0):
        if not count <= len(self.argv) <= count + optional:
            raise DarknetError(f"usage: darknet_py {usage}")
        return self.argv + [None] * (count + optional - len(self.argv))


def has_cuda_device():
    """Cheap check that needs no torch import (the NumPy path never imports torch)."""
    import os
    return os.path.exists("/dev/nvidia0") or os.path.exists("/dev/nvidiactl")


def default_cpu_backend():
    import importlib.util
    return "numba" if importlib.util.find_spec("numba") else "numpy"


def backend_choice(args):
    """Darknet's -i N / -gpus 0,1 / -nogpu, plus -backend B, -device D and -half:
    (backend, device, precision). Default: torch on CUDA when a GPU is present, else the
    Numba CPU backend (the NumPy reference where Numba is missing)."""
    backend = args.str("-backend")
    device = args.str("-device")
    index = args.str("-i")
    gpus = args.str("-gpus")
    nogpu = args.flag("-nogpu")
    precision = "fp16" if args.flag("-half") else "fp32"
    if nogpu:
        device = "cpu"
    elif index is not None:
        device = f"cuda:{index}"
    elif gpus:
        device = f"cuda:{gpus.split(',')[0]}"
    if backend is None:
        wants_gpu = device.startswith("cuda") if device else has_cuda_device() and not nogpu
        backend = "torch" if wants_gpu else default_cpu_backend()
    if backend in ("numpy", "numba") and device not in (None, "cpu"):
        raise DarknetError(f"backend {backend} runs on the CPU only; use -backend torch for {device}")
    return backend, device, precision


def _load(cfg, weights, backend=("numpy", None, "fp32"), allow_prefix=False):
    """Build, print Darknet's layer table, then load weights, in Darknet's order."""
    from .network import Network
    name, device, precision = backend
    net = Network(cfg, backend=name, device=device, init=not weights, precision=precision)
    net.print_summary()
    if weights:
        print(f"Loading weights from {weights}...", end="", file=sys.stderr, flush=True)
        try:
            net.load_weights(weights, allow_prefix=allow_prefix)
        finally:
            print("Done!" if sys.exc_info()[0] is None else "", file=sys.stderr)
    return net


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def image_sources(filename):
    """One image, a folder of images, or a list file (.txt); None: Darknet's prompt."""
    from .data.labels import read_list
    if filename is None:
        while True:
            print("Enter Image Path: ", end="", flush=True)
            line = sys.stdin.readline()
            if not line:
                return
            if line.strip():
                yield line.strip()
    path = Path(filename)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DarknetError("folder holds no images (.jpg, .jpeg, .png, .bmp)", path)
        yield from (str(p) for p in found)
    elif path.suffix.lower() == ".txt":
        yield from read_list(path)
    else:
        yield filename


def test_detector(datacfg, cfg, weights, filename, thresh, hier_thresh, nms, outfile,
                  json_path, backend, ext_output=False):
    from .data.datafile import DataConfig
    from .data.image import load_image, save_image
    from .detection.detector import detect, json_objects, region_layer
    from .detection.draw import draw_detections

    names = DataConfig(datacfg).names()
    net = _load(cfg, weights, backend)
    classes = region_layer(net).classes
    if len(names) < classes:
        raise DarknetError(f"names file lists {len(names)} names for {classes} classes", datacfg)
    batch = filename is not None and (Path(filename).is_dir() or Path(filename).suffix.lower() == ".txt")
    frames = []
    for path in image_sources(filename):
        image = load_image(path)
        _, h, w = image.shape
        start = time.time()
        result = detect(net, image, thresh, hier_thresh, nms)
        print(f"{path}: Predicted in {time.time() - start:f} seconds.")
        for text, i in draw_detections(image, result.dets, result.order, thresh, names):
            if ext_output:     # AlexeyAB's -ext_output: the box in pixels
                x, y, bw, bh = (float(v) for v in result.dets.boxes[i])
                text += (f"\t(left_x: {(x - bw / 2) * w:4.0f}   top_y: {(y - bh / 2) * h:4.0f}   "
                         f"width: {bw * w:4.0f}   height: {bh * h:4.0f})")
            print(text)
        if not batch:
            print(f"Saved {save_image(image, outfile or 'predictions')}", file=sys.stderr)
        elif outfile:            # a folder of drawn images
            save_image(image, Path(outfile) / (Path(path).stem + ".png"))
        frames.append({"frame_id": len(frames) + 1, "filename": path,
                       "objects": json_objects(result, names, thresh)})
    if json_path:
        from .files import atomic_write
        text = json.dumps(frames, indent=1).encode()
        atomic_write(json_path, lambda f: f.write(text))


def detector_train(args):
    """darknet detector train DATA CFG [WEIGHTS] [-gpus 0,1] [-clear] ..."""
    from .train.trainer import train_detector
    gpus = [int(g) for g in (args.str("-gpus") or "").split(",") if g != ""]
    nogpu = "-nogpu" in args.argv
    if len(gpus) == 1:
        args.argv += ["-i", str(gpus[0])]
    clear = args.flag("-clear")
    chart = args.str("-chart")
    seed = args.int("-seed", 0)
    max_batches = args.int("-max_batches", 0) or None
    workers = args.int("-workers", 2)
    backend = backend_choice(args)
    datacfg, cfg, weights = args.positional(2, "detector train DATA CFG [WEIGHTS] [-gpus 0,1] [-clear]", 1)
    options = dict(datacfg=datacfg, cfgfile=cfg, weightfile=weights, clear=clear, seed=seed,
                   max_batches=max_batches, chart=chart, workers=workers)
    if len(gpus) > 1:
        from .train.distributed import train_distributed
        train_distributed(gpus, nogpu=nogpu, precision=backend[2], **options)
    else:
        try:
            train_detector(backend=backend, **options)
        except KeyboardInterrupt:
            return 130
    return 0


def detector_evaluate(sub, args):
    """detector valid | recall | map DATA CFG WEIGHTS."""
    from .evaluate import validate
    outfile = args.str("-out")
    iou_thresh = args.float("-iou_thresh", .5)
    points = args.int("-points", 0)
    thresh = args.float("-thresh", .25)
    batch = args.int("-batch", 0)
    backend = backend_choice(args)
    datacfg, cfg, weights = args.positional(3, f"detector {sub} DATA CFG WEIGHTS")
    if points not in (0, 11, 101):
        raise DarknetError(f"-points must be 0 (area under curve), 11 (VOC2007) or 101 (COCO), got {points}")
    if batch < 0:
        raise DarknetError(f"-batch must be a number of images (0: 8 on a GPU, else 1), got {batch}")
    net = _load(cfg, weights, backend)
    # images per network pass: batches pay on a GPU; on the CPU one at a time is as fast
    on_gpu = getattr(getattr(net.backend, "device", None), "type", "cpu") == "cuda"
    batch = batch or (8 if on_gpu else 1)
    if sub == "valid":
        for path in validate.validate_detector(datacfg, net, outfile, batch):
            print(f"Wrote {path}", file=sys.stderr)
    elif sub == "recall":
        validate.validate_detector_recall(datacfg, net)
    else:
        validate.validate_detector_map(datacfg, net, iou_thresh, points, thresh, batch=batch)
    return 0


def calc_anchors(args):
    """detector calc_anchors DATA [-num_of_clusters 5] [-width 416] [-height 416] [-show]."""
    from .data.datafile import DataConfig
    from .data.labels import read_list
    from .evaluate.anchors import kmeans_anchors, scatter_png, training_boxes
    k = args.int("-num_of_clusters", 5)
    width, height = args.int("-width", 416), args.int("-height", 416)
    seed = args.int("-seed", 0)
    show = args.flag("-show")
    (datacfg,) = args.positional(1, "detector calc_anchors DATA [-num_of_clusters 5] [-width 416] [-height 416]")
    data = DataConfig(datacfg)
    train = data.file("train", "data/train.list")
    boxes = training_boxes(read_list(train), data.int("classes", 20))
    if len(boxes) < k:
        raise DarknetError(f"{len(boxes)} label boxes cannot make {k} clusters", train)
    cells = boxes * [width / 32, height / 32]          # the region layer's units: grid cells
    centroids, avg_iou = kmeans_anchors(cells, k, seed)
    print(f" num_of_clusters = {k}, width = {width}, height = {height} ")
    print(f" read labels from {len(boxes)} boxes")
    print("anchors = " + ", ".join(f"{w:.4f},{h:.4f}" for w, h in centroids))
    print(f"avg IoU = {avg_iou * 100:2.2f} %")
    if show:
        scatter_png("cloud.png", cells, centroids, width, height)
        print("Wrote cloud.png", file=sys.stderr)
    return 0


def classifier_command(args):
    """classifier train | valid | predict DATA CFG [WEIGHTS] [IMAGE]."""
    from . import classifier
    if not args.argv:
        raise DarknetError("usage: darknet_py classifier [train|valid|predict] DATA CFG WEIGHTS ...")
    sub = args.argv.pop(0)
    top = args.int("-top", 0)
    clear = args.flag("-clear")
    max_batches = args.int("-max_batches", 0) or None
    backend = backend_choice(args)
    if sub == "train":
        datacfg, cfg, weights = args.positional(2, "classifier train DATA CFG [WEIGHTS]", 1)
        try:
            classifier.train_classifier(datacfg, cfg, weights, backend, clear, max_batches=max_batches)
        except KeyboardInterrupt:
            return 130
    elif sub == "valid":
        datacfg, cfg, weights = args.positional(3, "classifier valid DATA CFG WEIGHTS")
        classifier.validate_classifier(datacfg, _load(cfg, weights, backend))
    elif sub == "predict":
        datacfg, cfg, weights, image = args.positional(3, "classifier predict DATA CFG WEIGHTS [IMAGE]", 1)
        classifier.predict_classifier(datacfg, _load(cfg, weights, backend), image, top or None)
    else:
        raise DarknetError(f"unknown classifier command '{sub}' (train, valid, predict)")
    return 0


def bench(args):
    """bench CFG [-size 416] [-batch 1] [-backend B] [-runs 5]: Darknet's layer table with
    each layer's milliseconds and GFLOP/s, so one can see where the time goes."""
    import numpy as np

    from .network import Network
    size, batch, runs = args.int("-size", 0), args.int("-batch", 1), args.int("-runs", 5)
    name, device, precision = backend_choice(args)
    (cfg,) = args.positional(1, "bench CFG [-size 416] [-batch 1] [-backend B] [-runs 5] [-half]")
    net = Network(cfg, backend=name, device=device, precision=precision)
    if size:
        net.resize(size, size)
    x = np.random.default_rng(0).random((batch, net.channels, net.height, net.width), dtype=np.float32)
    net.forward(x)                                   # compile, fold, autotune
    times = np.zeros(len(net.layers))
    backend, forward_layer = net.backend, net.backend.forward_layer

    def timed(layer, inputs, state):      # each layer as Network.forward runs it
        start = time.perf_counter()
        out = forward_layer(layer, inputs, state)
        backend.to_numpy(out[:1])         # wait for asynchronous devices
        times[layer.index] += time.perf_counter() - start
        return out
    backend.forward_layer = timed
    try:
        for _ in range(runs):
            net.forward(x)
    finally:
        del backend.forward_layer
    times /= runs
    print(f"{Path(cfg).name} at {net.width}x{net.height}, batch {batch}, backend {name}")
    for layer, t in zip(net.layers, times):
        rate = f"{layer.bflops * batch / t:7.1f} GFLOP/s" if layer.bflops else ""
        print(f"{layer.index:5d} {layer.summary():78s} {t * 1000:8.2f} ms {rate}")
    total = times.sum()
    flops = sum(layer.bflops for layer in net.layers) * batch
    print(f"total {total * 1000:.1f} ms, {batch / total:.2f} images/s, {flops / total:.1f} GFLOP/s")


def default_data_for(cfg):
    """darknet detect uses cfg/coco.data; darknet_py picks the .data whose classes match."""
    from .cfg import read_cfg
    classes = None
    for section in read_cfg(cfg):
        if section.kind == "region":
            classes = section.int("classes", 20)
    by_classes = {20: "voc.data", 80: "coco.data", 9418: "combine9k.data"}
    name = by_classes.get(classes, "coco.data")
    for folder in (Path(cfg).parent, Path("cfg"), Path(__file__).resolve().parent.parent / "cfg"):
        if (folder / name).is_file():
            return str(folder / name)
    raise DarknetError(f"no {name} found for a {classes}-class network: use detector test DATA ...",
                       cfg)


def run(argv):
    args = Args(argv)
    if not args.argv or args.argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    word = args.argv.pop(0)
    if word == "detector":
        if not args.argv:
            raise DarknetError("usage: darknet_py detector [test] DATA CFG WEIGHTS ...")
        sub = args.argv.pop(0)
        if sub == "train":
            return detector_train(args)
        if sub in ("valid", "recall", "map"):
            return detector_evaluate(sub, args)
        if sub == "calc_anchors":
            return calc_anchors(args)
        if sub != "test":
            raise DarknetError(f"unknown detector command '{sub}' (test, train, valid, recall, map, "
                               "calc_anchors)")
        thresh, hier = args.float("-thresh", .24), args.float("-hier", .5)
        nms, out = args.float("-nms", .45), args.str("-out")
        json_path, backend = args.str("-json"), backend_choice(args)
        ext_output = args.flag("-ext_output")
        args.flag("-dont_show")                       # darknet_py never opens windows
        datacfg, cfg, weights, image = args.positional(3, "detector test DATA CFG WEIGHTS [IMAGE|FOLDER|LIST]", 1)
        test_detector(datacfg, cfg, weights, image, thresh, hier, nms, out, json_path, backend, ext_output)
    elif word == "classifier":
        return classifier_command(args)
    elif word == "detect":
        thresh, hier = args.float("-thresh", .24), args.float("-hier", .5)
        nms, out = args.float("-nms", .45), args.str("-out")
        json_path, backend = args.str("-json"), backend_choice(args)
        cfg, weights, image = args.positional(2, "detect CFG WEIGHTS [IMAGE]", 1)
        test_detector(default_data_for(cfg), cfg, weights, image, thresh, hier, nms, out,
                      json_path, backend)
    elif word == "partial":
        cfg, weights, out, cutoff = args.positional(4, "partial CFG WEIGHTS OUT N")
        try:
            cutoff = int(cutoff)
        except ValueError:
            raise DarknetError(f"partial: N must be an integer, got '{cutoff}'") from None
        net = _load(cfg, weights)
        net.seen = 0                    # darknet partial loads with clear=1
        net.save_weights(out, cutoff)
        print(f"Saving weights to {out}", file=sys.stderr)
    elif word == "dump":
        from .dump import dump, load_input
        backend = backend_choice(args)
        cfg, weights, source, out = args.positional(4, "dump CFG WEIGHTS INPUT OUT.h5")
        net = _load(cfg, weights, backend)
        dump(net, net.check_input(load_input(source, net)), out)
        print(f"Wrote {len(net.layers)} layers to {out}", file=sys.stderr)
    elif word == "compare":
        from .dump import compare
        rtol = args.float("-rtol", 1e-4)
        a, b = args.positional(2, "compare A.h5 B.h5 [-rtol 1e-4]")
        rows, first = compare(a, b, rtol)
        print(f"{'layer':8s} {'max abs err':>12s} {'max rel err':>12s}")
        for name, err, rel, verdict in rows:
            print(f"{name:8s} {err:12.4g} {rel:12.4g}  {verdict}")
        if first:
            print(f"first divergent layer: {first} (rtol {rtol:g})")
            return 1
        print(f"all {len(rows)} layers agree within rtol {rtol:g}")
    elif word == "export":
        from .export import export_onnx
        opset = args.int("-opset", 17)
        cfg, weights, out = args.positional(3, "export CFG WEIGHTS model.onnx [-opset 17]")
        if opset < 17:
            raise DarknetError(f"-opset must be 17 or more, got {opset}")
        net = _load(cfg, weights)
        export_onnx(net, out, opset)
        print(f"Wrote {out} (opset {opset})", file=sys.stderr)
    elif word == "init":
        from .network import Network
        seed = args.int("-seed", 0)
        cfg, out = args.positional(2, "init CFG OUT.weights [-seed 0]")
        net = Network(cfg, seed=seed)
        net.save_weights(out)
        print(f"Wrote untrained weights ({net.params.size} floats, seed {seed}) to {out}",
              file=sys.stderr)
    elif word == "bench":
        bench(args)
    elif word == "summary":
        from .network import Network
        width, height = args.int("-width", 0), args.int("-height", 0)
        (cfg,) = args.positional(1, "summary CFG [-width W -height H]")
        net = Network(cfg)
        if width or height:
            net.resize(width or net.width, height or net.height)
        print(net.summary())
    else:
        raise DarknetError(f"unknown command '{word}'\n{USAGE}")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    try:
        return run(argv)
    except DarknetError as err:
        if debug:
            raise
        print(f"darknet_py: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("darknet_py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
