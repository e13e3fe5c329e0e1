"""darknet_py export: the ONNX graph, run by onnxruntime, matches the NumPy reference."""
import numpy as np
import onnxruntime as ort  # noqa: E402  (a test dependency)
import pytest
from helpers import assert_close, golden_cases, golden_weights, open_h5

import darknet_py
from darknet_py.cli import main

RTOL = 1e-4


@pytest.mark.parametrize("case", golden_cases("det"))
def test_onnx_matches_reference(case, tmp_path):
    with open_h5(case) as h5:
        cfg, weights = golden_weights(h5)
        x = h5["input"][()][None]
    out = tmp_path / "model.onnx"
    assert main(["export", str(cfg), str(weights), str(out)]) == 0
    import onnx
    model = onnx.load(str(out))
    assert model.opset_import[0].version >= 17
    session = ort.InferenceSession(str(out))
    batch = np.concatenate([x, x[:, :, ::-1].copy()])          # the batch axis is dynamic
    got = session.run(None, {"input": batch})[0]
    net = darknet_py.load_network(cfg, weights)
    assert_close(got, net.forward(batch), RTOL, f"{case.stem} ONNX vs reference")
