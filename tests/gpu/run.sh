#!/usr/bin/env bash
# On a machine with a CUDA GPU: the CUDA parity suite, then the GPU benchmark, in one go.
# usage: bash tests/gpu/run.sh   (from the repository root; ../shared/golden beside it)
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
python3 -m pytest -q -k "cuda" tests/test_golden_forward.py tests/test_golden_detections.py \
    tests/test_golden_training.py tests/test_layer_parity.py
python3 benchmarks/gpu_bench.py -out docs/gpu.md
