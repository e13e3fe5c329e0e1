"""[upsample]: nearest-neighbour upsampling by ``stride`` times ``scale``; a negative stride
sums each stride x stride block instead (darknet: upsample_layer.c, blas.c:upsample_cpu)."""
import numpy as np

from .base import Layer

F = np.float32


class Upsample(Layer):
    kind = "upsample"

    def __init__(self, ctx):
        super().__init__(ctx)
        s = ctx.section
        stride = s.int("stride", 2)
        if stride == 0:
            s.fail("stride must not be 0", "stride")
        self.reverse = stride < 0          # darknet: a negative stride downsamples
        self.stride = abs(stride)
        self.scale = s.float("scale", 1)
        c, h, w = self.in_shape
        if self.reverse:
            if h % self.stride or w % self.stride:
                s.fail(f"stride {stride} does not divide the {w}x{h} input", "stride")
            self.out_shape = (c, h // self.stride, w // self.stride)
        else:
            self.out_shape = (c, h * self.stride, w * self.stride)

    def summary(self):
        c, h, w = self.in_shape
        oc, oh, ow = self.out_shape
        what = "downsample" if self.reverse else "upsample  "
        return f"{what}         {self.stride:2d}x  {w:4d} x{h:4d} x{c:4d}   ->  {ow:4d} x{oh:4d} x{oc:4d}"

    def _repeat(self, x):
        return np.repeat(np.repeat(x, self.stride, axis=2), self.stride, axis=3)

    def _block_sum(self, x):
        n, c, h, w = x.shape
        s = self.stride
        return x.reshape(n, c, h // s, s, w // s, s).sum(axis=(3, 5), dtype=F)

    def forward(self, inputs, state):
        """forward_upsample_layer: out[y, x] = scale * in[y//s, x//s]; reversed, each output
        cell is scale times the sum of its block."""
        scale = F(self.scale)
        x = inputs[0]
        return scale * (self._block_sum(x) if self.reverse else self._repeat(x))

    def backward(self, inputs, output, delta, input_deltas, state):
        """backward_upsample_layer: each block's delta summed, times scale, added into the
        input's delta; reversed, the input's delta is *set* to the repeated delta (darknet's
        upsample_cpu forward=1 assigns)."""
        if input_deltas[0] is None:
            return
        scale = F(self.scale)
        if self.reverse:
            input_deltas[0][...] = scale * self._repeat(delta)
        else:
            input_deltas[0] += scale * self._block_sum(delta)
