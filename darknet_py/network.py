"""A Darknet network: layers built from a cfg, one flat float32 parameter buffer, a backend."""
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import weights as weights_io
from .backends import get_backend
from .cfg import read_cfg
from .errors import DarknetError
from .layers import DARKNET_ONLY, LAYER_TABLE, NET_SECTIONS, NetOptions
from .layers.base import BuildContext, ForwardState
from .resources import resolve

MAX_FLOATS = 1 << 32          # 16 GiB of float32 in one tensor is a typo, not a network


def as_images(layer, arrays):
    """A flat output ([N, outputs], a [connected] layer's) as the [N, C, 1, 1] image Darknet's
    next layer sees (out_h = out_w = 1), as a view: deltas written into it reach the buffer."""
    if len(arrays) != 1 or arrays[0] is None or arrays[0].ndim != 2:
        return arrays
    return [arrays[0].reshape(arrays[0].shape[0], *layer.in_shape)]


def build_layers(sections, cfg_path, width=None, height=None, warn=True):
    """Turn parsed sections into (NetOptions, [layers]); shapes flow layer to layer.
    Unused options are warned about once, on the first build (not on every resize)."""
    path = str(cfg_path)
    first = sections[0]
    if first.kind not in NET_SECTIONS:
        raise DarknetError(f"the first section must be [net] or [network], not [{first.kind}]",
                           path, first.line)
    if width:
        first.options["width"] = (str(width), first.options.get("width", ("", first.line))[1])
    if height:
        first.options["height"] = (str(height), first.options.get("height", ("", first.line))[1])
    net = NetOptions.from_section(first)
    if warn:
        first.warn_unused()
    if not (net.height and net.width and net.channels):
        if first.options.get("inputs"):
            raise DarknetError("[net] has inputs= and no width/height: a sequence (rnn/gru/crnn) network, "
                               "which darknet_py does not build", path, first.line)
        raise DarknetError("[net] needs width, height and channels for an image network",
                           path, first.line)
    shape = (net.channels, net.height, net.width)
    layers: list = []
    cfg_dir = str(Path(path).parent)
    for section in sections[1:]:
        cls = LAYER_TABLE.get(section.kind)
        if cls is None:
            if section.kind in DARKNET_ONLY:
                reason = f"layer type [{section.kind}] is not supported by darknet_py"
            elif section.kind in NET_SECTIONS:
                reason = f"[{section.kind}] may only be the first section"
            else:
                reason = f"unknown section [{section.kind}]"
            raise DarknetError(reason, path, section.line)
        layer = cls(BuildContext(len(layers), section, shape, layers, net, cfg_dir))
        if layer.outputs > MAX_FLOATS:
            section.fail(f"output of {layer.out_shape} floats is absurdly large")
        if warn:
            section.warn_unused()
        layers.append(layer)
        shape = layer.out_shape
    if not layers:
        raise DarknetError("the cfg has no layers after [net]", path, first.line)
    return net, layers


class Network:
    """A built network. See :func:`darknet_py.load_network`.

    >>> net = load_network("cfg/yolov2-tiny-voc.cfg")              # doctest: +SKIP
    >>> out = net.forward(np.zeros((1, 3, 416, 416), np.float32))  # doctest: +SKIP
    """

    def __init__(self, cfg_path: str | Path, backend: str = "numpy", device: str | None = None, seed: int = 0,
                 weights: str | Path | None = None, allow_prefix: bool = False, init: bool = True,
                 precision: str = "fp32"):
        self.cfg_path = str(resolve(cfg_path))
        self.sections = read_cfg(self.cfg_path)
        self.net, self.layers = build_layers(self.sections, self.cfg_path)
        # the first layer that can run inference only (its cfg option, why), found once
        self.untrainable = next(((layer, refusal) for layer in self.layers
                                 if (refusal := layer.training_refusal())), None)
        self.backend = get_backend(backend, device, precision)
        self.seen = 0
        self.world = 1          # processes sharing each update (torch.distributed)
        self.header = None
        self.outputs: list = []
        n_floats = weights_io.layer_boundaries(self.layers)[-1]
        if n_floats > MAX_FLOATS:
            raise DarknetError(f"the network has {n_floats} parameters: absurdly large",
                               self.cfg_path)
        self.params = np.zeros(n_floats, dtype=np.float32)
        self.updates = np.zeros(n_floats, dtype=np.float32)   # darknet's *_updates, same layout
        self.rng = np.random.default_rng(seed)
        self._bind_params()
        self.seed = seed
        if weights is not None:
            self.load_weights(weights, allow_prefix)
        elif init:
            self.init_params()
        else:
            self.backend.prepare(self)

    def _bind_params(self):
        """Give every layer views into the one buffer, in .weights order (zero copy)."""
        views = zip(weights_io.param_views(self.layers, self.params),
                    weights_io.param_views(self.layers, self.updates))
        for layer, (params, updates) in zip(self.layers, views):
            layer.params, layer.updates = params, updates

    # -- shapes ------------------------------------------------------------------------
    @property
    def width(self):
        return self.net.width

    @property
    def height(self):
        return self.net.height

    @property
    def channels(self):
        return self.net.channels

    @property
    def output_layer(self):
        """darknet network_output_layer: the last layer that is not a cost layer."""
        for layer in reversed(self.layers):
            if layer.kind != "cost":
                return layer
        return self.layers[-1]

    @property
    def hierarchy(self):
        """darknet net->hierarchy: the class tree of a [softmax] with tree= (the classifier's
        output is then a tree of conditional probabilities), or None."""
        trees = [layer.tree for layer in self.layers if layer.kind == "softmax" and layer.tree is not None]
        return trees[-1] if trees else None

    def resize(self, width: int, height: int) -> None:
        """Rebuild the shapes for a new input size; parameters are kept (darknet resize_network)."""
        old = self.layers
        self.backend.sync_params(self)
        self.net, self.layers = build_layers(self.sections, self.cfg_path, width, height, warn=False)
        for before, after in zip(old, self.layers):
            if before.param_shapes() != after.param_shapes():
                raise DarknetError(f"layer {after.index} ({after.kind}) cannot be resized: its "
                                   "parameters depend on the input size", self.cfg_path)
        self._bind_params()
        self.backend.prepare(self)
        self.outputs = []

    # -- weights -------------------------------------------------------------------------
    def init_params(self, first_layer: int = 0) -> None:
        """Darknet's random initialisation for the layers from ``first_layer`` on."""
        rng = np.random.default_rng(self.seed)
        for layer in self.layers[first_layer:]:
            layer.init_params(layer.params, rng)
        self.backend.prepare(self)

    def load_weights(self, path: str | Path, allow_prefix: bool = False) -> int:
        """Read official weights; layers a partial file does not cover are initialised."""
        header, n_layers = weights_io.load_weights(resolve(path), self.layers, self.params, allow_prefix)
        self.seen = header.seen
        self.header = header
        self.init_params(n_layers)
        return n_layers

    def save_weights(self, path: str | Path, cutoff: int | None = None) -> None:
        """Write an official .weights file (all layers, or the first ``cutoff``)."""
        self.backend.sync_params(self)
        n_floats = None
        if cutoff is not None:
            n_floats = ([0] + weights_io.layer_boundaries(self.layers))[min(cutoff, len(self.layers))]
        weights_io.save_weights(path, self.params, self.seen, n_floats)

    # -- running -------------------------------------------------------------------------
    def check_input(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        expected = (self.channels, self.height, self.width)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise DarknetError(f"input of shape {tuple(x.shape)} does not fit the network: "
                               f"expected [N, {expected[0]}, {expected[1]}, {expected[2]}]",
                               self.cfg_path)
        return np.ascontiguousarray(x)

    def forward(self, x, state: ForwardState | None = None) -> np.ndarray:
        """Run every layer on float32 ``x`` [N, C, H, W]; return the output layer's output
        as a NumPy array.

        Every layer's output stays in ``self.outputs`` (backend arrays in Darknet's layout;
        ``output(i)`` gives NumPy). With a training ``state``, loss layers fill their deltas
        (``self.deltas``) and costs."""
        backend = self.backend
        x = backend.asarray(self.check_input(x))
        state = state or ForwardState(seen=self.seen)
        self.input = x
        self.outputs = []
        self.deltas = []
        with backend.running(state.train):
            for layer in self.layers:
                inputs = as_images(layer, [x if i < 0 else self.outputs[i] for i in layer.input_layers])
                out = backend.forward_layer(layer, inputs, state)
                self.outputs.append(out)
                if state.train:
                    loss_delta = state.saved_for(layer).get("delta")
                    self.deltas.append(backend.zeros_like(out) if loss_delta is None
                                       else backend.asarray(loss_delta).reshape(out.shape))
        return self.output(self.output_layer.index)

    def predict(self, x) -> np.ndarray:
        """The output layer's inference output for ``x`` [N, C, H, W] by the backend's fastest
        path (torch: batch norm folded, channels_last, a CUDA graph per input shape; the CPU
        backends: ``forward``). Unlike ``forward`` it keeps no per-layer outputs."""
        out = self.backend.predict(self, self.check_input(x))
        return self.forward(x) if out is None else out

    def output(self, index: int) -> np.ndarray:
        """Layer ``index``'s output of the last pass, as a NumPy array."""
        return self.backend.to_numpy(self.outputs[index])

    def delta(self, index: int) -> np.ndarray:
        """Layer ``index``'s delta after the last backward pass, as a NumPy array."""
        return self.backend.to_numpy(self.deltas[index])

    def backward(self, state: ForwardState) -> None:
        """darknet backward_network: layers in reverse, each adding into its inputs' deltas."""
        for layer in reversed(self.layers):
            if layer.stopbackward:
                break
            inputs = as_images(layer, [self.input if i < 0 else self.outputs[i] for i in layer.input_layers])
            input_deltas = as_images(layer, [None if i < 0 else self.deltas[i] for i in layer.input_layers])
            self.backend.backward_layer(layer, inputs, self.outputs[layer.index],
                                        self.deltas[layer.index], input_deltas, state)

    def cost(self, state: ForwardState) -> float:
        """darknet calc_network_cost: the mean over the layers that have a cost."""
        costs = [saved["cost"] for saved in state.saved.values() if "cost" in saved]
        return float(np.float32(sum(costs) / len(costs))) if costs else 0.0

    @property
    def batch_num(self):
        """darknet get_current_batch: seen / (batch * subdivisions), over all processes."""
        return self.seen // (self.net.batch * self.net.subdivisions * self.world)

    def learning_rate(self):
        from .train import current_rate
        return current_rate(self.net, self.batch_num, self.rng)

    def update(self) -> float:
        """darknet update_network: momentum SGD on every layer with parameters."""
        lr = self.learning_rate()
        self.backend.update(self, lr, self.net.batch * self.net.subdivisions * self.world,
                            self.net.momentum, self.net.decay)
        return lr

    def train_step(self, x, truth, log: Callable[[str], object] = print,
                   before_update: Callable | None = None) -> float:
        """One darknet train_network call: ``x`` holds batch*subdivisions images, run as
        ``subdivisions`` passes (seen grows before each; forward, loss, backward,
        gradients accumulated), updating when (seen/batch) % subdivisions == 0.
        ``truth`` is Darknet's net->truth: [batch, 30, 5] rows (x, y, w, h, class) for a
        region network, one-hot [batch, classes] for a classifier. ``before_update(net,
        state)`` sees the accumulated gradients (``net.updates``) before each update.
        Returns the passes' summed cost divided by the number of images."""
        x = self.check_input(x)
        truth = np.asarray(truth, dtype=np.float32)
        if self.untrainable:
            layer, refusal = self.untrainable
            layer.section.fail(*refusal)
        per_pass = self.net.batch
        if x.shape[0] % per_pass:
            raise DarknetError(f"train_step got {x.shape[0]} images; the cfg's batch/subdivisions "
                               f"is {per_pass}", self.cfg_path)
        total = 0.0
        for start in range(0, x.shape[0], per_pass):
            self.seen += per_pass * self.world   # images over all processes
            state = ForwardState(train=True, truth=truth[start:start + per_pass], seen=self.seen,
                                 rng=self.rng, log=log)
            self.forward(x[start:start + per_pass], state)
            self.backward(state)
            total += self.cost(state)
            if (self.seen // per_pass) % self.net.subdivisions == 0:
                if before_update:
                    before_update(self, state)
                self.update()
        return float(np.float32(total / x.shape[0]))

    # -- reporting --------------------------------------------------------------------------
    def summary(self) -> str:
        """Darknet's per-layer table as parse_network_cfg prints it, with the BFLOPs total."""
        lines = ["layer     filters    size              input                output"]
        lines += [f"{layer.index:5d} {layer.summary()}" for layer in self.layers]
        lines.append(f"Total BFLOPS {sum(layer.bflops for layer in self.layers):5.3f}")
        return "\n".join(lines)

    def print_summary(self, file=sys.stderr):
        print(self.summary(), file=file)


def load_network(cfg: str | Path, weights: str | Path | None = None, backend: str = "numpy",
                 device: str | None = None, allow_prefix: bool = False, precision: str = "fp32") -> Network:
    """Build the network of a Darknet cfg and (optionally) load official weights.

    ``precision`` "fp16" or "bf16" (torch backend only, the CLI's ``-half``): ``predict`` runs
    the folded network in that dtype (the region decode in fp32) and ``forward`` its
    convolutions; training convolves in bf16 with fp32 gradients and updates.

    >>> net = load_network("cfg/yolov2-voc.cfg", "yolov2-voc.weights")   # doctest: +SKIP
    """
    return Network(cfg, backend=backend, device=device, weights=weights, allow_prefix=allow_prefix,
                   precision=precision)
