"""The NumPy reference backend: each layer's own ``forward``, which reads like the math."""
import numpy as np


class NumpyBackend:
    name = "numpy"

    def forward_layer(self, layer, inputs, state):
        return np.asarray(layer.forward(inputs, state), dtype=np.float32)

    def backward_layer(self, layer, inputs, output, delta, input_deltas, state):
        layer.backward(inputs, output, delta, input_deltas, state)
