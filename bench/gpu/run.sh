#!/bin/sh
# One teacher epoch and one hint-training epoch (plus one KD epoch) of the MNIST
# architectures on Fashion-MNIST, on NVIDIA GPUs: prints images/s and accuracy.
#
#   bench/gpu/run.sh                 # GPU 0
#   bench/gpu/run.sh cuda:0,1        # data parallel over GPUs 0 and 1
#   bench/gpu/run.sh cuda --data DIR # Fashion-MNIST IDX files elsewhere than Debian's path
#
# Needs the NVIDIA driver and the CUDA toolkit's NVRTC and headers at run time (burn-cuda
# compiles its kernels there: /usr/local/cuda, or set CUDA_PATH); the build needs
# neither, so a binary built on a CPU machine runs on the GPU one:
#
#   cargo build --release -p fitnets --features cuda      # anywhere
#   FITNETS_BIN=path/to/fitnets bench/gpu/run.sh          # on the GPU machine, no cargo
#
# Run from the repository root (the configs are read from configs/).
set -eu
device=${1:-cuda}
[ $# -gt 0 ] && shift
bin=${FITNETS_BIN:-./target/release/fitnets}
[ -n "${FITNETS_BIN:-}" ] || cargo build --release -p fitnets --features cuda
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== teacher, 1 epoch on $device"
$bin train teacher --config configs/mnist-teacher.toml --run "$out/teacher" --epochs 1 --device "$device" "$@"
echo "== FitNet with hints: 1 hint-training epoch, then 1 KD epoch, on $device"
$bin train student --config configs/mnist-fitnet.toml --method hints --teacher "$out/teacher" \
    --hint-epochs 1 --epochs 1 --run "$out/hints" --device "$device" "$@"
