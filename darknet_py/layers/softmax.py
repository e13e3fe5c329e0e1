"""[softmax] / [soft] (darknet: softmax_layer.c)."""
import numpy as np

from .base import Layer, check_positive
from .region import softmax, tree_softmax
from ..tree import find_tree, read_tree


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
        self.tree = None
        tree_name = s.str("tree")
        if tree_name:
            found = find_tree(tree_name, ctx.cfg_dir)
            if found is None:
                s.fail(f"tree file '{tree_name}' not found", "tree")
            self.tree = read_tree(found)
            if self.tree.n != self.inputs:
                s.fail(f"tree has {self.tree.n} nodes but the layer has {self.inputs} inputs", "tree")
        self.spatial = s.int("spatial", 0)
        if self.spatial:
            s.fail("'spatial' is not supported by darknet_py", "spatial")
        self.out_shape = (self.inputs, 1, 1)

    def summary(self):
        return f"softmax                                        {self.inputs:4d}"

    def forward(self, inputs, state):
        x = inputs[0].reshape(inputs[0].shape[0], -1) / np.float32(self.temperature)
        if self.tree is not None:
            return tree_softmax(x, self.tree, axis=1)
        n = x.shape[0]
        return softmax(x.reshape(n, self.groups, -1), axis=2).reshape(n, -1)
