"""The Torch backend: Darknet's layers on PyTorch (CUDA, or CPU for tests), with Darknet's
numbers: its batch-norm epsilons, reorg mapping, max-pool padding, region loss and the
GPU-style region backward (kernels.py), and a folded inference module for predict
(inference.py).

Parameters live in one flat device tensor (``torch.from_numpy`` on the CPU, so the
network's NumPy buffer and the tensor are the same memory); layers use views into it."""
import contextlib

import numpy as np
import torch

from ...errors import DarknetError
from ...weights import param_views
from ..numpy_ref import sgd_update
from .inference import capture_graph, inference_module
from .kernels import KERNELS

HALF_TYPES = {"fp32": None, "fp16": "float16", "bf16": "bfloat16"}


class TorchBackend:
    name = "torch"

    def __init__(self, device=None, precision="fp32"):
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
        indices = [layer.index for layer in net.layers]
        self._params = dict(zip(indices, param_views(net.layers, self.flat_params)))
        self._updates = dict(zip(indices, param_views(net.layers, self.flat_updates)))

    @property
    def on_gpu(self):
        return self.device.type == "cuda"

    def gradient_buffer(self, net):
        return self.flat_updates

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
        # from pinned memory (host_buffer's) the copy is queued and the host goes on; the
        # buffer outlives it: train_step reads the loss back before its batch can be freed
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device, non_blocking=True)

    def host_buffer(self, shape):
        if not self.on_gpu:
            return np.empty(shape, dtype=np.float32)
        return torch.empty(shape, dtype=torch.float32, pin_memory=True).numpy()

    def to_numpy(self, a):
        return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)

    def zeros_like(self, a):
        return torch.zeros_like(a)

    # -- the kernels -------------------------------------------------------------------------
    def running(self, train):
        return contextlib.nullcontext()

    def forward_layer(self, layer, inputs, state):
        with torch.no_grad():
            return KERNELS[type(layer)][0](self, layer, inputs, state)

    def backward_layer(self, layer, inputs, output, delta, input_deltas, state):
        with torch.no_grad():
            KERNELS[type(layer)][1](self, layer, inputs, output, delta, input_deltas, state)

    def update(self, net, lr, batch, momentum, decay):
        self._inference = None
        with torch.no_grad():
            sgd_update([(layer, self._params[layer.index], self._updates[layer.index])
                        for layer in net.layers], lr, batch, momentum, decay, scalar=float)

    # -- inference: the deployment graph ------------------------------------------------------
    GRAPHS_KEPT = 2        # a CUDA graph holds its activations: keep the latest input shapes only

    def predict(self, net, x):
        """The output layer's output by inference_module: batch norm folded (Darknet's
        ``scale / (sqrt(var) + .000001)``), channels_last, -half's dtype throughout, and on CUDA
        one captured graph per input shape. None where the network has a layer it lacks."""
        if self._inference is None:
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
