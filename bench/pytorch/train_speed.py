#!/usr/bin/env python3
"""PyTorch reference for training-speed comparisons with fitnets.

Builds the same networks as configs/mnist-teacher.toml and configs/mnist-fitnet.toml
(maxout convolutions, 2 pieces; channels g*k .. g*k+k-1 are the k pieces of unit g),
trains them with RMSProp (alpha 0.99, eps 1e-8, no momentum, lr 5e-4, batch 128) on
Fashion-MNIST read from IDX .gz files, and reports training images/s for:

  teacher   the maxout teacher (359,866 parameters), labels loss
  student   the FitNet (26,226 parameters) from scratch, labels loss
  kd        the FitNet with a teacher forward pass per batch (eval mode, no grad) and
            the KD loss H(y, P_S) + lambda H(P_T^tau, P_S^tau), tau 3, lambda 4 -> 1

Timing covers forward, backward and the optimizer step only: the whole data set is
loaded into tensors and shuffled once before timing, and each batch is a contiguous
slice. A few warm-up batches are run (and not timed) before each measurement.

Setup (CPU PyTorch in a virtualenv outside the repository; any recent torch works):

    python3 -m venv ~/torch-venv
    ~/torch-venv/bin/pip install torch numpy

Data: the Debian package `fashion-mnist` installs the IDX files in
/usr/share/datasets/fashion-mnist (train-images-idx3-ubyte.gz, ...); --data points elsewhere.

Run:

    ~/torch-venv/bin/python bench/pytorch/train_speed.py                 # 2 threads, 6400 images
    ~/torch-venv/bin/python bench/pytorch/train_speed.py --threads 2 --images 12800 --json
    ~/torch-venv/bin/python bench/pytorch/train_speed.py --full          # 1 epoch of the teacher + test accuracy

Options: --threads N (torch.set_num_threads, default 2), --images N or --epochs E (timed
images per case; an epoch is 55,000 images), --warmup B (untimed batches, default 3),
--cases teacher,student,kd, --seed, --json (one JSON line instead of the table),
--full (train the teacher one epoch on the first 55,000 training images, print test accuracy),
--device cpu|cuda|cuda:N (the data set is moved there once; CUDA timings synchronize),
--batch N (default 128), --compile (torch.compile the networks; its compilation happens
in the warm-up batches, at least 3 of them; a failure is reported, not fatal).
"""

import argparse
import gzip
import json
import os
import platform
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 128
LR = 5e-4
TRAIN_SIZE = 55_000  # 55K train / 5K validation, as in our runs
TAU = 3.0
LAMBDA_START, LAMBDA_END = 4.0, 1.0
TEACHER_PARAMS = 359_866
FITNET_PARAMS = 26_226


# ---------------------------------------------------------------------------- data

def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def load_fashion_mnist(root):
    def pick(stem):
        for name in (stem + ".gz", stem):
            p = os.path.join(root, name)
            if os.path.exists(p):
                return p
        raise FileNotFoundError(f"{stem}[.gz] not found in {root}")

    xtr = read_idx(pick("train-images-idx3-ubyte")).astype(np.float32) / 255.0
    ytr = read_idx(pick("train-labels-idx1-ubyte")).astype(np.int64)
    xte = read_idx(pick("t10k-images-idx3-ubyte")).astype(np.float32) / 255.0
    yte = read_idx(pick("t10k-labels-idx1-ubyte")).astype(np.int64)
    xtr, ytr = xtr[:TRAIN_SIZE], ytr[:TRAIN_SIZE]
    mean, std = float(xtr.mean()), float(xtr.std())  # training-set statistics
    to_t = lambda x: torch.from_numpy((x - mean) / std).unsqueeze(1).contiguous()
    return to_t(xtr), torch.from_numpy(ytr), to_t(xte), torch.from_numpy(yte)


# ---------------------------------------------------------------------------- models

class MaxoutConv(nn.Module):
    """A convolution to units*pieces channels, then the max over each unit's pieces."""

    def __init__(self, cin, units, pieces, kernel, padding=0):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.conv = nn.Conv2d(cin, units * pieces, kernel, padding=padding)

    def forward(self, x):
        y = self.conv(x)
        n, _, h, w = y.shape
        return y.view(n, self.units, self.pieces, h, w).max(2).values


class Teacher(nn.Module):
    """configs/mnist-teacher.toml: 48-48-24 maxout units, floor-mode pooling."""

    def __init__(self):
        super().__init__()
        self.conv1 = MaxoutConv(1, 48, 2, 8)
        self.pool1 = nn.MaxPool2d(4, 2)
        self.conv2 = MaxoutConv(48, 48, 2, 8, padding=3)
        self.pool2 = nn.MaxPool2d(4, 2)  # the hint, 48x3x3
        self.conv3 = MaxoutConv(48, 24, 2, 5, padding=3)
        self.pool3 = nn.MaxPool2d(2, 2)
        self.drop = nn.Dropout(0.5)
        self.logits = nn.Linear(96, 10)

    def forward(self, x):
        x = self.pool1(self.conv1(x))   # 48x9x9
        x = self.pool2(self.conv2(x))   # 48x3x3
        x = self.pool3(self.conv3(x))   # 24x2x2
        return self.logits(self.drop(x.flatten(1)))


class FitNet(nn.Module):
    """configs/mnist-fitnet.toml: 16-16 | pool | 16-16 | pool | 12-12, 3x3 pad 1."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            MaxoutConv(1, 16, 2, 3, 1), MaxoutConv(16, 16, 2, 3, 1), nn.MaxPool2d(2),
            MaxoutConv(16, 16, 2, 3, 1), MaxoutConv(16, 16, 2, 3, 1), nn.MaxPool2d(2),  # guided, 16x7x7
            MaxoutConv(16, 12, 2, 3, 1), MaxoutConv(12, 12, 2, 3, 1),
        )
        self.logits = nn.Linear(588, 10)

    def forward(self, x):
        return self.logits(self.features(x).flatten(1))


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def rmsprop(model):
    return torch.optim.RMSprop(model.parameters(), lr=LR, alpha=0.99, eps=1e-8, momentum=0.0)


def kd_loss(student_logits, teacher_logits, labels, lam):
    hard = F.cross_entropy(student_logits, labels)
    target = F.softmax(teacher_logits / TAU, dim=1)
    soft = -(target * F.log_softmax(student_logits / TAU, dim=1)).sum(1).mean()
    return hard + lam * soft  # no tau^2 factor, as the authors' code and host/src/train/loss.rs


# ---------------------------------------------------------------------------- timing

def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batches(x, y, count, start=0):
    """`count` contiguous batches, wrapping around the (pre-shuffled) training set."""
    n = x.shape[0] // BATCH
    for i in range(start, start + count):
        j = (i % n) * BATCH
        yield x[j:j + BATCH], y[j:j + BATCH]


def measure(case, xtr, ytr, n_batches, warmup, seed, device, compile_nets=False):
    torch.manual_seed(seed)
    if case == "teacher":
        model, teacher = Teacher(), None
    else:
        model = FitNet()
        teacher = Teacher().eval() if case == "kd" else None
    model.to(device).train()
    if teacher is not None:
        teacher.to(device)
    opt = rmsprop(model)
    if compile_nets:
        model = torch.compile(model)
        teacher = torch.compile(teacher) if teacher is not None else None
    total = n_batches

    def step(i, xb, yb):
        opt.zero_grad(set_to_none=True)
        out = model(xb)
        if teacher is None:
            loss = F.cross_entropy(out, yb)
        else:
            with torch.no_grad():
                t_out = teacher(xb)
            lam = LAMBDA_START + (LAMBDA_END - LAMBDA_START) * i / max(total - 1, 1)
            loss = kd_loss(out, t_out, yb, lam)
        loss.backward()
        opt.step()
        return loss

    for i, (xb, yb) in enumerate(batches(xtr, ytr, warmup)):
        step(0, xb, yb)
    synchronize(device)
    t0 = time.perf_counter()
    for i, (xb, yb) in enumerate(batches(xtr, ytr, n_batches, start=warmup)):
        loss = step(i, xb, yb)
    loss = loss.detach()
    synchronize(device)
    dt = time.perf_counter() - t0
    images = n_batches * BATCH
    return {"images": images, "seconds": round(dt, 3), "images_per_s": round(images / dt, 1),
            "final_loss": round(loss.item(), 4)}


def full_teacher(xtr, ytr, xte, yte, seed):
    torch.manual_seed(seed)
    model = Teacher().to(xtr.device)
    xte, yte = xte.to(xtr.device), yte.to(xtr.device)
    opt = rmsprop(model)
    model.train()
    n_batches = xtr.shape[0] // BATCH
    t0 = time.perf_counter()
    for i, (xb, yb) in enumerate(batches(xtr, ytr, n_batches)):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        if (i + 1) % 100 == 0:
            print(f"  batch {i + 1}/{n_batches} loss {loss.item():.4f}", file=sys.stderr)
    dt = time.perf_counter() - t0
    model.eval()
    correct = 0
    with torch.no_grad():
        for j in range(0, xte.shape[0], 1000):
            correct += (model(xte[j:j + 1000]).argmax(1) == yte[j:j + 1000]).sum().item()
    return {"images": n_batches * BATCH, "seconds": round(dt, 1),
            "images_per_s": round(n_batches * BATCH / dt, 1),
            "test_accuracy": round(correct / xte.shape[0], 4)}


def main():
    global BATCH
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist",
                    help="folder with the Fashion-MNIST IDX .gz files")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--images", type=int, default=6400, help="timed images per case (default 6400)")
    g.add_argument("--epochs", type=float, help="timed epochs of 55,000 images per case")
    ap.add_argument("--warmup", type=int, default=3, help="untimed warm-up batches (default 3)")
    ap.add_argument("--cases", default="teacher,student,kd")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON line of results")
    ap.add_argument("--full", action="store_true",
                    help="train the teacher 1 epoch on 55,000 images and print test accuracy")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--batch", type=int, default=BATCH, help=f"batch size (default {BATCH})")
    ap.add_argument("--compile", action="store_true", help="torch.compile the networks")
    args = ap.parse_args()
    if args.batch < 1:
        ap.error(f"--batch {args.batch}: a batch holds at least one image")
    if (args.images is not None and args.images < 1) or (args.epochs is not None and not args.epochs > 0):
        ap.error("--images and --epochs must be positive")
    BATCH = args.batch
    try:
        device = torch.device(args.device)
    except RuntimeError as e:
        ap.error(f"--device {args.device}: {e}")
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: this torch sees no CUDA device")
    warmup = max(args.warmup, 3) if args.compile else args.warmup

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    t, s = Teacher(), FitNet()
    assert n_params(t) == TEACHER_PARAMS, n_params(t)
    assert n_params(s) == FITNET_PARAMS, n_params(s)

    xtr, ytr, xte, yte = load_fashion_mnist(args.data)
    g = torch.Generator().manual_seed(args.seed)
    perm = torch.randperm(xtr.shape[0], generator=g)
    xtr, ytr = xtr[perm].contiguous().to(device), ytr[perm].contiguous().to(device)

    images = int(args.epochs * TRAIN_SIZE) if args.epochs is not None else args.images
    n_batches = max(1, images // BATCH)

    result = {
        "torch": torch.__version__, "python": platform.python_version(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(), "batch": BATCH, "warmup_batches": warmup,
        "device": str(device), "compile": args.compile,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "params": {"teacher": TEACHER_PARAMS, "fitnet": FITNET_PARAMS}, "cases": {},
    }
    if args.full:
        result["full_teacher"] = full_teacher(xtr, ytr, xte, yte, args.seed)
    else:
        for case in args.cases.split(","):
            if case not in ("teacher", "student", "kd"):
                ap.error(f"unknown case {case!r}")
            try:
                result["cases"][case] = measure(case, xtr, ytr, n_batches, warmup, args.seed, device, args.compile)
            except Exception as e:  # torch.compile needs a compiler toolchain (Triton on CUDA)
                if not args.compile:
                    raise
                result["cases"][case] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}

    if args.json:
        print(json.dumps(result))
        return
    print(f"torch {result['torch']}, python {result['python']}, {result['threads']} threads, batch {BATCH}")
    print(f"params: teacher {TEACHER_PARAMS:,}, FitNet {FITNET_PARAMS:,}")
    for case, r in result["cases"].items():
        if "error" in r:
            print(f"{case:8s} failed: {r['error']}")
            continue
        print(f"{case:8s} {r['images_per_s']:8.1f} images/s  ({r['images']} images in {r['seconds']} s)")
    if "full_teacher" in result:
        r = result["full_teacher"]
        print(f"teacher, 1 epoch: {r['images']} images in {r['seconds']} s "
              f"({r['images_per_s']} images/s), test accuracy {100 * r['test_accuracy']:.2f}%")


if __name__ == "__main__":
    main()
