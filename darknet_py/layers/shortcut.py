"""[shortcut]: a residual connection, out = act(alpha*previous + beta*layers[from])
(darknet: shortcut_layer.c, blas.c:shortcut_cpu)."""
from . import activations
from .base import Layer, activation_option, earlier_layer


def shortcut_add(out, add, s1, s2):
    """darknet shortcut_cpu on [N, C, H, W] arrays (NumPy or torch): out = s1*out + s2*add on
    the cells the two share, ``add`` sampled with stride add_w/out_w and written with stride
    out_w/add_w where their sizes differ (the rest of ``out`` is left as it is), in place.
    Written with slices only, so the backends share it."""
    _, c1, h1, w1 = add.shape
    _, c2, h2, w2 = out.shape
    stride, sample = max(1, w1 // w2), max(1, w2 // w1)
    minc, minh, minw = min(c1, c2), min(h1, h2), min(w1, w2)
    target = out[:, :minc, 0:minh * sample:sample, 0:minw * sample:sample]
    target[...] = s1 * target + s2 * add[:, :minc, 0:minh * stride:stride, 0:minw * stride:stride]


class Shortcut(Layer):
    kind = "shortcut"

    def __init__(self, ctx):
        super().__init__(ctx)
        s = ctx.section
        frm = s.int("from")
        if frm is None:
            s.fail("needs from=", "from")
        index = earlier_layer(ctx, frm, "from")
        c, h, w = self.in_shape
        fc, fh, fw = ctx.layers[index].out_shape
        if w // fw != h // fh or fw // w != fh // h:
            s.fail(f"layer {index} ({fw}x{fh}) and the layer before ({w}x{h}) must scale alike in width "
                   "and height", "from")
        self.source = index
        self.source_shape = (fc, fh, fw)
        self.input_layers = [ctx.index - 1, index]
        self.activation = activation_option(s, "linear")
        self.alpha = s.float("alpha", 1)
        self.beta = s.float("beta", 1)
        self.out_shape = self.in_shape

    def summary(self):
        c, h, w = self.out_shape
        fc, fh, fw = self.source_shape
        return f"res  {self.source:3d}                {fw:4d} x{fh:4d} x{fc:4d}   ->  {w:4d} x{h:4d} x{c:4d}"

    def forward(self, inputs, state):
        """forward_shortcut_layer: copy the previous output, add the source, activate."""
        out = inputs[0].copy()
        shortcut_add(out, inputs[1], activations.F(self.alpha), activations.F(self.beta))
        return activations.activate(out, self.activation)

    def backward(self, inputs, output, delta, input_deltas, state):
        """backward_shortcut_layer: the activation gradient, then alpha*delta into the previous
        layer's delta and beta*delta into the source's (added)."""
        delta *= activations.gradient(output, self.activation)
        if input_deltas[0] is not None:
            input_deltas[0] += activations.F(self.alpha) * delta
        if input_deltas[1] is not None:
            shortcut_add(input_deltas[1], delta, activations.F(1), activations.F(self.beta))
