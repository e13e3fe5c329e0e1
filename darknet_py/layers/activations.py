"""Darknet's activations (``activations.h``), forward and gradient, in float32.

The gradient takes the activation's *output*, as Darknet's ``gradient_array`` does.
"""
import numpy as np

F = np.float32


FORWARD = {
    "logistic": lambda x: logistic(x),
    "loggy": lambda x: F(2) / (F(1) + np.exp(-x)) - F(1),
    "relu": lambda x: x * (x > 0),
    "elu": lambda x: (x >= 0) * x + (x < 0) * (np.exp(x) - F(1)),
    "selu": lambda x: (x >= 0) * F(1.0507) * x + (x < 0) * F(1.0507) * F(1.6732) * (np.exp(x) - F(1)),
    "relie": lambda x: np.where(x > 0, x, F(.01) * x),
    "ramp": lambda x: x * (x > 0) + F(.1) * x,
    "leaky": lambda x: np.where(x > 0, x, F(.1) * x),
    "tanh": lambda x: (np.exp(F(2) * x) - F(1)) / (np.exp(F(2) * x) + F(1)),
    "plse": lambda x: np.where(x < -4, F(.01) * (x + F(4)),
                               np.where(x > 4, F(.01) * (x - F(4)) + F(1), F(.125) * x + F(.5))),
    "stair": lambda x: np.where(np.floor(x) % 2 == 0, np.floor(x / F(2)),
                                (x - np.floor(x)) + np.floor(x / F(2))),
    "hardtan": lambda x: np.clip(x, F(-1), F(1)),
    "lhtan": lambda x: np.where(x < 0, F(.001) * x, np.where(x > 1, F(.001) * (x - F(1)) + F(1), x)),
    "linear": lambda x: x,
    # AlexeyAB's, for YOLOv4 (activations.c): inference only, their gradients need the input
    "mish": lambda x: x * (F(2) / (F(1) + np.exp(F(-2) * softplus(x))) - F(1)),
    "swish": lambda x: x * logistic(x),
    "hard_mish": lambda x: np.where(x > 0, x, np.where(x > -2, x * x / F(2) + x, F(0))),
}

GRADIENT = {
    "logistic": lambda y: (F(1) - y) * y,
    "loggy": lambda y: F(2) * (F(1) - (y + F(1)) / F(2)) * ((y + F(1)) / F(2)),
    "relu": lambda y: (y > 0).astype(F),
    "elu": lambda y: (y >= 0) + (y < 0) * (y + F(1)),
    "selu": lambda y: (y >= 0) * F(1.0507) + (y < 0) * (y + F(1.0507) * F(1.6732)),
    "relie": lambda y: np.where(y > 0, F(1), F(.01)),
    "ramp": lambda y: (y > 0) + F(.1),
    "leaky": lambda y: np.where(y > 0, F(1), F(.1)),
    "tanh": lambda y: F(1) - y * y,
    "plse": lambda y: np.where((y < 0) | (y > 1), F(.01), F(.125)),
    "stair": lambda y: np.where(np.floor(y) == y, F(0), F(1)),
    "hardtan": lambda y: ((y > -1) & (y < 1)).astype(F),
    "lhtan": lambda y: np.where((y > 0) & (y < 1), F(1), F(.001)),
    "linear": lambda y: np.ones_like(y),
}

NAMES = tuple(FORWARD)
# activations whose gradient Darknet takes from the pre-activation input, which the layers here
# do not keep: networks using them run inference only
INFERENCE_ONLY = ("mish", "swish", "hard_mish")


def activate(x, name):
    return FORWARD[name](x).astype(F, copy=False)


def gradient(y, name):
    return np.asarray(GRADIENT[name](y), dtype=F)


def softplus(x, threshold=20):
    """AlexeyAB's softplus_activate: x above the threshold, exp(x) below its negative."""
    with np.errstate(over="ignore"):
        return np.where(x > threshold, x, np.where(x < -threshold, np.exp(x), np.log(np.exp(x) + F(1)))).astype(F)


def logistic(x):
    """darknet logistic_activate: 1 / (1 + exp(-x)) (exp overflowing to inf gives 0, as in C)."""
    with np.errstate(over="ignore"):
        return F(1) / (F(1) + np.exp(-x))


def softmax(x, axis):
    """darknet softmax(): subtract the largest, exponentiate, divide by the sum (temperature 1)."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def tree_softmax(x, tree, axis):
    """One softmax per sibling group (darknet GPU ``softmax_tree``; the CPU path is broken)."""
    out = np.empty_like(x)
    x = np.moveaxis(x, axis, -1)
    view = np.moveaxis(out, axis, -1)
    for offset, size in zip(tree.group_offset, tree.group_size):
        view[..., offset:offset + size] = softmax(x[..., offset:offset + size], axis=-1)
    return out
