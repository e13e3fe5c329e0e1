"""Loading a network as Darknet's commands do: the layer table printed, then the weights."""
import sys

from .network import Network


def load_verbose(cfg, weights, backend=("numpy", None, "fp32"), allow_prefix=False):
    """Build, print Darknet's layer table, then load weights, in Darknet's order.
    ``backend``: (name, device, precision)."""
    name, device, precision = backend
    net = Network(cfg, backend=name, device=device, init=not weights, precision=precision)
    net.print_summary()
    if weights:
        print(f"Loading weights from {weights}...", end="", file=sys.stderr, flush=True)
        try:
            net.load_weights(weights, allow_prefix=allow_prefix)
        finally:
            print("Done!" if sys.exc_info()[0] is None else "", file=sys.stderr)
    return net
