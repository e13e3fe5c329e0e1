"""Every layer, forward and backward, on every backend against the NumPy reference, on
random inputs: odd and non-square sizes, batch > 1. One helper, one line per case
(tinygrad's habit). The reference itself is checked against finite differences where
Darknet's backward is the true gradient."""
from dataclasses import replace

import numpy as np
import pytest
from helpers import BACKENDS, assert_close

import darknet_py
from darknet_py.layers import activations
from darknet_py.layers.base import ForwardState

RTOL = 1e-4
LINEAR_1X1 = "[convolutional]\nfilters={c}\nsize=1\nstride=1\npad=1\nactivation=linear\n"

CASES = {
    # name: (channels, height, width, sections after a 1x1 linear conv that feeds the layer)
    "conv3x3 bn leaky": (4, 9, 7, "[convolutional]\nbatch_normalize=1\nfilters=6\nsize=3\nstride=1\npad=1\n"
                                  "activation=leaky\n"),
    "conv3x3 stride2 pad0": (4, 11, 8, "[convolutional]\nfilters=5\nsize=3\nstride=2\npadding=0\nactivation=relu\n"),
    # pad 1 over few channels: the Numba backend's direct kernel, its stride-2 phases at odd and even widths
    "conv3x3 stride2 pad1": (3, 11, 8, "[convolutional]\nbatch_normalize=1\nfilters=5\nsize=3\nstride=2\npad=1\n"
                                       "activation=leaky\n"),
    "conv3x3 stride2 pad1 bands": (3, 97, 90, "[convolutional]\nfilters=5\nsize=3\nstride=2\npad=1\n"
                                              "activation=logistic\n"),
    "conv groups": (4, 7, 7, "[convolutional]\nfilters=6\nsize=3\nstride=1\npad=1\ngroups=2\nactivation=linear\n"),
    # maps of 2,048 pixels or more: the Numba backend convolves them band by band
    "conv3x3 bands": (4, 50, 46, "[convolutional]\nbatch_normalize=1\nfilters=6\nsize=3\nstride=1\npad=1\n"
                                 "activation=leaky\n"),
    "conv3x3 stride2 bands": (3, 97, 91, "[convolutional]\nfilters=5\nsize=3\nstride=2\npadding=0\nactivation=relu\n"),
    "conv1x1 bands": (4, 48, 47, "[convolutional]\nfilters=7\nsize=1\nstride=1\npad=1\nactivation=logistic\n"),
    "conv1x1 bn logistic": (4, 6, 5, "[convolutional]\nbatch_normalize=1\nfilters=3\nsize=1\nstride=1\npad=1\n"
                                     "activation=logistic\n"),
    "maxpool 2/2 odd": (3, 9, 7, "[maxpool]\nsize=2\nstride=2\n"),
    "maxpool 2/2 even": (3, 8, 6, "[maxpool]\nsize=2\nstride=2\n"),
    "maxpool 2/1": (3, 6, 5, "[maxpool]\nsize=2\nstride=1\n"),
    # rows of 16 or more windows: the Numba backend's vectorised loop, and its edge
    "maxpool 2/2 wide": (2, 5, 67, "[maxpool]\nsize=2\nstride=2\n"),
    "maxpool 2/1 wide": (2, 4, 41, "[maxpool]\nsize=2\nstride=1\n"),
    "maxpool 3/2": (3, 9, 10, "[maxpool]\nsize=3\nstride=2\n"),
    "avgpool": (3, 5, 7, "[avgpool]\n"),
    "route two": (3, 6, 6, "[maxpool]\nsize=2\nstride=1\n[route]\nlayers=-1,-2\n"),
    "reorg": (8, 6, 4, "[reorg]\nstride=2\n"),
    "reorg reverse": (8, 3, 2, "[reorg]\nstride=2\nreverse=1\n"),
    "connected bn": (2, 3, 3, "[connected]\noutput=7\nbatch_normalize=1\nactivation=leaky\n"),
    "connected": (2, 3, 4, "[connected]\noutput=5\nactivation=tanh\n"),
    "softmax groups": (6, 1, 1, "[softmax]\ngroups=2\ntemperature=2\n"),
    "dropout p=0": (3, 4, 4, "[dropout]\nprobability=0\n"),
    "region": (2 * 8, 5, 3, "[region]\nanchors=1,1, 2,3\nclasses=3\nnum=2\nsoftmax=1\n"),
    "shortcut leaky": (4, 5, 7, "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=linear\n"
                                "[shortcut]\nfrom=-2\nactivation=leaky\nalpha=.5\nbeta=2\n"),
    # the source twice as large (sampled with stride 2), then twice as small (written every 2nd cell)
    "shortcut from larger": (4, 8, 6, "[maxpool]\nsize=2\nstride=2\n[shortcut]\nfrom=-2\n"),
    "shortcut from smaller": (4, 4, 6, "[maxpool]\nsize=2\nstride=2\n[upsample]\nstride=2\n"
                                       "[convolutional]\nfilters=3\nsize=1\nactivation=linear\n"
                                       "[shortcut]\nfrom=-3\n"),
    "upsample": (3, 3, 5, "[upsample]\nstride=2\nscale=.5\n"),
    "route groups": (4, 3, 5, "[convolutional]\nfilters=6\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
                              "[route]\nlayers=-1,-2\ngroups=2\ngroup_id=1\n"),
    "upsample reverse": (3, 6, 4, "[upsample]\nstride=-2\n"),
    "yolo": (2 * 8, 5, 3, "[yolo]\nmask=1,2\nanchors=10,14, 23,27, 37,58\nclasses=3\nnum=3\n"),
}
CASES.update({f"activation {name}": (3, 4, 5, f"[convolutional]\nfilters=3\nsize=1\nstride=1\npad=1\n"
                                              f"activation={name}\n") for name in activations.NAMES})


def build(tmp_path, case, backend=("numpy", None)):
    c, h, w, body = CASES[case]
    cfg = tmp_path / "case.cfg"
    cfg.write_text(f"[net]\nwidth={w}\nheight={h}\nchannels={c}\nbatch=2\n" + LINEAR_1X1.format(c=c) + body)
    net = darknet_py.load_network(cfg, backend=backend[0], device=backend[1])
    net.params[:] = np.random.default_rng(1).uniform(-1, 1, net.params.size)
    for layer in net.layers:
        if "rolling_variance" in layer.params:
            variance = layer.params["rolling_variance"]
            variance[:] = np.random.default_rng(2).uniform(.5, 1.5, variance.shape)
    net.backend.prepare(net)
    return net


def run(net, train, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, net.channels, net.height, net.width)).astype(np.float32)
    state = ForwardState(train=train, seen=100000, rng=np.random.default_rng(0), log=lambda s: None)
    net.forward(x, state)
    outputs = [net.output(i) for i in range(len(net.layers))]
    if not train:
        return outputs, None, None
    top = len(net.layers) - 1
    net.deltas[top] += net.backend.asarray(rng.standard_normal(outputs[top].shape).astype(np.float32))
    net.backward(state)
    net.backend.sync_params(net)
    return outputs, [net.delta(i) for i in range(len(net.layers))], net.updates.copy()


# AlexeyAB's mish, swish and hard_mish run inference only (training them is refused)
MODES = [pytest.param(case, train, id=f"{case}-{'training' if train else 'inference'}")
         for case in sorted(CASES) for train in (False, True)
         if not (train and case.split()[-1] in activations.INFERENCE_ONLY)]


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b.id != "numpy"])
@pytest.mark.parametrize("case,train", MODES)
def test_layer_matches_reference(tmp_path, case, backend, train):
    expected = run(build(tmp_path, case), train)
    actual = run(build(tmp_path, case, backend), train)
    for i, (a, e) in enumerate(zip(actual[0], expected[0])):
        assert_close(a, e, RTOL, f"{case} output {i}")
    if train:
        for i, (a, e) in enumerate(zip(actual[1], expected[1])):
            assert_close(a, e, RTOL, f"{case} delta {i}")
        assert_close(actual[2], expected[2], RTOL, f"{case} gradients")


TRUE_GRADIENT = ["conv3x3 stride2 pad0", "conv groups", "maxpool 2/2 odd", "maxpool 3/2", "avgpool",
                 "route two", "reorg", "reorg reverse", "connected", "upsample", "upsample reverse",
                 "shortcut from larger", "shortcut from smaller", "route groups"] + \
                [f"activation {n}" for n in activations.NAMES if n != "stair" and n not in activations.INFERENCE_ONLY]


@pytest.mark.parametrize("case", TRUE_GRADIENT)
def test_reference_backward_is_the_gradient(tmp_path, case):
    """delta = -dL/d(input) for L = -sum(r * output): central differences, float64 probes."""
    net = build(tmp_path, case)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, net.channels, net.height, net.width)).astype(np.float32)
    state = ForwardState(train=True, seen=100000, log=lambda s: None)
    net.forward(x, state)
    top = len(net.layers) - 1
    r = rng.standard_normal(net.output(top).shape).astype(np.float32)
    net.deltas[top][...] = r
    net.backward(state)
    analytic = net.delta(0)            # delta of the 1x1 conv feeding the layer = d/d(its output)
    feed = net.output(0)
    probes = rng.choice(feed.size, 12, replace=False)
    for k in probes:
        step = 1e-2
        values = []
        for sign in (1, -1):
            bumped = feed.copy().reshape(-1)
            bumped[k] += sign * step
            out = [bumped.reshape(feed.shape)]
            for later in net.layers[1:]:
                inputs = [out[j] for j in later.input_layers]
                out.append(later.forward(inputs, ForwardState(seen=100000)))
            values.append(float((r.astype(np.float64) * out[-1]).sum()))
        numeric = (values[0] - values[1]) / (2 * step)
        assert analytic.reshape(-1)[k] == pytest.approx(numeric, rel=2e-2, abs=2e-3), (case, k)


def test_numba_max_pool_split_among_tasks(tmp_path, monkeypatch):
    """Small pools run as one task on the calling thread; split among the threads (as large
    maps are), each task's run of planes must still match the reference."""
    from darknet_py.backends.numba import backend as numba_backend
    monkeypatch.setattr(numba_backend, "TUNING", replace(numba_backend.TUNING, pool_task_outputs=1))
    for case in ("maxpool 2/2 odd", "maxpool 2/2 wide", "maxpool 2/1 wide"):
        expected, _, _ = run(build(tmp_path, case), train=False)
        actual, _, _ = run(build(tmp_path, case, ("numba", None)), train=False)
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, RTOL, f"{case} output {i}, split")


def numba_3x3_layer(tmp_path, channels, height, width, filters, activation, stride=1):
    """A network of one 3x3 batch-normalised convolution (pad 1) on the Numba backend, with random
    parameters and rolling statistics, a batch of two random images and the reference's output."""
    cfg = tmp_path / "conv.cfg"
    cfg.write_text(f"[net]\nwidth={width}\nheight={height}\nchannels={channels}\nbatch=2\n"
                   f"[convolutional]\nbatch_normalize=1\nfilters={filters}\nsize=3\nstride={stride}\npad=1\n"
                   f"activation={activation}\n")
    reference = darknet_py.load_network(cfg, backend="numpy")
    fast = darknet_py.load_network(cfg, backend="numba")
    for net in (reference, fast):
        net.params[:] = np.random.default_rng(5).uniform(-1, 1, net.params.size)
        net.layers[0].params["rolling_variance"][:] = np.random.default_rng(6).uniform(.5, 1.5, filters)
        net.backend.prepare(net)
    x = np.random.default_rng(7).standard_normal((2, channels, height, width)).astype(np.float32)
    return fast, x, reference.forward(x)


@pytest.mark.parametrize("height,width,activation", [(13, 11, "leaky"), (26, 30, "leaky"), (50, 46, "leaky"),
                                                     (13, 11, "linear"), (26, 30, "relu"), (50, 46, "logistic")])
def test_every_numba_convolution_algorithm(tmp_path, height, width, activation):
    """The Numba backend picks, per layer and shape, the fastest of im2col and Winograd
    F(2x2,3x3) / F(4x4,3x3) / F(6x6,3x3), whole-image or fused share by share of tiles, by timing: each must match
    the reference, whichever is picked, and however its gemms are split, with each activation
    it compiles."""
    from darknet_py.backends.numba.activations import ACTIVATION_CODES
    from darknet_py.backends.numba.algorithms import inference_candidates
    # 22 filters: five whole blocks of microkernel.py's 4 and one of 2
    fast, x, expected = numba_3x3_layer(tmp_path, 16, height, width, 22, activation)
    layer, backend = fast.layers[0], fast.backend
    code = ACTIVATION_CODES[activation]
    algorithms = inference_candidates(layer, backend.tuning)
    assert ("winograd4" in algorithms) == (height > 20) and "winograd2" in algorithms
    assert ("winograd6" in algorithms) == (height > 40)          # 9 x 8 of its tiles, not 5 x 5
    for name in algorithms:
        assert_close(backend.run_algorithm(name, layer, x, code), expected, RTOL, name)
    with backend.running(train=False):        # the gemms split among Numba's threads
        for name in algorithms:
            assert_close(backend.run_algorithm(name, layer, x, code), expected, RTOL, name + " in Numba's threads")
        # several runs of filters (whole blocks of 4, one at least), the last shorter
        for filters in (10, 2):
            backend.tuning = replace(backend.tuning, fused_filters=filters)
            for name in algorithms:
                assert_close(backend.run_algorithm(name, layer, x, code), expected, RTOL,
                             f"{name} by runs of {filters} filters")
        backend.tuning = replace(backend.tuning, fused_tiles=5)     # shares of ~5 tiles, most ending mid-row
        for name in algorithms:
            assert_close(backend.run_algorithm(name, layer, x, code), expected, RTOL, name + " by shares of 5 tiles")
    backend.tuning = replace(backend.tuning, winograd_batch_bytes=0)  # image by image, not the batch at once
    for name in algorithms:
        assert_close(backend.run_algorithm(name, layer, x, code), expected, RTOL, name + " image by image")


@pytest.mark.parametrize("channels,height,width,activation,stride", [
    (1, 7, 9, "leaky", 1), (3, 33, 20, "linear", 1), (4, 20, 33, "logistic", 1), (2, 1, 5, "relu", 1),
    (3, 33, 20, "leaky", 2), (4, 20, 33, "linear", 2), (1, 7, 9, "logistic", 2), (2, 1, 2, "relu", 2)])
def test_numba_few_channel_convolution(tmp_path, channels, height, width, activation, stride):
    """3x3 convolutions of few channels (a first layer's), stride 1 or 2, run a direct kernel:
    it must match the reference at every border, odd, even and non-square maps, a batch, each
    activation."""
    from darknet_py.backends.numba.activations import ACTIVATION_CODES
    from darknet_py.backends.numba.algorithms import inference_candidates
    fast, x, expected = numba_3x3_layer(tmp_path, channels, height, width, 5, activation, stride)
    layer, backend = fast.layers[0], fast.backend
    assert inference_candidates(layer, backend.tuning) == ("direct",)
    assert_close(backend.run_algorithm("direct", layer, x, ACTIVATION_CODES[activation]), expected, RTOL,
                 "few channels")
    assert_close(fast.forward(x), expected, RTOL, "few channels, network")


@pytest.mark.parametrize("height,width", [(13, 11), (26, 30)])
def test_numba_training_convolution_algorithms(tmp_path, height, width):
    """A training forward convolves by im2col + gemm or Winograd F(2x2,3x3) with the raw
    weights, whichever timed fastest: each must match the reference's raw convolution (not
    F(4x4), whose rounding moves Darknet's golden training deltas)."""
    from darknet_py.backends.numba.algorithms import training_candidates
    fast, x, _ = numba_3x3_layer(tmp_path, 16, height, width, 24, "leaky")
    layer, backend = fast.layers[0], fast.backend
    weights = layer.params["weights"].reshape(layer.filters, -1)
    expected = layer.convolve(x, layer.params["weights"]).reshape(2, layer.filters, -1)
    names = training_candidates(layer, backend.tuning)
    assert names == (("gemm", "winograd2-fused", "winograd2-filters", "winograd2") if height < 20 else
                     ("gemm", "winograd2-fused", "winograd2"))
    for name in names:
        assert_close(backend.train_convolve(name, layer, x, weights), expected, RTOL, name)
    backend.tuning = replace(backend.tuning, fused_filters=10)    # several runs of filters, the last shorter
    backend.train_filters.clear()
    for name in names:
        assert_close(backend.train_convolve(name, layer, x, weights), expected, RTOL, name + " by runs of 10 filters")


def test_numba_training_winograd_follows_the_updates(tmp_path, monkeypatch):
    """The training forward's Winograd filters are made once per update and shared by the
    subdivisions' passes: over two steps of two subdivisions each, the parameters must follow
    the reference's (filters kept past an update would run the second step on the first
    step's weights)."""
    from darknet_py.backends.numba import backend as numba_backend
    monkeypatch.setattr(numba_backend, "training_candidates", lambda layer, tuning: ("winograd2", "winograd2-fused"))
    cfg = tmp_path / "train.cfg"
    cfg.write_text("[net]\nbatch=2\nsubdivisions=2\nwidth=9\nheight=10\nchannels=16\nlearning_rate=.1\n"
                   "momentum=.9\ndecay=.0005\n[convolutional]\nbatch_normalize=1\nfilters=16\nsize=3\n"
                   "stride=1\npad=1\nactivation=leaky\n[cost]\ntype=sse\n")
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 16, 10, 9)).astype(np.float32)
    truth = rng.standard_normal((4, 16 * 10 * 9)).astype(np.float32)
    nets = [darknet_py.Network(cfg, backend=name, seed=4) for name in ("numpy", "numba")]
    for step in (1, 2):
        losses = [net.train_step(x, truth, log=lambda line: None) for net in nets]
        assert losses[1] == pytest.approx(losses[0], rel=RTOL), f"step {step}"
        assert_close(nets[1].params, nets[0].params, RTOL, f"parameters after step {step}")


def test_numba_remembers_its_timings(tmp_path, monkeypatch):
    """The fastest algorithm per shape is timed once per machine and kept in
    $DARKNET_PY_CACHE/numba-choices.json; a later process uses it without timing, and an
    entry it does not know (another version's) is timed again. Timings taken while the
    warm-up helper compiles on the other core are used but not kept."""
    import json

    from darknet_py.backends.numba import NumbaBackend, kernels
    from darknet_py.backends.numba.algorithms import inference_candidates
    from darknet_py.backends.numba.kernels import kernels_version
    monkeypatch.setenv("DARKNET_PY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(kernels, "helper_compiling", lambda: False)     # no helper compiling beside
    cfg = tmp_path / "wide.cfg"
    cfg.write_text("[net]\nwidth=11\nheight=13\nchannels=16\nbatch=1\n"
                   "[convolutional]\nfilters=24\nsize=3\nstride=1\npad=1\nactivation=leaky\n")
    x = np.random.default_rng(8).standard_normal((1, 16, 13, 11)).astype(np.float32)
    first = darknet_py.Network(cfg, backend="numba", seed=3)
    expected = first.forward(x)
    saved = json.loads((tmp_path / "cache" / "numba-choices.json").read_text())
    (machine, choices), = saved.items()
    assert list(choices.values())[0] in inference_candidates(first.layers[0], first.backend.tuning)

    def no_timing(*args):
        raise AssertionError("timed again")
    with monkeypatch.context() as m:
        m.setattr(NumbaBackend, "time_algorithms", no_timing)
        assert_close(darknet_py.Network(cfg, backend="numba", seed=3).forward(x), expected, RTOL, "remembered")
    saved[machine] = {key: "an algorithm of another version" for key in choices}
    (tmp_path / "cache" / "numba-choices.json").write_text(json.dumps(saved))
    assert_close(darknet_py.Network(cfg, backend="numba", seed=3).forward(x), expected, RTOL, "timed again")

    # timings of other kernels (an older install) on this machine: not used, and dropped
    assert machine.endswith(f", kernels {kernels_version()}")
    stale = machine.replace(kernels_version(), "0123456789abcdef")
    (tmp_path / "cache" / "numba-choices.json").write_text(json.dumps({stale: choices}))
    timed, time_algorithms = [], NumbaBackend.time_algorithms
    with monkeypatch.context() as m:
        m.setattr(NumbaBackend, "time_algorithms", lambda self, *args: timed.append(1) or time_algorithms(self, *args))
        darknet_py.Network(cfg, backend="numba", seed=3).forward(x)
    assert timed, "another version's timings were used"
    assert list(json.loads((tmp_path / "cache" / "numba-choices.json").read_text())) == [machine]

    (tmp_path / "cache" / "numba-choices.json").unlink()
    monkeypatch.setattr(kernels, "helper_compiling", lambda: True)      # the helper busy on the other core
    assert_close(darknet_py.Network(cfg, backend="numba", seed=3).forward(x), expected, RTOL, "beside the helper")
    assert not (tmp_path / "cache" / "numba-choices.json").exists(), "a timing taken beside the helper was kept"


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b.id != "numpy"])
@pytest.mark.parametrize("head", ["[softmax]\ngroups=2\n", "[cost]\ntype=sse\n", "[cost]\ntype=smooth\n",
                                  "[cost]\ntype=L1\nscale=.5\n"], ids=["softmax", "sse", "smooth", "L1"])
def test_losses_match_reference(tmp_path, head, backend):
    """The classifier losses (cost, softmax cross-entropy) through one training step: the
    cost Darknet prints and the updated parameters."""
    cfg = tmp_path / "loss.cfg"
    cfg.write_text("[net]\nbatch=2\nsubdivisions=1\nwidth=5\nheight=4\nchannels=3\nlearning_rate=.1\n"
                   "momentum=.9\ndecay=.0005\n[connected]\noutput=6\nactivation=leaky\n" + head)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    truth = np.eye(6, dtype=np.float32)[[1, 4]] if "softmax" in head else rng.standard_normal((2, 6)).astype(np.float32)
    nets = [darknet_py.Network(cfg, backend=name, device=device, seed=4) for name, device in (("numpy", None), backend)]
    losses = [net.train_step(x, truth, log=lambda line: None) for net in nets]
    assert losses[1] == pytest.approx(losses[0], rel=RTOL) and losses[0] > 0
    nets[1].backend.sync_params(nets[1])
    assert_close(nets[1].params, nets[0].params, RTOL, "parameters after the step")
    assert np.abs(nets[0].params - darknet_py.Network(cfg, seed=4).params).max() > 1e-4    # it learned


@pytest.mark.parametrize("filters,channels,tiles", [(30, 17, 5), (24, 16, 49), (64, 3, 56), (7, 40, 81)])
def test_numba_packed_products(filters, channels, tiles):
    """The Winograd products by microkernel.py: filters in blocks of 4 (the last one padded),
    tiles in vectors of 24, 16 and 8 (the columns padded to whole vectors), against float64
    products, in one task and in several."""
    from darknet_py.backends.numba.microkernel import pack_filters, packed_products_task, padded_tiles
    from darknet_py.backends.numba.tasks import run_tasks
    rng = np.random.default_rng(filters)
    u = rng.standard_normal((6, filters, channels)).astype(np.float32)
    v = np.zeros((6, channels, padded_tiles(tiles)), np.float32)
    v[:, :, :tiles] = rng.standard_normal((6, channels, tiles))
    packed = pack_filters(u)
    expected = np.matmul(u.astype(np.float64), v[:, :, :tiles].astype(np.float64))
    for tasks in (1, 4):
        m = np.full((6, packed.shape[1] * 4, v.shape[2]), np.nan, np.float32)
        run_tasks(packed_products_task, (packed, v, m), tasks)
        assert_close(m[:, :filters, :tiles], expected, 1e-5, f"{tasks} tasks")


@pytest.mark.parametrize("size,stride,height,width,activation", [
    (1, 1, 13, 11, "leaky"), (1, 1, 8, 8, "linear"), (1, 1, 50, 46, "logistic"), (1, 1, 26, 30, "relu"),
    (3, 2, 37, 29, "leaky"), (3, 2, 8, 8, "linear"), (3, 1, 13, 11, "logistic"), (1, 2, 9, 7, "leaky")])
def test_numba_packed_convolution(tmp_path, size, stride, height, width, activation):
    """Convolutions that Winograd does not take, by microkernel.py's products (im2col band by
    band, none for a plain 1x1; columns padded to whole vectors where they are not) and by
    BLAS, whichever the timing picks: each must match the reference, over a batch, each
    activation, shared among many tasks or few. 12 channels: more than direct's few, fewer
    than Winograd's 16."""
    from darknet_py.backends.numba.activations import ACTIVATION_CODES
    from darknet_py.backends.numba.algorithms import inference_candidates
    cfg = tmp_path / "packed.cfg"
    cfg.write_text(f"[net]\nwidth={width}\nheight={height}\nchannels=12\nbatch=2\n[convolutional]\n"
                   f"batch_normalize=1\nfilters=30\nsize={size}\nstride={stride}\npad={int(size > 1)}\n"
                   f"activation={activation}\n")
    reference, fast = (darknet_py.load_network(cfg, backend=name) for name in ("numpy", "numba"))
    for net in (reference, fast):
        net.params[:] = np.random.default_rng(5).uniform(-1, 1, net.params.size)
        net.layers[0].params["rolling_variance"][:] = np.random.default_rng(6).uniform(.5, 1.5, 30)
        net.backend.prepare(net)
    x = np.random.default_rng(7).standard_normal((2, 12, height, width)).astype(np.float32)
    expected = reference.forward(x)
    layer, backend = fast.layers[0], fast.backend
    assert inference_candidates(layer, backend.tuning) == ("packed", "direct")
    for band_floats in (backend.tuning.band_floats, 64):
        backend.tuning = replace(backend.tuning, band_floats=band_floats)
        with backend.running(train=False):
            for name in ("packed", "direct"):
                assert_close(backend.run_algorithm(name, layer, x, ACTIVATION_CODES[activation]), expected, RTOL,
                             f"{name}, tasks of {band_floats} floats")


def test_numba_remembers_1x1_and_3x3_apart(tmp_path, monkeypatch):
    """A 3x3 and a 1x1 layer with the same input and filters are timed and remembered apart
    (one shared entry ran a 3x3 layer by the 1x1's pick, im2col, at twice its time)."""
    import json

    from darknet_py.backends.numba import kernels
    from darknet_py.backends.numba.algorithms import inference_candidates
    monkeypatch.setenv("DARKNET_PY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(kernels, "helper_compiling", lambda: False)
    cfg = tmp_path / "twins.cfg"
    cfg.write_text("[net]\nwidth=12\nheight=12\nchannels=16\nbatch=1\n"
                   "[convolutional]\nfilters=16\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
                   "[convolutional]\nfilters=16\nsize=1\nstride=1\npad=0\nactivation=leaky\n")
    net = darknet_py.Network(cfg, backend="numba", seed=3)
    net.forward(np.random.default_rng(8).standard_normal((1, 16, 12, 12)).astype(np.float32))
    (choices,) = json.loads((tmp_path / "cache" / "numba-choices.json").read_text()).values()
    assert sorted(choices) == ["1x16x12x12>16 1x1/1", "1x16x12x12>16 3x3/1"]
    assert choices["1x16x12x12>16 3x3/1"] in inference_candidates(net.layers[0], net.backend.tuning)
    assert choices["1x16x12x12>16 1x1/1"] in inference_candidates(net.layers[1], net.backend.tuning)


def test_numba_winograd_filters_are_packed_u():
    """The filter transform writes U straight into pack_filters' layout: the same numbers as
    packing G w G^T computed in float64 here, the last block's missing filters zero."""
    from darknet_py.backends.numba.microkernel import pack_filters
    from darknet_py.backends.numba.winograd import FILTER_TRANSFORMS, winograd_filters
    w = np.random.default_rng(2).standard_normal((7, 5, 3, 3)).astype(np.float32)
    for tile, g in FILTER_TRANSFORMS.items():
        u = np.einsum("ai,kcij,bj->abkc", g, w.astype(np.float64), g).reshape(len(g) ** 2, 7, 5)
        assert_close(winograd_filters(w, g), pack_filters(u.astype(np.float32)), 1e-6, f"F({tile}x{tile}, 3x3)")
