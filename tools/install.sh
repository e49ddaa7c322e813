#!/usr/bin/env bash
# Creates .venv with the pinned stack (README "Stack") and mmringmoe in editable mode.
# Re-running reuses the venv and the cached mmcv wheel: only what changed is installed.
#
#   bash tools/install.sh            # CPU, or CUDA ops when a GPU is visible
#   VENV=/path/to/venv bash tools/install.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
# pip's wheel cache cannot tell which torch a wheel was built against, so ours is keyed by it.
MMCV_CACHE="${MMRINGMOE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmringmoe/wheels}"

log() { printf '[install] %s\n' "$*"; }

# pip, without the per-package lines this machine's pip.conf find-links produce
# ("Location ... is ignored: it is neither a file nor a directory")
pip_install() {
  python -m pip "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
}

stamp_of() {
  cat "$ROOT/requirements/"*.txt "$ROOT/setup.py" "$ROOT/tools/install.sh" | sha256sum | cut -d' ' -f1
}

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1

STAMP_FILE="$VENV/.mmringmoe-stamp"
if [ -f "$STAMP_FILE" ] && [ "$(cat "$STAMP_FILE")" = "$(stamp_of)" ] \
   && python -c "import mmcv.ops, mmringmoe" 2>/dev/null; then
  log "environment up to date ($VENV)"
  exit 0
fi

pip_install install -q "setuptools>=77.0.3,<81" wheel ninja
pip_install install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"

TORCH_TAG=$(python -c "import torch; print(torch.__version__.replace('+', '_'))")
if python -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  export FORCE_CUDA=1
  TORCH_TAG="${TORCH_TAG}-cuda$(python -c 'import torch; print(torch.version.cuda)')"
else
  TORCH_TAG="${TORCH_TAG}-cpu"
fi
WHEEL_DIR="$MMCV_CACHE/mmcv-$MMCV_VERSION-torch-$TORCH_TAG"

have_mmcv() {
  python - <<EOF 2>/dev/null
import importlib.metadata as m, sys
sys.exit(0 if m.version('mmcv') == '$MMCV_VERSION' else 1)
EOF
}

build_mmcv() {
  local work
  work=$(mktemp -d)
  log "building mmcv $MMCV_VERSION with ops against torch $TORCH_TAG (about 20 min on 2 cores)"
  pip_install download -q --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$work"
  tar -xzf "$work"/mmcv-"$MMCV_VERSION".tar.gz -C "$work"
  # torch >= 2.14 headers need C++20; mmcv 2.1.0 hard-codes c++17.
  sed -i 's/-std=c++17/-std=c++20/g' "$work/mmcv-$MMCV_VERSION/setup.py"
  mkdir -p "$WHEEL_DIR"
  (cd "$work/mmcv-$MMCV_VERSION" && \
   MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
   pip_install wheel -q --no-build-isolation --no-deps . -w "$WHEEL_DIR.partial")
  mv "$WHEEL_DIR.partial"/mmcv-*.whl "$WHEEL_DIR/"
  rm -rf "$WHEEL_DIR.partial" "$work"
}

if ! have_mmcv; then
  if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
    build_mmcv
  else
    log "reusing cached mmcv wheel from $WHEEL_DIR"
  fi
  pip_install install -q --no-deps "$WHEEL_DIR"/mmcv-*.whl
fi

# mmcv's own runtime deps (it was installed without them)
pip_install install -q addict packaging pillow pyyaml yapf opencv-python-headless "numpy"
pip_install install -q -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"
pip_install install -q --no-deps --no-build-isolation -e "$ROOT"

log "checking compiled ops"
python - <<'EOF'
import torch
from mmcv.ops import RoIAlign, nms_rotated
boxes = torch.tensor([[10., 10., 20., 10., 0.], [10.5, 10., 20., 10., 0.], [50., 50., 10., 10., 0.3]])
scores = torch.tensor([0.9, 0.8, 0.7])
_, keep = nms_rotated(boxes, scores, 0.5)
assert keep.tolist() == [0, 2], keep
feat = torch.arange(16.).view(1, 1, 4, 4)
out = RoIAlign((2, 2), 1.0, 0, aligned=False)(feat, torch.tensor([[0., 0., 0., 3., 3.]]))
assert out.shape == (1, 1, 2, 2)
print('[install] mmcv ops OK: nms_rotated, RoIAlign')
EOF
stamp_of > "$STAMP_FILE"
log "done: activate with  . $VENV/bin/activate"
