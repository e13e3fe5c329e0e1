"""The official Darknet .weights format (darknet: parser.c:load_weights_upto/save_weights_upto).

Header: int32 major, minor, revision; then ``seen`` as uint64 when
``major*10 + minor >= 2 and major < 1000 and minor < 1000``, else int32. The body is every
layer's parameters in file order, float32 little-endian. Connected weights are stored
transposed when major or minor > 1000.
"""
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DarknetError
from .files import atomic_write

WRITE_VERSION = (0, 2, 0)      # what darknet writes, with a 64-bit seen


@dataclass
class Header:
    major: int
    minor: int
    revision: int
    seen: int

    @property
    def seen_is_64bit(self):
        return self.major * 10 + self.minor >= 2 and self.major < 1000 and self.minor < 1000

    @property
    def transposed(self):
        return self.major > 1000 or self.minor > 1000

    @property
    def size(self):
        return 12 + (8 if self.seen_is_64bit else 4)

    def tobytes(self):
        seen = np.array([self.seen], dtype="<u8" if self.seen_is_64bit else "<i4")
        return np.array([self.major, self.minor, self.revision], dtype="<i4").tobytes() + seen.tobytes()


def read_header(f, path):
    raw = f.read(12)
    if len(raw) < 12:
        raise DarknetError(f"weights file too short for a header: expected at least 16 bytes, "
                           f"found {len(raw)}", path, offset=len(raw))
    major, minor, revision = (int(v) for v in np.frombuffer(raw, dtype="<i4"))
    header = Header(major, minor, revision, 0)
    width = 8 if header.seen_is_64bit else 4
    raw = f.read(width)
    if len(raw) < width:
        raise DarknetError(f"weights file too short for its header: expected {12 + width} bytes, "
                           f"found {12 + len(raw)}", path, offset=12 + len(raw))
    header.seen = int(np.frombuffer(raw, dtype="<u8" if width == 8 else "<i4")[0])
    return header


def seen_in(path):
    """The ``seen`` a weights file's header holds, or None where there is no readable file."""
    try:
        with open(path, "rb") as f:
            return read_header(f, path).seen
    except (OSError, DarknetError):
        return None


def param_views(layers, flat):
    """Each layer's parameters as views into the flat buffer ``flat`` (a NumPy array or a torch
    tensor), in .weights order: one {name: view} per layer."""
    views, offset = [], 0
    for layer in layers:
        mine = {}
        for name, shape in layer.param_shapes():
            count = int(np.prod(shape))
            mine[name] = flat[offset:offset + count].reshape(shape)
            offset += count
        views.append(mine)
    return views


def layer_boundaries(layers):
    """Cumulative float counts at the end of each layer (for partial files)."""
    total, ends = 0, []
    for layer in layers:
        total += sum(int(np.prod(shape)) for _, shape in layer.param_shapes())
        ends.append(total)
    return ends


def load_weights(path, layers, buffer, allow_prefix=False):
    """Read ``path`` into ``buffer`` (the network's flat parameters). Returns (header, n_layers).

    A file must hold every layer's parameters; with ``allow_prefix`` (Darknet's partial
    ``.conv.N`` files used to start training) it may stop at a layer boundary.
    """
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as err:
        raise DarknetError(f"cannot open weights file: {err.strerror}", path) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        header = read_header(f, path)
        body = size - header.size
        expected = buffer.size * 4
        ends = layer_boundaries(layers)
        n_layers = len(layers)
        if body != expected:
            prefix = [i + 1 for i, end in enumerate(ends) if end * 4 == body]
            if allow_prefix and body < expected and prefix:
                n_layers = prefix[0]
            else:
                kind = "short" if body < expected else "long"
                raise DarknetError(
                    f"weights file too {kind}: the cfg needs {header.size + expected} bytes "
                    f"({header.size}-byte header + {buffer.size} floats), found {size}",
                    path, offset=min(size, header.size + expected))
        count = body // 4
        if body % 4:
            raise DarknetError(f"weights body is not whole floats ({body} bytes)", path, offset=size)
        f.readinto(memoryview(buffer[:count]).cast("B"))
        if buffer.dtype.byteorder == ">":
            buffer.byteswap(inplace=True)
    if header.transposed:
        for layer in layers[:n_layers]:
            if layer.kind == "connected":
                w = layer.params["weights"]
                w[...] = w.reshape(-1).reshape(w.shape[1], w.shape[0]).T.copy()
    return header, n_layers


def save_weights(path, buffer, seen, n_floats=None):
    """Write Darknet's 0.2.0 header with a 64-bit ``seen``, then the first n_floats parameters."""
    header = Header(*WRITE_VERSION, seen)
    body = buffer if n_floats is None else buffer[:n_floats]

    def write(f):
        f.write(header.tobytes())
        f.write(np.ascontiguousarray(body, dtype="<f4").tobytes())

    atomic_write(path, write)
