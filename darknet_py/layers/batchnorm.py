"""Batch normalisation as Darknet computes it (darknet: batchnorm_layer.c, blas.c).

Forward divides by ``sqrt(var) + .000001f`` (normalize_cpu); the backward pass uses
``sqrt(var + .00001f)`` (mean_delta_cpu, variance_delta_cpu, normalize_delta_cpu).
Training uses the unbiased batch variance and moves the rolling statistics by 1%.
"""
import numpy as np

F = np.float32
FORWARD_EPSILON = F(.000001)
BACKWARD_EPSILON = F(.00001)


def _axes(x):
    return (0, 2, 3) if x.ndim == 4 else (0,)


def _per_channel(v, x):
    return v.reshape((1, -1, 1, 1) if x.ndim == 4 else (1, -1))


def _sum(x, axes):
    return x.sum(axis=axes, dtype=np.float64).astype(F)


def forward_inference(x, scales, mean, variance):
    """normalize_cpu with the rolling statistics, then scale_bias (the caller adds biases)."""
    x = (x - _per_channel(mean, x)) / (np.sqrt(_per_channel(variance, x)) + FORWARD_EPSILON)
    return x * _per_channel(scales, x)


def forward_train(x, params, saved):
    """Batch statistics: mean_cpu, variance_cpu (divide by N-1), rolling update, normalize_cpu."""
    axes = _axes(x)
    count = x.size // x.shape[1]
    mean = (_sum(x, axes) / F(count)).astype(F)
    centered = x - _per_channel(mean, x)
    variance = (_sum(centered * centered, axes) / F(count - 1)).astype(F)
    params["rolling_mean"][...] = F(.99) * params["rolling_mean"] + F(.01) * mean
    params["rolling_variance"][...] = F(.99) * params["rolling_variance"] + F(.01) * variance
    x_norm = centered / (np.sqrt(_per_channel(variance, x)) + FORWARD_EPSILON)
    saved.update(x=x, x_norm=x_norm, mean=mean, variance=variance)
    return x_norm * _per_channel(params["scales"], x)


def backward(delta, params, updates, saved):
    """darknet backward_batchnorm_layer; ``delta`` (w.r.t. the BN output) is rewritten in
    place to the delta w.r.t. the raw input."""
    axes = _axes(delta)
    count = delta.size // delta.shape[1]
    x, x_norm, mean, variance = saved["x"], saved["x_norm"], saved["mean"], saved["variance"]
    updates["biases"] += _sum(delta, axes)                     # backward_bias
    updates["scales"] += _sum(delta * x_norm, axes)            # backward_scale_cpu
    delta *= _per_channel(params["scales"], delta)             # scale_bias
    std = np.sqrt(variance + BACKWARD_EPSILON)
    mean_delta = _sum(delta, axes) * (F(-1) / std)                                    # mean_delta_cpu
    centered = x - _per_channel(mean, x)
    variance_delta = _sum(delta * centered, axes) * (F(-.5) * (variance + BACKWARD_EPSILON) ** F(-1.5))
    delta[...] = (delta / _per_channel(std, delta)                                    # normalize_delta_cpu
                  + _per_channel(variance_delta, delta) * F(2) * centered / F(count)
                  + _per_channel(mean_delta, delta) / F(count))
