"""darknet_py: Darknet's YOLOv2 in Python, with Darknet's numbers.

>>> import darknet_py
>>> net = darknet_py.load_network("cfg/yolov2-tiny-voc.cfg")   # doctest: +SKIP
"""
import os

# OpenBLAS's idle threads spin for 2**28 cycles (~0.1 s) after every call before they sleep;
# in training, between its BLAS gemms, they slowed the Numba kernels that ran beside them up
# to 2x (tiny-voc's first max-pool at batch 8: 25 ms, 14 with 2**4). Read when OpenBLAS
# loads: in effect where darknet_py is imported before NumPy (the CLI, the benchmarks).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from .errors import DarknetError
from .network import Network, load_network

__version__ = "0.1.0"
__all__ = ["DarknetError", "Network", "load_network", "__version__"]
