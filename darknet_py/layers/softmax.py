"""[softmax] / [soft] (darknet: softmax_layer.c)."""
import numpy as np

from ..tree import SECRET_NUM, tree_option
from .activations import softmax, tree_softmax
from .base import Layer, check_positive


class Softmax(Layer):
    kind = "softmax"
    flat_output = True

    def __init__(self, ctx):
        super().__init__(ctx)
        s = ctx.section
        self.groups = check_positive(s, "groups", s.int("groups", 1), 1 << 20)
        self.temperature = s.float("temperature", 1)
        if self.temperature == 0:
            s.fail("temperature must not be 0", "temperature")
        if self.inputs % self.groups:
            s.fail(f"groups={self.groups} does not divide the {self.inputs} inputs", "groups")
        self.tree = tree_option(s, ctx.cfg_dir, self.inputs)
        self.noloss = s.int("noloss", 0)
        self.spatial = s.int("spatial", 0)
        if self.spatial:
            s.fail("'spatial' is not supported by darknet_py", "spatial")
        self.out_shape = (self.inputs, 1, 1)

    def summary(self):
        return f"softmax                                        {self.inputs:4d}"

    def forward(self, inputs, state):
        x = inputs[0].reshape(inputs[0].shape[0], -1) / np.float32(self.temperature)
        n = x.shape[0]
        if self.tree is not None:
            out = tree_softmax(x, self.tree, axis=1)
        else:
            out = softmax(x.reshape(n, self.groups, -1), axis=2).reshape(n, -1)
        if state.train and state.truth is not None and not self.noloss:
            self.loss(out, state.truth, state)
        return out

    def loss(self, output, truth, state):
        """darknet softmax_x_ent: delta = truth - p, cost = sum of -log p where truth != 0.

        With a tree, the GPU build (forward_softmax_layer_gpu, which trained darknet9000) then
        zeroes delta and cost where the truth is SECRET_NUM (fill_hierarchy's mark of a group
        with no labelled member); the CPU build does not, and trains those groups toward
        -1234. darknet_py follows the GPU build."""
        truth = np.asarray(truth, dtype=np.float32).reshape(output.shape)
        saved = state.saved_for(self)
        delta = truth - output
        with np.errstate(divide="ignore", invalid="ignore"):
            cost = np.where(truth != 0, -np.log(output), 0)
        if self.tree is not None:
            masked = truth == SECRET_NUM
            delta[masked] = 0
            cost[masked] = 0
        saved["delta"] = delta
        saved["cost"] = float(cost.sum(dtype=np.float64))

    def backward(self, inputs, output, delta, input_deltas, state):
        """darknet backward_softmax_layer: the delta passes unchanged (no Jacobian)."""
        if input_deltas[0] is not None:
            input_deltas[0] += delta.reshape(input_deltas[0].shape)
