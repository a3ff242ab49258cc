#!/usr/bin/env bash
# Starts train.py on this node with NPROC processes (default: the --processes given to moe-tune export-job).
#   GPUs: accelerate launch with accelerate/fsdp.yaml (FSDP full shard, bf16 autocast);
#         ACCELERATE_CONFIG=accelerate/ddp.yaml for plain data parallel.
#   CPU:  torchrun, gloo backend (what the moe-tune tests run: 2 processes).
# Arguments go to train.py (e.g. --stop-after 100, --out DIR). Several nodes: slurm.sbatch (README.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
NPROC=${NPROC:-1}
PYTHON=${PYTHON:-python}
if "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  exec "$PYTHON" -m accelerate.commands.launch --config_file "${ACCELERATE_CONFIG:-accelerate/fsdp.yaml}" \
    --num_processes "$NPROC" train.py "$@"
else
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  exec "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node "$NPROC" train.py "$@"
fi
