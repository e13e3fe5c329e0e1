"""The Numba CPU backend: the reference's math with its hot loops compiled, and batch norm
folded into the weights for inference (``scale / (sqrt(var) + 1e-6)``, Darknet's
denominator). Inference keeps one set of threads busy: BLAS held to one thread, every gemm
called from compiled code in Numba's threads or in tasks on a small crew (the Winograd
products by microkernel.py, not BLAS), each a piece sized for the core's cache; per layer it
times the algorithms of algorithms.py and keeps the fastest. Training calls BLAS through
NumPy, with its own threads, between compiled loops. Layers without a kernel here run the
reference; every layer is checked against it (tests/test_layer_parity.py)."""
import contextlib
from dataclasses import dataclass

import numba
import numpy as np

from ...layers.convolutional import Convolutional
from ...layers.maxpool import Maxpool
from ..numpy_ref import NumpyBackend
from . import autotune, convolution, kernels, runtime
from .activations import ACTIVATION_CODES, bias_activate, bias_backward
from .algorithms import ALGORITHMS, TRAINING_GEMM, inference_candidates, training_candidates
from .batchnorm import batchnorm_train_backward, batchnorm_train_forward
from .gemm import gemm_rows
from .maxpool import maxpool, maxpool_2x2_task, maxpool_tiled, scatter_add
from .tasks import run_tasks

F = np.float32
LINEAR = ACTIVATION_CODES["linear"]


@dataclass(frozen=True)
class Tuning:
    """Where the kernels' paths divide and how work is cut into tasks. Measured on the
    project's machines (docs/benchmarks.md); tests shrink them to reach every path."""
    batch_gemm_pixels: int = 1024       # maps up to this size: one gemm over the batch's columns
    batch_gemm_bytes: int = 256 << 20   # ... while the batch's column matrix stays this small
    band_pixels: int = 2048             # maps from this size convolve band by band of rows
    band_floats: int = 128 << 10        # columns + products of one band: about half an L2
    few_channels: int = 4               # 3x3 layers of this many channels or fewer run direct
    pool_task_outputs: int = 256 << 10  # outputs per max-pool task, at least (waking a thread costs)
    winograd4_min_tiles: int = 36       # F(4x4, 3x3) on maps of at least this many tiles
    winograd6_min_tiles: int = 49       # F(6x6, 3x3) on maps of at least this many of its tiles
    winograd_batch_bytes: int = 64 << 20  # whole-image Winograd: the batch's tiles at once up to this
    row_tasks: int = 8                  # whole-image transforms: tasks of (channel, row of tiles) runs
    fused_tiles: int = 128              # tiles per fused Winograd task, about
    fused_filters: int = 64             # filters per gemm in the fused tasks, the fewest per run elsewhere
    timing_rounds: int = 5              # rounds of the algorithm timing
    timing_drop: float = 1.5            # after two rounds, candidates this much slower stop


TUNING = Tuning()


class NumbaBackend(NumpyBackend):
    name = "numba"

    def __init__(self):
        runtime.configure()
        self.tuning = TUNING
        self.folded = {}            # layer index -> (weights, biases) with batch norm folded in
        self.winograd = {}          # (tile, layer index) -> (packed U, biases) of the folded weights
        self.train_filters = {}     # (tile, layer index) -> packed U of the raw weights, until the next update
        self.choice = {}            # (layer index, input shape) -> an ALGORITHMS name
        self.train_choice = {}      # (layer index, input shape) -> TRAINING_GEMM or an ALGORITHMS name
        self.remembered = autotune.RememberedChoices(numba.config.NUMBA_NUM_THREADS, kernels.kernels_version())
        self.workspace = np.empty(0, dtype=F)
        self.own_threads = False    # inside running(False): gemms in Numba's threads, BLAS in one
        kernels.start_helper()

    def prepare(self, net):
        self._forget_weights()

    def update(self, net, lr, batch, momentum, decay):
        super().update(net, lr, batch, momentum, decay)
        self._forget_weights()

    def _forget_weights(self):
        """Parameters changed: fold and transform again when next needed."""
        self.folded.clear()
        self.winograd.clear()
        self.train_filters.clear()

    # -- threads and gemms -------------------------------------------------------------
    @contextlib.contextmanager
    def running(self, train):
        """Inference calls every gemm from Numba's threads with BLAS held to one thread:
        OpenBLAS's own threads spin after each call and, beside Numba's, slow the next
        kernels. Training keeps BLAS's threads for its gemms."""
        if train or self.own_threads:
            yield
            return
        with runtime.blas_on_one_thread():
            self.own_threads = True
            try:
                yield
            finally:
                self.own_threads = False

    @staticmethod
    def threads():
        return numba.get_num_threads()

    def work(self, rows, cols):
        """A scratch matrix, reused between calls."""
        if self.workspace.size < rows * cols:
            self.workspace = np.empty(rows * cols, dtype=F)
        return self.workspace[:rows * cols].reshape(rows, cols)

    def gemm(self, a, b, out=None):
        """out = a @ b: one run of rows of a per Numba thread, or by BLAS outside running()."""
        if out is None:
            out = np.empty((a.shape[0], b.shape[1]), dtype=F)
        if not (self.own_threads and out.flags.c_contiguous):
            return np.dot(a, b, out=out)
        gemm_rows(np.ascontiguousarray(a), np.ascontiguousarray(b), out, min(a.shape[0], self.threads()))
        return out

    # -- dispatch ----------------------------------------------------------------------
    def forward_layer(self, layer, inputs, state):
        kernel = self.FORWARD.get(type(layer))
        if kernel is None:
            return super().forward_layer(layer, inputs, state)
        return kernel(self, layer, inputs[0], state)

    def backward_layer(self, layer, inputs, output, delta, input_deltas, state):
        if isinstance(layer, Maxpool) and "flat_argmax" in state.saved_for(layer):
            if input_deltas[0] is not None:
                scatter_add(input_deltas[0].reshape(-1), state.saved_for(layer)["flat_argmax"].reshape(-1),
                            np.ascontiguousarray(delta).reshape(-1))
            return
        if isinstance(layer, Convolutional) and layer.groups == 1:
            self._delta_to_gemm(layer, delta, output, state)
            return convolution.backward(self, layer, inputs[0], delta, input_deltas)
        super().backward_layer(layer, inputs, output, delta, input_deltas, state)

    # -- inference convolutions ------------------------------------------------------------
    def weights_for(self, layer, algorithm):
        """(weights, biases) of ``layer`` as ``algorithm`` takes them, made once per update."""
        if not algorithm.tile:
            return self._folded(layer)
        key = (algorithm.tile, layer.index)
        if key not in self.winograd:
            w, b = self._folded(layer)
            self.winograd[key] = (algorithm.filters(w), b)
        return self.winograd[key]

    def _folded(self, layer):
        if layer.index not in self.folded:
            self.folded[layer.index] = layer.folded()
        return self.folded[layer.index]

    def run_algorithm(self, name, layer, x, code):
        algorithm = ALGORITHMS[name]
        weights, bias = self.weights_for(layer, algorithm)
        return algorithm.run(self, layer, weights, bias, code, x)

    def _conv_forward(self, layer, x, state):
        n = x.shape[0]
        code = ACTIVATION_CODES.get(layer.activation)
        if code is None:                  # an activation not compiled here
            out = convolution.convolve(self, layer, x, layer.params["weights"].reshape(layer.filters, -1))
            return layer.finish(out.reshape(n, *layer.out_shape), state)
        if state.train:
            return self._conv_train_forward(layer, x, state, code)
        candidates = inference_candidates(layer, self.tuning)
        key = (layer.index, x.shape)
        if len(candidates) > 1 and key not in self.choice:
            # the kernel's size too: a 1x1 and a 3x3 layer may share the rest (yolov4-tiny's 23 and 18)
            signature = (f"{x.shape[0]}x{x.shape[1]}x{x.shape[2]}x{x.shape[3]}>{layer.filters} "
                         f"{layer.size}x{layer.size}/{layer.stride}")
            remembered = self.remembered.get(signature)
            if remembered in candidates:
                self.choice[key] = remembered
            else:
                beside = kernels.helper_compiling()
                self.choice[key], out = self.time_algorithms(layer, x, code, candidates)
                # a timing taken while the warm-up helper compiled on the other core is good
                # for this process, not to be kept
                if not (beside or kernels.helper_compiling()):
                    self.remembered.put(signature, self.choice[key])
                return out
        return self.run_algorithm(self.choice.get(key, candidates[0]), layer, x, code)

    def time_algorithms(self, layer, x, code, candidates):
        """Time each candidate on this input; keep the fastest's weights only. Returns (its
        name, the output)."""
        for name in candidates:       # weights folded or transformed first, outside the timings
            self.weights_for(layer, ALGORITHMS[name])
        best, out = autotune.fastest(candidates, lambda name: self.run_algorithm(name, layer, x, code),
                                     self.tuning.timing_rounds, self.tuning.timing_drop)
        for tile in {ALGORITHMS[name].tile for name in candidates} - {ALGORITHMS[best].tile, 0}:
            self.winograd.pop((tile, layer.index), None)
        if ALGORITHMS[best].tile:
            self.folded.pop(layer.index, None)
        return best, out

    # -- training convolutions ---------------------------------------------------------------
    def train_convolve(self, name, layer, x, weights):
        """A training forward's raw convolution [N, K, oh*ow] by TRAINING_GEMM or a Winograd
        algorithm on the raw weights, transformed once per update: a batch's subdivisions
        share them."""
        if name == TRAINING_GEMM:
            return convolution.convolve(self, layer, x, weights)
        algorithm = ALGORITHMS[name]
        k = layer.filters
        key = (algorithm.tile, layer.index)
        if key not in self.train_filters:
            self.train_filters[key] = algorithm.filters(weights)
        with self.running(train=False):      # the products in the crew's tasks, BLAS in one thread
            out = algorithm.run(self, layer, self.train_filters[key], np.zeros(k, dtype=F), LINEAR, x)
        return out.reshape(x.shape[0], k, -1)

    def _train_raw(self, layer, x, weights):
        candidates = training_candidates(layer, self.tuning)
        key = (layer.index, x.shape)
        if len(candidates) > 1 and key not in self.train_choice:
            self.train_choice[key], out = autotune.fastest(
                candidates, lambda name: self.train_convolve(name, layer, x, weights),
                self.tuning.timing_rounds, self.tuning.timing_drop)
            return out
        return self.train_convolve(self.train_choice.get(key, TRAINING_GEMM), layer, x, weights)

    def _conv_train_forward(self, layer, x, state, code):
        """The raw convolution, then batch norm on the batch's statistics (or add_bias) and
        the activation in one compiled pass; saves what batchnorm.backward reads."""
        p = layer.params
        raw = self._train_raw(layer, x, p["weights"].reshape(layer.filters, -1))
        if not layer.batch_normalize:
            for image in raw:
                bias_activate(image, p["biases"], code)
            return raw.reshape(x.shape[0], *layer.out_shape)
        k = layer.filters
        x_norm, out = np.empty_like(raw), np.empty_like(raw)
        mean, variance = np.empty(k, dtype=F), np.empty(k, dtype=F)
        batchnorm_train_forward(raw, p["scales"], p["biases"], p["rolling_mean"], p["rolling_variance"],
                                code, x_norm, mean, variance, out)
        shape = (x.shape[0], *layer.out_shape)
        state.saved_for(layer).update(x=raw.reshape(shape), x_norm=x_norm.reshape(shape), mean=mean,
                                      variance=variance)
        return out.reshape(shape)

    def _delta_to_gemm(self, layer, delta, output, state):
        """Layer.delta_to_gemm compiled, for the activations compiled here."""
        code = ACTIVATION_CODES.get(layer.activation)
        if code is None or not delta.flags.c_contiguous:
            return layer.delta_to_gemm(delta, output, state)
        n, k = delta.shape[:2]
        d = delta.reshape(n, k, -1)
        y = np.ascontiguousarray(output).reshape(n, k, -1)
        u = layer.updates
        if not layer.batch_normalize:
            return bias_backward(d, y, code, u["biases"])
        saved = state.saved_for(layer)
        batchnorm_train_backward(d, y, code, saved["x"].reshape(n, k, -1), saved["x_norm"].reshape(n, k, -1),
                                 saved["mean"], saved["variance"], layer.params["scales"],
                                 u["biases"], u["scales"])

    # -- max-pool ----------------------------------------------------------------------------
    def _maxpool_forward(self, layer, x, state):
        n, c, h, w = x.shape
        _, oh, ow = layer.out_shape
        out = np.empty((n, c, oh, ow), dtype=F)
        x = np.ascontiguousarray(x)
        argmax = None
        if state.train:        # int32 indices where they fit: half the memory traffic of int64
            argmax = np.empty((n, c, oh, ow), dtype=np.int32 if x.size < 2 ** 31 else np.int64)
            state.saved_for(layer)["flat_argmax"] = argmax
        tiled = (layer.size == layer.stride and layer.padding // 2 == 0 and h % layer.size == 0
                 and w % layer.size == 0 and (oh, ow) == (h // layer.size, w // layer.size))
        if (argmax is None and layer.size == 2 and layer.padding // 2 == 0
                and (oh - 1) * layer.stride < h and (ow - 1) * layer.stride < w):
            tasks = max(1, min(self.threads(), out.size // self.tuning.pool_task_outputs))
            run_tasks(maxpool_2x2_task, (x, layer.stride, out), tasks)
        elif tiled:
            maxpool_tiled(x, layer.size, out, argmax)
        else:
            maxpool(x, layer.size, layer.stride, layer.padding // 2, oh, ow, out, argmax)
        return out

    # the layers whose forward is compiled here; the others run the reference
    FORWARD = {Convolutional: _conv_forward, Maxpool: _maxpool_forward}
