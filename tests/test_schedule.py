"""Darknet's learning-rate policies (network.c:get_current_rate), multi-scale sizes, and
batch/subdivisions accumulation."""
import math

import numpy as np
import pytest

import darknet_py
from darknet_py.layers.net import NetOptions
from darknet_py.train import current_rate
from darknet_py.train.trainer import multiscale_size


def options(**kw):
    o = NetOptions(learning_rate=.01, burn_in=0, power=4, max_batches=1000)
    for k, v in kw.items():
        setattr(o, k, v)
    return o


@pytest.mark.parametrize("kw,batch_num,expected", [
    (dict(policy="constant"), 500, .01),
    (dict(policy="constant", burn_in=100), 50, .01 * (50 / 100) ** 4),
    (dict(policy="constant", burn_in=100, power=2), 25, .01 * (25 / 100) ** 2),
    (dict(policy="step", step=100, scale=.5), 250, .01 * .5 ** 2),
    (dict(policy="steps", steps=[100, 200], scales=[.1, .5]), 99, .01),
    (dict(policy="steps", steps=[100, 200], scales=[.1, .5]), 100, .001),
    (dict(policy="steps", steps=[100, 200], scales=[.1, .5]), 250, .0005),
    # darknet compares int steps with size_t batch_num: a -1 step never passes, and stops the rest
    (dict(policy="steps", steps=[-1, 100, 200], scales=[.1, 10, .1]), 500, .01),
    (dict(policy="exp", gamma=.99), 100, .01 * .99 ** 100),
    (dict(policy="poly"), 250, .01 * (1 - 250 / 1000) ** 4),
    (dict(policy="sig", gamma=.1, step=300), 250, .01 / (1 + math.exp(.1 * (250 - 300)))),
])
def test_learning_rate_policies(kw, batch_num, expected):
    assert current_rate(options(**kw), batch_num) == pytest.approx(expected, rel=1e-6)


def test_random_policy_is_bounded():
    rng = np.random.default_rng(0)
    rates = [current_rate(options(policy="random", power=1), 10, rng) for _ in range(50)]
    assert all(0 <= r <= .01 for r in rates) and len(set(rates)) > 40


def test_multiscale_sizes():
    """random=1: the reference commit's (rand() % 10 + 10) * 32 whatever the cfg's size, 608 for
    the last 200 batches. random=1.4: AlexeyAB's range around the cfg's size."""
    for base in (416, 224, 608):
        sizes = {multiscale_size(0, b, base, 10 ** 6) for b in range(0, 5000, 10)}
        assert sizes == set(range(320, 609, 32))
    assert multiscale_size(0, 990, 416, 1000) == 608 == multiscale_size(0, 810, 224, 1000)
    # AlexeyAB: round(f * 224 / 32 + 1) * 32 for f in [1/1.4, 1.4], no larger than 224 when f < 1
    sizes = {multiscale_size(1, b, 224, 10 ** 6, random=1.4) for b in range(0, 5000, 10)}
    assert min(sizes) == 192 and max(sizes) == 352 and 224 in sizes and all(s % 32 == 0 for s in sizes)
    assert multiscale_size(1, 950, 224, 1000, random=1.4) == 352        # the last 100 batches: the largest
    steps_of_10 = {multiscale_size(2, b, 100, 10 ** 6, random=2, step=10) for b in range(0, 3000, 10)}
    assert steps_of_10 <= set(range(60, 211, 10))


def test_subdivisions_accumulate_into_one_update(tmp_path):
    """batch=4 subdivisions=2 runs two passes of 2 and updates once, like one pass of 4
    (without batch norm, whose statistics are per pass in Darknet too)."""
    body = ("[convolutional]\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n[maxpool]\nsize=2\nstride=2\n"
            "[convolutional]\nfilters=14\nsize=1\nstride=1\npad=1\nactivation=linear\n"
            "[region]\nanchors=1,1, 2,2\nclasses=2\nnum=2\nsoftmax=1\nrescore=1\nbias_match=1\n")
    nets = []
    for sub in (1, 2):
        cfg = tmp_path / f"s{sub}.cfg"
        cfg.write_text(f"[net]\nbatch=4\nsubdivisions={sub}\nwidth=16\nheight=16\nchannels=3\n"
                       f"learning_rate=.01\nmomentum=.9\ndecay=.0005\n" + body)
        nets.append(darknet_py.load_network(cfg))
    rng = np.random.default_rng(0)
    x = rng.random((4, 3, 16, 16), dtype=np.float32)
    truth = np.zeros((4, 30, 5), np.float32)
    truth[:, 0] = [.4, .6, .3, .2, 1]
    updates = []
    for net in nets:
        calls = []
        loss = net.train_step(x, truth, log=lambda line: None, before_update=lambda n, s, calls=calls: calls.append(1))
        updates.append((loss, len(calls), net.seen, net.params.copy()))
    (loss1, calls1, seen1, p1), (loss2, calls2, seen2, p2) = updates
    assert calls1 == calls2 == 1 and seen1 == seen2 == 4
    assert loss2 == pytest.approx(loss1, rel=1e-5)
    np.testing.assert_allclose(p2, p1, rtol=1e-5, atol=1e-6)
