"""darknet batchnorm_layer.c on torch tensors: the inference normalisation with the rolling
statistics, and training's forward and backward with Darknet's two epsilons."""
import torch

FORWARD_EPSILON = .000001     # darknet normalize_cpu: sqrt(var) + .000001f
BACKWARD_EPSILON = .00001     # darknet *_delta_cpu: sqrt(var + .00001f)


def _channel(v, x):
    return v.view(1, -1, 1, 1) if x.dim() == 4 else v.view(1, -1)


def _axes(x):
    return (0, 2, 3) if x.dim() == 4 else (0,)


def _channel_sum(x):
    """Per-channel sum (torch's cascade summation in float32; its Welford var_mean drifts
    past 1e-4 on BN statistics, so the two passes are written out as Darknet does)."""
    return x.sum(_axes(x))


def bn_forward(x, p, train, saved):
    if not train:
        scale = p["scales"] / (torch.sqrt(p["rolling_variance"]) + FORWARD_EPSILON)
        return (x - _channel(p["rolling_mean"], x)) * _channel(scale, x)
    count = x.numel() // x.shape[1]
    mean = _channel_sum(x) / count                            # darknet mean_cpu
    centered = x - _channel(mean, x)
    variance = _channel_sum(centered * centered) / (count - 1)   # variance_cpu: unbiased
    p["rolling_mean"].mul_(.99).add_(.01 * mean)
    p["rolling_variance"].mul_(.99).add_(.01 * variance)
    x_norm = centered / (torch.sqrt(_channel(variance, x)) + FORWARD_EPSILON)
    saved.update(centered=centered, x_norm=x_norm, mean=mean, variance=variance)
    return x_norm * _channel(p["scales"], x)


def bn_backward(delta, p, u, saved):
    """darknet backward_batchnorm_layer."""
    count = delta.numel() // delta.shape[1]
    x_norm, variance, centered = saved["x_norm"], saved["variance"], saved["centered"]
    u["biases"] += _channel_sum(delta)
    u["scales"] += _channel_sum(delta * x_norm)
    delta.mul_(_channel(p["scales"], delta))
    std = torch.sqrt(variance + BACKWARD_EPSILON)
    mean_delta = _channel_sum(delta) * (-1 / std)
    variance_delta = _channel_sum(delta * centered) * (-.5 * (variance + BACKWARD_EPSILON) ** -1.5)
    delta.div_(_channel(std, delta))
    delta.add_(centered * _channel(variance_delta * 2 / count, delta))
    delta.add_(_channel(mean_delta / count, delta))
