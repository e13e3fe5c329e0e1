"""What every layer shares: where its input comes from, its shapes, its parameters."""
from dataclasses import dataclass

import numpy as np


@dataclass
class BuildContext:
    """What a layer sees while the network is built (darknet: ``size_params``)."""
    index: int
    section: object          # cfg.Section
    shape: tuple             # (c, h, w) of the previous layer's output (or the net input)
    layers: list             # layers built so far
    net: object              # NetOptions
    cfg_dir: str


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

    # -- reference math (the NumPy backend) ------------------------------------------
    def forward(self, inputs, state):
        """inputs: list of arrays, one per ``input_layers`` entry; returns the output."""
        raise NotImplementedError


def check_positive(section, key, value, limit=1 << 20):
    """Reject sizes Darknet would misbehave on, or that would allocate absurd memory."""
    if value is None or value <= 0:
        section.fail(f"'{key}' must be positive, got {value}", key)
    if value > limit:
        section.fail(f"'{key}' = {value} is absurdly large (limit {limit})", key)
    return value
