#!/usr/bin/env bash
# Set up everything (training extra included) and run lint plus the whole test suite,
# slow end-to-end tests (PulseAudio, Xvfb) included. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev,train
.venv/bin/ruff check ser_live training tests benchmarks scripts
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
