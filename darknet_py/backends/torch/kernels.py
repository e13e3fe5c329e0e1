"""Darknet's layers on torch tensors, one forward(backend, layer, inputs, state) and one
backward(backend, layer, inputs, output, delta, input_deltas, state) per layer class. Deltas
are explicit (Darknet's sign and its in-place rules) rather than autograd, so every layer is
checked against the NumPy reference the same way."""
import numpy as np
import torch
import torch.nn.functional as TF

from ...layers import (
    Avgpool,
    Connected,
    Convolutional,
    Cost,
    Dropout,
    Maxpool,
    Region,
    Reorg,
    Route,
    Shortcut,
    Softmax,
    Upsample,
    Yolo,
)
from ...layers.region_loss import region_loss
from ...layers.reorg import reorg_index
from ...layers.shortcut import shortcut_add
from ...layers.yolo_loss import yolo_loss
from .activations import activate, gradient
from .batchnorm import bn_backward, bn_forward

F32_LOWEST = float(np.finfo(np.float32).min)


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


def maxpool_padded(layer, x):
    _, oh, ow = layer.out_shape
    before = layer.padding // 2
    after_h = max(0, (oh - 1) * layer.stride + layer.size - before - x.shape[2])
    after_w = max(0, (ow - 1) * layer.stride + layer.size - before - x.shape[3])
    # darknet pads with -FLT_MAX; a half-precision export pads with its own lowest
    lowest = F32_LOWEST if x.dtype == torch.float32 else float(torch.finfo(x.dtype).min)
    return TF.pad(x, (before, after_w, before, after_h), value=lowest), before


def maxpool_forward(b, layer, inputs, state):
    xp, _ = maxpool_padded(layer, inputs[0])
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
    if len(inputs) == 1 and layer.groups == 1:
        return inputs[0]
    return torch.cat([x[:, layer.part(x.shape[1])] for x in inputs], 1)


def reference_backward(b, layer, inputs, output, delta, input_deltas, state):
    """The reference's own backward, for layers whose backward is slices and additions."""
    layer.backward(inputs, output, delta, input_deltas, state)


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


def softmax_groups(x, tree, axis):
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
        out[:, :, layer.coords + 1:] = softmax_groups(out[:, :, layer.coords + 1:], layer.tree, 2)
    if state.train and state.truth is not None:
        # the loss is Darknet's loop over truths: the reference's, on the host (small data)
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
        out = softmax_groups(x, layer.tree, 1)
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


def shortcut_forward(b, layer, inputs, state):
    out = inputs[0].clone()
    shortcut_add(out, inputs[1], layer.alpha, layer.beta)
    return activate(out, layer.activation)


def shortcut_backward(b, layer, inputs, output, delta, input_deltas, state):
    if layer.activation != "linear":
        delta.mul_(gradient(output, layer.activation))
    if input_deltas[0] is not None:
        input_deltas[0] += layer.alpha * delta
    if input_deltas[1] is not None:
        shortcut_add(input_deltas[1], delta, 1.0, layer.beta)


def _repeat(x, s):
    return x.repeat_interleave(s, dim=2).repeat_interleave(s, dim=3)


def block_sum(x, s):
    """Each s x s block summed: a negative-stride [upsample]."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // s, s, w // s, s).sum((3, 5))


def upsample_forward(b, layer, inputs, state):
    x = inputs[0]
    return layer.scale * (block_sum(x, layer.stride) if layer.reverse else _repeat(x, layer.stride))


def upsample_backward(b, layer, inputs, output, delta, input_deltas, state):
    if input_deltas[0] is None:
        return
    if layer.reverse:          # darknet assigns here (upsample_cpu with forward=1)
        input_deltas[0].copy_(layer.scale * _repeat(delta, layer.stride))
    else:
        input_deltas[0] += layer.scale * block_sum(delta, layer.stride)


def yolo_forward(b, layer, inputs, state):
    x = inputs[0]
    out = layer.activate(layer.entries(x).clone(), torch.sigmoid)
    if state.train and state.truth is not None:
        # the loss is Darknet's loop over truths: the reference's, on the host (small data)
        yolo_loss(layer, out.detach().cpu().numpy(), state)
    return out.view(x.shape)


# layer class -> (forward, backward)
KERNELS = {
    Convolutional: (conv_forward, conv_backward),
    Connected: (connected_forward, connected_backward),
    Maxpool: (maxpool_forward, maxpool_backward),
    Avgpool: (avgpool_forward, avgpool_backward),
    Route: (route_forward, reference_backward),
    Reorg: (reorg_forward, reorg_backward),
    Region: (region_forward, region_backward),
    Softmax: (softmax_forward, passthrough_backward),
    Cost: (cost_forward, cost_backward),
    Dropout: (dropout_forward, dropout_backward),
    Shortcut: (shortcut_forward, shortcut_backward),
    Upsample: (upsample_forward, upsample_backward),
    Yolo: (yolo_forward, passthrough_backward),
}
