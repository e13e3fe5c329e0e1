"""dump: every layer's output to HDF5; compare: two dumps, layer by layer."""
import json
from pathlib import Path

import h5py
import numpy as np

from .data.image import letterbox_image, load_image
from .errors import DarknetError
from .files import atomic_write
from .resources import resolve


def load_input(path, net):
    """An image (letterboxed to the net; a bundled one by its name) or a float32 .npy [C,H,W] /
    [N,C,H,W] fed as is."""
    path = Path(resolve(path))
    if path.suffix.lower() == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DarknetError(f"cannot read .npy input: {err}", path) from None
        if x.dtype != np.float32:
            raise DarknetError(f"input array must be float32, found {x.dtype}", path)
        return x if x.ndim == 4 else x[None]
    return letterbox_image(load_image(path), net.width, net.height)[None]


def dump(net, x, out_path):
    """Write ``layers/L000``... (batch axis dropped when N == 1) with the cfg and layer types."""
    net.forward(x)
    squeeze = x.shape[0] == 1

    def write(f):
        with h5py.File(f, "w") as h:
            h.attrs["cfg"] = str(net.cfg_path)
            h.attrs["backend"] = net.backend.name
            h.attrs["layer_types"] = json.dumps([layer.kind for layer in net.layers])
            for layer in net.layers:
                out = net.output(layer.index)
                data = out.reshape(out.shape[0], *layer.out_dims)
                h.create_dataset(f"layers/L{layer.index:03d}", data=data[0] if squeeze else data)

    atomic_write(out_path, write)


def compare(path_a, path_b, rtol=1e-4):
    """Per layer: worst absolute error and worst error relative to the layer's magnitude.

    Returns (rows, first_divergent_layer_name or None). A layer diverges when
    max|a-b| > rtol * max|b| (or shapes differ)."""
    rows, first = [], None
    try:
        fa, fb = h5py.File(path_a, "r"), h5py.File(path_b, "r")
    except OSError as err:
        raise DarknetError(f"cannot read HDF5 dump: {err}") from None
    with fa, fb:
        if "layers" not in fa or "layers" not in fb:
            raise DarknetError("not a darknet_py dump (no 'layers' group)",
                               path_a if "layers" not in fa else path_b)
        for name in sorted(set(fa["layers"]) & set(fb["layers"])):
            a, b = fa["layers"][name][()], fb["layers"][name][()]
            if a.shape != b.shape:
                rows.append((name, np.inf, np.inf, f"shape {a.shape} vs {b.shape}"))
                first = first or name
                continue
            err = float(np.abs(a.astype(np.float64) - b).max()) if a.size else 0.0
            scale = float(np.abs(b).max()) if b.size else 0.0
            rel = err / scale if scale else err
            bad = not np.isfinite(rel) or rel > rtol
            rows.append((name, err, rel, "DIVERGES" if bad else "ok"))
            if bad and first is None:
                first = name
    return rows, first
