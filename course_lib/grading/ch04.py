"""Autograder for exercises/04_class_activation_maps: Grad-CAM from captured activations and
gradients, CAM / Grad-CAM / Grad-CAM++ on a GAP network, the leaks of a guided-backprop
snippet, and reading a shortcut model's Grad-CAM table.

The function item's ``collect`` step (the student's process) calls ``grad_cam_map`` on
activations and gradients drawn here from fixed seeds; its checks (the trusted process) draw
the same tensors and compare with course_lib's Grad-CAM. Each check isolates one idea (the
mean over positions, the weighted sum, the ReLU, per-example weights), so a lost point says
which.
"""
from __future__ import annotations

import functools

import torch

from course_lib.cam.base import Captured
from course_lib.cam.grad_cam import GradCAM as _GradCAM

from .checks import Fail, Got, Item, assert_close, check, choice_answer, number_answer, unit_scale

EXERCISE = "04_class_activation_maps"
# Imported once in the grading server, so that their Grad-CAMs can be guarded.
PRELOAD = ["captum.attr", "pytorch_grad_cam"]


# --- seeded test material ---------------------------------------------------------------------


def captured(seed: int, n: int, k: int = 5, h: int = 3, w: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations (non-negative, as after a ReLU) and gradients (both signs), float64, n x k x h x w.

    h and w differ, so a map with the two axes swapped fails; h x w = 12, so a sum over the
    positions instead of a mean is 12 times too large.
    """
    g = torch.Generator().manual_seed(seed)
    activations = torch.rand((n, k, h, w), generator=g, dtype=torch.float64) * 2
    gradients = torch.randn((n, k, h, w), generator=g, dtype=torch.float64)
    return activations, gradients


def batch_with_different_gradients(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three examples whose gradients have different signs and scales: weights averaged over
    the batch instead of per example give another map."""
    a, g = captured(seed, 3)
    return a, g * torch.tensor([1.0, -3.0, 0.5], dtype=torch.float64).view(3, 1, 1, 1)


# --- item 1: grad_cam_map ---------------------------------------------------------------------

PROBES = {
    "one": (lambda: captured(0, 1), False),
    "one_relu": (lambda: captured(0, 1), True),
    "batch": (lambda: batch_with_different_gradients(1), False),
}


def collect_grad_cam_map(student) -> dict:
    """Student's process: the student's grad_cam_map on each probe, and what it did to its inputs."""
    out = {}
    for key, (make, relu) in PROBES.items():
        a, g = make()
        out[key] = student.call("grad_cam_map", a, g, relu=relu)
    a, g = captured(2, 1)
    given_a, given_g = a.clone(), g.clone()
    out["default"] = student.call("grad_cam_map", given_a, given_g)  # relu left at its default
    out["inputs_unchanged"] = bool(torch.equal(given_a, a) and torch.equal(given_g, g))
    return out


@functools.lru_cache(maxsize=None)
def reference(key: str) -> torch.Tensor:
    """Trusted process: course_lib's Grad-CAM of probe ``key`` at the layer's resolution."""
    if key == "default":
        a, g, relu = *captured(2, 1), True
    else:
        make, relu = PROBES[key]
        a, g = make()
    n = a.shape[0]
    c = Captured(None, None, None, torch.zeros(n, dtype=torch.long), None, a, g)
    maps = _GradCAM().combine(c)
    return maps.clamp(min=0) if relu else maps


@check("returns N x h x w, one map per example at the layer's resolution")
def _gc_shape(got: Got) -> None:
    got.tensor("batch", shape=(3, 3, 4), what="grad_cam_map on 3 x 5 x 3 x 4 activations and gradients")


@check("weights each channel by the mean of its gradient over the positions", points=2)
def _gc_mean(got: Got) -> None:
    want = reference("one")
    what = "grad_cam_map(A, G, relu=False) for one example"
    given = got.tensor("one", like=want, what=what)
    positions = 12
    if torch.allclose(given, want * positions, rtol=1e-9, atol=1e-12):
        raise Fail(f"{what} is {positions} times the reference: you summed the gradients over the "
                   "positions; Grad-CAM averages them")
    assert_close(given, want, what,
                 hint="the weight of channel k is G[:, k].mean over h and w; the map is the sum over "
                      "k of weight_k x A[:, k], with relu=False keeping negative values")


# The checks below compare up to an overall scale, which the check above grades: one bug, one
# lost point.

@check("applies the ReLU when relu=True (also by default)", hidden=True)
def _gc_relu(got: Got) -> None:
    for key, what in (("one_relu", "grad_cam_map(A, G, relu=True), up to scale"),
                      ("default", "grad_cam_map(A, G), up to scale")):
        want = reference(key)
        assert_close(unit_scale(got.tensor(key, like=want, what=what)), unit_scale(want), what,
                     hint="with relu=True (the default) negative values of the weighted sum become 0, "
                          "after the sum over channels, not before")


@check("gives each example of a batch its own weights", points=2, hidden=True)
def _gc_batch(got: Got) -> None:
    want = reference("batch")
    what = "grad_cam_map on a batch of 3 examples, relu=False, up to scale"
    assert_close(unit_scale(got.tensor("batch", like=want, what=what)), unit_scale(want), what,
                 hint="average the gradient over the positions (dims 2 and 3) only, not over the "
                      "batch: every example has its own weights")


@check("leaves the activations and gradients as they were", hidden=True)
def _gc_clean(got: Got) -> None:
    got.ok("default")
    if not got.flag("inputs_unchanged"):
        raise Fail("changed the activations or gradients passed in: in-place operations (clamp_, "
                   "mul_, relu_) on them change the caller's tensors; work on new tensors")


GRAD_CAM_MAP = Item(
    "grad_cam_map",
    checks=(_gc_shape, _gc_mean, _gc_relu, _gc_batch, _gc_clean),
    collect=collect_grad_cam_map,
    forbidden=(
        "course_lib.grad_cam", "course_lib.cam.grad_cam.grad_cam",
        "course_lib.cam.grad_cam.GradCAM.channel_weights", "course_lib.cam.base.BaseCAM.combine",
        "course_lib.cam.base.BaseCAM.__call__",
        "captum.attr.LayerGradCam.attribute",
        "pytorch_grad_cam.grad_cam.GradCAM.get_cam_weights",
        "pytorch_grad_cam.base_cam.BaseCAM.get_cam_image",
    ),
)


# --- item 2: CAM, Grad-CAM and Grad-CAM++ on a GAP network -------------------------------------

GAP_ALGEBRA = Item(
    "gap_algebra",
    checks=(
        number_answer("answer_cam_ratio", 196, "CAM / Grad-CAM of a 14 x 14 block before a GAP",
                      "differentiate S = sum_k w_k mean_ij(A_kij) + b with respect to one A_kij: the "
                      "gradient is the same at every position; what is its mean?", tol=0.5),
        number_answer("answer_gradcam_weight", 0.49 / 196, "Grad-CAM's weight for w = 0.49",
                      "Grad-CAM's weight is the mean gradient over the positions, and the gradient "
                      "at each of the 14 x 14 positions is w / (number of positions)", tol=2e-5),
        number_answer("answer_gcpp_weight", 0.49 / (2 + 0.49 * 5), "Grad-CAM++'s weight for w = 0.49",
                      "with g = w / (hw) at every position, alpha = 1 / (2 + g x sum of A) and the "
                      "weight is the sum over positions of alpha x relu(g); g x sum of A is w x the "
                      "mean activation", tol=1e-3),
    ),
)


# --- item 3: find the leak --------------------------------------------------------------------

LINES = ("A", "B", "C", "D", "E")
FIND_THE_LEAK = Item(
    "find_the_leak",
    checks=(
        choice_answer("answer_leak_line", "B", LINES, "the line that changes later results",
                      "register_forward_hook returns a handle; what happens to a hook whose handle "
                      "nobody keeps?"),
        choice_answer("answer_later_gradient", "B", ("A", "B", "C", "D"),
                      "what a later vanilla gradient returns",
                      "the forward hooks are still on the ReLU modules and run at every forward pass"),
        choice_answer("answer_grad_line", "D", LINES, "the line that leaves .grad on the parameters",
                      "which call accumulates gradients into every tensor that requires them?"),
        choice_answer("answer_relu6", "B", ("A", "B", "C", "D"), "the snippet on EfficientNet-Lite0",
                      "is an nn.ReLU6 module an instance of nn.ReLU? Check its class's bases"),
    ),
)


# --- item 4: layers and a shortcut ------------------------------------------------------------

LAYERS = ("A", "B", "C", "D")
SHORTCUT_LAYERS = Item(
    "shortcut_layers",
    checks=(
        choice_answer("answer_object_layer", "D", LAYERS, "the layer whose peak shows the object",
                      "read the 'peak on object' column for the true class; a high share on the "
                      "object does not put the peak there"),
        choice_answer("answer_shortcut_evidence", "B", ("A", "B", "C", "D"),
                      "the best evidence for the shortcut",
                      "compare each share with what a map spread evenly would give (the region's "
                      "area), at a layer whose maps are reliable for the true class"),
        choice_answer("answer_stem_peak", "A", ("A", "B", "C", "D"), "why the stem peaks near the tag",
                      "what do the first layer's channels respond to, and does that depend on the "
                      "class asked for?"),
    ),
)

ITEMS = (GRAD_CAM_MAP, GAP_ALGEBRA, FIND_THE_LEAK, SHORTCUT_LAYERS)
