#!/usr/bin/env bash
# The test command (README "Run the tests"): install llmvision with its test extras, lint with ruff
# (settings in pyproject.toml; a lint error fails CI), then run the whole suite, slow tests (training
# runs, multi-process) included. Extra args go to pytest.
# For a quick local loop: python -m pytest -m "not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[dev]"
python3 -m ruff check .
python3 -m pytest "$@"
