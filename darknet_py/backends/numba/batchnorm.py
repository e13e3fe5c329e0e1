"""darknet batchnorm_layer.c in training: the batch's statistics, the rolling update and the
backward pass, one channel per task, rounded as the NumPy reference rounds."""
import numpy as np
from numba import njit, prange

from .activations import activate, activation_gradient


# The per-channel float64 sums may be reassociated (vectorised): summing float32 values in
# float64 in another order moves the result by ~1e-16 relative, far below float32's rounding.
@njit(cache=True, fastmath={"reassoc"})
def channel_sum(x, ch):
    total = 0.0
    for b in range(x.shape[0]):
        for i in range(x.shape[2]):
            total += x[b, ch, i]
    return total


@njit(cache=True, fastmath={"reassoc"})
def channel_squares(x, ch, m):
    """sum of float32 (x - m)^2 in float64, as variance_cpu squares before it sums."""
    total = 0.0
    for b in range(x.shape[0]):
        for i in range(x.shape[2]):
            d = x[b, ch, i] - m
            total += d * d
    return total


@njit(parallel=True, cache=True)
def batchnorm_train_forward(x, scales, biases, rolling_mean, rolling_variance, code,
                            x_norm, mean, variance, out):
    """batchnorm.forward_train + add_bias + activation over x [N, C, P], one channel per task:
    float64 sums cast to float32, the unbiased variance, the 1% rolling update and
    ``/ (sqrt(var) + .000001f)``, each rounded as the reference rounds it."""
    n, c, size = x.shape
    count = np.float32(n * size)
    for ch in prange(c):
        m = np.float32(channel_sum(x, ch)) / count
        v = np.float32(channel_squares(x, ch, m)) / (count - np.float32(1))
        mean[ch], variance[ch] = m, v
        rolling_mean[ch] = np.float32(.99) * rolling_mean[ch] + np.float32(.01) * m
        rolling_variance[ch] = np.float32(.99) * rolling_variance[ch] + np.float32(.01) * v
        denominator = np.sqrt(v) + np.float32(.000001)
        scale, bias = scales[ch], biases[ch]
        for b in range(n):
            for i in range(size):
                normalized = (x[b, ch, i] - m) / denominator
                x_norm[b, ch, i] = normalized
                out[b, ch, i] = activate(normalized * scale + bias, code)


@njit(cache=True, fastmath={"reassoc"})
def channel_delta_sums(delta, output, code, x, x_norm, ch, m, scale):
    """delta *= activation gradient, *= scale, in place on channel ch; returns the float64 sums
    of delta (before the scale), delta * x_norm, and of scaled delta and scaled delta * (x - m)."""
    sum_delta = sum_scaled = sum_scaled_delta = sum_centered = 0.0
    for b in range(delta.shape[0]):
        for i in range(delta.shape[2]):
            d = delta[b, ch, i] * activation_gradient(output[b, ch, i], code)
            sum_delta += d
            sum_scaled += d * x_norm[b, ch, i]
            d = d * scale
            sum_scaled_delta += d
            sum_centered += d * (x[b, ch, i] - m)
            delta[b, ch, i] = d
    return sum_delta, sum_scaled, sum_scaled_delta, sum_centered


@njit(parallel=True, cache=True)
def batchnorm_train_backward(delta, output, code, x, x_norm, mean, variance, scales,
                             bias_updates, scale_updates):
    """The activation gradient, then batchnorm.backward, in place on delta [N, C, P]:
    backward_bias, backward_scale_cpu, scale_bias, mean_delta_cpu, variance_delta_cpu
    and normalize_delta_cpu (``sqrt(var + .00001f)``), rounded as the reference rounds."""
    n, c, size = delta.shape
    count = np.float32(n * size)
    for ch in prange(c):
        m, v = mean[ch], variance[ch]
        sum_delta, sum_scaled, sum_scaled_delta, sum_centered = channel_delta_sums(
            delta, output, code, x, x_norm, ch, m, scales[ch])
        bias_updates[ch] += np.float32(sum_delta)
        scale_updates[ch] += np.float32(sum_scaled)
        std = np.sqrt(v + np.float32(.00001))
        mean_delta = np.float32(sum_scaled_delta) * (np.float32(-1) / std)
        variance_delta = np.float32(sum_centered) * (np.float32(-.5) * (v + np.float32(.00001)) ** np.float32(-1.5))
        for b in range(n):
            for i in range(size):
                delta[b, ch, i] = (delta[b, ch, i] / std
                                   + variance_delta * np.float32(2) * (x[b, ch, i] - m) / count
                                   + mean_delta / count)
