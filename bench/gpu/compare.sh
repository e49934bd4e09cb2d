#!/bin/sh
# fitnets against PyTorch on one NVIDIA GPU, side by side in one run, then data
# parallelism on it. Everything is built and checked before the first measurement.
#
#   bench/gpu/compare.sh [--python PYTHON] [--images N] [--rounds R]
#
# 1. builds fitnets with `--features cuda` and the scale_out example (no GPU needed);
# 2. checks nvidia-smi, the GPU, and that PYTHON's torch sees CUDA;
# 3. bench/speed.py on cuda at batch 128 and 512: the teacher and the FitNet (from
#    scratch), fitnets, PyTorch eager and PyTorch with torch.compile, runs alternated,
#    each with the GPU's mean utilization and memory;
# 4. the scale_out example on cuda: 1 peer, 2 peers on the one GPU (cuda:0,0) and 2
#    nodes (two processes and an orchestrator) sharing it.
#
# Run from the repository root on an otherwise idle machine. PYTHON (default python3)
# needs torch with CUDA and numpy; the Fashion-MNIST IDX files are read from Debian's
# path (apt-get install dataset-fashion-mnist).
set -eu
python=python3
images=25600
rounds=3
while [ $# -gt 0 ]; do
    case $1 in
        --python) python=$2; shift 2 ;;
        --images) images=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        *) echo "unknown option $1 (use --python, --images, --rounds)" >&2; exit 2 ;;
    esac
done

echo "== building fitnets with CUDA"
cargo build --release -p fitnets --features cuda --bins --examples

echo "== checking the GPU and PyTorch"
command -v nvidia-smi >/dev/null || { echo "nvidia-smi not found: this script needs an NVIDIA GPU" >&2; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
[ -d /usr/share/datasets/fashion-mnist ] || { echo "Fashion-MNIST missing: apt-get install dataset-fashion-mnist" >&2; exit 1; }
"$python" -c 'import torch, numpy; assert torch.cuda.is_available(), "torch sees no CUDA device"; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
# A first CUDA run compiles burn's kernels (cached afterwards): not part of any figure.
./target/release/fitnets train student --config configs/mnist-fitnet.toml --method scratch --device cuda \
    --epochs 1 --subset 1000 --valid 100 --test-subset 100 --run "$(mktemp -d)/warm" >/dev/null 2>&1 \
    || { echo "fitnets cannot train on cuda (is the CUDA toolkit's NVRTC installed?)" >&2; exit 1; }

for batch in 128 512; do
    echo "== fitnets and PyTorch on cuda, batch $batch"
    "$python" bench/speed.py --python "$python" --device cuda --batch "$batch" --compile \
        --images "$images" --rounds "$rounds"
done

echo "== data parallelism on one GPU (FitNet, batch 128)"
./target/release/examples/scale_out --device cuda --images "$images" --rounds 2
