#!/usr/bin/env bash
# Distributed training with torchrun (DDP, or FSDP for configs with
# runner_type='FlexibleRunner'):
#   bash tools/dist_train.sh CONFIG GPUS [train.py args...]
#   GPUS=8 bash tools/dist_train.sh CONFIG [train.py args...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: bash $0 CONFIG [GPUS] [train.py args...]" >&2
  exit 2
fi
CONFIG=$1; shift
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then GPUS=$1; shift; fi
GPUS=${GPUS:-1}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
[ -x "$ROOT/.venv/bin/python" ] && [ -z "${PYTHON:-}" ] && PY="$ROOT/.venv/bin/python"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m torch.distributed.run \
  --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
  --nproc_per_node="$GPUS" --master_port="$PORT" \
  "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "$@"
