"""darknet network.c:get_current_rate, every policy, with burn_in."""
import math

import numpy as np

F = np.float32


def current_rate(net, batch_num, rng=None):
    """The learning rate at ``batch_num = seen / (batch*subdivisions)``."""
    lr = F(net.learning_rate)
    if batch_num < net.burn_in:
        return F(lr * F(math.pow(F(batch_num) / F(net.burn_in), net.power)))
    policy = net.policy
    if policy == "constant":
        return lr
    if policy == "step":
        return F(lr * F(math.pow(net.scale, batch_num // net.step)))
    if policy == "steps":
        rate = lr
        for step, scale in zip(net.steps, net.scales):
            # darknet compares int steps with size_t batch_num: a negative step is huge
            if (step if step >= 0 else step + 2 ** 64) > batch_num:
                return rate
            rate = F(rate * F(scale))
        return rate
    if policy == "exp":
        return F(lr * F(math.pow(net.gamma, batch_num)))
    if policy == "poly":
        return F(lr * F(math.pow(1 - F(batch_num) / F(net.max_batches), net.power)))
    if policy == "random":
        draw = (rng or np.random.default_rng()).uniform(0, 1)
        return F(lr * F(math.pow(draw, net.power)))
    if policy == "sig":
        return F(lr * F(1.0 / (1.0 + math.exp(net.gamma * (batch_num - net.step)))))
    raise ValueError(f"unknown policy {policy}")
