"""The Numba CPU backend, a package whose files are named for the kernels they hold:

- ``backend.py``: NumbaBackend, the dispatch from layer classes to kernels, and its Tuning;
- ``algorithms.py``: the registry of the ways an inference convolution runs;
- ``convolution.py`` (im2col + gemm, bands, few channels, backward) and ``winograd_conv.py``
  (the three ways to run Winograd), over the compiled kernels of
- ``im2col.py``, ``conv_direct.py``, ``winograd.py``, ``gemm.py``, ``microkernel.py`` (the
  register-blocked products), ``activations.py``, ``batchnorm.py``, ``maxpool.py``, listed and
  versioned in ``kernels.py``;
- ``tasks.py`` (the crew of threads), ``runtime.py`` (threads, BLAS, the allocator),
  ``autotune.py`` (timing and remembered choices), ``compile_lock.py`` and ``warmup.py``
  (a second process that compiles the kernels beside a fresh install's first call).
"""
from .backend import NumbaBackend

__all__ = ["NumbaBackend"]
