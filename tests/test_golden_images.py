"""img_*: Darknet's decode, resize_image and letterbox_image."""
import numpy as np
import pytest
from helpers import IMAGES, golden_cases, open_h5

from darknet_py.data import compiled
from darknet_py.data.image import letterbox_image, load_image, resize_image


@pytest.mark.parametrize("case", golden_cases("img"))
def test_resize_and_letterbox_are_exact(case):
    """Fed Darknet's decoded bytes, both resizes agree to the last bit (float32), and so does
    the compiled letterbox (data/compiled.py, the demo's)."""
    with open_h5(case) as h5:
        im = (h5["decoded_u8"][()] / np.float32(255)).astype(np.float32)
        rw, rh = (int(v) for v in h5.attrs["resize_wh"])
        lw, lh = (int(v) for v in h5.attrs["letterbox_wh"])
        assert np.array_equal(resize_image(im, rw, rh), h5["resized"][()])
        assert np.array_equal(letterbox_image(im, lw, lh), h5["letterboxed"][()])
        assert np.array_equal(compiled.letterbox_image(im, lw, lh), h5["letterboxed"][()])


@pytest.mark.parametrize("shape", [(480, 640, 416, 416), (577, 769, 416, 416), (600, 400, 608, 608),
                                   (100, 900, 160, 160), (2, 50, 32, 32), (50, 2, 32, 32), (1, 1, 32, 32),
                                   (416, 416, 416, 416), (3, 3, 416, 416)])
def test_compiled_letterbox_is_the_reference(shape):
    """Exact on shapes the golden cases lack: edges of one and two pixels, upscales, no-ops."""
    h, w, net_w, net_h = shape
    im = np.random.default_rng(h * w).random((3, h, w), dtype=np.float32)
    assert np.array_equal(compiled.letterbox_image(im, net_w, net_h), letterbox_image(im, net_w, net_h))


@pytest.mark.parametrize("case", golden_cases("img"))
def test_decoding(case, tmp_path):
    """PNG decodes exactly (grey replicated, alpha dropped). JPEG: Darknet's stb_image and
    libjpeg-turbo (Pillow) differ by at most 3/255 on a few percent of values."""
    with open_h5(case) as h5:
        expected = h5["decoded_u8"][()]
        if "file_bytes" in h5:
            path = tmp_path / h5.attrs["image"]
            path.write_bytes(h5["file_bytes"][()].tobytes())
        else:
            path = IMAGES / h5.attrs["image"]
        decoded = load_image(path)
        assert decoded.shape == expected.shape
        diff = np.abs(np.rint(decoded * 255).astype(int) - expected.astype(int))
        if path.suffix.lower() == ".png":
            assert diff.max() == 0
            assert np.array_equal(decoded, (expected / np.float32(255)).astype(np.float32))
        else:
            assert diff.max() <= 3, f"JPEG decode differs by {diff.max()}/255"
            assert (diff > 0).mean() < 0.10
