"""The registry of the ways a convolution may run in inference, by name (the names that
numba-choices.json remembers), and which of them suit a layer."""
from dataclasses import dataclass
from typing import Callable

from . import convolution, winograd_conv
from .microkernel import pack_filters
from .winograd import FILTER_TRANSFORMS, winograd_filters


@dataclass(frozen=True)
class Algorithm:
    """``run(backend, conv, filters, bias, code, x)`` -> [N, K, H, W], ``filters`` what
    ``filters(weights)`` makes of a layer's weights [K, C*k*k] (folded for inference, raw in
    training): ``tile`` 0 takes them as they are; 6, 4 or 2 is Winograd F(tile x tile, 3x3),
    on the weights transformed (U [points, K, C]) and packed for microkernel.py's products;
    1, im2col (none for a plain 1x1) and those products, the weights packed as they are.
    Algorithms of one tile share their filters."""
    name: str
    tile: int
    run: Callable

    def filters(self, weights):
        if not self.tile:
            return weights
        if self.tile == 1:
            return pack_filters(weights[None])
        return winograd_filters(weights.reshape(weights.shape[0], -1, 3, 3), FILTER_TRANSFORMS[self.tile])


def _winograd(tile, how):
    def run(b, conv, filters, bias, code, x):
        return winograd_conv.convolve(b, conv, x, tile, filters, bias, code, how)
    return run


ALGORITHMS = {a.name: a for a in (
    Algorithm("direct", 0, convolution.direct),
    Algorithm("packed", 1, convolution.packed),
    Algorithm("winograd6", 6, _winograd(6, "whole")),
    Algorithm("winograd6-fused", 6, _winograd(6, "fused")),
    Algorithm("winograd4", 4, _winograd(4, "whole")),
    Algorithm("winograd4-fused", 4, _winograd(4, "fused")),
    Algorithm("winograd2", 2, _winograd(2, "whole")),
    Algorithm("winograd2-fused", 2, _winograd(2, "fused")),
    Algorithm("winograd2-filters", 2, _winograd(2, "filters")),
)}


def inference_candidates(conv, tuning):
    """The algorithms that may run ``conv`` in inference, fastest-first as a rule. Winograd
    needs 3x3, stride 1, pad 1, no groups and enough channels to pay for its transforms;
    F(4x4, 3x3) and F(6x6, 3x3) also a map of enough of their tiles: on small maps their
    filters, 4x and 7x the weights, make their gemms memory-bound and narrow (F(6x6) lost on
    every 26x26 layer of yolov4-tiny, 25 tiles, and won on 52x52 ones, docs/benchmarks.md)."""
    c, h, w = conv.in_shape
    if not (conv.size == 3 and conv.stride == 1 and conv.padding == 1 and conv.groups == 1
            and c >= 16 and conv.filters >= 16):
        # im2col's products by microkernel.py or by BLAS; not a first layer's few channels
        # (direct runs them without im2col) nor groups
        return ("packed", "direct") if conv.groups == 1 and c > tuning.few_channels else ("direct",)
    if tiles(h, w, 4) < tuning.winograd4_min_tiles:
        return ("winograd2-fused", "winograd2-filters", "winograd2", "direct")
    larger = ("winograd6-fused", "winograd6") if tiles(h, w, 6) >= tuning.winograd6_min_tiles else ()
    return larger + ("winograd4-fused", "winograd4", "winograd2-fused", "winograd2", "direct")


def tiles(h, w, tile):
    """The tiles of F(tile x tile, 3x3) that cover an h x w map."""
    return ((h + tile - 1) // tile) * ((w + tile - 1) // tile)


TRAINING_GEMM = "gemm"


def training_candidates(conv, tuning):
    """A training forward's raw convolution: im2col + gemm, or F(2x2, 3x3) on the raw weights
    where inference would use Winograd. Not F(4x4): its rounding moves Darknet's golden
    first-layer deltas past the tolerance, where im2col and F(2x2) stay within it."""
    return (TRAINING_GEMM,) + tuple(name for name in inference_candidates(conv, tuning)
                                    if ALGORITHMS[name].tile == 2)
