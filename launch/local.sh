#!/usr/bin/env bash
# Runs ddptrain with mpirun: on this machine one rank per GPU, or across the machines of a
# hostfile. Arguments go to ddptrain unchanged:
#   launch/local.sh train --config configs/resnet9.yaml --set train.epochs=5
#   DDPTRAIN_HOSTFILE=launch/hostfile.example launch/local.sh train --config configs/resnet9.yaml
# Ranks: DDPTRAIN_NP if set; else the sum of `slots=` in DDPTRAIN_HOSTFILE; else the GPUs this
# process may use (CUDA_VISIBLE_DEVICES when set, else `nvidia-smi -L`); else 1 on a CPU machine.
# Environment: DDPTRAIN_BIN (default build/ddptrain), MPIRUN (default mpirun), MPIRUN_ARGS (extra
# mpirun flags, word-split). NCCL_*, OMP_*, CUDA_VISIBLE_DEVICES, GLIBC_TUNABLES, PATH and
# LD_LIBRARY_PATH are passed to every rank when set. DDPTRAIN_DRY_RUN=1 prints the command only.
# When a rank fails, ddptrain's own error line is the message: Open MPI's notices that only repeat
# it (MPI_ABORT, "Primary job terminated", "mpirun detected") are left out of mpirun's stderr;
# DDPTRAIN_MPI_NOTICES=1 shows them (see "Open MPI's notices" below).
# Ctrl-C, SIGTERM or SIGHUP to this script: the ranks stop after the current step, rank 0 saves a
# checkpoint and the script exits 75; a second one ends the ranks at once (see "Stopping" below).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${DDPTRAIN_BIN:-$here/build/ddptrain}"
[ -x "$BIN" ] || { echo "launch/local.sh: $BIN not found; build first (bash scripts/build.sh)" >&2; exit 2; }

hostfile_args=()
if [ -n "${DDPTRAIN_HOSTFILE:-}" ]; then
  [ -f "$DDPTRAIN_HOSTFILE" ] || { echo "launch/local.sh: no hostfile $DDPTRAIN_HOSTFILE" >&2; exit 2; }
  hostfile_args=(--hostfile "$DDPTRAIN_HOSTFILE")
  slots=$(sed 's/#.*//' "$DDPTRAIN_HOSTFILE" |
          awk '{for (i = 2; i <= NF; i++) if ($i ~ /^slots=/) { split($i, a, "="); s += a[2] }} END {print s + 0}')
fi
gpus=0
if [ -n "${CUDA_VISIBLE_DEVICES+x}" ]; then
  # Set (even empty) wins over nvidia-smi, which lists every GPU of the machine.
  gpus=$(echo "$CUDA_VISIBLE_DEVICES" | tr ',' '\n' | grep -c . || true)
elif command -v nvidia-smi >/dev/null 2>&1; then
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
fi
if [ -n "${DDPTRAIN_NP:-}" ]; then np="$DDPTRAIN_NP"
elif [ -n "${slots:-}" ] && [ "${slots:-0}" -gt 0 ]; then np="$slots"
elif [ "$gpus" -gt 0 ]; then np="$gpus"
else np=1
fi

# Root may run mpirun here (containers, CI).
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
# One notice for the same help message from several ranks, with a count (Open MPI's default).
export OMPI_MCA_orte_base_help_aggregate="${OMPI_MCA_orte_base_help_aggregate:-1}"
# Only variables that are set: Open MPI warns about each -x naming an unset one.
env_args=()
for v in $(compgen -e | grep -E '^(NCCL_|OMP_|CUDA_VISIBLE_DEVICES$|GLIBC_TUNABLES$|PATH$|LD_LIBRARY_PATH$)' || true); do
  env_args+=(-x "$v")
done
# --bind-to none: mpirun binds each of <= 2 ranks to one core by default, which halves the speed
# of a rank that runs several intra-op threads (ddptrain picks cores / local ranks threads).
# --oversubscribe: more ranks than cores is allowed (CPU runs, tests).
# shellcheck disable=SC2206
cmd=("${MPIRUN:-mpirun}" -np "$np" "${hostfile_args[@]}" --oversubscribe --bind-to none
     "${env_args[@]}" ${MPIRUN_ARGS:-} "$BIN" "$@")
echo "launch/local.sh: $np rank(s) (${gpus} GPUs visible here): ${cmd[*]}" >&2
[ "${DDPTRAIN_DRY_RUN:-0}" = 1 ] && exit 0

# Stopping (README "Signals"): mpirun turns a SIGTERM/SIGINT/SIGHUP of its own into Open MPI's
# abort (ranks get SIGTERM after odls_base_sigkill_timeout = 1 s and SIGKILL 1 s later; exit 1),
# too soon for a step + checkpoint. SIGUSR1 it forwards to every rank and then returns the ranks'
# exit code. So mpirun runs in a session of its own (setsid: a Ctrl-C or a process-group kill
# reaches only this script), dies with this script (setpriv --pdeathsig: SIGTERM to mpirun if
# this script is SIGKILLed), and this script turns TERM/INT/HUP into USR1 for mpirun: the ranks
# finish the step, rank 0 saves, exit 75. A second signal forwards it again and the ranks exit at
# once (128 + signal).
isolate=(setsid setpriv --pdeathsig TERM)
setpriv --pdeathsig TERM true 2>/dev/null || isolate=(setsid)
pid=""
stops=0
pending=0
forward() { kill -s USR1 "$pid" 2>/dev/null || true; }
# shellcheck disable=SC2317  # only the traps call it
on_signal() {
  stops=$((stops + 1))
  if [ "$stops" = 1 ]; then
    echo "launch/local.sh: SIG$1: the ranks stop after this step and save a checkpoint (exit 75); signal again to stop at once" >&2
  else
    echo "launch/local.sh: SIG$1 again: the ranks exit at once" >&2
  fi
  if [ -n "$pid" ]; then forward; else pending=$((pending + 1)); fi
}
trap 'on_signal TERM' TERM; trap 'on_signal INT' INT; trap 'on_signal HUP' HUP

# Open MPI's notices (DDPTRAIN_MPI_NOTICES=1 shows them all): when a rank fails, ddptrain has
# already logged why ("[rank 0] error ...", "... -- aborting all ranks"), and mpirun's stderr
# adds blocks between lines of 74 dashes that only repeat that a rank failed: "MPI_ABORT was
# invoked on rank 1 ...", "Primary job  terminated normally, but 1 process returned a non-zero
# exit code ...", "mpirun detected that one or more processes exited with non-zero status ...",
# the "N more processes have sent help message" lines that count them, and "ORTE_ERROR_LOG: ...
# show_help.c" (such a notice lost from a rank being killed, open-mpi/ompi#8356; every other
# MPI_ABORT here). mpi_notices drops those and passes every other line unchanged, Open MPI's other
# blocks too: a rank killed by a signal, no executable, too few slots. (`mpirun --quiet` hides
# those as well: mpirun then fails without a word.) stdout is not filtered. The filter ignores
# INT/TERM/HUP, which reach it through this script's process group, and ends when mpirun closes
# its stderr: ended early, it would end mpirun by SIGPIPE at mpirun's next message.
mpi_notices() {
  trap '' INT TERM HUP
  set +e
  local dashes line block=() counted=""
  dashes=$(printf '%074d' 0 | tr 0 -)
  local topics='help-mpi-api\.txt / mpi-abort|help-errmgr-base\.txt / normal-termination-but'
  topics+='|help-orterun\.txt / orterun:non-zero-exit'
  local repeats="^\\[[^]]*\\] [0-9]+ more process(es)? ha(s|ve) sent help message ($topics)\$"
  while IFS= read -r line || [ -n "$line" ]; do
    if [ ${#block[@]} -gt 0 ]; then
      block+=("$line")
      if [ "$line" = "$dashes" ]; then
        case "${block[*]}" in
          *"MPI_ABORT was invoked"* | *"Primary job  terminated normally"* | \
            *"detected that one or more processes exited with non-zero status"*) ;;
          *) printf '%s\n' "${block[@]}" ;;
        esac
        block=()
      elif [ ${#block[@]} -gt 40 ]; then  # no closing line: not one of Open MPI's blocks
        printf '%s\n' "${block[@]}"
        block=()
      fi
    elif [ "$line" = "$dashes" ]; then
      block=("$line")
    elif [[ $line =~ $repeats ]]; then
      [ "$counted" = kept ] || counted=dropped
    elif [[ $line =~ ORTE_ERROR_LOG:.*show_help\.c\ at\ line\ [0-9]+$ ]]; then
      :
    elif [[ $line == *'Set MCA parameter "orte_base_help_aggregate" to 0'* ]]; then
      # Follows the counts: shown when a count of another notice was.
      [ "$counted" = dropped ] || printf '%s\n' "$line"
      counted=""
    else
      [[ $line == *" sent help message "* ]] && counted=kept
      printf '%s\n' "$line"
    fi
  done
  [ ${#block[@]} -eq 0 ] || printf '%s\n' "${block[@]}"
}
if [ "${DDPTRAIN_MPI_NOTICES:-0}" = 1 ]; then
  exec {stderr_to}>&2
else
  exec {stderr_to}> >(mpi_notices >&2)
  filter=$!
fi
"${isolate[@]}" "${cmd[@]}" 2>&"$stderr_to" {stderr_to}>&- &
pid=$!
exec {stderr_to}>&-
# Signals that came before $pid was known, forwarded once each (a signal before ddptrain installs
# its handlers still ends it: USR1's default action).
for ((; pending > 0; pending--)); do forward; done
# A trapped signal ends `wait` early: wait again until mpirun is gone, then collect its status.
while kill -0 "$pid" 2>/dev/null; do wait "$pid" || true; done
rc=0
wait "$pid" || rc=$?
# Then the filter's last lines, so that they come before whatever follows this script.
if [ -n "${filter:-}" ]; then
  while kill -0 "$filter" 2>/dev/null; do wait "$filter" || true; done
fi
exit "$rc"
