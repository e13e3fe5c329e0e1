"""[dropout] (darknet: dropout_layer.c). At inference its output is its input."""
from .base import Layer


class Dropout(Layer):
    kind = "dropout"

    def __init__(self, ctx):
        super().__init__(ctx)
        s = ctx.section
        self.probability = s.float("probability", .5)
        if not 0 <= self.probability < 1:
            s.fail(f"probability must be in [0, 1), got {self.probability}", "probability")

    def summary(self):
        return f"dropout       p = {self.probability:.2f}               {self.inputs:4d}  ->  {self.inputs:4d}"

    def forward(self, inputs, state):
        return inputs[0]
