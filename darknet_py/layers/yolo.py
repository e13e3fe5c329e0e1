"""[yolo]: YOLOv3's detection head (darknet: yolo_layer.c).

Per image, ``[n][4 + 1 + classes][h*w]`` for the n anchors of ``mask`` (entry_index), the
input conv's channel layout; anchors are in input pixels. The forward applies the logistic to
x, y, the objectness and every class (independent logistics, no softmax); w and h stay raw."""
import numpy as np

from .activations import logistic
from .base import Layer, check_positive

F = np.float32
MAX_TRUTHS = 90                  # darknet make_yolo_layer: l.truths = 90*(4 + 1)


class Yolo(Layer):
    kind = "yolo"
    tree = None         # the [region] head's class tree and map, which [yolo] has not
    class_map = map_path = None

    def __init__(self, ctx):
        super().__init__(ctx)
        s = ctx.section
        c, h, w = self.in_shape
        self.classes = check_positive(s, "classes", s.int("classes", 20), 1 << 20)
        self.total = check_positive(s, "num", s.int("num", 1), 1 << 12)
        mask = s.ints("mask")
        self.mask = list(mask) if mask else list(range(self.total))
        if any(not 0 <= m < self.total for m in self.mask):
            s.fail(f"mask {self.mask} names anchors outside num={self.total}", "mask")
        self.num = len(self.mask)
        expected = self.num * (self.classes + 4 + 1)
        if expected != c:
            s.fail(f"len(mask)*(classes+4+1) = {self.num}*({self.classes}+5) = {expected} does not match "
                   f"the {c} channels of the layer before", "classes")
        self.max_boxes = check_positive(s, "max", s.int("max", MAX_TRUTHS), 1 << 16)
        self.jitter = s.float("jitter", .2)
        self.ignore_thresh = s.float("ignore_thresh", .5)
        self.truth_thresh = s.float("truth_thresh", 1)
        # multi-scale training: 1, Darknet's rule; another value r, AlexeyAB's range (train/trainer.py)
        self.random = s.float("random", 0)
        self.map_file = s.str("map")
        if self.map_file:
            s.fail("'map' on a [yolo] layer is not supported by darknet_py yet", "map")
        # AlexeyAB's: the x, y logistics stretched (applied in the forward, as it does)
        self.scale_x_y = s.float("scale_x_y", 1)
        if s.int("new_coords", 0):
            s.fail("new_coords=1 (AlexeyAB's scaled-YOLOv4 decode) is not supported by darknet_py", "new_coords")
        # AlexeyAB's NMS for this head's boxes (detection/nms.py nms_sort); as its parser, a kind
        # it does not know is the default
        self.nms_kind = s.str("nms_kind", "default")
        if self.nms_kind not in ("greedynms", "diounms"):
            self.nms_kind = "default"
        self.beta_nms = s.float("beta_nms", .6)
        # AlexeyAB's loss and augmentation options: they change training, not inference
        self.alexeyab_training = [key for key, default in (("iou_loss", "mse"), ("iou_normalizer", "0.75"),
                                                           ("cls_normalizer", "1"), ("obj_normalizer", "1"),
                                                           ("resize", "1"), ("iou_thresh", "1"),
                                                           ("max_delta", None))
                                  if s.str(key) is not None and s.str(key) not in (default, "1.0")]
        biases = np.full(self.total * 2, .5, dtype=F)     # darknet make_yolo_layer default
        anchors = s.floats("anchors")
        if anchors:
            if len(anchors) != 2 * self.total:
                s.fail(f"anchors has {len(anchors)} numbers but num={self.total} needs {2 * self.total}",
                       "anchors")
            biases[:] = anchors
        self.biases = biases
        self.net_width, self.net_height = ctx.net.width, ctx.net.height
        self.out_shape = self.in_shape

    def summary(self):
        return "yolo"

    def training_refusal(self):
        if self.alexeyab_training:
            key = self.alexeyab_training[0]
            return f"training with AlexeyAB's {key}= is not implemented (inference only)", key
        if self.scale_x_y != 1:
            return "training with scale_x_y is not implemented (inference only)", "scale_x_y"
        return None

    def entries(self, x):
        """View [N, C, H, W] as [N, n, 4 + 1 + classes, H, W]."""
        n, _, h, w = x.shape
        return x.reshape(n, self.num, 4 + 1 + self.classes, h, w)

    def scale_xy(self, xy):
        """AlexeyAB's scale_x_y on the logistic x, y: scal_add_cpu(x, scale, -(scale - 1)/2)."""
        if self.scale_x_y == 1:
            return xy
        # Python floats: a NumPy float32 array stays float32 (NEP 50), a torch tensor a tensor
        return xy * self.scale_x_y + -.5 * (self.scale_x_y - 1)

    def activate(self, entries, logistic):
        """forward_yolo_layer's activations in place on [N, n, 5 + classes, H, W] (a NumPy array
        or a torch tensor, with that library's logistic)."""
        entries[:, :, 0:2] = self.scale_xy(logistic(entries[:, :, 0:2]))
        entries[:, :, 4:] = logistic(entries[:, :, 4:])
        return entries

    def forward(self, inputs, state):
        out = self.activate(self.entries(inputs[0].copy()), logistic)
        if state.train and state.truth is not None:
            from .yolo_loss import yolo_loss
            yolo_loss(self, out, state)
        return out.reshape(inputs[0].shape)

    def backward(self, inputs, output, delta, input_deltas, state):
        """darknet backward_yolo_layer: the loss's deltas go to the logits as they are (no
        logistic gradient), added into the input's delta."""
        if input_deltas[0] is not None:
            input_deltas[0] += delta.reshape(input_deltas[0].shape)
