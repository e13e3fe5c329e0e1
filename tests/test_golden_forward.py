"""fwd_*: every stored layer output of Darknet's inference pass, on the NumPy reference."""
import json

import numpy as np
import pytest
from helpers import GOLDEN, assert_close, golden_cases, golden_weights, open_h5

import darknet_py

RTOL = 1e-4     # float32 activations, relative (see assert_close)


def test_golden_folder_has_cases():
    assert GOLDEN.is_dir(), f"golden folder {GOLDEN} missing (set DARKNET_PY_GOLDEN)"
    assert golden_cases("fwd"), f"no fwd_* cases in {GOLDEN}"


def golden_input(h5):
    if "input_u8" in h5:
        return (h5["input_u8"][()] / 255.0).astype(np.float32)
    return h5["input"][()]


@pytest.mark.parametrize("case", golden_cases("fwd"))
def test_forward_matches_darknet(case, backend, in_darknet_cfg_dir):
    with open_h5(case) as h5:
        cfg, weights = golden_weights(h5)
        net = darknet_py.load_network(cfg, weights, backend=backend[0], device=backend[1])
        types = json.loads(h5.attrs["layer_types"])
        assert [layer.kind for layer in net.layers] == types
        shapes = json.loads(h5.attrs["layer_shapes"])
        assert [list(layer.out_dims) for layer in net.layers] == [list(s) for s in shapes]
        out = net.forward(golden_input(h5)[None])
        assert out.shape[0] == 1
        stored = sorted(h5["layers"])
        assert stored, "case stores no layers"
        for name in stored:
            index = int(name[1:])
            assert_close(net.output(index)[0], h5["layers"][name][()], RTOL,
                         f"{case.stem} {name} ({types[index]})")


@pytest.mark.parametrize("case", golden_cases("fwd")[:1])
def test_batch_gives_the_same_per_image_outputs(case, backend, in_darknet_cfg_dir):
    """A batch of N is N independent images (batch > 1 through every layer). The reference
    gives bit-identical images; the fast backends choose their algorithm per batch size
    (oneDNN; Numba's Winograd/im2col timing), so their float32 sums may be ordered otherwise:
    measured 1.1e-6 of the output's scale, held to 1e-5."""
    with open_h5(case) as h5:
        cfg, weights = golden_weights(h5)
        net = darknet_py.load_network(cfg, weights, backend=backend[0], device=backend[1])
        x = golden_input(h5)
        batch = np.stack([x, x[:, ::-1].copy(), np.zeros_like(x)])
        out = net.forward(batch).copy()
        for i in range(3):
            single = net.forward(batch[i:i + 1])
            if backend[0] == "numpy":
                assert np.array_equal(out[i:i + 1], single)
            else:
                assert_close(out[i:i + 1], single, 1e-5, f"image {i} of a batch vs alone")


def test_parity_check_can_fail():
    """The measure used above rejects an error of 1e-3 relative in one value."""
    expected = np.linspace(-2, 3, 1000).astype(np.float32)
    actual = expected.copy()
    assert_close(actual * (1 + 5e-6), expected, RTOL, "float32 noise passes")
    actual[10] += 3e-3
    with pytest.raises(AssertionError, match="1 of 1000 values off"):
        assert_close(actual, expected, RTOL, "one bad value")
