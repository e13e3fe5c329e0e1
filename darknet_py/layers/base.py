"""What every layer shares: where its input comes from, its shapes, its parameters."""
from dataclasses import dataclass, field

import numpy as np

from .activations import INFERENCE_ONLY, NAMES


@dataclass
class BuildContext:
    """What a layer sees while the network is built (darknet: ``size_params``)."""
    index: int
    section: object          # cfg.Section
    shape: tuple             # (c, h, w) of the previous layer's output (or the net input)
    layers: list             # layers built so far
    net: object              # NetOptions
    cfg_dir: str


@dataclass
class ForwardState:
    """What a pass carries beside the tensors (darknet: network_state): the training flag,
    the truth, ``seen``, and per layer what its backward needs (x, x_norm, argmax...)."""
    train: bool = False
    truth: object = None
    seen: int = 0
    saved: dict = field(default_factory=dict)
    rng: object = None
    log: object = print

    def saved_for(self, layer):
        return self.saved.setdefault(layer.index, {})


class Layer:
    """A Darknet layer: options with Darknet's defaults, shapes, parameters, reference math.

    Subclasses set ``out_shape`` ((c, h, w), Darknet's out_c/out_h/out_w) and may set
    ``flat_output`` when Darknet's output is a plain vector per image.
    """
    kind = "layer"
    flat_output = False

    def __init__(self, ctx):
        self.index = ctx.index
        self.section = ctx.section
        self.in_shape = tuple(ctx.shape)
        self.input_layers = [ctx.index - 1]   # -1: the network input
        self.out_shape = self.in_shape
        self.params = {}
        self.updates = {}       # accumulated gradients, same names and layout as params
        s = ctx.section
        # darknet parse_network_cfg reads these for every layer
        self.stopbackward = s.int("stopbackward", 0)
        self.learning_rate_scale = s.float("learning_rate", 1)
        for ignored in ("dontload", "dontloadscales", "dontsave", "numload", "smooth"):
            s.str(ignored)

    # -- shapes ---------------------------------------------------------------
    @property
    def inputs(self):
        return int(np.prod(self.in_shape))

    @property
    def outputs(self):
        return int(np.prod(self.out_shape))

    @property
    def out_dims(self):
        """Per-image shape of the output array."""
        return (self.outputs,) if self.flat_output else tuple(self.out_shape)

    # -- parameters, in .weights order ------------------------------------------
    def param_shapes(self):
        """[(name, shape)] in the order Darknet reads and writes them."""
        return []

    def init_params(self, params, rng):
        """Fill freshly made parameters the way Darknet's make_*_layer does."""

    # -- reporting --------------------------------------------------------------
    def summary(self):
        return self.kind

    @property
    def bflops(self):
        return 0.0

    def training_refusal(self):
        """Why this layer cannot be trained here (an option whose training darknet_py does not
        implement), as (message, cfg option), or None."""
        activation = getattr(self, "activation", None)
        if activation in INFERENCE_ONLY:
            return f"training with activation={activation} is not implemented (inference only)", "activation"
        return None

    # -- reference math (the NumPy backend) ------------------------------------------
    def forward(self, inputs, state):
        """inputs: list of arrays, one per ``input_layers`` entry; returns the output.
        In training (``state.train``) a layer keeps what its backward needs in
        ``state.saved_for(self)``; loss layers write their delta and cost there too."""
        raise NotImplementedError

    def backward(self, inputs, output, delta, input_deltas, state):
        """Darknet's backward: ``delta`` is this layer's delta (the negative gradient of the
        loss w.r.t. its output); add (or, where Darknet does, write) into ``input_deltas``
        (None for the network input), and add parameter gradients into ``self.updates``."""
        raise NotImplementedError(f"[{self.kind}] has no backward pass")


def activation_option(section, default):
    """The ``activation=`` option, one of Darknet's activations (darknet get_activation)."""
    name = section.str("activation", default)
    if name not in NAMES:
        section.fail(f"unknown activation '{name}' (one of {', '.join(NAMES)})", "activation")
    return name


def earlier_layer(ctx, index, key):
    """A layer index of ``key`` (negative: counted back from this layer, as Darknet reads
    route and shortcut indices) as an absolute index of a layer built before this one."""
    absolute = index + ctx.index if index < 0 else index
    if not 0 <= absolute < ctx.index:
        ctx.section.fail(f"layer index {index} is out of range (this is layer {ctx.index})", key)
    return absolute


def check_positive(section, key, value, limit=1 << 20):
    """Reject sizes Darknet would misbehave on, or that would allocate absurd memory."""
    if value is None or value <= 0:
        section.fail(f"'{key}' must be positive, got {value}", key)
    if value > limit:
        section.fail(f"'{key}' = {value} is absurdly large (limit {limit})", key)
    return value


def refuse_options(section, defaults):
    """Options that would change the numbers and darknet_py does not compute (AlexeyAB's
    additions mostly): set to anything but their default, the cfg is refused at that line,
    never built without them. ``defaults``: {option: its default, or a tuple of the values
    that change nothing}."""
    for key, default in defaults.items():
        value = section.str(key)
        if value is None:
            continue
        try:
            unchanged = float(value) in [float(v) for v in (default if isinstance(default, tuple) else (default,))]
        except ValueError:
            unchanged = False
        if not unchanged:
            section.fail(f"'{key}={value}' is not supported by darknet_py", key)
