#!/usr/bin/env bash
# Install PyTorch into a venv before anything that depends on it, so that no dependency
# pulls in a build of several GB: a wheel that pip's find-links already hold on local disk
# if there is one, else the CUDA build from PyPI where an NVIDIA GPU is present, else the
# CPU build from PyTorch's own index. TORCH_INDEX=URL overrides the choice.
set -euo pipefail

python=$1
spec=${2:-torch==2.13.0}
pip=("$python" -m pip install -q)

if [ -n "${TORCH_INDEX:-}" ]; then
  echo "torch: $spec from $TORCH_INDEX"
  "${pip[@]}" "$spec" --index-url "$TORCH_INDEX" --extra-index-url https://pypi.org/simple
  exit 0
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
if "$python" -m pip download -q --no-deps --no-index -d "$scratch" "$spec" >/dev/null 2>&1; then
  echo "torch: $spec from a wheel on local disk"
  "${pip[@]}" "$spec"
elif command -v nvidia-smi >/dev/null 2>&1; then
  echo "torch: $spec, the CUDA build from PyPI (an NVIDIA GPU is present)"
  "${pip[@]}" "$spec"
else
  echo "torch: $spec, the CPU build (no NVIDIA GPU; TORCH_INDEX overrides)"
  "${pip[@]}" "$spec" --index-url https://download.pytorch.org/whl/cpu \
    --extra-index-url https://pypi.org/simple
fi
