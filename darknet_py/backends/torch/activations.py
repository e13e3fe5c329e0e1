"""Darknet's activations (activations.h) on torch tensors: forward on x, gradient from the
output y, as the NumPy reference (layers/activations.py) computes them."""
import torch
import torch.nn.functional as TF

from ...errors import DarknetError


def _stair(x):
    n = torch.floor(x)
    return torch.where(n % 2 == 0, torch.floor(x / 2), (x - n) + torch.floor(x / 2))


def _mish(x):
    """AlexeyAB's: x * tanh(softplus(x)), softplus with threshold 20, tanh as 2/(1+e^-2x) - 1."""
    soft = torch.where(x > 20, x, torch.where(x < -20, torch.exp(x), torch.log(torch.exp(x) + 1)))
    return x * (2 / (1 + torch.exp(-2 * soft)) - 1)


FORWARD = {
    "linear": lambda x: x,
    "leaky": lambda x: TF.leaky_relu(x, .1),
    "relu": lambda x: x * (x > 0),
    "logistic": lambda x: 1 / (1 + torch.exp(-x)),
    "loggy": lambda x: 2 / (1 + torch.exp(-x)) - 1,
    "elu": lambda x: (x >= 0) * x + (x < 0) * (torch.exp(x) - 1),
    "selu": lambda x: (x >= 0) * 1.0507 * x + (x < 0) * 1.0507 * 1.6732 * (torch.exp(x) - 1),
    "relie": lambda x: torch.where(x > 0, x, .01 * x),
    "ramp": lambda x: x * (x > 0) + .1 * x,
    "tanh": lambda x: (torch.exp(2 * x) - 1) / (torch.exp(2 * x) + 1),
    "plse": lambda x: torch.where(x < -4, .01 * (x + 4), torch.where(x > 4, .01 * (x - 4) + 1, .125 * x + .5)),
    "stair": _stair,
    "hardtan": lambda x: torch.clamp(x, -1, 1),
    "lhtan": lambda x: torch.where(x < 0, .001 * x, torch.where(x > 1, .001 * (x - 1) + 1, x)),
    "mish": _mish,
    "swish": lambda x: x * torch.sigmoid(x),
    "hard_mish": lambda x: torch.where(x > 0, x, torch.where(x > -2, x * x / 2 + x, torch.zeros_like(x))),
}


def activate(x, name):
    if name not in FORWARD:
        raise DarknetError(f"activation {name} has no torch kernel")
    return FORWARD[name](x)


def gradient(y, name):
    one = torch.ones_like(y)
    if name == "linear":
        return one
    if name == "leaky":
        return torch.where(y > 0, 1.0, .1)
    if name == "relu":
        return (y > 0).to(y.dtype)
    if name == "logistic":
        return (1 - y) * y
    if name == "loggy":
        return 2 * (1 - (y + 1) / 2) * ((y + 1) / 2)
    if name == "elu":
        return (y >= 0) + (y < 0) * (y + 1)
    if name == "selu":
        return (y >= 0) * 1.0507 + (y < 0) * (y + 1.0507 * 1.6732)
    if name == "relie":
        return torch.where(y > 0, one, .01 * one)
    if name == "ramp":
        return (y > 0) + .1
    if name == "tanh":
        return 1 - y * y
    if name == "plse":
        return torch.where((y < 0) | (y > 1), .01 * one, .125 * one)
    if name == "stair":
        return torch.where(torch.floor(y) == y, 0 * one, one)
    if name == "hardtan":
        return ((y > -1) & (y < 1)).to(y.dtype)
    if name == "lhtan":
        return torch.where((y > 0) & (y < 1), one, .001 * one)
    raise DarknetError(f"activation {name} has no torch kernel")
