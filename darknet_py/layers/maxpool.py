"""[maxpool] / [max] (darknet: maxpool_layer.c)."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .base import Layer, check_positive, refuse_options

F = np.float32


class Maxpool(Layer):
    kind = "maxpool"

    def __init__(self, ctx):
        super().__init__(ctx)
        s = ctx.section
        c, h, w = self.in_shape
        self.stride = check_positive(s, "stride", s.int("stride", 1), 1 << 10)
        self.size = check_positive(s, "size", s.int("size", self.stride), 1 << 10)
        # darknet: padding defaults to size-1, and the window starts at -padding/2
        self.padding = s.int("padding", self.size - 1)
        # AlexeyAB's max-pool across channels, separate strides, anti-aliasing: not computed here
        refuse_options(s, {"maxpool_depth": 0, "stride_x": (-1, self.stride), "stride_y": (-1, self.stride),
                           "antialiasing": 0})
        if self.padding < 0:
            s.fail(f"'padding' must not be negative, got {self.padding}", "padding")
        out_h = (h + self.padding - self.size) // self.stride + 1
        out_w = (w + self.padding - self.size) // self.stride + 1
        if out_h <= 0 or out_w <= 0:
            s.fail(f"a {self.size}x{self.size} window does not fit the {w}x{h} input")
        self.out_shape = (c, out_h, out_w)

    def summary(self):
        c, h, w = self.in_shape
        oc, oh, ow = self.out_shape
        return (f"max          {self.size} x {self.size} / {self.stride}  {w:4d} x{h:4d} x{c:4d}"
                f"   ->  {ow:4d} x{oh:4d} x{oc:4d}")

    def windows(self, x):
        """[N, C, out_h, out_w, size*size] views of each window; outside cells are -FLT_MAX."""
        _, oh, ow = self.out_shape
        before = self.padding // 2
        after_h = max(0, (oh - 1) * self.stride + self.size - before - x.shape[2])
        after_w = max(0, (ow - 1) * self.stride + self.size - before - x.shape[3])
        lowest = np.finfo(F).min
        xp = np.pad(x, ((0, 0), (0, 0), (before, after_h), (before, after_w)), constant_values=lowest)
        win = sliding_window_view(xp, (self.size, self.size), axis=(2, 3))
        win = win[:, :, ::self.stride, ::self.stride][:, :, :oh, :ow]
        return win.reshape(*win.shape[:4], -1)

    def forward(self, inputs, state):
        windows = self.windows(inputs[0])
        if state.train:
            # darknet keeps the index of the first maximum of each window (strict >)
            state.saved_for(self)["argmax"] = windows.argmax(axis=-1)
        return windows.max(axis=-1)

    def backward(self, inputs, output, delta, input_deltas, state):
        """darknet backward_maxpool_layer: each delta goes to its window's maximum."""
        if input_deltas[0] is None:
            return
        n, c, h, w = inputs[0].shape
        _, oh, ow = self.out_shape
        argmax = state.saved_for(self)["argmax"]
        dy, dx = np.divmod(argmax, self.size)
        before = self.padding // 2
        rows = np.arange(oh)[:, None] * self.stride - before + dy
        cols = np.arange(ow)[None, :] * self.stride - before + dx
        flat = (np.arange(n * c).reshape(n, c, 1, 1) * h + rows) * w + cols
        np.add.at(input_deltas[0].reshape(-1), flat.ravel(), delta.ravel())
