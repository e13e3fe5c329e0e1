"""The Torch backend: Darknet's layers on PyTorch (CUDA, or CPU for tests), with Darknet's
numbers: its batch-norm epsilons, reorg mapping, max-pool padding, region loss and the
GPU-style region backward. Deltas are explicit (Darknet's sign and its in-place quirks)
rather than autograd, so every layer is checked against the NumPy reference the same way.

Parameters live in one flat device tensor (``torch.from_numpy`` on the CPU, so the
network's NumPy buffer and the tensor are the same memory); layers use views into it."""
import contextlib

import numpy as np

from ..errors import DarknetError
from ..layers.reorg import reorg_index
from .numpy_ref import sgd_update

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # pragma: no cover - exercised only without torch
    torch = None

F32_LOWEST = float(np.finfo(np.float32).min)
FORWARD_EPSILON = .000001     # darknet normalize_cpu: sqrt(var) + .000001f
BACKWARD_EPSILON = .00001     # darknet *_delta_cpu: sqrt(var + .00001f)


def require_torch():
    if torch is None:
        raise DarknetError("backend 'torch' needs PyTorch: pip install 'darknet_py[torch]' "
                           "(for the CPU build: pip install torch==2.13.0)")


# -- activations (darknet activations.h), forward on x and gradient on the output y ----------
def activate(x, name):
    if name == "linear":
        return x
    if name == "leaky":
        return TF.leaky_relu(x, .1)
    if name == "relu":
        return x * (x > 0)
    if name == "logistic":
        return 1 / (1 + torch.exp(-x))
    if name == "loggy":
        return 2 / (1 + torch.exp(-x)) - 1
    if name == "elu":
        return (x >= 0) * x + (x < 0) * (torch.exp(x) - 1)
    if name == "selu":
        return (x >= 0) * 1.0507 * x + (x < 0) * 1.0507 * 1.6732 * (torch.exp(x) - 1)
    if name == "relie":
        return torch.where(x > 0, x, .01 * x)
    if name == "ramp":
        return x * (x > 0) + .1 * x
    if name == "tanh":
        return (torch.exp(2 * x) - 1) / (torch.exp(2 * x) + 1)
    if name == "plse":
        return torch.where(x < -4, .01 * (x + 4), torch.where(x > 4, .01 * (x - 4) + 1, .125 * x + .5))
    if name == "stair":
        n = torch.floor(x)
        return torch.where(n % 2 == 0, torch.floor(x / 2), (x - n) + torch.floor(x / 2))
    if name == "hardtan":
        return torch.clamp(x, -1, 1)
    if name == "lhtan":
        return torch.where(x < 0, .001 * x, torch.where(x > 1, .001 * (x - 1) + 1, x))
    raise DarknetError(f"activation {name} has no torch kernel")


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


# -- batch norm -------------------------------------------------------------------------
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


# -- layer kernels: forward(backend, layer, inputs, state), backward(...) -----------------
def conv_forward(b, layer, inputs, state):
    p = b.layer_params(layer)
    x, weights = inputs[0], p["weights"]
    half = b.train_half if state.train else b.half
    if half is not None:
        # -half: the convolution (nearly all the FLOPs) on the tensor cores, the rest in fp32
        x, weights = x.to(half), weights.to(half)
    x = TF.conv2d(x, weights, stride=layer.stride, padding=layer.padding, groups=layer.groups).float()
    if layer.batch_normalize:
        x = bn_forward(x, p, state.train, state.saved_for(layer))
    return activate(x + p["biases"].view(1, -1, 1, 1), layer.activation)


def conv_backward(b, layer, inputs, output, delta, input_deltas, state):
    p, u = b.layer_params(layer), b.layer_updates(layer)
    if layer.activation != "linear":
        delta.mul_(gradient(output, layer.activation))
    if layer.batch_normalize:
        bn_backward(delta, p, u, state.saved_for(layer))
    else:
        u["biases"] += delta.sum((0, 2, 3))
    x, weights = inputs[0], p["weights"]
    if b.train_half is not None:      # the gradient convolutions in bf16 too; updates stay fp32
        x, weights, delta = x.to(b.train_half), weights.to(b.train_half), delta.to(b.train_half)
    u["weights"] += torch.nn.grad.conv2d_weight(x, weights.shape, delta, stride=layer.stride,
                                                padding=layer.padding, groups=layer.groups).float()
    if input_deltas[0] is None:
        return
    d_in = torch.nn.grad.conv2d_input(x.shape, weights, delta, stride=layer.stride,
                                      padding=layer.padding, groups=layer.groups).float()
    input_deltas[0] += d_in                # every size, as cuDNN adds (see the reference)


def connected_forward(b, layer, inputs, state):
    p = b.layer_params(layer)
    x = inputs[0].reshape(inputs[0].shape[0], -1) @ p["weights"].t()
    if layer.batch_normalize:
        x = bn_forward(x, p, state.train, state.saved_for(layer))
    return activate(x + p["biases"], layer.activation)


def connected_backward(b, layer, inputs, output, delta, input_deltas, state):
    p, u = b.layer_params(layer), b.layer_updates(layer)
    delta.mul_(gradient(output, layer.activation))
    if layer.batch_normalize:
        bn_backward(delta, p, u, state.saved_for(layer))
    else:
        u["biases"] += delta.sum(0)
    x = inputs[0].reshape(inputs[0].shape[0], -1)
    u["weights"] += delta.t() @ x
    if input_deltas[0] is not None:
        input_deltas[0] += (delta @ p["weights"]).view(input_deltas[0].shape)


def _maxpool_padded(layer, x):
    _, oh, ow = layer.out_shape
    before = layer.padding // 2
    after_h = max(0, (oh - 1) * layer.stride + layer.size - before - x.shape[2])
    after_w = max(0, (ow - 1) * layer.stride + layer.size - before - x.shape[3])
    # darknet pads with -FLT_MAX; a half-precision export pads with its own lowest
    lowest = F32_LOWEST if x.dtype == torch.float32 else float(torch.finfo(x.dtype).min)
    return TF.pad(x, (before, after_w, before, after_h), value=lowest), before


def maxpool_forward(b, layer, inputs, state):
    xp, _ = _maxpool_padded(layer, inputs[0])
    _, oh, ow = layer.out_shape
    out, index = TF.max_pool2d(xp, layer.size, layer.stride, return_indices=True)
    out, index = out[:, :, :oh, :ow], index[:, :, :oh, :ow]
    if state.train:
        state.saved_for(layer).update(index=index, padded_shape=xp.shape)
    return out.contiguous()


def maxpool_backward(b, layer, inputs, output, delta, input_deltas, state):
    if input_deltas[0] is None:
        return
    saved = state.saved_for(layer)
    n, c, ph, pw = saved["padded_shape"]
    padded = torch.zeros((n, c, ph * pw), dtype=delta.dtype, device=delta.device)
    padded.scatter_add_(2, saved["index"].reshape(n, c, -1), delta.reshape(n, c, -1))
    before = layer.padding // 2
    _, h, w = layer.in_shape
    input_deltas[0] += padded.view(n, c, ph, pw)[:, :, before:before + h, before:before + w]


def avgpool_forward(b, layer, inputs, state):
    x = inputs[0]
    return x.mean((2, 3), keepdim=True)


def avgpool_backward(b, layer, inputs, output, delta, input_deltas, state):
    if input_deltas[0] is not None:
        _, h, w = layer.in_shape
        input_deltas[0] += delta / (h * w)


def route_forward(b, layer, inputs, state):
    return inputs[0] if len(inputs) == 1 else torch.cat(inputs, 1)


def route_backward(b, layer, inputs, output, delta, input_deltas, state):
    offset = 0
    for x, target in zip(inputs, input_deltas):
        c = x.shape[1]
        if target is not None:
            target += delta[:, offset:offset + c]
        offset += c


def _reorg_pairs(b, layer):
    c, h, w = layer.in_shape
    key = ("reorg", w, h, c, layer.stride)
    if key not in b.cache:
        b.cache[key] = torch.from_numpy(reorg_index(w, h, c, layer.stride)).to(b.device)
    return b.cache[key]


def reorg_forward(b, layer, inputs, state):
    x = inputs[0]
    n = x.shape[0]
    flat, pairs = x.reshape(n, -1), _reorg_pairs(b, layer)
    if layer.reverse:
        out = torch.empty_like(flat)
        out[:, pairs] = flat
    else:
        out = flat[:, pairs]
    return out.view(n, *layer.out_shape)


def reorg_backward(b, layer, inputs, output, delta, input_deltas, state):
    if input_deltas[0] is None:
        return
    n = delta.shape[0]
    flat, pairs = delta.reshape(n, -1), _reorg_pairs(b, layer)
    target = input_deltas[0].view(n, -1)
    if layer.reverse:
        target.copy_(flat[:, pairs])
    else:
        target[:, pairs] = flat


def _softmax_groups(x, tree, axis):
    if tree is None:
        return torch.softmax(x, axis)
    out = torch.empty_like(x)
    for offset, size in zip(tree.group_offset, tree.group_size):
        out.narrow(axis, int(offset), int(size)).copy_(torch.softmax(x.narrow(axis, int(offset), int(size)), axis))
    return out


def region_forward(b, layer, inputs, state):
    x = inputs[0]
    n, _, h, w = x.shape
    out = x.reshape(n, layer.num, layer.coords + 1 + layer.classes, h, w).clone()
    for e in (0, 1, layer.coords):
        out[:, :, e] = torch.sigmoid(out[:, :, e])
    if layer.tree is not None or layer.softmax:
        out[:, :, layer.coords + 1:] = _softmax_groups(out[:, :, layer.coords + 1:], layer.tree, 2)
    if state.train and state.truth is not None:
        # the loss is Darknet's loop over truths: the reference's, on the host (small data)
        from ..layers.region_loss import region_loss
        region_loss(layer, out.detach().cpu().numpy(), state)
    return out.view(x.shape)


def region_backward(b, layer, inputs, output, delta, input_deltas, state):
    if input_deltas[0] is None:
        return
    n, _, h, w = delta.shape
    d = delta.reshape(n, layer.num, -1, h, w).clone()
    out = output.reshape(n, layer.num, -1, h, w)
    for e in (0, 1, layer.coords):
        d[:, :, e] *= (1 - out[:, :, e]) * out[:, :, e]
    input_deltas[0] += d.view(delta.shape)


def softmax_forward(b, layer, inputs, state):
    x = inputs[0].reshape(inputs[0].shape[0], -1) / layer.temperature
    n = x.shape[0]
    if layer.tree is not None:
        out = _softmax_groups(x, layer.tree, 1)
    else:
        out = torch.softmax(x.view(n, layer.groups, -1), 2).view(n, -1)
    if state.train and state.truth is not None and not layer.noloss:
        layer.loss(b.to_numpy(out), state.truth, state)    # the reference's, on the host
    return out


def passthrough_backward(b, layer, inputs, output, delta, input_deltas, state):
    if input_deltas[0] is not None:
        input_deltas[0] += delta.reshape(input_deltas[0].shape)


def cost_forward(b, layer, inputs, state):
    # a loss over a few numbers an image (classifier outputs): the reference's own code on the
    # host, as for the region loss; its delta comes back through Network.forward
    return b.asarray(layer.forward([b.to_numpy(inputs[0])], state))


def cost_backward(b, layer, inputs, output, delta, input_deltas, state):
    if input_deltas[0] is not None:
        input_deltas[0] += layer.scale * delta.reshape(input_deltas[0].shape)


def dropout_forward(b, layer, inputs, state):
    if not state.train:
        return inputs[0]
    keep = torch.rand(inputs[0].shape, device=b.device) >= layer.probability
    mask = keep.float() * layer.scale
    state.saved_for(layer)["mask"] = mask
    return inputs[0] * mask


def dropout_backward(b, layer, inputs, output, delta, input_deltas, state):
    if input_deltas[0] is not None:
        input_deltas[0].copy_((input_deltas[0] + delta) * state.saved_for(layer)["mask"])


KERNELS = {
    "convolutional": (conv_forward, conv_backward),
    "connected": (connected_forward, connected_backward),
    "maxpool": (maxpool_forward, maxpool_backward),
    "avgpool": (avgpool_forward, avgpool_backward),
    "route": (route_forward, route_backward),
    "reorg": (reorg_forward, reorg_backward),
    "region": (region_forward, region_backward),
    "softmax": (softmax_forward, passthrough_backward),
    "cost": (cost_forward, cost_backward),
    "dropout": (dropout_forward, dropout_backward),
}


HALF_TYPES = {"fp32": None, "fp16": "float16", "bf16": "bfloat16"}


class TorchBackend:
    name = "torch"

    def __init__(self, device=None, precision="fp32"):
        require_torch()
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(device)
            if self.device.type == "cuda" and not torch.cuda.is_available():
                raise RuntimeError("CUDA is not available")
        except RuntimeError as err:
            raise DarknetError(f"torch device '{device}': {err}") from None
        if precision not in HALF_TYPES:
            raise DarknetError(f"precision '{precision}' (choose {', '.join(HALF_TYPES)})")
        self.half = HALF_TYPES[precision] and getattr(torch, HALF_TYPES[precision])
        # training under -half convolves in bf16 whichever half was asked for: fp16's range
        # would need loss scaling to keep Darknet's small deltas from flushing to zero
        self.train_half = self.half and torch.bfloat16
        if self.device.type == "cuda":
            # cuDNN convolves in TF32 by default (10-bit mantissa, ~1e-3 relative): Darknet's
            # numbers need true fp32. -half is the way to trade accuracy for speed.
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.benchmark = True
        self.cache = {}
        self._params = self._updates = None
        self._inference = None          # (folded module, {input shape: CUDA graph}), see predict

    # -- parameters: one flat tensor, views per layer --------------------------------------
    def prepare(self, net):
        self.net = net
        self._inference = None
        if self.device.type == "cpu":
            self.flat_params = torch.from_numpy(net.params)
            self.flat_updates = torch.from_numpy(net.updates)
        else:
            self.flat_params = torch.from_numpy(net.params).to(self.device)
            self.flat_updates = torch.from_numpy(net.updates).to(self.device)
        self._params, self._updates = {}, {}
        offset = 0
        for layer in net.layers:
            p, u = {}, {}
            for name, shape in layer.param_shapes():
                count = int(np.prod(shape))
                p[name] = self.flat_params[offset:offset + count].view(shape)
                u[name] = self.flat_updates[offset:offset + count].view(shape)
                offset += count
            self._params[layer.index], self._updates[layer.index] = p, u

    def sync_params(self, net):
        if self.device.type != "cpu" and self._params is not None:
            net.params[:] = self.flat_params.cpu().numpy()
            net.updates[:] = self.flat_updates.cpu().numpy()

    def layer_params(self, layer):
        return self._params[layer.index]

    def layer_updates(self, layer):
        return self._updates[layer.index]

    # -- arrays ------------------------------------------------------------------------------
    def asarray(self, x):
        if isinstance(x, torch.Tensor):
            return x.to(self.device, torch.float32)
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)

    def to_numpy(self, a):
        return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)

    def zeros_like(self, a):
        return torch.zeros_like(a)

    # -- the kernels -------------------------------------------------------------------------
    def running(self, train):
        return contextlib.nullcontext()

    def forward_layer(self, layer, inputs, state):
        with torch.no_grad():
            return KERNELS[layer.kind][0](self, layer, inputs, state)

    def backward_layer(self, layer, inputs, output, delta, input_deltas, state):
        with torch.no_grad():
            KERNELS[layer.kind][1](self, layer, inputs, output, delta, input_deltas, state)

    def update(self, net, lr, batch, momentum, decay):
        self._inference = None
        with torch.no_grad():
            sgd_update([(layer, self._params[layer.index], self._updates[layer.index])
                        for layer in net.layers], lr, batch, momentum, decay, scalar=float)

    # -- inference: the deployment graph ------------------------------------------------------
    GRAPHS_KEPT = 2        # a CUDA graph holds its activations: keep the latest input shapes only

    def predict(self, net, x):
        """The output layer's output by export.inference_module: batch norm folded (Darknet's
        ``scale / (sqrt(var) + .000001)``), channels_last, -half's dtype throughout, and on CUDA
        one captured graph per input shape. None where the network has a layer it lacks."""
        if self._inference is None:
            from ..export import inference_module
            self.sync_params(net)
            try:
                module = inference_module(net).to(self.device, self.half or torch.float32)
            except DarknetError:
                module = False
            if module and self.device.type == "cuda":
                module = module.to(memory_format=torch.channels_last)
            self._inference = (module, {})
        module, graphs = self._inference
        if not module:
            return None
        dtype = self.half or torch.float32
        layout = torch.channels_last if self.device.type == "cuda" else torch.contiguous_format

        def run(x):
            # numpy's fp32 NCHW in and out: the host copies stay plain memcpys, and the
            # conversions to -half's dtype and channels_last run on the device (in the graph)
            return module(x.to(dtype).contiguous(memory_format=layout)).float()

        with torch.inference_mode():
            if self.device.type != "cuda":
                return self.to_numpy(run(self.asarray(x)))
            key = tuple(x.shape)
            if key not in graphs:
                while len(graphs) >= self.GRAPHS_KEPT:
                    graphs.pop(next(iter(graphs)))
                graphs[key] = capture_graph(run, torch.empty(key, device=self.device))
            if graphs[key] is None:
                return self.to_numpy(run(self.asarray(x)))
            static_in, static_out, graph = graphs[key]
            static_in.copy_(torch.from_numpy(x))
            graph.replay()
            return static_out.cpu().numpy()


def capture_graph(module, static_in):
    """Record one forward pass as a CUDA graph (replay skips the per-kernel launch cost);
    None where the capture fails (seen on an H200 with yolo9000's 1,846-group tree softmax):
    then the module runs eagerly."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):                  # warm-up: cuDNN picks its algorithms outside capture
            module(static_in)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            static_out = module(static_in)
    except RuntimeError:        # torch.AcceleratorError is one
        torch.cuda.synchronize()
        return None
    return static_in, static_out, graph
