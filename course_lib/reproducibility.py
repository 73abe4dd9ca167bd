"""One call that makes a chapter's numbers repeatable."""
from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch


# On x86-64, AVX-512 kernels round differently from AVX2 ones: numbers printed on one machine
# would differ in the last digits on another. Every x86-64 CPU of the last decade has AVX2.
X86_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def pin_cpu_kernels() -> None:
    """Use the same vector instructions (AVX2) on every x86-64 CPU; nothing elsewhere.

    Takes effect only before torch's first operation in the process, so call it first (the
    tests' conftest.py calls it at import). Variables already set are left alone.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return
    for key, value in X86_KERNELS.items():
        os.environ.setdefault(key, value)


def set_deterministic(seed: int = 0, threads: int = 2) -> None:
    """Seed Python, NumPy and torch, use deterministic kernels and a fixed thread count.

    The thread count matters: summing in a different order across 1 or 2 threads changes
    the last digits of printed sums. Call it before any torch computation: it also pins the
    CPU kernels (``pin_cpu_kernels``), which torch chooses at its first operation.
    """
    pin_cpu_kernels()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
