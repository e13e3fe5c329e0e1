"""darknet_py export CFG WEIGHTS model.onnx: the torch backend's inference module as an ONNX
graph, for onnxruntime and other deployment runtimes."""

MAX_OPSET = 20       # the newest opset torch.onnx's TorchScript exporter writes

def export_onnx(net, path, opset=17, batch=1):
    """Write an ONNX file (opset >= 17) with a dynamic batch axis; atomic."""
    import torch

    from .backends.torch.inference import inference_module
    from .files import atomic_write
    module = inference_module(net)
    dummy = torch.zeros(batch, net.channels, net.height, net.width)

    def write(f):
        torch.onnx.export(module, (dummy,), f, opset_version=opset, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          dynamo=False)

    atomic_write(path, write)
