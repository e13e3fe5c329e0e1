"""One module per Darknet layer type; LAYER_TABLE maps a cfg section name to its class."""
from .avgpool import Avgpool
from .connected import Connected
from .convolutional import Convolutional
from .cost import Cost
from .dropout import Dropout
from .maxpool import Maxpool
from .net import NetOptions
from .region import Region
from .reorg import Reorg
from .route import Route
from .shortcut import Shortcut
from .softmax import Softmax
from .upsample import Upsample
from .yolo import Yolo

# darknet parser.c:string_to_layer_type, aliases included
LAYER_TABLE = {
    "convolutional": Convolutional, "conv": Convolutional,
    "maxpool": Maxpool, "max": Maxpool,
    "avgpool": Avgpool, "avg": Avgpool,
    "route": Route,
    "reorg": Reorg,
    "region": Region,
    "softmax": Softmax, "soft": Softmax,
    "cost": Cost,
    "dropout": Dropout,
    "connected": Connected, "conn": Connected,
    "shortcut": Shortcut,
    "upsample": Upsample,
    "yolo": Yolo,
}
NET_SECTIONS = ("net", "network")
# Darknet knows these, darknet_py does not build them (yet): a clear error, not "unknown".
DARKNET_ONLY = ("crop", "detection", "iseg", "local", "deconv", "deconvolutional", "activation", "logistic",
                "l2norm", "crnn", "gru", "lstm", "rnn", "lrn", "normalization", "batchnorm")

__all__ = ["LAYER_TABLE", "NET_SECTIONS", "DARKNET_ONLY", "NetOptions"]
