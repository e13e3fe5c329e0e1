"""[region]: YOLOv2's detection head (darknet: region_layer.c).

Memory layout per image: ``[n][coords + 1 + classes][h*w]`` (``entry_index``), which is
the input conv's channel layout, so the output keeps the input's [N, C, H, W] shape.
"""
import numpy as np

from ..tree import map_option, tree_option
from .activations import logistic, softmax, tree_softmax
from .base import Layer, check_positive

F = np.float32


class Region(Layer):
    kind = "region"
    nms_kind, beta_nms = "default", .6       # AlexeyAB's [yolo] NMS options, which [region] has not

    def __init__(self, ctx):
        super().__init__(ctx)
        s = ctx.section
        c, h, w = self.in_shape
        self.coords = check_positive(s, "coords", s.int("coords", 4), 64)
        self.classes = check_positive(s, "classes", s.int("classes", 20), 1 << 20)
        self.num = check_positive(s, "num", s.int("num", 1), 1 << 12)
        if self.coords != 4:
            s.fail(f"coords={self.coords}: darknet_py supports coords=4", "coords")
        expected = self.num * (self.classes + self.coords + 1)
        if expected != c:
            s.fail(f"num*(classes+coords+1) = {self.num}*({self.classes}+{self.coords}+1) = "
                   f"{expected} does not match the {c} channels of the layer before", "classes")
        self.log = s.int("log", 0)
        self.sqrt = s.int("sqrt", 0)
        self.softmax = s.int("softmax", 0)
        self.background = s.int("background", 0)
        self.max_boxes = check_positive(s, "max", s.int("max", 30), 1 << 16)
        self.jitter = s.float("jitter", .2)
        self.rescore = s.int("rescore", 0)
        self.thresh = s.float("thresh", .5)
        self.classfix = s.int("classfix", 0)
        self.absolute = s.int("absolute", 0)
        # multi-scale training: 1, Darknet's rule; another value r, AlexeyAB's range (train/trainer.py)
        self.random = s.float("random", 0)
        self.coord_scale = s.float("coord_scale", 1)
        self.object_scale = s.float("object_scale", 1)
        self.noobject_scale = s.float("noobject_scale", 1)
        self.mask_scale = s.float("mask_scale", 1)
        self.class_scale = s.float("class_scale", 1)
        self.bias_match = s.int("bias_match", 0)
        if self.background:
            s.fail("'background' is not supported by darknet_py", "background")
        self.tree = tree_option(s, ctx.cfg_dir, self.classes)
        # training's ordinary boxes take class = class_map[class] (class-only labels never do)
        self.class_map, self.map_path = map_option(s, ctx.cfg_dir, self.classes)
        biases = np.full(self.num * 2, .5, dtype=F)   # darknet make_region_layer default
        anchors = s.floats("anchors")
        if anchors:
            if len(anchors) != 2 * self.num:
                s.fail(f"anchors has {len(anchors)} numbers but num={self.num} needs "
                       f"{2 * self.num}", "anchors")
            biases[:] = anchors
        self.biases = biases
        self.out_shape = self.in_shape

    def summary(self):
        return "detection"

    def entries(self, x):
        """View [N, C, H, W] as [N, num, coords+1+classes, H, W]."""
        n, _, h, w = x.shape
        return x.reshape(n, self.num, self.coords + 1 + self.classes, h, w)

    def forward(self, inputs, state):
        out = self.entries(inputs[0].copy())
        # darknet GPU forward (what YOLOv2 runs): logistic on x, y and objectness
        for e in (0, 1, self.coords):
            out[:, :, e] = logistic(out[:, :, e])
        cls = slice(self.coords + 1, None)
        if self.tree is not None:
            out[:, :, cls] = tree_softmax(out[:, :, cls], self.tree, axis=2)
        elif self.softmax:
            out[:, :, cls] = softmax(out[:, :, cls], axis=2)
        if state.train and state.truth is not None:
            from .region_loss import region_loss
            region_loss(self, out, state)
        return out.reshape(inputs[0].shape)

    def backward(self, inputs, output, delta, input_deltas, state):
        """darknet backward_region_layer_gpu (the CPU one is empty): x, y and objectness
        deltas times the logistic gradient; w, h and classes pass; added to the input's delta."""
        if input_deltas[0] is None:
            return
        d = self.entries(delta.copy())
        out = self.entries(output)
        for e in (0, 1, self.coords):
            d[:, :, e] *= (F(1) - out[:, :, e]) * out[:, :, e]
        input_deltas[0] += d.reshape(delta.shape)
