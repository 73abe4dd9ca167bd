"""Autograder for exercises/04_class_activation_maps: Grad-CAM from captured activations and
gradients, which of CAM's identities survive a global max-pooling head, the leaks of a
guided-backprop snippet, and reading a shortcut model's Grad-CAM table.

The function item's ``collect`` step (the student's process) calls ``grad_cam_map`` on
activations and gradients drawn here from fixed seeds; its checks (the trusted process) draw
the same tensors and compare with course_lib's Grad-CAM. Each check isolates one idea (the
mean over positions, the negative values kept without the ReLU, the ReLU, per-example weights,
the inputs left alone), so a lost point says which.
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

# Seeds chosen so that every probe's weighted sum has both signs (6 of the 12 positions of "one"
# and "default" are negative, and each example of "batch" has some): a ReLU applied when it
# should not be, or skipped when it should be, changes every probe.
PROBES = {
    "one": (lambda: captured(22, 1), False),
    "one_relu": (lambda: captured(22, 1), True),
    "batch": (lambda: batch_with_different_gradients(0), False),
}
DEFAULT_SEED = 25


def collect_grad_cam_map(student) -> dict:
    """Student's process: the student's grad_cam_map on each probe, and what it did to its inputs."""
    out = {}
    for key, (make, relu) in PROBES.items():
        a, g = make()
        out[key] = student.call("grad_cam_map", a, g, relu=relu)
    a, g = captured(DEFAULT_SEED, 1)
    given_a, given_g = a.clone(), g.clone()
    out["default"] = student.call("grad_cam_map", given_a, given_g)  # relu left at its default
    out["inputs_unchanged"] = bool(torch.equal(given_a, a) and torch.equal(given_g, g))
    return out


@functools.lru_cache(maxsize=None)
def reference(key: str) -> torch.Tensor:
    """Trusted process: course_lib's Grad-CAM of probe ``key`` at the layer's resolution."""
    if key == "default":
        a, g, relu = *captured(DEFAULT_SEED, 1), True
    else:
        make, relu = PROBES[key]
        a, g = make()
    n = a.shape[0]
    c = Captured(None, None, None, torch.zeros(n, dtype=torch.long), None, a, g)
    maps = _GradCAM().combine(c)
    return maps.clamp(min=0) if relu else maps


# Each check below looks at one idea and is blind to the others, so that one bug costs one
# point with its own reason: the mean check and the batch check compare the positive parts
# only (the ReLU's checks judge the negative parts), and every check but the mean compares up
# to an overall scale (the mean check judges the scale).

@check("weights each channel by the mean of its gradient over the positions")
def _gc_mean(got: Got) -> None:
    want = reference("one")
    what = "grad_cam_map(A, G, relu=False) for one example, where positive"
    given = got.tensor("one", like=want, what="grad_cam_map(A, G, relu=False) for one example").clamp(min=0)
    positions = 12
    if torch.allclose(given, want.clamp(min=0) * positions, rtol=1e-9, atol=1e-12):
        raise Fail(f"{what} is {positions} times the reference: you summed the gradients over the "
                   "positions; Grad-CAM averages them")
    assert_close(given, want.clamp(min=0), what,
                 hint="the weight of channel k is G[:, k].mean over h and w; the map is the sum over "
                      "k of weight_k x A[:, k]")


@check("keeps the negative values when relu=False")
def _gc_no_relu(got: Got) -> None:
    want = reference("one")
    what = "grad_cam_map(A, G, relu=False) for one example"
    given = got.tensor("one", like=want, what=what)
    negative = int((want < 0).sum())
    if not bool((given < 0).any()):
        raise Fail(f"{what} has no negative value, but the weighted sum is negative at {negative} of "
                   "its 12 positions: with relu=False, return the weighted sum as it is (the ReLU "
                   "only when relu is true)")
    assert_close(unit_scale(given.clamp(max=0)), unit_scale(want.clamp(max=0)),
                 what + ", its negative part up to scale",
                 hint="with relu=False the map is the weighted sum over channels, negative values included")


@check("applies the ReLU when relu=True (also by default)", hidden=True)
def _gc_relu(got: Got) -> None:
    for key, what in (("one_relu", "grad_cam_map(A, G, relu=True), up to scale"),
                      ("default", "grad_cam_map(A, G), up to scale")):
        want = reference(key)
        assert_close(unit_scale(got.tensor(key, like=want, what=what)), unit_scale(want), what,
                     hint="with relu=True (the default) negative values of the weighted sum become 0, "
                          "after the sum over channels, not before")


@check("gives each example of a batch its own weights", hidden=True)
def _gc_batch(got: Got) -> None:
    want = reference("batch").clamp(min=0)
    what = "grad_cam_map on a batch of 3 examples, relu=False, where positive, up to scale"
    given = got.tensor("batch", shape=(3, 3, 4),
                       what="grad_cam_map on 3 x 5 x 3 x 4 activations and gradients").clamp(min=0)
    assert_close(unit_scale(given), unit_scale(want), what,
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
    checks=(_gc_mean, _gc_no_relu, _gc_relu, _gc_batch, _gc_clean),
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


# --- item 2: a global max-pooling head -------------------------------------------------------

MAX_POOL_HEAD = Item(
    "max_pool_head",
    checks=(
        number_answer("answer_gmp_ratio", 196, "CAM / Grad-CAM of a 14 x 14 block before global max pooling",
                      "differentiate S = sum_k w_k max_ij(A_kij) + b with respect to every A_kij: where "
                      "is the gradient of channel k non-zero, and what is its mean over the 196 "
                      "positions?", tol=0.5),
        choice_answer("answer_gmp_score", "C", ("A", "B", "C", "D"), "what adds up to the score",
                      "max pooling does not commute with the weighted sum over channels; which map "
                      "is non-zero only where each channel's maximum is?"),
        choice_answer("answer_gmp_hires", "B", ("A", "B", "C", "D"), "HiResCAM on a max-pooling head",
                      "HiResCAM multiplies the gradient and the activation position by position; "
                      "where is the gradient of channel k non-zero?"),
    ),
)


# --- item 3: find the leak --------------------------------------------------------------------

FIND_THE_LEAK = Item(
    "find_the_leak",
    checks=(
        choice_answer("answer_after_success", "A", ("A", "B", "C", "D"),
                      "a later gradient after a call that returned",
                      "line E removes every hook the call registered; what is left on the model?"),
        choice_answer("answer_after_error", "B", ("A", "B", "C", "D"),
                      "a later gradient after a call that raised",
                      "when line D raises, which lines of the function still run?"),
        choice_answer("answer_grad_line", "D", ("A", "B", "C", "D", "E"),
                      "the line that leaves .grad on the parameters",
                      "which call accumulates gradients into every tensor that requires them?"),
        choice_answer("answer_functional", "B", ("A", "B", "C", "D"), "the snippet on a network calling F.relu",
                      "line B registers hooks on modules; does a network that calls F.relu in its "
                      "forward have a ReLU module?"),
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
                      "compare the stem's 'peak near tag' for the two targets, and what the last "
                      "block says about the tag for the true class"),
    ),
)

ITEMS = (GRAD_CAM_MAP, MAX_POOL_HEAD, FIND_THE_LEAK, SHORTCUT_LAYERS)
