"""Small models shared by the tests of the path and reference methods (Integrated Gradients,
DeepLift, GradientSHAP, Shapley values): models that fail on purpose, models whose activations
are functions rather than modules, a linear model with a closed-form answer."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

N_CLASSES = 5


class FailOnCall(nn.Module):
    """Wraps a model; its forward raises on call number ``fail_on``."""

    def __init__(self, inner: nn.Module, fail_on: int) -> None:
        super().__init__()
        self.inner, self.fail_on, self.calls = inner, fail_on, 0

    def forward(self, x):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError(f"forward failed on call {self.calls}")
        return self.inner(x)


class _FailingBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("backward failed")


class FailInBackward(nn.Module):
    def forward(self, x):
        return _FailingBackward.apply(x)


class RowCounter(nn.Module):
    """Wraps a model and records the number of rows of every forward pass."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.rows = inner, []

    def forward(self, x):
        self.rows.append(x.shape[0])
        return self.inner(x)


class FunctionalActs(nn.Module):
    """Activations called as functions in ``forward`` (no activation modules to hook), some of
    them in place with the input tensor used afterwards, not the returned value."""

    def __init__(self, kind: str = "relu") -> None:
        super().__init__()
        self.kind = kind
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.fc = nn.Linear(24, N_CLASSES)

    def forward(self, x):
        h = self.conv1(x)
        if self.kind == "relu":
            F.relu(h, inplace=True)  # the result is ``h`` itself
            h = torch.relu(self.conv2(h))
        elif self.kind == "relu6":
            h = F.relu6(h)
            h = F.hardtanh(self.conv2(h), 0.0, 6.0)  # what nn.ReLU6 calls
        elif self.kind == "smooth":
            h = F.silu(h)
            h = self.conv2(F.gelu(h)).sigmoid()
        elif self.kind == "mixed":
            h = F.leaky_relu(h, 0.1)
            h = self.conv2(F.elu(h)).relu_()
            h = F.hardswish(torch.tanh(h))
        else:
            raise ValueError(self.kind)
        return self.fc(F.adaptive_avg_pool2d(h, 2).flatten(1))


def functional_model(kind: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = FunctionalActs(kind).double().eval()
    with torch.no_grad():
        model.conv1.weight.mul_(4.0)  # pre-activations on both sides of the kinks
    return model


def maxpool_model(adjacent: bool = False, overlapping: bool = False, seed: int = 0) -> nn.Module:
    """Conv, max pooling, conv, ELU, linear; with ``adjacent`` a ReLU right before the pooling
    (Captum 0.9 mishandles that pair: issue #1104); ``overlapping``: 3 x 3 windows, stride 2."""
    torch.manual_seed(seed)
    pool = nn.MaxPool2d(3, stride=2, padding=1) if overlapping else nn.MaxPool2d(2)
    layers = [nn.Conv2d(3, 6, 3, padding=1), *([nn.ReLU()] if adjacent else []), pool,
              nn.Conv2d(6, 6, 3, padding=1), nn.ELU(), nn.Flatten(), nn.Linear(96, N_CLASSES)]
    return nn.Sequential(*layers).double().eval()


def linear_model(in_shape=(3, 8, 8), seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(int(torch.tensor(in_shape).prod()), N_CLASSES)).double().eval()
