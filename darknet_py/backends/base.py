"""The contract every backend keeps: what Network, training and the applications may ask of
one. Arrays are the backend's own (NumPy arrays, torch tensors); layers are the reference's
objects, whose ``forward``/``backward`` a backend may call for what it has no kernel for.
Nothing outside this package asks which backend runs: it asks the backend."""
from typing import Any, ContextManager, Protocol

import numpy as np


class Backend(Protocol):
    name: str
    """The name ``get_backend`` knows it by (printed in dumps and benchmarks)."""

    @property
    def on_gpu(self) -> bool:
        """Whether it computes on a GPU (batched evaluation pays there)."""

    def prepare(self, net) -> None:
        """The network's parameters changed (built, loaded, resized): drop anything derived
        from them (folded weights, device copies, graphs)."""

    def sync_params(self, net) -> None:
        """Bring ``net.params`` and ``net.updates`` up to date with the backend's copies,
        before they are saved or compared."""

    def asarray(self, x) -> Any:
        """A float32 array of the backend's kind holding ``x``."""

    def host_buffer(self, shape: tuple) -> np.ndarray:
        """An empty float32 NumPy array for a batch the data loader fills: on a GPU, page-locked
        (pinned) host memory, from which ``asarray`` copies without blocking the host."""

    def to_numpy(self, a) -> np.ndarray:
        """A NumPy array holding the backend array ``a``."""

    def zeros_like(self, a) -> Any:
        """A zero array of the backend's kind shaped like ``a``."""

    def running(self, train: bool) -> ContextManager:
        """The context of one forward pass (a backend may set up its threads there)."""

    def forward_layer(self, layer, inputs: list, state) -> Any:
        """``layer``'s output for ``inputs`` (one array per ``layer.input_layers`` entry). In
        training (``state.train``) it keeps what its backward needs in
        ``state.saved_for(layer)``; loss layers write their delta and cost there too."""

    def backward_layer(self, layer, inputs: list, output, delta, input_deltas: list, state) -> None:
        """Darknet's backward of ``layer``: add (Darknet's sign) into ``input_deltas`` (None
        for the network input) and into the layer's gradients."""

    def update(self, net, lr: float, batch: int, momentum: float, decay: float) -> None:
        """darknet update_network: momentum SGD with weight decay on every layer."""

    def predict(self, net, x: np.ndarray) -> np.ndarray | None:
        """The output layer's inference output for ``x`` by a faster path than
        ``Network.forward`` (no per-layer outputs kept), or None where there is none."""

    def gradient_buffer(self, net) -> Any:
        """The flat gradients (``net.updates``' layout) where the backend accumulates them:
        what distributed training sums over processes."""
