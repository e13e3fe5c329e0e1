"""darknet's activations (linear, leaky, relu, logistic) and their gradients, compiled:
per value, per row with a bias, and over whole layers."""
import numpy as np
from numba import njit, prange

# the activations compiled here, by the code the kernels take
ACTIVATION_CODES = {"linear": 0, "leaky": 1, "relu": 2, "logistic": 3}


@njit(inline="always")
def activate(v, code):
    """darknet's linear (0), leaky (1), relu (2) and logistic (3) on one value."""
    if code == 1:
        return v if v > 0 else np.float32(.1) * v
    if code == 2:
        return v if v > 0 else np.float32(0)
    if code == 3:
        return np.float32(1) / (np.float32(1) + np.exp(-v))
    return v


@njit(inline="always")
def bias_activate_line(dest, src, b, code):
    """dest[i] = activate(src[i] + b, code), the activation chosen once, outside the loop: in
    the Winograd output rows and the few-channel convolution a test of the code per value
    kept LLVM from vectorising. The plain loops of bias_activate and convolve_band gain
    nothing from it and would compile longer, so they keep theirs."""
    if code == 1:
        for i in range(dest.size):
            dest[i] = activate(src[i] + b, 1)
    elif code == 2:
        for i in range(dest.size):
            dest[i] = activate(src[i] + b, 2)
    elif code == 3:
        for i in range(dest.size):
            dest[i] = activate(src[i] + b, 3)
    else:
        for i in range(dest.size):
            dest[i] = src[i] + b


@njit(parallel=True, cache=True)
def bias_activate(y, bias, code):
    """y [K, P] += bias[k], then darknet's activation, in place."""
    k, p = y.shape
    for i in prange(k):
        b = bias[i]
        for j in range(p):
            y[i, j] = activate(y[i, j] + b, code)


@njit(inline="always")
def activation_gradient(y, code):
    """darknet's gradient of linear (0), leaky (1), relu (2) and logistic (3), from the output."""
    if code == 1:
        return np.float32(1) if y > 0 else np.float32(.1)
    if code == 2:
        return np.float32(1) if y > 0 else np.float32(0)
    if code == 3:
        return (np.float32(1) - y) * y
    return np.float32(1)


@njit(parallel=True, cache=True)
def bias_backward(delta, output, code, bias_updates):
    """The activation gradient in place on delta [N, K, P], then backward_bias."""
    n, k, size = delta.shape
    for ch in prange(k):
        total = 0.0
        for b in range(n):
            for i in range(size):
                d = delta[b, ch, i] * activation_gradient(output[b, ch, i], code)
                delta[b, ch, i] = d
                total += d
        bias_updates[ch] += np.float32(total)
