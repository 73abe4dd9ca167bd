"""Shared fixtures: tiny seeded float64 CNNs, a seeded input batch, and the no-leftovers check.

The models are untrained and built here, so nothing downloads. Each one carries state a method
must not disturb: a parameter with a pre-existing ``.grad`` and a frozen parameter.
"""
from __future__ import annotations

import matplotlib

# Not through the MPLBACKEND variable: nbval's kernels, started from this same pytest run,
# would inherit it and stop showing figures inline.
matplotlib.use("Agg")

from course_lib.reproducibility import pin_cpu_kernels  # noqa: E402

# Before any torch operation: the same CPU kernels as the stored outputs were made with, also
# when pytest is run without make (nbval's kernels inherit the variables).
pin_cpu_kernels()

import pytest
import torch
from torch import nn

import course_lib

N_CLASSES = 5
BATCH = 3
SIZE = 8  # 3 x 8 x 8 = 192 values per example, a multiple of 16 (see batch_of below)


@pytest.fixture
def deterministic():
    """Seeds, deterministic kernels and one thread for a test; torch's settings are put back
    afterwards. The course_lib test modules use it for every test (``pytestmark``).

    One thread: the models here are tiny, and on a busy 2-core machine a second OpenMP thread
    makes each forward pass a thousand times slower (0.1 ms -> 100 ms) while changing nothing
    that is tested (the tolerances do not depend on the summation order).
    """
    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    course_lib.set_deterministic(0, threads=1)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(was_deterministic)


def _give_state(model: nn.Module, seed: int) -> nn.Module:
    """Float64, eval mode, a pre-existing .grad on the first weight, a frozen last bias."""
    model = model.double().eval()
    g = torch.Generator().manual_seed(seed + 1000)
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    first.weight.grad = torch.randn(first.weight.shape, generator=g, dtype=torch.float64)
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    last.bias.requires_grad_(False)
    return model


def make_model(kind: str, seed: int = 0) -> nn.Module:
    """A tiny untrained CNN for 3 x H x W inputs and N_CLASSES classes."""
    torch.manual_seed(seed)
    if kind == "relu_inplace":
        model = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, N_CLASSES),
        )
    elif kind == "relu6":
        model = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU6(),
            nn.Conv2d(6, 6, 3, padding=1), nn.ReLU6(inplace=True),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, N_CLASSES),
        )
        with torch.no_grad():  # large weights, so that some units saturate at 6
            model[0].weight.mul_(25.0)
    elif kind == "batchnorm_dropout":
        model = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
            nn.Dropout(0.5),
            nn.Conv2d(6, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(24, N_CLASSES),
        )
        with torch.no_grad():  # non-trivial running statistics
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
    elif kind == "smooth":
        # Gradients that change with every bit of the input: a comparison with Captum's
        # noise tunnel only passes if the noise is the same, not merely the ReLU pattern.
        model = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.Softplus(),
            nn.Conv2d(6, 6, 3, padding=1), nn.Tanh(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, N_CLASSES),
        )
    else:
        raise ValueError(kind)
    return _give_state(model, seed)


MODEL_KINDS = ("relu_inplace", "relu6", "batchnorm_dropout", "smooth")


@pytest.fixture
def relu_inplace_cnn() -> nn.Module:
    return make_model("relu_inplace")


@pytest.fixture
def relu6_cnn() -> nn.Module:
    return make_model("relu6")


@pytest.fixture
def bn_dropout_cnn() -> nn.Module:
    return make_model("batchnorm_dropout")


@pytest.fixture
def smooth_cnn() -> nn.Module:
    return make_model("smooth")


@pytest.fixture(params=MODEL_KINDS)
def any_cnn(request) -> nn.Module:
    """Each of the tiny CNNs in turn."""
    return make_model(request.param)


def batch_of(n: int = BATCH, size: int = SIZE, seed: int = 1) -> torch.Tensor:
    """n x 3 x size x size float64 in [0, 1], each example's range pinned to exactly 1.

    With a range of exactly 1, ``noise_stdev(x, 0.25)`` is exactly 0.25, a power of two:
    Captum draws its noise in float32 (``torch.normal`` with a float32 std), ours is drawn in
    float32 and scaled in float64; scaling by a power of two is exact in both, so the two
    noisy inputs are bit for bit the same and the comparison can be held to 1e-10.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, 3, size, size), generator=g, dtype=torch.float64)
    x[:, 0, 0, 0] = 0.0
    x[:, 0, 0, 1] = 1.0
    return x


@pytest.fixture
def x() -> torch.Tensor:
    return batch_of()


# Factories as fixtures, so test modules need not import conftest.
@pytest.fixture
def make_cnn():
    return make_model


@pytest.fixture
def make_batch():
    return batch_of


# ----------------------------------------------------------------------------- leftovers
def _hook_counts(module: nn.Module) -> tuple[int, ...]:
    return tuple(
        len(getattr(module, attr, {}))
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    )


def _global_hook_counts() -> tuple[int, ...]:
    from torch.nn.modules import module as M

    return tuple(
        len(getattr(M, attr, {}))
        for attr in ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks")
    )


def snapshot(model: nn.Module) -> dict:
    """Everything an attribution method must leave as it found it."""
    return {
        "hooks": {name: _hook_counts(m) for name, m in model.named_modules()},
        "global_hooks": _global_hook_counts(),
        "training": {name: m.training for name, m in model.named_modules()},
        "params": {
            name: (p, p.requires_grad, p.detach().clone(), None if p.grad is None else p.grad.clone())
            for name, p in model.named_parameters()
        },
        "buffers": {name: b.detach().clone() for name, b in model.named_buffers()},
    }


def assert_no_leftovers(model: nn.Module, before: dict) -> None:
    """Fail with the first difference between ``model`` now and the ``before`` snapshot."""
    after = snapshot(model)
    for name, counts in before["hooks"].items():
        assert after["hooks"][name] == counts, (
            f"hooks left on module {name!r}: (forward, forward_pre, backward, backward_pre) "
            f"{counts} -> {after['hooks'][name]}"
        )
    assert after["global_hooks"] == before["global_hooks"], "global module hooks left behind"
    assert after["training"] == before["training"], "a module's training flag changed"
    assert set(after["params"]) == set(before["params"]), "parameters were added or removed"
    for name, (p, requires_grad, value, grad) in before["params"].items():
        now = after["params"][name][0]
        assert now is p, f"parameter {name} was replaced by another tensor"
        assert p.requires_grad == requires_grad, f"requires_grad of {name} changed"
        assert torch.equal(p.detach(), value), f"the value of {name} changed"
        if grad is None:
            assert p.grad is None, f"{name}.grad was None and is now set"
        else:
            assert p.grad is not None, f"{name}.grad was set and is now None"
            assert torch.equal(p.grad, grad), f"{name}.grad changed"
    for name, value in before["buffers"].items():
        assert torch.equal(dict(model.named_buffers())[name], value), f"buffer {name} changed"


@pytest.fixture
def no_leftovers():
    """``check = no_leftovers(model)`` snapshots; ``check()`` asserts nothing changed since."""

    def start(model: nn.Module):
        before = snapshot(model)
        assert any(g is not None for *_, g in before["params"].values()), (
            "fixture models must carry a pre-existing .grad"
        )
        return lambda: assert_no_leftovers(model, before)

    return start
