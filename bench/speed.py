#!/usr/bin/env python3
"""Training speed of fitnets (burn) and PyTorch side by side, runs alternated.

For each round and each case (teacher, FitNet from scratch), this runs one fitnets
epoch on a subset of Fashion-MNIST and then the PyTorch twin of the same network and
optimizer (bench/pytorch/train_speed.py) on as many images, and prints the images/s of
both and their ratio. Alternating the two keeps a change in the machine's load from
favouring one side. Run it on an idle machine:

    cargo build --release -p fitnets
    python3 bench/speed.py --python ~/torch-venv/bin/python [--rounds 3] [--images 6400] [--vector avx2]

It prints the CPU (model, cores, its vector extensions) and the vector unit fitnets'
matrix products ran on (its training log's first line) with the table: results only
compare on the same kind of CPU. `--vector` sets FITNETS_VECTOR for fitnets (auto, avx512,
avx2), to measure a narrower unit on the same machine; with `avx2` PyTorch is held to AVX2
too (ATEN_CPU_CAPABILITY, DNNL_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS), as on an AVX2-only CPU.

fitnets' figure is the `images_per_second` of its epoch (batching and normalization
included, validation excluded); PyTorch's excludes data loading (its tensors are
prepared once), so the comparison slightly favours PyTorch.

On a GPU (`--device cuda`, a fitnets built with `--features cuda`, a torch with CUDA):
`--batch N` sets both sides' batch, `--compile` adds a column for PyTorch with
torch.compile, and each run's mean GPU utilization (nvidia-smi, sampled every 100 ms
over the whole run, start-up included) is printed beside its speed.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {
    # case: (fitnets arguments, PyTorch case)
    "teacher": (["train", "teacher", "--config", "configs/mnist-teacher.toml"], "teacher"),
    "student": (["train", "student", "--config", "configs/mnist-fitnet.toml", "--method", "scratch"], "student"),
}


def cpu_description():
    """The CPU's model name, logical CPUs and SIMD extensions, from /proc/cpuinfo."""
    model, flags = "unknown CPU", []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model == "unknown CPU":
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = value.split()
    except OSError:
        pass
    simd = [f for f in flags if f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                                      "avx512_vnni", "avx512_bf16", "amx_tile", "asimd", "sve")]
    return f"{model}, {os.cpu_count()} logical CPUs, SIMD: {' '.join(simd) or 'none listed'}"


class GpuUtilization:
    """Samples the GPU's utilization with nvidia-smi while a run lasts (CUDA only)."""

    def __init__(self, device):
        self.index = device.split(":")[1].split(",")[0] if ":" in device else "0"
        self.enabled = device.startswith("cuda") and shutil.which("nvidia-smi") is not None
        self.process = None

    def __enter__(self):
        if self.enabled:
            self.process = subprocess.Popen(
                ["nvidia-smi", "-i", self.index, "--query-gpu=utilization.gpu,memory.used",
                 "--format=csv,noheader,nounits", "-lms", "100"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return self

    def __exit__(self, *_):
        self.samples = []
        if self.process is not None:
            self.process.terminate()
            out, _ = self.process.communicate()
            for line in out.splitlines():
                try:
                    busy, memory = (float(v) for v in line.split(","))
                    self.samples.append((busy, memory))
                except ValueError:
                    pass

    def describe(self):
        if not getattr(self, "samples", None):
            return "-"
        busy = statistics.mean(b for b, _ in self.samples)
        memory = max(m for _, m in self.samples)
        return f"{busy:.0f} % ({memory:.0f} MiB)"


def fitnets_speed(binary, case, images, threads, vector, device="cpu", batch=128):
    args, _ = CASES[case]
    run = tempfile.mkdtemp(prefix="fitnets-speed-")
    shutil.rmtree(run)
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), FITNETS_VECTOR=vector)
    cmd = [binary, *args, "--run", run, "--epochs", "1", "--subset", str(images + 100),
           "--valid", "100", "--test-subset", "100", "--device", device, "--batch", str(batch)]
    with GpuUtilization(device) as gpu:
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    shutil.rmtree(run, ignore_errors=True)
    if out.returncode != 0:
        sys.exit(f"fitnets failed: {' '.join(cmd)}\n{out.stderr}")
    match = re.search(r"epoch 1/1: .*?, ([0-9.]+) images/s", out.stderr)
    if not match:
        sys.exit(f"no images/s in fitnets' output:\n{out.stderr}")
    trained_on = re.search(r"^training on (.*)$", out.stderr, re.M)
    return float(match.group(1)), trained_on.group(1) if trained_on else "unknown", gpu.describe()


# What keeps PyTorch to AVX2 as well, so that `--vector avx2` compares both on what an
# AVX2-only CPU would run: ATen's kernels, oneDNN's and MKL's.
TORCH_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "DNNL_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def torch_speed(python, case, images, threads, vector, device="cpu", batch=128, compiled=False):
    """PyTorch's images/s (None when torch.compile failed), its version, GPU utilization."""
    _, torch_case = CASES[case]
    cmd = [python, "bench/pytorch/train_speed.py", "--cases", torch_case, "--images", str(images),
           "--threads", str(threads), "--json", "--device", device.split(",")[0], "--batch", str(batch)]
    if compiled:
        cmd.append("--compile")
    env = dict(os.environ, **(TORCH_AVX2 if vector == "avx2" else {}))
    with GpuUtilization(device) as gpu:
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"PyTorch failed: {' '.join(cmd)}\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    where = result.get("gpu") or f"{result.get('cpu_capability', '?')} kernels"
    version = f"PyTorch {result.get('torch', '?')} ({where})"
    measured = result["cases"][torch_case]
    if "error" in measured:
        print(f"torch.compile failed for {case}: {measured['error']}", file=sys.stderr)
        return None, version, gpu.describe()
    return float(measured["images_per_s"]), version, gpu.describe()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", default=sys.executable, help="a Python with torch and numpy")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "fitnets"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=6400, help="timed images per run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cases", default="teacher,student")
    ap.add_argument("--vector", default="auto", choices=["auto", "avx512", "avx2"],
                    help="FITNETS_VECTOR for fitnets: the vector unit of its matrix products")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (both sides)")
    ap.add_argument("--batch", type=int, default=128, help="batch size (both sides)")
    ap.add_argument("--compile", action="store_true", help="also PyTorch with torch.compile")
    args = ap.parse_args()
    if args.batch < 1 or args.images < 1 or args.rounds < 1:
        ap.error("--batch, --images and --rounds must be at least 1")
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} is missing: run `cargo build --release -p fitnets` first")
    cases = args.cases.split(",")
    sides = ["fitnets", "pytorch"] + (["compiled"] if args.compile else [])
    runs = {case: {side: [] for side in sides} for case in cases}
    busy = {case: {side: [] for side in sides} for case in cases}
    device, torch_version = "unknown", "PyTorch"
    for r in range(args.rounds):
        for case in cases:
            f, device, gf = fitnets_speed(args.binary, case, args.images, args.threads, args.vector,
                                          args.device, args.batch)
            t, torch_version, gt = torch_speed(args.python, case, args.images, args.threads, args.vector,
                                               args.device, args.batch)
            runs[case]["fitnets"].append(f)
            runs[case]["pytorch"].append(t)
            busy[case]["fitnets"].append(gf)
            busy[case]["pytorch"].append(gt)
            line = f"round {r + 1} {case:8s} fitnets {f:7.1f} [{gf}]  PyTorch {t:7.1f} [{gt}]"
            if args.compile:
                c, _, gc = torch_speed(args.python, case, args.images, args.threads, args.vector,
                                       args.device, args.batch, compiled=True)
                if c is not None:
                    runs[case]["compiled"].append(c)
                busy[case]["compiled"].append(gc)
                line += f"  compiled {c or 0:7.1f} [{gc}]"
            gpu_note = " [GPU busy]" if args.device.startswith("cuda") else ""
            print(line.replace(" [-]", "") + " images/s" + gpu_note, file=sys.stderr)
    load = os.getloadavg()[0]
    print(f"CPU: {cpu_description()}")
    print(f"fitnets trained on {device}; {torch_version} with {args.threads} threads")
    print(f"batch {args.batch}, {args.images} images per run, {args.rounds} rounds, load average now {load:.2f}")
    gpu = args.device.startswith("cuda")
    header = "| case | fitnets images/s (median) | PyTorch eager | fitnets / eager |"
    rule = "|---|---:|---:|---:|"
    if args.compile:
        header += " PyTorch compiled | fitnets / compiled |"
        rule += "---:|---:|"
    if gpu:
        header += " GPU busy, memory (last round): fitnets / eager" + (" / compiled |" if args.compile else " |")
        rule += "---|"
    print(header)
    print(rule)
    for case in cases:
        f = statistics.median(runs[case]["fitnets"])
        t = statistics.median(runs[case]["pytorch"])
        row = f"| {case} | {f:.1f} | {t:.1f} | {f / t:.2f}x |"
        if args.compile:
            compiled = runs[case]["compiled"]
            c = statistics.median(compiled) if compiled else None
            row += f" {c:.1f} | {f / c:.2f}x |" if c else " failed | - |"
        if gpu:
            row += " " + " / ".join(busy[case][side][-1] for side in sides) + " |"
        print(row)


if __name__ == "__main__":
    main()
