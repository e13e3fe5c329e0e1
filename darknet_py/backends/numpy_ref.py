"""The NumPy reference backend: each layer's own ``forward``/``backward``, which read
like the math. Arrays are NumPy arrays that share the network's parameter buffer."""
import contextlib

import numpy as np

F = np.float32


class NumpyBackend:
    """See backends/base.py for the contract."""
    name = "numpy"
    on_gpu = False

    def prepare(self, net):
        """Nothing to do: layers already view the network's NumPy buffer."""

    def sync_params(self, net):
        """Nothing to do: the parameters live in the NumPy buffer."""

    def asarray(self, x):
        return np.asarray(x, dtype=F)

    def host_buffer(self, shape):
        return np.empty(shape, dtype=F)

    def to_numpy(self, a):
        return np.asarray(a)

    def zeros_like(self, a):
        return np.zeros_like(a)

    def predict(self, net, x):
        """No faster path than Network.forward."""
        return None

    def gradient_buffer(self, net):
        return net.updates

    def running(self, train):
        """Context of one forward pass (a backend may set up its threads there)."""
        return contextlib.nullcontext()

    def forward_layer(self, layer, inputs, state):
        return np.asarray(layer.forward(inputs, state), dtype=F)

    def backward_layer(self, layer, inputs, output, delta, input_deltas, state):
        layer.backward(inputs, output, delta, input_deltas, state)

    def update(self, net, lr, batch, momentum, decay):
        sgd_update([(layer, layer.params, layer.updates) for layer in net.layers],
                   lr, batch, momentum, decay)


def sgd_update(layers, lr, batch, momentum, decay, scalar=F):
    """darknet update_convolutional_layer / update_connected_layer:
    biases and scales: ``p += lr/B * u; u *= momentum``;
    weights: ``u += -decay*B*w; w += lr/B * u; u *= momentum``, with B = batch*subdivisions.
    ``layers`` holds (layer, params, updates); the arrays may be NumPy arrays or torch
    tensors (``scalar`` makes the coefficients of the right kind)."""
    for layer, p, u in layers:
        if not p:
            continue
        step = scalar(F(F(lr) * F(layer.learning_rate_scale)) / F(batch))
        momentum_, decay_ = scalar(F(momentum)), scalar(-F(decay) * F(batch))
        for name in ("biases", "scales"):
            if name in p:
                p[name] += step * u[name]
                u[name] *= momentum_
        u["weights"] += decay_ * p["weights"]
        p["weights"] += step * u["weights"]
        u["weights"] *= momentum_
