#!/usr/bin/env bash
# Runs ddptrain as one process, with no MPI launcher at all: ddptrain calls MPI_Init as an MPI
# singleton (world size 1), on one GPU or on the CPU. Arguments go to ddptrain unchanged:
#   launch/single.sh train --config configs/smoke.yaml
#   DDPTRAIN_GPU=2 launch/single.sh train --config configs/resnet9.yaml     # use GPU 2 only
# Environment: DDPTRAIN_BIN (default build/ddptrain), DDPTRAIN_GPU (sets CUDA_VISIBLE_DEVICES; the
# process then sees that GPU as cuda:0). Variables that a launcher (mpirun, srun) leaves behind are
# removed, so that MPI_Init does not try to join a job that is not there (e.g. inside an sbatch
# script or an mpirun-started shell).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${DDPTRAIN_BIN:-$here/build/ddptrain}"
[ -x "$BIN" ] || { echo "launch/single.sh: $BIN not found; build first (bash scripts/build.sh)" >&2; exit 2; }
if [ -n "${DDPTRAIN_GPU:-}" ]; then export CUDA_VISIBLE_DEVICES="$DDPTRAIN_GPU"; fi
for v in $(compgen -e | grep -E '^(PMIX_|PMI_|OMPI_COMM_WORLD_|OMPI_MCA_orte_|OMPI_MCA_ess|OMPI_MCA_pmix|SLURM_STEP_|SLURM_PROCID$|SLURM_LOCALID$)' || true); do
  unset "$v"
done
# Open MPI's singleton start-up refuses root like mpirun does (containers, CI run as root).
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
exec "$BIN" "$@"
