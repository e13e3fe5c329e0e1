"""Every compiled kernel of the backend, listed once: for the compile locks, and for the
version that Numba's cache marker and the remembered timings are kept under."""
import ast
import functools
import hashlib
from pathlib import Path

import numba
from numba.core.dispatcher import Dispatcher

from . import (
    activations,
    batchnorm,
    compile_lock,
    conv_direct,
    gemm,
    im2col,
    maxpool,
    microkernel,
    winograd,
    winograd6,
    winograd_tiles,
)

KERNEL_MODULES = (activations, batchnorm, conv_direct, gemm, im2col, maxpool, microkernel, winograd, winograd6,
                  winograd_tiles)


def all_kernels():
    """The dispatchers that cache on disk (inlined helpers are compiled into their callers)."""
    return [value for module in KERNEL_MODULES for value in vars(module).values()
            if isinstance(value, Dispatcher) and value.__module__ == module.__name__]


def _code_only(source):
    """The module's syntax tree without docstrings: comments and docstrings change no kernel."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


@functools.lru_cache(maxsize=1)
def kernels_version():
    """A digest of the kernels' code (not their comments) and Numba's version: what the
    compiled kernels and the algorithms' timings depend on."""
    digest = hashlib.sha1(numba.__version__.encode())
    for module in KERNEL_MODULES:
        digest.update(_code_only(Path(module.__file__).read_text()))
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def warm_marker():
    """The file that says Numba's cache holds this version's kernels (the warm-up helper
    writes it); None if Numba's cache has no place on disk."""
    folder = compile_lock.cache_folder(winograd.winograd_fused_task)
    return None if folder is None else folder / f"darknet_py-warm-{kernels_version()}"


def helper_compiling():
    """Whether the warm-up helper is compiling now, on the other core."""
    return compile_lock.is_running(warm_marker())


def start_helper():
    """A fresh install: a second process compiles the kernels beside the first call."""
    compile_lock.start_helper(warm_marker(), "darknet_py.backends.numba.warmup")


compile_lock.lock_compiles(all_kernels())
