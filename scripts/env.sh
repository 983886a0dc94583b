# Sourced by the scripts: where the virtualenv with the pinned torch lives, and CUDA on PATH
# (LibTorch's CMake config looks for nvcc when the wheel is a CUDA build).
TORCH_VERSION="${DDPTRAIN_TORCH_VERSION:-2.11.0}"
export DDPTRAIN_VENV="${DDPTRAIN_VENV:-$HOME/.cache/ddptrain/venv-torch-$TORCH_VERSION}"
if [ -d /usr/local/cuda/bin ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
