"""[convolutional] / [conv] (darknet: convolutional_layer.c, batchnorm via blas.c)."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import activations, batchnorm
from .base import Layer, activation_option, check_positive, refuse_options

F = np.float32


def conv_output_size(size_in, size, stride, padding):
    # darknet: convolutional_out_width = (w + 2*pad - size) / stride + 1
    return (size_in + 2 * padding - size) // stride + 1


def im2col(x, size, stride, padding):
    """[N, C, H, W] -> [N, C*size*size, out_h*out_w], rows in darknet's im2col order (c, ky, kx)."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = sliding_window_view(xp, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]
    out_h, out_w = win.shape[2], win.shape[3]
    return win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * size * size, out_h * out_w), out_h, out_w


def col2im(cols, shape, size, stride, padding):
    """darknet col2im_cpu: add each column entry back onto the input cell it came from."""
    n, c, h, w = shape
    out_h = conv_output_size(h, size, stride, padding)
    out_w = conv_output_size(w, size, stride, padding)
    cols = cols.reshape(n, c, size, size, out_h, out_w)
    xp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=F)
    for ky in range(size):
        for kx in range(size):
            xp[:, :, ky:ky + stride * out_h:stride, kx:kx + stride * out_w:stride] += cols[:, :, ky, kx]
    return xp[:, :, padding:padding + h, padding:padding + w]


# options with their defaults that darknet_py does not compute: pjreddie's XNOR nets, AlexeyAB's
# dilation, anti-aliasing, separate strides, shared weights, deformable and coordinate convs
UNSUPPORTED = {"binary": 0, "xnor": 0, "flipped": 0, "dot": 0, "dilation": 1, "antialiasing": 0,
               "share_index": -1000000000, "assisted_excitation": 0,
               "deform": 0, "sway": 0, "rotate": 0, "stretch": 0, "stretch_sway": 0, "coordconv": 0}


class Convolutional(Layer):
    kind = "convolutional"

    def __init__(self, ctx):
        super().__init__(ctx)
        s = ctx.section
        c, h, w = self.in_shape
        self.filters = check_positive(s, "filters", s.int("filters", 1), 1 << 17)
        self.size = check_positive(s, "size", s.int("size", 1), 1 << 10)
        self.stride = check_positive(s, "stride", s.int("stride", 1), 1 << 10)
        pad = s.int("pad", 0)
        self.padding = s.int("padding", 0)
        if pad:
            self.padding = self.size // 2      # darknet: pad=1 means size/2
        if self.padding < 0:
            s.fail(f"'padding' must not be negative, got {self.padding}", "padding")
        self.groups = check_positive(s, "groups", s.int("groups", 1), 1 << 17)
        self.activation = activation_option(s, "logistic")
        self.batch_normalize = s.int("batch_normalize", 0)
        refuse_options(s, UNSUPPORTED | {"stride_x": (-1, self.stride), "stride_y": (-1, self.stride)})
        if c % self.groups or self.filters % self.groups:
            s.fail(f"groups={self.groups} must divide the input channels ({c}) and filters "
                   f"({self.filters})", "groups")
        out_h = conv_output_size(h, self.size, self.stride, self.padding)
        out_w = conv_output_size(w, self.size, self.stride, self.padding)
        if out_h <= 0 or out_w <= 0:
            s.fail(f"a {self.size}x{self.size} window with padding {self.padding} does not fit "
                   f"the {w}x{h} input")
        self.out_shape = (self.filters, out_h, out_w)

    def param_shapes(self):
        c = self.in_shape[0]
        shapes = [("biases", (self.filters,))]
        if self.batch_normalize:
            shapes += [("scales", (self.filters,)), ("rolling_mean", (self.filters,)),
                       ("rolling_variance", (self.filters,))]
        return shapes + [("weights", (self.filters, c // self.groups, self.size, self.size))]

    def init_params(self, p, rng):
        # darknet make_convolutional_layer: weights = sqrt(2/(size*size*c/groups)) * rand_normal()
        fan_in = self.size * self.size * self.in_shape[0] // self.groups
        p["weights"][...] = rng.standard_normal(p["weights"].shape) * np.sqrt(2.0 / fan_in)
        if self.batch_normalize:
            p["scales"][...] = 1
            p["rolling_variance"][...] = 1   # darknet starts at 0; 1 keeps an untrained net finite

    def summary(self):
        c, h, w = self.in_shape
        oc, oh, ow = self.out_shape
        return (f"conv  {self.filters:5d} {self.size:2d} x{self.size:2d} /{self.stride:2d}  "
                f"{w:4d} x{h:4d} x{c:4d}   ->  {ow:4d} x{oh:4d} x{oc:4d}  {self.bflops:5.3f} BFLOPs")

    @property
    def bflops(self):
        c = self.in_shape[0]
        _, oh, ow = self.out_shape
        return 2.0 * self.filters * self.size * self.size * c / self.groups * oh * ow / 1e9

    def convolve(self, x, weights):
        """The gemm part: im2col, then weights [n, c/g*k*k] @ columns, per group."""
        n = x.shape[0]
        g = self.groups
        cols, oh, ow = im2col(x, self.size, self.stride, self.padding)
        cols = cols.reshape(n, g, -1, oh * ow)
        wmat = weights.reshape(g, self.filters // g, -1)
        out = np.matmul(wmat[None], cols)                  # [n, g, filters/g, oh*ow]
        return out.reshape(n, self.filters, oh, ow)

    def folded(self):
        """(weights [n, c/g*k*k], biases) with inference batch norm folded in, Darknet's
        way: ``scale / (sqrt(var) + 1e-6)``. The per-filter factor in float64, the weights
        times it in float32 (the factor and the product each rounded: about an ulp; float64
        copies of the weights would slow a first inference noticeably)."""
        p = self.params
        w = p["weights"].reshape(self.filters, -1)
        b = p["biases"].astype(np.float64)
        if not self.batch_normalize:
            return np.array(w, dtype=F), b.astype(F)
        factor = p["scales"] / (np.sqrt(p["rolling_variance"].astype(np.float64)) + 1e-6)
        b = b - p["rolling_mean"] * factor
        return np.multiply(w, factor.astype(F)[:, None], dtype=F), b.astype(F)

    def finish(self, x, state):
        """Everything after the gemm: batch norm (batch or rolling statistics), add_bias,
        the activation. Backends with their own gemm share it."""
        p = self.params
        if self.batch_normalize and state.train:
            x = batchnorm.forward_train(x, p, state.saved_for(self))
        elif self.batch_normalize:
            x = batchnorm.forward_inference(x, p["scales"], p["rolling_mean"], p["rolling_variance"])
        x = x + p["biases"].reshape(1, -1, 1, 1)               # darknet: add_bias
        return activations.activate(x, self.activation)

    def forward(self, inputs, state):
        return self.finish(self.convolve(inputs[0], self.params["weights"]), state)

    def delta_to_gemm(self, delta, output, state):
        """The first part of backward_convolutional_layer: the activation gradient, then
        batch norm's backward (or backward_bias). ``delta`` is rewritten in place to the delta
        w.r.t. the raw gemm output, as Darknet leaves l.delta."""
        p, u = self.params, self.updates
        delta *= activations.gradient(output, self.activation)
        if self.batch_normalize:
            batchnorm.backward(delta, p, u, state.saved_for(self))
        else:
            u["biases"] += delta.sum(axis=(0, 2, 3), dtype=np.float64).astype(F)

    def backward(self, inputs, output, delta, input_deltas, state):
        """darknet backward_convolutional_layer."""
        p, u = self.params, self.updates
        self.delta_to_gemm(delta, output, state)
        x = inputs[0]
        n, g = x.shape[0], self.groups
        cols, oh, ow = im2col(x, self.size, self.stride, self.padding)
        cols = cols.reshape(n, g, -1, oh * ow)
        d = delta.reshape(n, g, self.filters // g, oh * ow)
        # weight_updates += delta @ columns^T, summed over the batch
        u["weights"] += np.einsum("bgmk,bgnk->gmn", d, cols, optimize=True).reshape(u["weights"].shape)
        if input_deltas[0] is None:
            return
        wmat = p["weights"].reshape(g, self.filters // g, -1)
        dcols = np.matmul(wmat.transpose(0, 2, 1)[None], d).reshape(n, -1, oh * ow)
        # added for every size, as cuDNN adds: CPU Darknet's 1x1 gemm writes with beta 0 and
        # drops what other consumers of the input added (the quirks doc)
        input_deltas[0] += col2im(dcols, x.shape, self.size, self.stride, self.padding)
