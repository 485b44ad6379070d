#!/usr/bin/env bash
# Distributed evaluation with torchrun: bash dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
set -e
if [ $# -lt 3 ]; then
    echo "usage: bash dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py args]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
ROOT=$(cd "$(dirname "$0")" && pwd)

PYTHONPATH="$ROOT:$PYTHONPATH" \
python -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$ROOT/tools/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
