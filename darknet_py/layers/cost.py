"""[cost]: the training loss of a classifier or regressor (darknet: cost_layer.c)."""
import numpy as np

from ..tree import SECRET_NUM
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
        n = inputs[0].shape[0]
        if state.truth is None:
            return np.zeros((n, self.inputs), dtype=np.float32)
        pred = inputs[0].reshape(n, -1)
        truth = np.asarray(state.truth, dtype=np.float32).reshape(pred.shape)
        if self.cost_type == "masked":
            # darknet writes SECRET_NUM over the prediction where the truth holds it (into the
            # layer before's output, which this leaves alone), so those entries cost nothing
            pred = np.where(truth == SECRET_NUM, truth, pred)
        diff = truth - pred
        if self.cost_type == "L1":                        # darknet l1_cpu
            error, delta = np.abs(diff), np.sign(diff).astype(np.float32)
        elif self.cost_type == "smooth":                  # darknet smooth_l1_cpu
            small = np.abs(diff) < 1
            error = np.where(small, diff * diff, 2 * np.abs(diff) - 1)
            delta = np.where(small, diff, np.sign(diff)).astype(np.float32)
        elif self.cost_type in ("sse", "masked"):         # darknet l2_cpu
            error, delta = diff * diff, diff
        else:
            raise NotImplementedError(f"cost type {self.cost_type} in training")
        saved = state.saved_for(self)
        saved["delta"] = delta
        saved["cost"] = float(error.sum(dtype=np.float64))
        return error.astype(np.float32)

    def backward(self, inputs, output, delta, input_deltas, state):
        """darknet backward_cost_layer: scale * delta added to the input's delta."""
        if input_deltas[0] is not None:
            input_deltas[0] += np.float32(self.scale) * delta.reshape(input_deltas[0].shape)
