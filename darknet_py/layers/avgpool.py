"""[avgpool] / [avg]: global average over each channel (darknet: avgpool_layer.c)."""
from .base import Layer


class Avgpool(Layer):
    kind = "avgpool"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.out_shape = (self.in_shape[0], 1, 1)

    def summary(self):
        c, h, w = self.in_shape
        return f"avg                     {w:4d} x{h:4d} x{c:4d}   ->  {c:4d}"

    def forward(self, inputs, state):
        x = inputs[0]
        n, c, h, w = x.shape
        # darknet sums the h*w cells then divides
        return (x.reshape(n, c, h * w).sum(axis=2) / (h * w)).reshape(n, c, 1, 1)

    def backward(self, inputs, output, delta, input_deltas, state):
        """darknet backward_avgpool_layer: delta / (h*w) to every cell."""
        if input_deltas[0] is not None:
            _, h, w = self.in_shape
            input_deltas[0] += delta / (h * w)
