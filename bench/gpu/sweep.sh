#!/bin/sh
# The depth sweep (the paper's Figure 2) in its full setting, on NVIDIA GPUs: every
# training image and the standard student schedule (14 epochs, 3 of them hint training
# for `hints`) for the depths 3, 5, 7, 9, 11 and 13 and the three methods. With several
# GPUs the depths are dealt out, one process per GPU at a time; they fill one table in
# RUNS, whose sweep.json pins the setting they share.
#
#   bench/gpu/sweep.sh TEACHER_RUN [RUNS] [GPUS]
#   bench/gpu/sweep.sh runs/teacher-long runs/sweep-full 3    # GPUs 0, 1 and 2
#
# The teacher is a finished `fitnets train teacher` run on the same data and split.
# Interrupted runs resume when the script is run again. Extra `fitnets sweep` options
# go in FITNETS_SWEEP_ARGS (for example "--data DIR"). Binary and toolkit as for
# bench/gpu/run.sh: FITNETS_BIN, or a build with `--features cuda` here.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 TEACHER_RUN [RUNS] [GPUS]" >&2; exit 2; }
teacher=$1
runs=${2:-runs/sweep-full}
gpus=${3:-1}
bin=${FITNETS_BIN:-./target/release/fitnets}
[ -n "${FITNETS_BIN:-}" ] || cargo build --release -p fitnets --features cuda
depths="3 5 7 9 11 13"
# shellcheck disable=SC2086 # FITNETS_SWEEP_ARGS is a list of options
sweep() { $bin sweep --teacher "$teacher" --runs "$runs" ${FITNETS_SWEEP_ARGS:-} "$@"; }

mkdir -p "$(dirname "$runs")"
pids=
gpu=0
while [ "$gpu" -lt "$gpus" ]; do
    (
        i=0
        for depth in $depths; do
            if [ $((i % gpus)) -eq "$gpu" ]; then
                sweep --depths "$depth" --device "cuda:$gpu" > "$runs-depth-$depth.log" 2>&1 ||
                    { echo "depth $depth failed on cuda:$gpu: see $runs-depth-$depth.log" >&2; exit 1; }
            fi
            i=$((i + 1))
        done
    ) &
    pids="$pids $!"
    gpu=$((gpu + 1))
done
failed=0
for pid in $pids; do wait "$pid" || failed=1; done
[ "$failed" -eq 0 ] || exit 1
# Everything is trained: this prints the whole table and rewrites the chart.
sweep --device cuda:0
