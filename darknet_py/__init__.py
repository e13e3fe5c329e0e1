"""darknet_py: Darknet's YOLOv2 in Python, with Darknet's numbers.

>>> import darknet_py
>>> net = darknet_py.load_network("cfg/yolov2-tiny-voc.cfg")   # doctest: +SKIP
"""
from .errors import DarknetError
from .network import Network, load_network

__version__ = "0.1.0"
__all__ = ["DarknetError", "Network", "load_network", "__version__"]
