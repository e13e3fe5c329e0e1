"""A Darknet network: layers built from a cfg, one flat float32 parameter buffer, a backend."""
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import weights as weights_io
from .backends import get_backend
from .cfg import read_cfg
from .errors import DarknetError
from .layers import DARKNET_ONLY, LAYER_TABLE, NET_SECTIONS, NetOptions
from .layers.base import BuildContext

MAX_FLOATS = 1 << 32          # 16 GiB of float32 in one tensor is a typo, not a network


@dataclass
class ForwardState:
    """What a forward pass carries beside the tensors (darknet: network_state)."""
    train: bool = False
    truth: object = None
    seen: int = 0
    extras: dict = field(default_factory=dict)


def build_layers(sections, cfg_path, width=None, height=None):
    """Turn parsed sections into (NetOptions, [layers]); shapes flow layer to layer."""
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
    first.warn_unused()
    if not (net.height and net.width and net.channels):
        raise DarknetError("[net] needs width, height and channels for an image network",
                           path, first.line)
    shape = (net.channels, net.height, net.width)
    layers = []
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

    def __init__(self, cfg_path, backend="numpy", device=None, seed=0, weights=None,
                 allow_prefix=False, init=True):
        self.cfg_path = str(cfg_path)
        self.sections = read_cfg(cfg_path)
        self.net, self.layers = build_layers(self.sections, self.cfg_path)
        self.backend = get_backend(backend, device)
        self.seen = 0
        self.header = None
        self.outputs = []
        n_floats = weights_io.layer_boundaries(self.layers)[-1]
        if n_floats > MAX_FLOATS:
            raise DarknetError(f"the network has {n_floats} parameters: absurdly large",
                               self.cfg_path)
        self.params = np.zeros(n_floats, dtype=np.float32)
        self._bind_params()
        self.seed = seed
        if weights is not None:
            self.load_weights(weights, allow_prefix)
        elif init:
            self.init_params()

    def _bind_params(self):
        """Give every layer views into the one buffer, in .weights order (zero copy)."""
        offset = 0
        for layer in self.layers:
            layer.params = {}
            for name, shape in layer.param_shapes():
                count = int(np.prod(shape))
                layer.params[name] = self.params[offset:offset + count].reshape(shape)
                offset += count

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

    def resize(self, width, height):
        """Rebuild the shapes for a new input size; parameters are kept (darknet resize_network)."""
        old = self.layers
        self.net, self.layers = build_layers(self.sections, self.cfg_path, width, height)
        for before, after in zip(old, self.layers):
            if before.param_shapes() != after.param_shapes():
                raise DarknetError(f"layer {after.index} ({after.kind}) cannot be resized: its "
                                   "parameters depend on the input size", self.cfg_path)
        self._bind_params()
        self.outputs = []

    # -- weights -------------------------------------------------------------------------
    def init_params(self, first_layer=0):
        """Darknet's random initialisation for the layers from ``first_layer`` on."""
        rng = np.random.default_rng(self.seed)
        for layer in self.layers[first_layer:]:
            layer.init_params(layer.params, rng)

    def load_weights(self, path, allow_prefix=False):
        """Read official weights; layers a partial file does not cover are initialised."""
        header, n_layers = weights_io.load_weights(path, self.layers, self.params, allow_prefix)
        self.seen = header.seen
        self.header = header
        self.init_params(n_layers)
        return n_layers

    def save_weights(self, path, cutoff=None):
        """Write an official .weights file (all layers, or the first ``cutoff``)."""
        n_floats = None
        if cutoff is not None:
            n_floats = ([0] + weights_io.layer_boundaries(self.layers))[min(cutoff, len(self.layers))]
        weights_io.save_weights(path, self.params, self.seen, n_floats)

    # -- running -------------------------------------------------------------------------
    def check_input(self, x):
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        expected = (self.channels, self.height, self.width)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise DarknetError(f"input of shape {tuple(x.shape)} does not fit the network: "
                               f"expected [N, {expected[0]}, {expected[1]}, {expected[2]}]",
                               self.cfg_path)
        return np.ascontiguousarray(x)

    def forward(self, x, state=None):
        """Run every layer on float32 ``x`` [N, C, H, W]; return the output layer's output.

        Every layer's output stays in ``self.outputs`` (in Darknet's layout)."""
        x = self.check_input(x)
        state = state or ForwardState(seen=self.seen)
        self.outputs = []
        for layer in self.layers:
            inputs = [x if i < 0 else self.outputs[i] for i in layer.input_layers]
            self.outputs.append(self.backend.forward_layer(layer, inputs, state))
        return self.outputs[self.output_layer.index]

    # -- reporting --------------------------------------------------------------------------
    def summary(self):
        """Darknet's per-layer table as parse_network_cfg prints it, with the BFLOPs total."""
        lines = ["layer     filters    size              input                output"]
        lines += [f"{layer.index:5d} {layer.summary()}" for layer in self.layers]
        lines.append(f"Total BFLOPS {sum(layer.bflops for layer in self.layers):5.3f}")
        return "\n".join(lines)

    def print_summary(self, file=sys.stderr):
        print(self.summary(), file=file)


def load_network(cfg, weights=None, backend="numpy", device=None, allow_prefix=False):
    """Build the network of a Darknet cfg and (optionally) load official weights.

    >>> net = load_network("cfg/yolov2-voc.cfg", "yolov2-voc.weights")   # doctest: +SKIP
    """
    return Network(cfg, backend=backend, device=device, weights=weights, allow_prefix=allow_prefix)
