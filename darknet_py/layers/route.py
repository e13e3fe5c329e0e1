"""[route]: concatenate earlier layers' outputs along channels (darknet: route_layer.c);
AlexeyAB's ``groups``/``group_id`` take the group_id-th of ``groups`` equal channel slices of
each input (yolov4-tiny's CSP blocks)."""
import numpy as np

from .base import Layer, earlier_layer


class Route(Layer):
    kind = "route"

    def __init__(self, ctx):
        super().__init__(ctx)
        s = ctx.section
        indices = s.ints("layers")
        if not indices:
            s.fail("needs layers=", "layers")
        self.input_layers = [earlier_layer(ctx, i, "layers") for i in indices]
        self.groups = s.int("groups", 1)
        self.group_id = s.int("group_id", 0)
        if self.groups < 1 or not 0 <= self.group_id < self.groups:
            s.fail(f"groups={self.groups}, group_id={self.group_id}: need groups >= 1 and 0 <= group_id < groups",
                   "group_id")
        _, h, w = ctx.layers[self.input_layers[0]].out_shape
        c = 0
        for j in self.input_layers:
            oc, oh, ow = ctx.layers[j].out_shape
            if (oh, ow) != (h, w):
                s.fail(f"layer {j} is {ow}x{oh} but layer {self.input_layers[0]} is {w}x{h}: "
                       "routed layers must share width and height", "layers")
            if oc % self.groups:
                s.fail(f"groups={self.groups} does not divide layer {j}'s {oc} channels", "groups")
            c += oc // self.groups
        self.out_shape = (c, h, w)
        self.in_shape = self.out_shape

    def part(self, channels):
        """The channels of an input of ``channels`` that this route takes."""
        size = channels // self.groups
        return slice(self.group_id * size, (self.group_id + 1) * size)

    def summary(self):
        return "route " + "".join(f" {i}" for i in self.input_layers)

    def forward(self, inputs, state):
        if len(inputs) == 1:     # a view where the slice is contiguous (one image): no copy
            return np.ascontiguousarray(inputs[0][:, self.part(inputs[0].shape[1])])
        return np.concatenate([x[:, self.part(x.shape[1])] for x in inputs], axis=1)

    def backward(self, inputs, output, delta, input_deltas, state):
        """darknet backward_route_layer: each slice is added to the layer (and, with groups,
        the channels) it came from."""
        offset = 0
        for x, target in zip(inputs, input_deltas):
            part = self.part(x.shape[1])
            c = part.stop - part.start
            if target is not None:
                target[:, part] += delta[:, offset:offset + c]
            offset += c
