"""[cost]: the training loss of a classifier or regressor (darknet: cost_layer.c)."""
import numpy as np

from .base import Layer

COST_TYPES = ("sse", "masked", "smooth", "L1", "seg", "wgan")


class Cost(Layer):
    kind = "cost"
    flat_output = True

    def __init__(self, ctx):
        super().__init__(ctx)
        s = ctx.section
        self.cost_type = s.str("type", "sse")
        if self.cost_type not in COST_TYPES:
            s.fail(f"unknown cost type '{self.cost_type}' (one of {', '.join(COST_TYPES)})", "type")
        self.scale = s.float("scale", 1)
        self.ratio = s.float("ratio", 0)
        self.noobject_scale = s.float("noobj", 1)
        self.thresh = s.float("thresh", 0)
        self.out_shape = (self.inputs, 1, 1)

    def summary(self):
        return f"cost                                           {self.inputs:4d}"

    def forward(self, inputs, state):
        # darknet: forward_cost_layer returns at once without truth, leaving its
        # (zeroed) output alone; network_output skips cost layers.
        return np.zeros((inputs[0].shape[0], self.inputs), dtype=np.float32)
