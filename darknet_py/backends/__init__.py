"""Backends: the same kernels behind one interface. ``numpy`` is the reference.

A backend object has ``name`` and ``forward_layer(layer, inputs, state) -> array``;
nothing outside this package knows which one runs.
"""
from ..errors import DarknetError

BACKENDS = ("numpy",)


def get_backend(name, device=None):
    if name == "numpy":
        from .numpy_ref import NumpyBackend
        return NumpyBackend()
    raise DarknetError(f"unknown backend '{name}' (available: {', '.join(BACKENDS)})")
