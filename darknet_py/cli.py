"""darknet_py's command line: Darknet's command words and flags, parsed and dispatched to the
applications (detector.py, classifier.py) and the Python API; nothing else lives here."""
import math
import os
import re
import sys
import time
from pathlib import Path

from .errors import DarknetError

BACKEND_FLAGS = "[-backend numpy|numba|torch] [-i N | -gpus 0,1 | -nogpu] [-half]"
USAGES = {
    "detector test": "detector test DATA CFG WEIGHTS [IMAGE|FOLDER|LIST.txt] [-thresh .5] [-hier .5] [-nms .45] "
                     "[-out predictions] [-ext_output] [-dont_show] [-json FILE] " + BACKEND_FLAGS
                     + "   (Darknet's defaults; AlexeyAB's users pass -thresh .25; draws predictions.jpg)",
    "detector train": "detector train DATA CFG [WEIGHTS] [-clear] [-chart chart.png] [-map] [-max_batches N] [-seed 0] "
                      "[-workers 2] [-worker_processes] [-prefetch 2] [-dont_show] " + BACKEND_FLAGS,
    "detector valid": "detector valid DATA CFG WEIGHTS [-out PREFIX] [-batch N] " + BACKEND_FLAGS,
    "detector recall": "detector recall DATA CFG WEIGHTS " + BACKEND_FLAGS,
    "detector map": "detector map DATA CFG WEIGHTS [-iou_thresh 0.5] [-points 0|11|101] [-thresh .25] [-hier .5] "
                    "[-batch N] " + BACKEND_FLAGS,
    "detector demo": "detector demo DATA CFG WEIGHTS [VIDEO|FRAMES_%05d.png|FOLDER|LIST.txt] [-c 0] [-thresh .5] "
                     "[-hier .5] [-avgframes 3] [-out_filename out.mp4|.avi|.mkv] [-prefix NAME] [-ext_output] "
                     "[-dont_show] [-mjpeg_port 8090] [-json_port 8070] [-benchmark] " + BACKEND_FLAGS,
    "detector calc_anchors": "detector calc_anchors DATA [-num_of_clusters 5] [-width 416] [-height 416] [-show] "
                             "[-seed 0]",
    "classifier train": "classifier train DATA CFG [WEIGHTS] [-clear] [-max_batches N] " + BACKEND_FLAGS,
    "classifier valid": "classifier valid DATA CFG WEIGHTS " + BACKEND_FLAGS,
    "classifier predict": "classifier predict DATA CFG WEIGHTS [IMAGE] [-top 5] " + BACKEND_FLAGS,
    "detect": "detect CFG WEIGHTS [IMAGE] [-thresh .5] ...   detector test with the .data that fits the cfg",
    "demo": "demo CFG WEIGHTS [VIDEO] [-c 0] ...   detector demo with the .data that fits the cfg",
    "partial": "partial CFG WEIGHTS OUT N     the first N layers' weights, seen = 0",
    "dump": "dump CFG WEIGHTS INPUT OUT.h5 " + BACKEND_FLAGS + "   every layer's output",
    "compare": "compare A.h5 B.h5 [-rtol 1e-4]",
    "export": "export CFG WEIGHTS model.onnx [-opset 17]   an ONNX inference graph (needs torch and onnx)",
    "init": "init CFG OUT.weights [-seed 0]   untrained weights, Darknet's initialisation",
    "summary": "summary CFG [-width W -height H]   the layer table",
    "bench": "bench CFG [-size 416] [-batch 1] [-runs 5] " + BACKEND_FLAGS + "   per-layer milliseconds",
    "models": "models     the bundled cfgs, .data files and weights (usable by name anywhere)",
}
USAGE = ("usage: darknet_py <function> ...   (darknet_py <function> -h: its flags; --version; --debug: tracebacks;\n"
         "       -max_pixels N: refuse larger images, default 400,000,000)\n"
         + "\n".join(f"  {usage}" for usage in USAGES.values()))
# AlexeyAB's flags that darknet_py does not implement: refused by name, never ignored
NOT_IMPLEMENTED = {"-show_imgs": "showing augmented images"}
NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class Args:
    """Darknet's find_arg / find_float_arg: flags anywhere, taken out, the rest positional;
    a flag left over when the positionals are read is an error that names it."""

    def __init__(self, argv, command="detector test"):
        self.argv = list(argv)
        self.command = command

    def _take(self, flag):
        if flag in self.argv:
            i = self.argv.index(flag)
            if i + 1 >= len(self.argv):
                raise DarknetError(f"{flag} needs a value")
            value = self.argv[i + 1]
            del self.argv[i:i + 2]
            return value
        return None

    def _number(self, flag, default, cast, kind, low, high, open_low):
        value = self._take(flag)
        if value is None:
            return default
        try:
            number = cast(value)
        except ValueError:
            raise DarknetError(f"{flag} needs {kind}, got '{value}'") from None
        too_low = low is not None and (number <= low if open_low else number < low)
        if isinstance(number, float) and math.isnan(number) or too_low or high is not None and number > high:
            bounds = f"{'(' if open_low else '['}{'-inf' if low is None else low}, {'inf' if high is None else high}]"
            raise DarknetError(f"{flag} must be in {bounds}, got {value}")
        return number

    def float(self, flag, default, low=None, high=None, open_low=False):
        return self._number(flag, default, float, "a number", low, high, open_low)

    def int(self, flag, default, low=None, high=None):
        return self._number(flag, default, int, "an integer", low, high, False)

    def str(self, flag, default=None):
        value = self._take(flag)
        return default if value is None else value

    def flag(self, flag):
        if flag in self.argv:
            self.argv.remove(flag)
            return True
        return False

    def positional(self, count, optional=0):
        """The positional arguments, once every flag has been taken."""
        for arg in self.argv:
            if arg.startswith("-") and len(arg) > 1 and not NUMBER.match(arg):
                if arg in NOT_IMPLEMENTED:
                    raise DarknetError(f"{arg} ({NOT_IMPLEMENTED[arg]}) is not implemented by darknet_py")
                raise DarknetError(f"unknown option '{arg}' for {self.command}; usage: darknet_py "
                                   f"{USAGES[self.command]}")
        if not count <= len(self.argv) <= count + optional:
            raise DarknetError(f"usage: darknet_py {USAGES[self.command]}")
        return self.argv + [None] * (count + optional - len(self.argv))


def has_cuda_device():
    """Cheap check that needs no torch import (the NumPy path never imports torch)."""
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


def detection_flags(args):
    """detector test's and detect's flags: thresh, hier, nms, out, json, ext_output."""
    args.flag("-dont_show")                       # darknet_py never opens windows
    args.flag("-letter_box")                      # pjreddie's test letterboxes already
    return dict(thresh=args.float("-thresh", .5, 0, 1), hier_thresh=args.float("-hier", .5, 0, 1),
                nms=args.float("-nms", .45, 0, 1), outfile=args.str("-out"), json_path=args.str("-json"),
                ext_output=args.flag("-ext_output"))


def detector_test(args):
    from .detector import test_detector
    flags = detection_flags(args)
    backend = backend_choice(args)
    datacfg, cfg, weights, image = args.positional(3, 1)
    return test_detector(datacfg, cfg, weights, image, backend=backend, **flags)


def detect(args):
    from .detector import default_data_for, test_detector
    flags = detection_flags(args)
    backend = backend_choice(args)
    cfg, weights, image = args.positional(2, 1)
    return test_detector(default_data_for(cfg), cfg, weights, image, backend=backend, **flags)


def demo_command(args, short=False):
    """detector demo DATA CFG WEIGHTS [VIDEO], or demo CFG WEIGHTS [VIDEO] with the .data that fits."""
    from .demo import DemoOptions, demo_detector
    from .detector import default_data_for
    args.flag("-dont_show")                       # darknet_py never opens windows
    camera = args.int("-c", None, 0)
    options = DemoOptions(thresh=args.float("-thresh", .5, 0, 1), hier_thresh=args.float("-hier", .5, 0, 1),
                          avgframes=args.int("-avgframes", 3, 1, 1000), out_filename=args.str("-out_filename"),
                          prefix=args.str("-prefix"), ext_output=args.flag("-ext_output"),
                          benchmark=args.flag("-benchmark"))
    ports = {flag: args.int(flag, None, 0, 65535) for flag in ("-json_port", "-mjpeg_port")}
    backend = backend_choice(args)
    if short:
        cfg, weights, video = args.positional(2, 1)
        datacfg = default_data_for(cfg)
    else:
        datacfg, cfg, weights, video = args.positional(3, 1)
    if video is None and camera is None:
        camera = 0                                # darknet: the first camera without a file
    return demo_detector(datacfg, cfg, weights, video, camera, options, json_port=ports["-json_port"],
                         mjpeg_port=ports["-mjpeg_port"], backend=backend)


def detector_train(args):
    from .detector import train
    gpus_flag = args.str("-gpus") or ""
    gpus = [int(g) for g in gpus_flag.split(",") if g.strip().isdigit()]
    if gpus_flag and len(gpus) != len(gpus_flag.split(",")):
        raise DarknetError(f"-gpus takes device numbers like 0,1; got '{gpus_flag}'")
    nogpu = "-nogpu" in args.argv
    if len(gpus) == 1:
        args.argv += ["-i", str(gpus[0])]
    elif len(gpus) > 1 and not nogpu and not has_cuda_device():
        raise DarknetError(f"-gpus {gpus_flag}: no CUDA device on this machine (-nogpu trains the processes on "
                           "the CPU)")
    args.flag("-dont_show")
    options = dict(clear=args.flag("-clear"), chart=args.str("-chart"), seed=args.int("-seed", 0),
                   max_batches=args.int("-max_batches", 0, 0) or None, workers=args.int("-workers", 2, 1),
                   calc_map=args.flag("-map"), prefetch=args.int("-prefetch", 2, 1, 64),
                   worker_processes=args.flag("-worker_processes"))
    backend = backend_choice(args)
    datacfg, cfg, weights = args.positional(2, 1)
    return train(datacfg, cfg, weights, gpus, nogpu, backend, **options)


def detector_evaluate(args):
    from .detector import evaluate
    sub = args.command.split()[1]
    flags = dict(outfile=args.str("-out"), iou_thresh=args.float("-iou_thresh", .5, 0, 1, open_low=True),
                 points=args.int("-points", 0), thresh=args.float("-thresh", .25, 0, 1),
                 batch=args.int("-batch", 0, 0), hier_thresh=args.float("-hier", .5, 0, 1))
    if flags["points"] not in (0, 11, 101):
        raise DarknetError(f"-points must be 0 (area under curve), 11 (VOC2007) or 101 (COCO), "
                           f"got {flags['points']}")
    backend = backend_choice(args)
    datacfg, cfg, weights = args.positional(3)
    return evaluate(sub, datacfg, cfg, weights, backend, **flags)


def detector_calc_anchors(args):
    from .detector import calc_anchors
    flags = dict(clusters=args.int("-num_of_clusters", 5, 1), width=args.int("-width", 416, 1),
                 height=args.int("-height", 416, 1), seed=args.int("-seed", 0), show=args.flag("-show"))
    args.flag("-dont_show")
    (datacfg,) = args.positional(1)
    return calc_anchors(datacfg, **flags)


def classifier_command(args):
    from . import classifier
    from .loading import load_verbose
    sub = args.command.split()[1]
    top = args.int("-top", 0, 0)
    clear = args.flag("-clear")
    max_batches = args.int("-max_batches", 0, 0) or None
    backend = backend_choice(args)
    if sub == "train":
        datacfg, cfg, weights = args.positional(2, 1)
        try:
            classifier.train_classifier(datacfg, cfg, weights, backend, clear, max_batches=max_batches)
        except KeyboardInterrupt:
            return 130
    elif sub == "valid":
        datacfg, cfg, weights = args.positional(3)
        classifier.validate_classifier(datacfg, load_verbose(cfg, weights, backend))
    else:
        datacfg, cfg, weights, image = args.positional(3, 1)
        classifier.predict_classifier(datacfg, load_verbose(cfg, weights, backend), image, top or None)
    return 0


def partial(args):
    from .loading import load_verbose
    cfg, weights, out, cutoff = args.positional(4)
    try:
        cutoff = int(cutoff)
    except ValueError:
        raise DarknetError(f"partial: N must be an integer, got '{cutoff}'") from None
    cutoff = max(cutoff, 0)             # darknet: a negative N writes no layer, the header only
    net = load_verbose(cfg, weights)
    net.seen = 0                        # darknet partial loads with clear=1
    net.save_weights(out, cutoff)
    print(f"Saving weights to {out}", file=sys.stderr)
    return 0


def dump(args):
    from .dump import dump, load_input
    from .loading import load_verbose
    backend = backend_choice(args)
    cfg, weights, source, out = args.positional(4)
    net = load_verbose(cfg, weights, backend)
    dump(net, net.check_input(load_input(source, net)), out)
    print(f"Wrote {len(net.layers)} layers to {out}", file=sys.stderr)
    return 0


def compare(args):
    from .dump import compare
    rtol = args.float("-rtol", 1e-4, 0)
    a, b = args.positional(2)
    rows, first = compare(a, b, rtol)
    print(f"{'layer':8s} {'max abs err':>12s} {'max rel err':>12s}")
    for name, err, rel, verdict in rows:
        print(f"{name:8s} {err:12.4g} {rel:12.4g}  {verdict}")
    if first:
        print(f"first divergent layer: {first} (rtol {rtol:g})")
        return 1
    print(f"all {len(rows)} layers agree within rtol {rtol:g}")
    return 0


def export(args):
    from .export import MAX_OPSET, export_onnx
    from .loading import load_verbose
    opset = args.int("-opset", 17, 17, MAX_OPSET)
    cfg, weights, out = args.positional(3)
    net = load_verbose(cfg, weights)
    export_onnx(net, out, opset)
    print(f"Wrote {out} (opset {opset})", file=sys.stderr)
    return 0


def init(args):
    from .network import Network
    seed = args.int("-seed", 0)
    cfg, out = args.positional(2)
    net = Network(cfg, seed=seed)
    net.save_weights(out)
    print(f"Wrote untrained weights ({net.params.size} floats, seed {seed}) to {out}", file=sys.stderr)
    return 0


def summary(args):
    from .network import Network
    width, height = args.int("-width", 0, 0), args.int("-height", 0, 0)
    (cfg,) = args.positional(1)
    net = Network(cfg)
    if width or height:
        net.resize(width or net.width, height or net.height)
    print(net.summary())
    return 0


def models(args):
    """The bundled cfgs, their classes, and which have shipped weights."""
    from .resources import bundled_models, bundled_root
    args.positional(0)
    print(f"bundled in {bundled_root()} (pass a name below where a path is asked for):")
    for cfg, classes, weights in bundled_models():
        print(f"  {cfg.name:28s} {'classes ' + str(classes) if classes else 'classifier':14s} "
              f"{'weights ' + weights.name if weights else ''}")
    for data in sorted((bundled_root() / "cfg").glob("*.data")):
        print(f"  {data.name}")
    return 0


def bench(args):
    """Darknet's layer table with each layer's milliseconds and GFLOP/s."""
    import numpy as np

    from .network import Network
    size, batch, runs = args.int("-size", 0, 0), args.int("-batch", 1, 1), args.int("-runs", 5, 1)
    name, device, precision = backend_choice(args)
    (cfg,) = args.positional(1)
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
    return 0


COMMANDS = {
    "detector test": detector_test, "detector train": detector_train, "detector valid": detector_evaluate,
    "detector recall": detector_evaluate, "detector map": detector_evaluate,
    "detector calc_anchors": detector_calc_anchors, "detector demo": demo_command,
    "demo": lambda args: demo_command(args, short=True),
    "classifier train": classifier_command, "classifier valid": classifier_command,
    "classifier predict": classifier_command,
    "detect": detect, "partial": partial, "dump": dump, "compare": compare, "export": export, "init": init,
    "summary": summary, "bench": bench, "models": models,
}


def run(argv):
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] == "--version":
        from . import __version__
        print(f"darknet_py {__version__}")
        return 0
    word, rest = argv[0], argv[1:]
    if word in ("detector", "classifier"):
        if not rest or rest[0].startswith("-"):
            subs = ", ".join(key.split()[1] for key in COMMANDS if key.startswith(word + " "))
            if rest and rest[0] in ("-h", "--help"):
                print("\n".join(f"usage: darknet_py {u}" for k, u in USAGES.items() if k.startswith(word + " ")))
                return 0
            raise DarknetError(f"usage: darknet_py {word} [{subs}] ...")
        word, rest = f"{word} {rest[0]}", rest[1:]
        if word not in COMMANDS:
            first = word.split()[0]
            subs = ", ".join(key.split()[1] for key in COMMANDS if key.startswith(first + " "))
            raise DarknetError(f"unknown {first} command '{word.split()[1]}' ({subs})")
    if word not in COMMANDS:
        raise DarknetError(f"unknown command '{word}'\n{USAGE}")
    if "-h" in rest or "--help" in rest:
        print(f"usage: darknet_py {USAGES[word]}")
        return 0
    args = Args(rest, word)
    if "-max_pixels" in rest:            # any command that reads images
        from .data.image import set_max_pixels
        set_max_pixels(args.int("-max_pixels", 0, 1))
    return COMMANDS[word](args)


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
    except BrokenPipeError:
        # the reader went away (| head): end quietly, as a C program killed by SIGPIPE would
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as err:
        if debug:
            raise
        where = f"{err.filename}: " if err.filename else ""
        print(f"darknet_py: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("darknet_py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
