"""darknet_py export CFG WEIGHTS model.onnx: the network as an inference graph (batch norm
folded into the convolutions the way Darknet normalises, ``scale / (sqrt(var) + 1e-6)``),
for onnxruntime and other deployment runtimes."""
from .errors import DarknetError

def inference_module(net):
    """A torch.nn.Module computing ``net``'s inference forward (the output layer's output)."""
    import torch
    import torch.nn.functional as TF
    from .backends import torch_backend as tb

    layers = net.layers

    class DarknetInference(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = torch.nn.ModuleDict()
            self.linears = torch.nn.ModuleDict()
            for layer in layers:
                key = str(layer.index)
                if layer.kind == "convolutional":
                    w, b = layer.folded()
                    conv = torch.nn.Conv2d(layer.in_shape[0], layer.filters, layer.size,
                                           layer.stride, layer.padding, groups=layer.groups)
                    conv.weight.data = torch.from_numpy(w.reshape(conv.weight.shape))
                    conv.bias.data = torch.from_numpy(b)
                    self.convs[key] = conv
                elif layer.kind == "connected":
                    if layer.batch_normalize:
                        raise DarknetError("export: batch-normalised [connected] is not supported")
                    lin = torch.nn.Linear(layer.inputs, layer.n_outputs)
                    lin.weight.data = torch.from_numpy(layer.params["weights"].copy())
                    lin.bias.data = torch.from_numpy(layer.params["biases"].copy())
                    self.linears[key] = lin
                elif layer.kind == "reorg":
                    c, h, w_ = layer.in_shape
                    from .layers.reorg import reorg_index
                    self.register_buffer(f"reorg{key}", torch.from_numpy(reorg_index(w_, h, c, layer.stride)))

        def forward(self, x):
            outs = []
            for layer in layers:
                key = str(layer.index)
                inputs = [x if i < 0 else outs[i] for i in layer.input_layers]
                y = inputs[0]
                kind = layer.kind
                if kind == "convolutional":
                    y = tb.activate(self.convs[key](y), layer.activation)
                elif kind == "connected":
                    y = tb.activate(self.linears[key](y.flatten(1)), layer.activation)
                elif kind == "maxpool":
                    padded, _ = tb._maxpool_padded(layer, y)
                    _, oh, ow = layer.out_shape
                    y = TF.max_pool2d(padded, layer.size, layer.stride)[:, :, :oh, :ow]
                elif kind == "avgpool":
                    y = y.mean((2, 3), keepdim=True)
                elif kind == "route":
                    y = torch.cat(inputs, 1) if len(inputs) > 1 else y
                elif kind == "reorg":
                    pairs = getattr(self, f"reorg{key}")
                    flat = y.flatten(1)
                    if layer.reverse:
                        raise DarknetError("export: reverse reorg is not supported")
                    y = flat[:, pairs].reshape(-1, *layer.out_shape)
                elif kind == "region":
                    n, _, h, w = y.shape
                    # the logistic/softmax decode in fp32 also under -half: it is cheap
                    e = y.float().reshape(n, layer.num, layer.coords + 1 + layer.classes, h, w)
                    parts = [torch.sigmoid(e[:, :, :2]), e[:, :, 2:layer.coords],
                             torch.sigmoid(e[:, :, layer.coords:layer.coords + 1])]
                    cls = e[:, :, layer.coords + 1:]
                    if layer.tree is not None:
                        cls = torch.cat([torch.softmax(cls[:, :, int(o):int(o) + int(s)], 2)
                                         for o, s in zip(layer.tree.group_offset, layer.tree.group_size)], 2)
                    elif layer.softmax:
                        cls = torch.softmax(cls, 2)
                    y = torch.cat(parts + [cls], 2).reshape(n, -1, h, w)
                elif kind == "softmax":
                    flat = y.flatten(1) / layer.temperature
                    if layer.tree is not None:
                        raise DarknetError("export: tree softmax layers are not supported")
                    y = torch.softmax(flat.reshape(flat.shape[0], layer.groups, -1), 2).flatten(1)
                elif kind == "cost":
                    y = y.flatten(1)
                elif kind != "dropout":
                    raise DarknetError(f"export: [{kind}] is not supported")
                outs.append(y)
            return outs[net.output_layer.index]

    return DarknetInference().eval()


def export_onnx(net, path, opset=17, batch=1):
    """Write an ONNX file (opset >= 17) with a dynamic batch axis; atomic."""
    import torch
    from .files import atomic_write
    module = inference_module(net)
    dummy = torch.zeros(batch, net.channels, net.height, net.width)

    def write(f):
        torch.onnx.export(module, (dummy,), f, opset_version=opset, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          dynamo=False)

    atomic_write(path, write)
