#!/usr/bin/env bash
# Rewrites bench/estimate/reference.json: Claude's token count of every corpus sample, from
# ctok (PyPI) in a virtualenv under .tools/ (git-ignored). Run it after changing the corpus;
# the Rust test `estimate::tests::calibrated_estimates_match_claude_on_deal_text` reads the
# committed JSON. ctok declares Python >= 3.12 but runs on 3.11, hence --ignore-requires-python.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.tools/ctok-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import ctok' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'regex>=2024.0.0'
  "$venv/bin/pip" install --quiet --ignore-requires-python --no-deps ctok==1.3.0
fi
"$venv/bin/python" bench/estimate/reference.py
