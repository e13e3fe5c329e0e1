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


class Chart:
    """-chart FILE: the loss over iterations as a PNG, redrawn every few iterations."""

    def __init__(self, path):
        self.path, self.points = Path(path), []

    def add(self, i, loss, avg):
        self.points.append((i, loss, avg))
        if len(self.points) % 10 == 1:
            self.draw()

    def draw(self):
        from PIL import Image, ImageDraw

        from ..files import atomic_write
        w, h, pad = 640, 360, 40
        im = Image.new("RGB", (w, h), "white")
        d = ImageDraw.Draw(im)
        d.rectangle([pad, pad, w - pad // 2, h - pad], outline="black")
        pts = np.array(self.points, dtype=float)
        x0, x1 = pts[0, 0], max(pts[-1, 0], pts[0, 0] + 1)
        top = max(np.percentile(pts[:, 1], 95), pts[:, 2].max(), 1e-6)
        def sx(v):
            return pad + (v - x0) / (x1 - x0) * (w - 1.5 * pad)
        def sy(v):
            return h - pad - min(v, top) / top * (h - 2 * pad)
        for col, color in ((1, (160, 160, 255)), (2, (200, 0, 0))):
            d.line([(sx(p[0]), sy(p[col])) for p in pts], fill=color, width=1 if col == 1 else 2)
        d.text((pad, h - pad + 8), f"iteration {int(x0)} .. {int(pts[-1, 0])}", fill="black")
        d.text((pad, pad // 2 - 6), f"loss (blue), avg loss (red); axis top {top:.3g}", fill="black")
        atomic_write(self.path, lambda f: im.save(f, format="PNG"))


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


def train_detector(datacfg, cfgfile, weightfile=None, backend=("numpy", None, "fp32"), clear=False,
                   seed=0, max_batches=None, chart=None, workers=2, rank=0, world=1,
                   reduce_gradients=None, out=print):
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
    loader = DetectionLoader(read_list(train_list), train_list, region, region.jitter, net.net.hue,
                             net.net.saturation, net.net.exposure, seed=seed, workers=workers, rank=rank,
                             augmentation=net.net.augmentation, flips=bool(net.net.flip))
    base_width = net.width
    chart = Chart(chart) if chart and rank == 0 else None
    avg_loss = -1.0
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
            out(f"{i}: {loss:f}, {avg_loss:f} avg, {net.learning_rate():f} rate, "
                f"{time.time() - start:f} seconds, {i * imgs} images")
            if chart:
                chart.add(i, loss, avg_loss)
            if i % 100 == 0:
                checkpoints.save(".backup")
            if checkpoint_due(i):
                checkpoints.save(f"_{i}.weights")
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
