"""The Torch backend (CUDA, or the CPU for tests): ``backend.py`` (TorchBackend),
``kernels.py`` (a forward and a backward per layer class), ``activations.py``,
``batchnorm.py``, ``inference.py`` (the folded module predict runs and export writes)."""
from .backend import TorchBackend

__all__ = ["TorchBackend"]
