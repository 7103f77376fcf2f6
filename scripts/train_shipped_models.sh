#!/usr/bin/env bash
# Trains, evaluates and exports the shipped models: the smoke variant of each paper experiment,
# all stages, the experiments side by side (each resumes where it stopped when run again).
#
#     scripts/train_shipped_models.sh RUNS_DIR [EXPERIMENT ...]
#
# EXPERIMENT defaults to every experiment that ships a model. Each writes RUNS_DIR/EXPERIMENT/
# and RUNS_DIR/EXPERIMENT.log, and its export stage writes jaxmicro/pretrained/models/<name>/.
# Several processes share one GPU: give each a slice of its memory, e.g.
# XLA_PYTHON_CLIENT_MEM_FRACTION=0.2. Exits non-zero when any experiment failed.
set -u
runs=${1:?usage: scripts/train_shipped_models.sh RUNS_DIR [EXPERIMENT ...]}
shift
experiments=("$@")
[ ${#experiments[@]} -eq 0 ] && experiments=(polycrysdiff lee_yun rogsh_lgd grainpaint)
mkdir -p "$runs"
declare -A pids
for e in "${experiments[@]}"; do
    "${PYTHON:-python3}" experiments/"$e"/run.py --variant smoke --out "$runs/$e" >"$runs/$e.log" 2>&1 &
    pids[$e]=$!
done
status=0
for e in "${experiments[@]}"; do
    if wait "${pids[$e]}"; then echo "$e: done"; else echo "$e: FAILED (see $runs/$e.log)"; status=1; fi
done
exit $status
