"""16-bit PNGs decode as Darknet's stb_image decodes them: each 16-bit sample keeps its high
byte (stbi__convert_16_to_8: value >> 8), grey is replicated, alpha dropped. The files are
written here, byte by byte, from known sample values, so the expected pixels are exact."""
import struct
import zlib

import numpy as np
import pytest
from helpers import REPO

from darknet_py.cli import main
from darknet_py.data import image as image_io
from darknet_py.data.image import load_image
from darknet_py.errors import DarknetError

COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}        # channels -> PNG colour type (grey, grey+alpha, RGB, RGBA)


def png16(samples):
    """A PNG file of bit depth 16 holding ``samples`` [H, W, channels] uint16, unfiltered."""
    h, w, channels = samples.shape

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    rows = b"".join(b"\0" + samples[y].astype(">u2").tobytes() for y in range(h))
    header = struct.pack(">IIBBBBB", w, h, 16, COLOR_TYPES[channels], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("channels", [1, 2, 3, 4], ids=["grey", "grey+alpha", "rgb", "rgba"])
def test_sixteen_bit_png_keeps_the_high_byte(tmp_path, channels):
    rng = np.random.default_rng(channels)
    samples = rng.integers(0, 65536, (5, 7, channels), dtype=np.uint16)
    samples[0, :3, 0] = (0, 255, 65535)                  # a low byte alone reads 0; the top reads 255
    path = tmp_path / "sixteen.png"
    path.write_bytes(png16(samples))
    colour = samples[:, :, :3] if channels >= 3 else np.repeat(samples[:, :, :1], 3, axis=2)
    expected = (colour >> 8).astype(np.float32).transpose(2, 0, 1) / np.float32(255)
    assert np.array_equal(load_image(path), expected)


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path, monkeypatch, capsys):
    """A header claiming 100000x100000 pixels: one line, exit 2, nothing decoded."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    header = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    with pytest.raises(DarknetError, match="over the limit"):
        load_image(path)
    monkeypatch.setattr(image_io, "MAX_PIXELS", image_io.MAX_PIXELS)     # restored after the CLI sets it
    assert main(["detector", "test", str(REPO / "cfg" / "shapes.data"), str(REPO / "cfg" / "yolov2-tiny-shapes.cfg"),
                 str(REPO / "weights" / "yolov2-tiny-shapes.weights"), str(REPO / "data" / "sample.png"),
                 "-backend", "numpy", "-max_pixels", "1000", "-out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("darknet_py: ") and "sample.png" in err and "over the limit of 1,000 (-max_pixels)" in err
