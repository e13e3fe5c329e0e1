"""[net] / [network]: input size and training hyper-parameters (darknet: parse_net_options)."""
from dataclasses import dataclass, field

from .base import check_positive

POLICIES = ("constant", "step", "exp", "poly", "steps", "sig", "random")


@dataclass
class NetOptions:
    batch: int = 1            # images per forward pass: cfg batch / subdivisions
    subdivisions: int = 1
    width: int = 0
    height: int = 0
    channels: int = 0
    inputs: int = 0
    learning_rate: float = .001
    momentum: float = .9
    decay: float = .0001
    policy: str = "constant"
    burn_in: int = 0
    power: float = 4
    max_batches: int = 0
    step: int = 1
    scale: float = 1
    steps: list = field(default_factory=list)
    scales: list = field(default_factory=list)
    gamma: float = 1
    angle: float = 0
    aspect: float = 1
    saturation: float = 1
    exposure: float = 1
    hue: float = 0
    jitter: float = .2
    random: int = 0
    max_crop: int = 0
    min_crop: int = 0
    center: int = 0
    clip: float = 0
    time_steps: int = 1
    adam: int = 0

    @classmethod
    def from_section(cls, s):
        o = cls()
        o.batch = check_positive(s, "batch", s.int("batch", 1), 1 << 16)
        o.learning_rate = s.float("learning_rate", .001)
        o.momentum = s.float("momentum", .9)
        o.decay = s.float("decay", .0001)
        o.subdivisions = check_positive(s, "subdivisions", s.int("subdivisions", 1), 1 << 16)
        o.time_steps = s.int("time_steps", 1)
        s.int("notruth", 0)
        o.random = s.int("random", 0)
        o.adam = s.int("adam", 0)
        if o.adam:
            s.float("B1", .9), s.float("B2", .999), s.float("eps", .0000001)
        o.height = s.int("height", 0)
        o.width = s.int("width", 0)
        o.channels = s.int("channels", 0)
        o.inputs = s.int("inputs", o.height * o.width * o.channels)
        o.max_crop = s.int("max_crop", o.width * 2)
        o.min_crop = s.int("min_crop", o.width)
        s.float("max_ratio", o.max_crop / o.width if o.width else 0)
        s.float("min_ratio", o.min_crop / o.width if o.width else 0)
        o.center = s.int("center", 0)
        o.clip = s.float("clip", 0)
        o.angle = s.float("angle", 0)
        o.aspect = s.float("aspect", 1)
        o.saturation = s.float("saturation", 1)
        o.exposure = s.float("exposure", 1)
        o.hue = s.float("hue", 0)
        # detection training data: f6afaabc's load_data_detection (aspect jitter, placed on grey)
        # or the crop-and-stretch of the YOLOv2 paper's code and AlexeyAB's (data/augment.py);
        # AlexeyAB's flip=0 turns the random flip off
        o.augmentation = s.str("augmentation", "place")
        if o.augmentation not in ("place", "crop"):
            s.fail(f"augmentation={o.augmentation}: one of place (Darknet's, the default) or crop", "augmentation")
        o.flip = s.int("flip", 1)
        # AlexeyAB's letter_box=1: test images letterboxed (as they always are here) and training
        # images kept at their aspect: the placement always does; the crop widens itself to it
        o.letter_box = s.int("letter_box", 0)
        o.resize_step = check_positive(s, "resize_step", s.int("resize_step", 32), 1 << 12)   # AlexeyAB's
        if not o.inputs and not (o.height and o.width and o.channels):
            s.fail("no input size: set height, width and channels (or inputs)")
        for key, value in (("height", o.height), ("width", o.width), ("channels", o.channels)):
            if value:
                check_positive(s, key, value, 1 << 15)
        if o.batch % o.subdivisions:
            s.fail(f"batch={o.batch} is not divisible by subdivisions={o.subdivisions}", "subdivisions")
        o.batch //= o.subdivisions   # darknet: net->batch = batch / subdivs
        o.policy = s.str("policy", "constant")
        if o.policy not in POLICIES:
            s.fail(f"unknown learning rate policy '{o.policy}' (one of {', '.join(POLICIES)})", "policy")
        o.burn_in = s.int("burn_in", 0)
        o.power = s.float("power", 4)
        if o.policy == "step":
            o.step = s.int("step", 1)
            o.scale = s.float("scale", 1)
        elif o.policy == "steps":
            o.steps = s.ints("steps")
            o.scales = s.floats("scales")
            if not o.steps or not o.scales:
                s.fail("policy=steps needs steps= and scales=", "policy")
            if len(o.steps) != len(o.scales):
                s.fail(f"steps has {len(o.steps)} entries but scales has {len(o.scales)}", "scales")
        elif o.policy == "exp":
            o.gamma = s.float("gamma", 1)
        elif o.policy == "sig":
            o.gamma = s.float("gamma", 1)
            o.step = s.int("step", 1)
        o.max_batches = s.int("max_batches", 0)
        return o
