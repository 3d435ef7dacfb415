#!/usr/bin/env bash
# Structural checks `make test` runs: no import circle between app/src files, no feature
# importing another feature's view, every layer using only the layers below it, and the
# Claude client a leaf (scripts/check_layers.py says how).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/check_layers.py app/src
