"""[route]: concatenate earlier layers' outputs along channels (darknet: route_layer.c)."""
import numpy as np

from .base import Layer


class Route(Layer):
    kind = "route"

    def __init__(self, ctx):
        super().__init__(ctx)
        s = ctx.section
        indices = s.ints("layers")
        if not indices:
            s.fail("needs layers=", "layers")
        self.input_layers = []
        for i in indices:
            absolute = i + ctx.index if i < 0 else i   # darknet: negative counts back from here
            if not 0 <= absolute < ctx.index:
                s.fail(f"layer index {i} is out of range (this is layer {ctx.index})", "layers")
            self.input_layers.append(absolute)
        first = ctx.layers[self.input_layers[0]]
        c, h, w = first.out_shape
        for j in self.input_layers[1:]:
            oc, oh, ow = ctx.layers[j].out_shape
            if (oh, ow) != (h, w):
                s.fail(f"layer {j} is {ow}x{oh} but layer {self.input_layers[0]} is {w}x{h}: "
                       "routed layers must share width and height", "layers")
            c += oc
        self.out_shape = (c, h, w)
        self.in_shape = self.out_shape

    def summary(self):
        return "route " + "".join(f" {i}" for i in self.input_layers)

    def forward(self, inputs, state):
        if len(inputs) == 1:
            return inputs[0]
        n = inputs[0].shape[0]
        return np.concatenate([x.reshape(n, -1, *x.shape[2:]) for x in inputs], axis=1)

    def backward(self, inputs, output, delta, input_deltas, state):
        """darknet backward_route_layer: each slice is added to the layer it came from."""
        offset = 0
        for x, target in zip(inputs, input_deltas):
            c = x.shape[1]
            if target is not None:
                target += delta[:, offset:offset + c].reshape(target.shape)
            offset += c
