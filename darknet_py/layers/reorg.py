"""[reorg]: YOLOv2's passthrough reshuffle (darknet: reorg_layer.c, blas.c:reorg_cpu).

forward_reorg_layer calls ``reorg_cpu(..., forward=0)``, the inverse of the mapping
its name suggests; trained weights depend on it, so it is copied as is.
"""
from functools import lru_cache

import numpy as np

from .base import Layer, check_positive


@lru_cache(maxsize=32)
def reorg_index(w, h, c, stride):
    """darknet reorg_cpu: for each in_index = i + w*(j + h*k), the out_index it pairs with.

    ``out_c = c/stride²``, ``c2 = k % out_c``, ``offset = k / out_c``,
    ``w2 = i*stride + offset % stride``, ``h2 = j*stride + offset / stride``,
    ``out_index = w2 + w*stride*(h2 + h*stride*c2)``.
    """
    out_c = c // (stride * stride)
    k, j, i = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    c2 = k % out_c
    offset = k // out_c
    w2 = i * stride + offset % stride
    h2 = j * stride + offset // stride
    return (w2 + w * stride * (h2 + h * stride * c2)).ravel()


class Reorg(Layer):
    kind = "reorg"

    def __init__(self, ctx):
        super().__init__(ctx)
        s = ctx.section
        c, h, w = self.in_shape
        self.stride = check_positive(s, "stride", s.int("stride", 1), 1 << 10)
        self.reverse = s.int("reverse", 0)
        for unsupported in ("flatten", "extra"):
            if s.int(unsupported, 0):
                s.fail(f"'{unsupported}' is not supported by darknet_py", unsupported)
        st = self.stride
        if self.reverse:
            if c % (st * st):
                s.fail(f"stride {st}: {c} channels are not divisible by stride² = {st * st}", "stride")
            self.out_shape = (c // (st * st), h * st, w * st)
        else:
            if w % st or h % st:
                s.fail(f"stride {st} does not divide the {w}x{h} input", "stride")
            if c % (st * st):
                # reorg_cpu views the input as c/stride² channels: it needs whole ones
                s.fail(f"stride {st}: {c} input channels are not divisible by stride² = {st * st}",
                       "stride")
            self.out_shape = (c * st * st, h // st, w // st)

    def summary(self):
        c, h, w = self.in_shape
        oc, oh, ow = self.out_shape
        mark = "x" if self.reverse else "/"
        return (f"reorg              {mark}{self.stride:2d}  {w:4d} x{h:4d} x{c:4d}   ->  "
                f"{ow:4d} x{oh:4d} x{oc:4d}")

    def forward(self, inputs, state):
        x = inputs[0]
        n = x.shape[0]
        c, h, w = self.in_shape
        pairs = reorg_index(w, h, c, self.stride)
        flat = x.reshape(n, -1)
        if self.reverse:                 # reorg_cpu(forward=1): out[out_index] = x[in_index]
            out = np.empty_like(flat)
            out[:, pairs] = flat
        else:                            # reorg_cpu(forward=0): out[in_index] = x[out_index]
            out = flat[:, pairs]
        return out.reshape(n, *self.out_shape)

    def backward(self, inputs, output, delta, input_deltas, state):
        """darknet backward_reorg_layer: reorg_cpu the other way, *writing* the input delta."""
        if input_deltas[0] is None:
            return
        n = delta.shape[0]
        c, h, w = self.in_shape
        pairs = reorg_index(w, h, c, self.stride)
        flat = delta.reshape(n, -1)
        target = input_deltas[0].reshape(n, -1)
        if self.reverse:
            target[...] = flat[:, pairs]
        else:
            target[:, pairs] = flat
