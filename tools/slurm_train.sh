#!/bin/bash
# Train an actionrec config on several SLURM nodes: one torchrun per node, one process per GPU.
#
#   sbatch --nodes=2 --gpus-per-node=8 tools/slurm_train.sh configs/stm/stm_r50_8f_sthv1.yaml \
#       --set train.accumulate=1
#
# Arguments after the script are those of `actionrec train` (CONFIG, --set, --work-dir, ...).
# --resume is always passed: a fresh work dir starts from scratch, a requeued job continues from
# its last checkpoint, and torchrun restarts failed workers (--max-restarts) from it too.
#SBATCH --job-name=actionrec
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
#SBATCH --time=48:00:00
#SBATCH --output=%x-%j.out
#SBATCH --requeue
set -euo pipefail

head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
gpus=${SLURM_GPUS_ON_NODE:-$(nvidia-smi --list-gpus | wc -l)}

srun torchrun \
    --nnodes="$SLURM_NNODES" --nproc_per_node="$gpus" \
    --rdzv_id="$SLURM_JOB_ID" --rdzv_backend=c10d --rdzv_endpoint="$head_node:29500" \
    --max-restarts=3 \
    -m actionrec train "$@" --resume
