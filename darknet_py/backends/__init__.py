"""Backends: the same kernels behind one interface. ``numpy`` is the reference.

Every backend keeps the contract written in ``base.py``. Nothing outside this package knows
which one runs. Numba and torch are imported only when asked for.
"""
from ..errors import DarknetError

BACKENDS = ("numpy", "numba", "torch")


def get_backend(name, device=None, precision="fp32"):
    if name != "torch" and precision != "fp32":
        raise DarknetError(f"backend {name} computes in fp32 only; -half needs -backend torch")
    if name == "numpy":
        from .numpy_ref import NumpyBackend
        return NumpyBackend()
    if name == "numba":
        try:
            from .numba import NumbaBackend
        except ImportError:
            raise DarknetError("backend 'numba' needs Numba: pip install numba scipy") from None
        return NumbaBackend()
    if name == "torch":
        try:
            from .torch import TorchBackend
        except ImportError:
            raise DarknetError("backend 'torch' needs PyTorch: pip install 'darknet_py[torch]' "
                               "(the CPU build: see the README's Install section)") from None
        return TorchBackend(device, precision)
    raise DarknetError(f"unknown backend '{name}' (available: {', '.join(BACKENDS)})")
