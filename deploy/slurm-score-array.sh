#!/bin/bash
# Score a directory of recordings with a Slurm job array: task K of N runs
#   hilbert score INPUT --model RUN_DIR --shard K/N
# and writes OUT/part-K-of-N.parquet; then a dependent job merges the shards.
#
#   sbatch deploy/slurm-score-array.sh               # N = the --array size below
#   (the script submits the merge job itself, after the whole array: afterany)
#
# Every task resumes where it stopped if it is requeued or resubmitted: per-recording outputs
# in the shared work directory are atomic, and recordings already scored are skipped.
# Exit codes: 0 all scored, 1 some recordings failed (error rows in the shard), 2 bad usage.
#
#SBATCH --job-name=hilbert-score
#SBATCH --array=0-7                 # N = 8 shards (0-based, matches --shard K/N)
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=12:00:00
#SBATCH --output=logs/hilbert-score-%A_%a.out
#SBATCH --requeue
##SBATCH --gres=gpu:1               # uncomment on GPU partitions
set -euo pipefail

INPUT=${INPUT:-$HOME/interviews}                # directory (recursive) or list file of recordings
MODEL=${MODEL:-$HOME/hilbert/runs/parent}       # trained run directory (hilbert train)
# (hilbert score alone falls back to $HILBERT_MODEL when there is no --model)
OUT=${OUT:-$SCRATCH/hilbert/scores}             # shard files land here
WORK=${WORK:-$SCRATCH/hilbert/work}             # shared cache of prepare/embed/score outputs
HILBERT=${HILBERT:-hilbert}                     # or: "apptainer exec --bind /models hilbert.sif hilbert"

export HF_HUB_OFFLINE=1                         # models are local (HILBERT_MODELS_DIR)
export HILBERT_MODELS_DIR=${HILBERT_MODELS_DIR:-$HOME/hilbert/models}
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-4}

K=${SLURM_ARRAY_TASK_ID:?run this script with sbatch --array}
N=${SLURM_ARRAY_TASK_COUNT:-$(( SLURM_ARRAY_TASK_MAX - SLURM_ARRAY_TASK_MIN + 1 ))}

# The first task queues the merge job once, to run after every task of the array has ended.
if [[ "$K" == "${SLURM_ARRAY_TASK_MIN:-0}" && -z "${HILBERT_NO_MERGE:-}" ]]; then
  sbatch --dependency="afterany:${SLURM_ARRAY_JOB_ID}" --job-name=hilbert-merge \
         --output="logs/hilbert-merge-%j.out" --cpus-per-task=1 --mem=2G --time=00:30:00 \
         --wrap="$HILBERT merge '$OUT' --out '$OUT.parquet' --expect-shards $N"
fi

srun $HILBERT score "$INPUT" --model "$MODEL" --out "$OUT/" --work "$WORK" --shard "$K/$N"
