"""darknet_py detector train: darknet detector.c:train_detector, step for step.

One line per iteration (``N: loss, avg avg, rate rate, S seconds, I images``),
``backup/NAME.backup`` every 100 iterations, ``backup/NAME_N.weights`` at Darknet's
schedule (every 100 below 1000, then every 10000), ``backup/NAME_final.weights`` at the end;
every write atomic, Ctrl-C saves a backup and exits. With ``random`` in the region or yolo
layer the input size changes every 10 batches (``multiscale_size``: Darknet's rule, or
AlexeyAB's range), drawn from the batch number so that a resumed run continues the same
schedule."""
import time
from pathlib import Path

import numpy as np

from ..data.datafile import DataConfig
from ..data.labels import read_list
from ..data.loader import DetectionLoader
from ..errors import DarknetError
from .chart import Chart
from .checkpoints import Checkpoints


def multiscale_size(seed, batch_num, base_width, max_batches, random=1, step=32):
    """The input size for the 10 batches from ``batch_num`` (a multiple of 10), drawn from the
    batch number so that a resumed run trains at the sizes an uninterrupted one would.

    ``random=1`` (the reference commit's rule): (rand() % 10 + 10) * 32, i.e. 320..608 whatever
    the cfg's size, and 608 for the last 200 batches. Another ``random`` r (AlexeyAB's, e.g. 1.4):
    the cfg's size times a factor in [1, r] or its inverse, rounded as AlexeyAB rounds, in steps
    of ``step`` (resize_step), the largest (r times) for the last 100 batches. AlexeyAB also takes
    the largest at a run's first batch, to check memory: not here, where a resumed run must
    draw what an uninterrupted one draws."""
    rng = np.random.default_rng([seed, batch_num, 7])
    if random == 1:
        dim = (int(rng.integers(10)) + 10) * 32
        return 608 if batch_num + 200 > max_batches else dim
    factor = float(np.float32(rng.uniform(1, random)))         # rand_scale(random)
    if rng.integers(2):
        factor = 1 / factor
    dim = int(round(factor * base_width / step + 1)) * step
    if factor < 1 and dim > base_width:
        dim = base_width
    if batch_num > max_batches - 100:
        dim = int(round(random * base_width / step + 1)) * step
    return max(dim, step)


def checkpoint_due(i):
    """darknet: NAME_i.weights when i % 10000 == 0 or (i < 1000 and i % 100 == 0)."""
    return i % 10000 == 0 or (i < 1000 and i % 100 == 0)


def stop_on_term():
    """SIGTERM (and SIGINT, even where a background shell ignores it) stop training the way
    Ctrl-C does: a backup is saved first."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)


def start_network(cfgfile, weightfile, backend, seed, clear):
    """Darknet's load_network for training: weights (or a partial .conv.N) when given, else
    Darknet's initialisation; -clear resets seen."""
    from ..network import Network
    name, device, precision = backend
    net = Network(cfgfile, backend=name, device=device, seed=seed, init=weightfile is None,
                  precision=precision)
    if weightfile:
        net.load_weights(weightfile, allow_prefix=True)
    if clear:
        net.seen = 0
    return net


class MapCheck:
    """AlexeyAB's -map: mAP@0.5 of the validation list every max(4 epochs, 100) iterations (not
    before burn_in) and at the last one, at the cfg's size; NAME_best.weights when it improves."""

    def __init__(self, datacfg, net, train_images, out):
        from ..evaluate.validate import validation_list
        validation_list(DataConfig(datacfg))           # a missing valid= list fails now, not later
        self.datacfg, self.net, self.out = datacfg, net, out
        self.size = (net.width, net.height)
        self.every = max(4 * train_images // (net.net.batch * net.net.subdivisions), 100)
        self.next = max(net.batch_num + self.every, net.net.burn_in)
        self.best = -1.0

    def after(self, i, limit, chart, checkpoints):
        """After iteration i: when due, the mAP, drawn on the chart, and the best weights kept."""
        if i < self.next and i != limit:
            return
        self.next = max(i + self.every, self.net.net.burn_in)
        value = self.measure()
        if chart:
            chart.add_map(i, value)
        if value > self.best:
            self.best = value
            self.out(f"New best mAP@0.50 = {value * 100:.2f} %")
            checkpoints.save("_best.weights")

    def measure(self):
        """The mAP now (0..1), the network put back as it was."""
        from ..evaluate.validate import validate_detector_map
        trained_at = (self.net.width, self.net.height)
        if trained_at != self.size:
            self.net.resize(*self.size)
        try:
            value, _ = validate_detector_map(self.datacfg, self.net, out=self.out)
        finally:
            if trained_at != self.size:
                self.net.resize(*trained_at)
        return value


def train_detector(datacfg, cfgfile, weightfile=None, backend=("numpy", None, "fp32"), clear=False,
                   seed=0, max_batches=None, chart=None, workers=2, rank=0, world=1,
                   reduce_gradients=None, calc_map=False, prefetch=2, worker_processes=False, out=print):
    data = DataConfig(datacfg)
    train_list = data.file("train", "data/train.list")
    backup = Path(data.get("backup", "backup"))
    base = Path(cfgfile).stem
    out(base)
    net = start_network(cfgfile, weightfile, backend, seed, clear)
    net.world = world
    region = net.output_layer               # a [region] or the last [yolo] head
    if region.kind not in ("region", "yolo"):
        raise DarknetError(f"detector train needs a [region] or [yolo] last layer, not [{region.kind}]", cfgfile)
    limit = max_batches or net.net.max_batches
    images_per_step = net.net.batch * net.net.subdivisions
    imgs = images_per_step * world
    out(f"Learning Rate: {net.net.learning_rate:g}, Momentum: {net.net.momentum:g}, "
        f"Decay: {net.net.decay:g}")
    checkpoints = Checkpoints(net, backup, base, out, write=rank == 0)
    checkpoints.check(limit, cfgfile, chart)
    paths = read_list(train_list)
    map_check = MapCheck(datacfg, net, len(paths), out) if calc_map and rank == 0 else None
    loader = DetectionLoader(paths, train_list, region, region.jitter, net.net.hue,
                             net.net.saturation, net.net.exposure, seed=seed, workers=workers, rank=rank,
                             augmentation=net.net.augmentation, flips=bool(net.net.flip), world=world,
                             depth=prefetch, allocate=net.backend.host_buffer, letter_box=net.net.letter_box,
                             processes=worker_processes)
    base_width = net.width
    chart = Chart(chart) if chart and rank == 0 else None
    avg_loss = avg_time = -1.0
    stop_on_term()
    try:
        while net.batch_num < limit:
            batch_num = net.batch_num
            if region.random and batch_num % 10 == 0:
                dim = multiscale_size(seed, batch_num, base_width, limit, region.random, net.net.resize_step)
                out("Resizing")
                out(str(dim))
                if (dim, dim) != (net.width, net.height):
                    net.resize(dim, dim)
            start = time.time()
            x, truth = loader.batch(batch_num, images_per_step, net.width, net.height)
            out(f"Loaded: {time.time() - start:f} seconds")
            start = time.time()
            hook = None
            if reduce_gradients:
                momentum_part = reduce_gradients.snapshot(net)
                def hook(net, state, momentum_part=momentum_part):
                    return reduce_gradients(net, momentum_part)
            loss = net.train_step(x, truth, log=out, before_update=hook)
            avg_loss = loss if avg_loss < 0 else avg_loss * .9 + loss * .1
            i = net.batch_num
            seconds = time.time() - start
            avg_time = seconds if avg_time < 0 else avg_time * .99 + seconds * .01     # AlexeyAB's
            out(f"{i}: {loss:f}, {avg_loss:f} avg, {net.learning_rate():f} rate, {seconds:f} seconds, "
                f"{i * imgs} images, {(limit - i) * avg_time / 3600:f} hours left")
            if chart:
                chart.add(i, loss, avg_loss)
            if i % 100 == 0:
                checkpoints.save(".backup")
                checkpoints.save("_last.weights")
            if checkpoint_due(i):
                checkpoints.save(f"_{i}.weights")
            if map_check:
                map_check.after(i, limit, chart, checkpoints)
    except KeyboardInterrupt:
        if checkpoints.save(".backup"):
            out(f"Interrupted: saved {checkpoints.path('.backup')}")
        raise
    finally:
        loader.close()
    if chart:
        chart.draw()
    checkpoints.save("_final.weights")
    return net
