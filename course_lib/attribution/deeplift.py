"""DeepLift with the rescale rule (Shrikumar, Greenside and Kundaje 2017) and DeepLiftShap.

DeepLift explains f(x) - f(b) by differences from the baseline b. Through a linear layer a
difference passes as the gradient does; through an element-wise activation y = g(z) the
gradient g'(z) is replaced by the *multiplier* (g(z) - g(z_b)) / (z - z_b), the slope of the
secant between the baseline's pre-activation and the input's. With every nonlinearity of the
network handled this way the attributions (x - b) * multiplier sum to f(x) - f(b) exactly
(summation-to-delta), after one forward pass (input and baseline in one batch) and one
backward pass.

How: the forward pass runs under a ``torch.overrides.TorchFunctionMode`` that replaces every
element-wise activation *function* (``F.relu``, ``F.hardtanh`` which ``nn.ReLU6`` calls,
``torch.sigmoid``, ``F.gelu``, ...: ``ACTIVATIONS``) and max pooling by an autograd function
whose backward is the rescale rule. Modules and functional calls are caught alike, the model is
not touched, and nothing is left behind when the mode exits. Captum's DeepLift hooks a fixed
table of module types instead: an activation outside its table (``nn.ReLU6``, ``F.relu``
called in ``forward``) keeps its plain gradient, silently, and completeness is lost.

Other nonlinear operations (``torch.maximum``, ``clamp``, a product of two activations as in
attention or squeeze-excitation gates, softmax, layer norm) have no rule here: they are
differentiated as usual, and completeness then holds only approximately. Every call checks the
completeness gap it gets for free (it has f(x) and f(b)) and warns when some example's
attributions miss f(x) - f(b) by more than ``COMPLETENESS_RTOL`` of it (plus float rounding);
``return_delta=True`` says by how much.
"""
from __future__ import annotations

import inspect
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..core import (
    Target,
    _caller_stacklevel,
    batches,
    logits_of,
    preserved_state,
    resolve_target,
    warn_if_training,
)
from .baselines import resolve_baseline, resolve_baselines
from .integrated_gradients import _check_batch

EPS = 1e-10  # |z - z_b| below this: the secant is the tangent, use the gradient (as Captum does)
# A gap larger than this share of |f(x) - f(b)|, plus sqrt(float eps) x (1 + |scores|) for
# rounding, means an operation without a rule: the call warns.
COMPLETENESS_RTOL = 1e-3

# Element-wise activations: the function the mode sees -> its out-of-place version.
_OUT_OF_PLACE = {
    F.relu: F.relu, F.relu6: F.relu6, F.hardtanh: F.hardtanh, F.leaky_relu: F.leaky_relu,
    F.elu: F.elu, F.selu: F.selu, F.celu: F.celu, F.silu: F.silu, F.mish: F.mish,
    F.hardswish: F.hardswish, F.hardsigmoid: F.hardsigmoid, F.gelu: F.gelu,
    F.softplus: F.softplus, F.sigmoid: torch.sigmoid, F.tanh: torch.tanh,
    torch.relu: torch.relu, torch.sigmoid: torch.sigmoid, torch.tanh: torch.tanh,
    torch.Tensor.relu: torch.relu, torch.Tensor.sigmoid: torch.sigmoid, torch.Tensor.tanh: torch.tanh,
    # In-place variants: computed out of place, then copied into their input.
    F.relu_: F.relu, F.hardtanh_: F.hardtanh, F.leaky_relu_: F.leaky_relu, F.elu_: F.elu,
    torch.relu_: torch.relu, torch.sigmoid_: torch.sigmoid, torch.tanh_: torch.tanh,
    torch.Tensor.relu_: torch.relu, torch.Tensor.sigmoid_: torch.sigmoid, torch.Tensor.tanh_: torch.tanh,
}
_ALWAYS_IN_PLACE = {F.relu_, F.hardtanh_, F.leaky_relu_, F.elu_, torch.relu_, torch.sigmoid_,
                    torch.tanh_, torch.Tensor.relu_, torch.Tensor.sigmoid_, torch.Tensor.tanh_}
# Max pooling functions -> the position of their ``return_indices`` argument.
_MAX_POOLS = {F.max_pool1d: 6, F.max_pool2d: 6, F.max_pool3d: 6,
              F.adaptive_max_pool1d: 2, F.adaptive_max_pool2d: 2, F.adaptive_max_pool3d: 2}
ACTIVATIONS = tuple(sorted({getattr(f, "__name__", str(f)) for f in _OUT_OF_PLACE}))


def _split_inplace(func, args, kwargs) -> tuple[tuple, dict, bool]:
    """The call's arguments with ``inplace`` set to False, and whether it asked for in-place."""
    if func in _ALWAYS_IN_PLACE:
        return args, kwargs, True
    try:
        bound = inspect.signature(func).bind(*args, **kwargs)
    except (TypeError, ValueError):  # builtins without a Python signature have no inplace flag
        return args, kwargs, False
    inplace = bool(bound.arguments.get("inplace", False))
    if "inplace" in bound.arguments:
        bound.arguments["inplace"] = False
    return bound.args, bound.kwargs, inplace


class _Rescale(torch.autograd.Function):
    """y = g(z) on [inputs; baselines]; backward: the rescale multiplier for the input half."""

    @staticmethod
    def forward(ctx, z, g, n):
        y = g(z)
        dz, dy = z[:n] - z[n:], y[:n] - y[n:]
        small = dz.abs() < EPS
        multiplier = dy / torch.where(small, torch.ones_like(dz), dz)
        if small.any():
            # Only where needed (often: units dead or saturated for input and baseline alike
            # feed identical pre-activations to the next layer). g is element-wise, so it can
            # be evaluated on the gathered values.
            with torch.enable_grad():
                zs = z[:n][small].detach().requires_grad_(True)
                (tangent,) = torch.autograd.grad(g(zs).sum(), zs)
            multiplier = multiplier.masked_scatter(small, tangent)
        ctx.save_for_backward(multiplier)
        ctx.n = n
        return y

    @staticmethod
    def backward(ctx, grad_y):
        (multiplier,) = ctx.saved_tensors
        # The baselines' half gets no gradient: only the inputs' scores are differentiated.
        grad_z = torch.cat([grad_y[: ctx.n] * multiplier, torch.zeros_like(grad_y[ctx.n :])])
        return grad_z, None, None


class _MaxPoolRescale(torch.autograd.Function):
    """Max pooling on [inputs; baselines]; backward: Captum's DeepLift rule for max pooling.

    Each window's output difference is split between the input's argmax and the baseline's
    argmax (max(y, y_b) - y_b and y - max(y, y_b)) and divided by the input difference there,
    so that the window still sums to its output difference.
    """

    @staticmethod
    def forward(ctx, z, pool, n):
        y, idx = pool(z)
        ctx.save_for_backward(z[:n] - z[n:], y[:n], y[n:], idx)
        ctx.n = n
        return y

    @staticmethod
    def backward(ctx, grad_y):
        dz, y, y_b, idx = ctx.saved_tensors
        n = ctx.n
        g = grad_y[:n]
        top = torch.maximum(y, y_b)

        def unpool(values, indices):
            flat = torch.zeros(dz.shape[:2] + (dz[0, 0].numel(),), dtype=dz.dtype, device=dz.device)
            flat.scatter_add_(2, indices.flatten(2), values.flatten(2))
            return flat.view_as(dz)

        spread = unpool(g * (top - y_b), idx[:n]) + unpool(g * (y - top), idx[n:])
        plain = unpool(g, idx[:n])
        small = dz.abs() < EPS
        grad_in = torch.where(small, plain, spread / torch.where(small, torch.ones_like(dz), dz))
        return torch.cat([grad_in, torch.zeros_like(grad_in)]), None, None


class RescaleMode(TorchFunctionMode):
    """Inside ``with RescaleMode(n):`` a forward pass on [inputs; baselines] (2n rows) builds a
    graph whose gradient at the inputs is DeepLift's multiplier."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.skipped: list[str] = []

    def _batched(self, z: torch.Tensor, func) -> bool:
        """Whether ``z`` holds the 2n rows (inputs, then baselines) on dimension 0; if not (a
        gate computed from parameters, examples moved to another dimension), remember it."""
        if z.dim() > 0 and z.shape[0] == 2 * self.n:
            return True
        self.skipped.append(f"{getattr(func, '__name__', func)} on {tuple(z.shape)}")
        return False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _OUT_OF_PLACE and args and isinstance(args[0], torch.Tensor) and self._batched(args[0], func):
            z = args[0]
            call_args, call_kwargs, inplace = _split_inplace(func, args, kwargs)
            out_of_place = _OUT_OF_PLACE[func]
            rest = call_args[1:]

            def g(t):
                return out_of_place(t, *rest, **call_kwargs)

            y = _Rescale.apply(z, g, self.n)
            if inplace:
                # The model may use the input tensor afterwards instead of the returned value.
                return z.copy_(y)
            return y
        if func in _MAX_POOLS and args and isinstance(args[0], torch.Tensor) and self._batched(args[0], func):
            at = _MAX_POOLS[func]
            if kwargs.get("return_indices") or (len(args) > at and args[at]):
                raise NotImplementedError("DeepLift does not support max pooling with return_indices=True")
            z = args[0]
            kw = {k: v for k, v in kwargs.items() if k != "return_indices"}
            positional = args[1:at]

            def pool(t):
                return func(t, *positional, **kw, return_indices=True)

            return _MaxPoolRescale.apply(z, pool, self.n)
        return func(*args, **kwargs)


def _deeplift_rows(model, x, b, target: Target, n_total: int, rows: slice):
    """DeepLift multipliers of x (a chunk: rows ``rows`` of a batch of ``n_total``) against b,
    the chunk's targets, and its 2 x chunk target scores (inputs, then baselines)."""
    n = x.shape[0]
    xin = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        with RescaleMode(n) as mode:
            logits = logits_of(model(torch.cat([xin, b])))
        if mode.skipped:
            warnings.warn(
                f"DeepLift kept the plain gradient of {len(mode.skipped)} activation call(s) whose tensor "
                f"does not hold the {2 * n} rows (inputs, then baselines) on dimension 0 "
                f"({'; '.join(mode.skipped[:3])}): the attributions may not sum to f(x) - f(baseline); "
                f"return_delta=True says by how much",
                UserWarning,
                stacklevel=_caller_stacklevel(),
            )
        if logits.dim() != 2 or logits.shape[0] != 2 * n:
            raise ValueError(f"the model must return N x K class scores, got shape {tuple(logits.shape)}")
        if target is None:
            t = resolve_target(None, logits[:n])
        else:
            # The forward values are the model's own: its logits fix the number of classes.
            t = resolve_target(target, logits[:1].detach().expand(n_total, -1))[rows]
        scores = logits.gather(1, torch.cat([t, t])[:, None])[:, 0]
        (grad,) = torch.autograd.grad(scores[:n].sum(), xin)
    return grad, t, scores.detach()


def _warn_if_incomplete(gap: torch.Tensor, scores: torch.Tensor, scores_b: torch.Tensor, what: str) -> None:
    """Warn, at the caller's line, when some gap exceeds COMPLETENESS_RTOL of |f(x) - f(b)|
    (plus rounding): the attributions of those examples do not add up to the change."""
    change = scores - scores_b
    rounding = torch.finfo(scores.dtype).eps ** 0.5 * (1 + torch.maximum(scores.abs(), scores_b.abs()))
    bad = gap.abs() > COMPLETENESS_RTOL * change.abs() + rounding
    if bad.any():
        worst = int((gap.abs() - COMPLETENESS_RTOL * change.abs()).argmax())
        warnings.warn(
            f"DeepLift is not complete on {int(bad.sum())} of {len(gap)} {what}: the attributions miss "
            f"f(x) - f(baseline) by up to {float(gap[worst]):+.4g} (where f(x) - f(baseline) = "
            f"{float(change[worst]):.4g}). The model has an operation DeepLift has no rule for "
            f"(torch.maximum, clamp, a product of activations, softmax, layer norm, attention, ...), "
            f"which kept its plain gradient (or it is in training mode); return_delta=True gives every gap",
            UserWarning,
            stacklevel=_caller_stacklevel(),
        )


def deeplift(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    baseline=None,
    batch_size: int | None = None,
    return_delta: bool = False,
):
    """DeepLift (rescale rule) of each input against ``baseline``.

    inputs: N x ... float -> attributions N x ... (and, with ``return_delta``, the N gaps
    sum(attributions) - (f(x) - f(baseline)), zero up to rounding when every nonlinearity is an
    element-wise activation or max pooling; a warning says when it is not). ``baseline`` as in
    ``integrated_gradients``. ``batch_size`` examples (each with its baseline: twice as many
    rows) per pass.
    """
    _check_batch(inputs)
    warn_if_training(model)
    x = inputs.detach()
    b = resolve_baseline(baseline, x)
    n = x.shape[0]
    grads, f_x, f_b = [], [], []
    with preserved_state(model):
        for s in batches(n, batch_size):
            grad, _, scores = _deeplift_rows(model, x[s], b[s], target, n, s)
            grads.append(grad)
            f_x.append(scores[: len(grad)])
            f_b.append(scores[len(grad) :])
    attributions = torch.cat(grads) * (x - b)
    f_x, f_b = torch.cat(f_x).to(attributions.dtype), torch.cat(f_b).to(attributions.dtype)
    delta = attributions.flatten(1).sum(dim=1) - (f_x - f_b)
    _warn_if_incomplete(delta, f_x, f_b, "examples")
    if not return_delta:
        return attributions
    return attributions, delta


def deeplift_shap(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    baselines=None,
    batch_size: int | None = 16,
) -> torch.Tensor:
    """DeepLiftShap: DeepLift averaged over K baselines (a K x ... tensor or a sequence; None is
    the all-zero input alone).

    inputs: N x ... -> N x ...; the N x K (input, baseline) pairs go through the model in
    chunks of ``batch_size`` pairs (2 x batch_size rows). Warns, as ``deeplift`` does, when a
    pair's attributions do not add up to its f(x) - f(baseline).
    """
    _check_batch(inputs)
    warn_if_training(model)
    x = inputs.detach()
    refs = resolve_baselines(torch.zeros_like(x[:1]) if baselines is None else baselines, x)
    n, k = x.shape[0], refs.shape[0]
    total = torch.zeros_like(x)
    gaps, f_x, f_b = [], [], []
    with preserved_state(model):
        with torch.no_grad():
            # Fixed (and checked) once on the inputs, before the N x K pairs: every baseline
            # explains the same class.
            t = resolve_target(target, torch.cat([logits_of(model(x[s])) for s in batches(n, batch_size)]))
        pair_targets = t.repeat_interleave(k)
        # Pair p is example p // K against baseline p % K (example-major, as in Captum).
        for chunk in batches(n * k, batch_size):
            p = torch.arange(chunk.start, chunk.stop, device=x.device)
            example, ref = p // k, p % k
            grad, _, scores = _deeplift_rows(model, x[example], refs[ref], pair_targets, n * k, chunk)
            pair = grad * (x[example] - refs[ref])
            total.index_add_(0, example, pair)
            gaps.append(pair.flatten(1).sum(dim=1) - (scores[: len(p)] - scores[len(p) :]).to(pair.dtype))
            f_x.append(scores[: len(p)])
            f_b.append(scores[len(p) :])
    _warn_if_incomplete(torch.cat(gaps), torch.cat(f_x).to(x.dtype), torch.cat(f_b).to(x.dtype),
                        "(input, baseline) pairs")
    return total / k
