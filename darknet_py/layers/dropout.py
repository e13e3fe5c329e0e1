"""[dropout] (darknet: dropout_layer.c). At inference its output is its input."""
import numpy as np

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

    @property
    def scale(self):
        return 1.0 / (1.0 - self.probability)

    def forward(self, inputs, state):
        if not state.train:
            return inputs[0]
        # darknet: drop where rand_uniform() < probability, scale the rest by 1/(1-p)
        keep = state.rng.random(inputs[0].shape) >= self.probability
        mask = keep.astype(np.float32) * np.float32(self.scale)
        state.saved_for(self)["mask"] = mask
        return inputs[0] * mask

    def backward(self, inputs, output, delta, input_deltas, state):
        """Darknet's dropout shares its delta with the layer before and masks it in place."""
        if input_deltas[0] is not None:
            input_deltas[0][...] = (input_deltas[0] + delta) * state.saved_for(self)["mask"]
