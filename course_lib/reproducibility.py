"""One call that makes a chapter's numbers repeatable."""
from __future__ import annotations

import os
import random

import numpy as np
import torch


def set_deterministic(seed: int = 0, threads: int = 2) -> None:
    """Seed Python, NumPy and torch, use deterministic kernels and a fixed thread count.

    The thread count matters: summing in a different order across 1 or 2 threads changes
    the last digits of printed sums.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
