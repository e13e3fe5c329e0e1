"""[connected] / [conn] (darknet: connected_layer.c). Its BN parameters follow its weights."""
import numpy as np

from . import activations, batchnorm
from .base import Layer, activation_option, check_positive


class Connected(Layer):
    kind = "connected"
    flat_output = True

    def __init__(self, ctx):
        super().__init__(ctx)
        s = ctx.section
        self.n_outputs = check_positive(s, "output", s.int("output", 1), 1 << 24)
        self.activation = activation_option(s, "logistic")
        self.batch_normalize = s.int("batch_normalize", 0)
        if self.inputs * self.n_outputs > (1 << 32):
            s.fail(f"{self.inputs} x {self.n_outputs} weights is absurdly large", "output")
        self.out_shape = (self.n_outputs, 1, 1)

    def param_shapes(self):
        shapes = [("biases", (self.n_outputs,)), ("weights", (self.n_outputs, self.inputs))]
        if self.batch_normalize:
            shapes += [("scales", (self.n_outputs,)), ("rolling_mean", (self.n_outputs,)),
                       ("rolling_variance", (self.n_outputs,))]
        return shapes

    def init_params(self, p, rng):
        # darknet make_connected_layer: weights = sqrt(2/inputs) * rand_uniform(-1, 1)
        p["weights"][...] = rng.uniform(-1, 1, p["weights"].shape) * np.sqrt(2.0 / self.inputs)
        if self.batch_normalize:
            p["scales"][...] = 1
            p["rolling_variance"][...] = 1

    def summary(self):
        return f"connected                            {self.inputs:4d}  ->  {self.n_outputs:4d}"

    @property
    def bflops(self):
        return 2.0 * self.inputs * self.n_outputs / 1e9

    def forward(self, inputs, state):
        p = self.params
        x = inputs[0].reshape(inputs[0].shape[0], -1) @ p["weights"].T
        if self.batch_normalize and state.train:
            x = batchnorm.forward_train(x, p, state.saved_for(self))
        elif self.batch_normalize:
            x = batchnorm.forward_inference(x, p["scales"], p["rolling_mean"], p["rolling_variance"])
        return activations.activate(x + p["biases"], self.activation)

    def backward(self, inputs, output, delta, input_deltas, state):
        """darknet backward_connected_layer: the input delta is added (gemm beta 1)."""
        p, u = self.params, self.updates
        delta *= activations.gradient(output, self.activation)
        if self.batch_normalize:
            batchnorm.backward(delta, p, u, state.saved_for(self))
        else:
            u["biases"] += delta.sum(axis=0, dtype=np.float64).astype(np.float32)
        x = inputs[0].reshape(inputs[0].shape[0], -1)
        u["weights"] += delta.T @ x
        if input_deltas[0] is not None:
            input_deltas[0] += (delta @ p["weights"]).reshape(input_deltas[0].shape)
