"""darknet_py: Darknet's YOLOv2 in Python, with Darknet's numbers.

>>> import darknet_py
>>> net = darknet_py.load_network("cfg/yolov2-tiny-voc.cfg")   # doctest: +SKIP
"""
import os

# OpenBLAS's idle threads spin for a while after every call before they sleep; in training,
# between its BLAS gemms, they slow the Numba kernels that run beside them. Read when OpenBLAS
# loads: in effect where darknet_py is imported before NumPy (the CLI, the benchmarks).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from .errors import DarknetError
from .network import Network, load_network

__version__ = "0.3.0"      # the package metadata takes it from here
__all__ = ["DarknetError", "Network", "load_network", "__version__"]
