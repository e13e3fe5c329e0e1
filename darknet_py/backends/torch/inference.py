"""The inference network as a torch.nn.Module (batch norm folded into the convolutions the
way Darknet normalises, ``scale / (sqrt(var) + 1e-6)``): what predict runs, and what
export writes to ONNX; and the CUDA graph that replays it."""
import torch
import torch.nn.functional as TF

from ...errors import DarknetError
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
from ...layers.reorg import reorg_index
from .activations import activate
from .kernels import block_sum, maxpool_padded, softmax_groups


def _conv_part(layer):
    w, b = layer.folded()
    conv = torch.nn.Conv2d(layer.in_shape[0], layer.filters, layer.size, layer.stride, layer.padding,
                           groups=layer.groups)
    conv.weight.data = torch.from_numpy(w.reshape(conv.weight.shape))
    conv.bias.data = torch.from_numpy(b)
    return conv


def _linear_part(layer):
    if layer.batch_normalize:
        raise DarknetError("inference module: batch-normalised [connected] is not supported")
    lin = torch.nn.Linear(layer.inputs, layer.n_outputs)
    lin.weight.data = torch.from_numpy(layer.params["weights"].copy())
    lin.bias.data = torch.from_numpy(layer.params["biases"].copy())
    return lin


def _maxpool(module, layer, y):
    padded, _ = maxpool_padded(layer, y)
    _, oh, ow = layer.out_shape
    return TF.max_pool2d(padded, layer.size, layer.stride)[:, :, :oh, :ow]


def _reorg(module, layer, y):
    if layer.reverse:
        raise DarknetError("inference module: reverse reorg is not supported")
    return y.flatten(1)[:, getattr(module, f"reorg{layer.index}")].reshape(-1, *layer.out_shape)


def _region(module, layer, y):
    n, _, h, w = y.shape
    # the logistic/softmax decode in fp32 also under -half: it is cheap
    e = y.float().reshape(n, layer.num, layer.coords + 1 + layer.classes, h, w)
    parts = [torch.sigmoid(e[:, :, :2]), e[:, :, 2:layer.coords],
             torch.sigmoid(e[:, :, layer.coords:layer.coords + 1])]
    cls = e[:, :, layer.coords + 1:]
    if layer.tree is not None or layer.softmax:
        cls = softmax_groups(cls, layer.tree, 2)
    return torch.cat(parts + [cls], 2).reshape(n, -1, h, w)


def _softmax(module, layer, y):
    if layer.tree is not None:
        raise DarknetError("inference module: tree softmax layers are not supported")
    flat = y.flatten(1) / layer.temperature
    return torch.softmax(flat.reshape(flat.shape[0], layer.groups, -1), 2).flatten(1)


def _upsample(module, layer, y):
    if layer.reverse:
        return layer.scale * block_sum(y, layer.stride)
    # nearest interpolation rather than the training kernel's repeat_interleave: one ONNX op
    return layer.scale * TF.interpolate(y, scale_factor=layer.stride, mode="nearest")


def _yolo(module, layer, y):
    n, _, h, w = y.shape
    e = y.float().reshape(n, layer.num, 5 + layer.classes, h, w)
    # concatenated, not assigned in place: the exported graph stays free of scatters
    parts = [layer.scale_xy(torch.sigmoid(e[:, :, :2])), e[:, :, 2:4], torch.sigmoid(e[:, :, 4:])]
    return torch.cat(parts, 2).reshape(n, -1, h, w)


def _shortcut(module, layer, previous, source):
    if previous.shape != source.shape:
        raise DarknetError("inference module: [shortcut] of layers of different sizes is not supported")
    return activate(layer.alpha * previous + layer.beta * source, layer.activation)


# layer class -> its inference forward on the first input (route and shortcut: on all of them)
FORWARD = {
    Convolutional: lambda module, layer, y: activate(module.parts[str(layer.index)](y), layer.activation),
    Connected: lambda module, layer, y: activate(module.parts[str(layer.index)](y.flatten(1)), layer.activation),
    Maxpool: _maxpool,
    Avgpool: lambda module, layer, y: y.mean((2, 3), keepdim=True),
    Reorg: _reorg,
    Region: _region,
    Softmax: _softmax,
    Cost: lambda module, layer, y: y.flatten(1),
    Dropout: lambda module, layer, y: y,
    Upsample: _upsample,
    Yolo: _yolo,
}
PARTS = {Convolutional: _conv_part, Connected: _linear_part}


class DarknetInference(torch.nn.Module):
    """``net``'s inference forward (the output layer's output), its convolutions with batch
    norm folded in."""

    def __init__(self, net):
        super().__init__()
        self.layers = net.layers
        self.output_index = net.output_layer.index
        self.parts = torch.nn.ModuleDict()
        for layer in self.layers:
            if type(layer) not in FORWARD and not isinstance(layer, (Route, Shortcut)):
                raise DarknetError(f"inference module: [{layer.kind}] is not supported")
            if type(layer) in PARTS:
                self.parts[str(layer.index)] = PARTS[type(layer)](layer)
            if isinstance(layer, Reorg):
                c, h, w = layer.in_shape
                self.register_buffer(f"reorg{layer.index}", torch.from_numpy(reorg_index(w, h, c, layer.stride)))
            if isinstance(layer, (Reorg, Softmax)):      # refuse what forward cannot run, now
                FORWARD[type(layer)](self, layer, torch.zeros(1, *layer.in_shape))
            if isinstance(layer, Shortcut) and layer.source_shape != layer.out_shape:
                _shortcut(self, layer, torch.zeros(1, *layer.out_shape), torch.zeros(1, *layer.source_shape))

    def forward(self, x):
        outs = []
        for layer in self.layers:
            inputs = [x if i < 0 else outs[i] for i in layer.input_layers]
            if isinstance(layer, Route):
                outs.append(torch.cat([x[:, layer.part(x.shape[1])] for x in inputs], 1))
            elif isinstance(layer, Shortcut):
                outs.append(_shortcut(self, layer, *inputs))
            else:
                outs.append(FORWARD[type(layer)](self, layer, inputs[0]))
        return outs[self.output_index]


def inference_module(net):
    """A torch.nn.Module computing ``net``'s inference forward, in eval mode."""
    return DarknetInference(net).eval()


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
