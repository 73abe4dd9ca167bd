"""The shared core: layer lookup, hook ownership, state guard, targets, model outputs."""
from __future__ import annotations

import os
import platform
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

import course_lib as cl
from course_lib.core import batches, check_inputs, input_gradients

pytestmark = pytest.mark.usefixtures("deterministic")


@pytest.fixture
def named_model() -> nn.Module:
    torch.manual_seed(0)
    features = nn.Sequential()
    features.add_module("conv1", nn.Conv2d(3, 4, 3, padding=1))
    features.add_module("relu1", nn.ReLU(inplace=True))
    features.add_module("conv2", nn.Conv2d(4, 4, 3, padding=1))
    model = nn.Sequential()
    model.add_module("features", features)
    model.add_module("pool", nn.AdaptiveAvgPool2d(1))
    model.add_module("flatten", nn.Flatten())
    model.add_module("classifier", nn.Linear(4, 5))
    return model.double().eval()


# ---------------------------------------------------------------------------- get_layer
def test_get_layer_returns_the_named_submodule(named_model):
    assert cl.get_layer(named_model, "features.conv2") is named_model.features.conv2
    assert cl.get_layer(named_model, named_model.classifier) is named_model.classifier


def test_get_layer_unknown_name_lists_close_names(named_model):
    with pytest.raises(ValueError) as err:
        cl.get_layer(named_model, "features.conv")
    message = str(err.value)
    assert "no layer named 'features.conv'" in message
    assert "did you mean" in message
    assert "features.conv1" in message and "features.conv2" in message
    assert "classifier" not in message.split("did you mean")[1].split("(")[0]


def test_get_layer_name_with_nothing_close_lists_the_layers(named_model):
    with pytest.raises(ValueError, match="its layers include: features, features.conv1"):
        cl.get_layer(named_model, "zzzzzzzz")


def test_get_layer_rejects_a_module_of_another_model(named_model):
    with pytest.raises(ValueError, match="not a sub-module of the model"):
        cl.get_layer(named_model, nn.Linear(4, 5))


# -------------------------------------------------------------------------------- Hooks
def _counts(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_hooks_are_live_inside_the_with_and_all_removed_on_exit(named_model):
    seen = []
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    with cl.Hooks() as hooks:
        hooks.forward(named_model.features.conv1, lambda m, i, o: seen.append("forward"))
        hooks.forward_pre(named_model.classifier, lambda m, i: seen.append("pre"))
        leaf = x.clone().requires_grad_()
        hooks.tensor(leaf, lambda g: seen.append("tensor"))
        assert _counts(named_model) == 2
        named_model(leaf).sum().backward()
        assert sorted(seen) == ["forward", "pre", "tensor"]
    assert _counts(named_model) == 0
    seen.clear()
    named_model(leaf).sum().backward()
    assert seen == [], "a hook still fired after the with block"


def test_hooks_are_removed_when_the_body_raises_and_the_error_propagates(named_model):
    x = torch.rand(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    seen = []
    with pytest.raises(KeyError, match="inside the with"):
        with cl.Hooks() as hooks:
            hooks.forward(named_model.features.conv2, lambda m, i, o: None)
            hooks.forward_pre(named_model.features.conv2, lambda m, i: None)
            hooks.tensor(x, lambda g: seen.append(1))
            raise KeyError("inside the with")
    assert _counts(named_model) == 0
    named_model(x).sum().backward()
    assert seen == []


def test_hooks_remove_can_be_called_directly_and_twice(named_model):
    hooks = cl.Hooks()
    hooks.forward(named_model.pool, lambda m, i, o: None)
    assert len(named_model.pool._forward_hooks) == 1
    hooks.remove()
    hooks.remove()
    assert len(named_model.pool._forward_hooks) == 0


def test_hooks_leave_hooks_registered_by_others_in_place(named_model):
    theirs = named_model.classifier.register_forward_hook(lambda m, i, o: None)
    with cl.Hooks() as hooks:
        hooks.forward(named_model.classifier, lambda m, i, o: None)
    assert len(named_model.classifier._forward_hooks) == 1
    theirs.remove()


# ---------------------------------------------------------------------- preserved_state
def test_preserved_state_restores_everything_after_an_exception(make_cnn, no_leftovers):
    model = make_cnn("batchnorm_dropout")
    check = no_leftovers(model)
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="half way"):
        with cl.preserved_state(model):
            model.train()
            model(x).sum().backward()  # sets .grad everywhere, updates batch-norm statistics
            for p in model.parameters():
                p.requires_grad_(False)
            model[0].weight.grad = None
            raise RuntimeError("half way")
    check()


def test_preserved_state_restores_after_a_normal_exit(make_cnn, no_leftovers):
    model = make_cnn("relu6")
    check = no_leftovers(model)
    with cl.preserved_state(model):
        model.train()
        model[-1].bias.requires_grad_(True)
        model(torch.rand(1, 3, 8, 8, dtype=torch.float64)).sum().backward()
    check()



# ----------------------------------------------------------------------- resolve_target
LOGITS = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 1.0]])


@pytest.mark.parametrize(
    "target, expected",
    [
        (2, [2, 2]),
        ([1, 0], [1, 0]),
        ((0, 2), [0, 2]),
        ([2], [2, 2]),
        (torch.tensor([2, 1]), [2, 1]),
        (torch.tensor(1), [1, 1]),
        (np.array([0, 1]), [0, 1]),
        (np.int64(2), [2, 2]),
        (None, [1, 0]),  # the predicted classes
    ],
    ids=["int", "list", "tuple", "one_element_list", "tensor", "0d_tensor", "numpy", "numpy_int", "none"],
)
def test_resolve_target_forms(target, expected):
    t = cl.resolve_target(target, LOGITS)
    assert t.dtype == torch.long
    assert t.tolist() == expected


@pytest.mark.parametrize("target", [True, False])
def test_resolve_target_rejects_a_bool(target):
    with pytest.raises(TypeError, match="got a bool"):
        cl.resolve_target(target, LOGITS)


@pytest.mark.parametrize("target", [1.0, [1.0, 0.0], torch.tensor([1.0, 2.0])])
def test_resolve_target_rejects_floats(target):
    with pytest.raises(TypeError, match="must hold integers"):
        cl.resolve_target(target, LOGITS)


@pytest.mark.parametrize("target", [3, -1, [0, 3]])
def test_resolve_target_out_of_range_names_the_classes(target):
    with pytest.raises(ValueError, match=r"out of range: the model has 3 classes \(0 to 2\)"):
        cl.resolve_target(target, LOGITS)


def test_resolve_target_wrong_length_says_both_lengths():
    with pytest.raises(ValueError, match="target has 3 entries but the batch has 2 examples"):
        cl.resolve_target([0, 1, 2], LOGITS)


# ---------------------------------------------------------------------------- logits_of
def test_logits_of_a_tensor_a_tuple_and_an_object_with_logits():
    scores = torch.rand(2, 3)
    assert cl.logits_of(scores) is scores
    assert cl.logits_of((scores, torch.rand(2, 7))) is scores
    assert cl.logits_of([scores]) is scores
    assert cl.logits_of(SimpleNamespace(logits=scores, hidden_states=None)) is scores


@pytest.mark.parametrize("output", [(), {"logits": 1}, "scores", (None, torch.rand(2))])
def test_logits_of_something_else_is_a_clear_type_error(output):
    with pytest.raises(TypeError, match="cannot find class scores"):
        cl.logits_of(output)


def test_methods_accept_a_model_returning_an_object_with_logits(make_cnn, make_batch):
    inner = make_cnn("relu_inplace")

    class HuggingFaceLike(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return SimpleNamespace(logits=self.inner(x))

    x = make_batch()
    torch.testing.assert_close(
        cl.vanilla_gradient(HuggingFaceLike().eval(), x, 1), cl.vanilla_gradient(inner, x, 1), atol=0, rtol=0
    )


def test_model_returning_a_single_score_per_example_is_a_clear_error(make_batch):
    model = nn.Sequential(nn.Flatten(0), nn.Linear(3 * 3 * 8 * 8, 4)).double().eval()  # no batch axis
    with pytest.raises(ValueError, match="must return N x K class scores"):
        cl.vanilla_gradient(model, make_batch(), 0)


# ------------------------------------------------------------------ inputs, batches, seed
def test_check_inputs_rejects_non_tensors_and_empty_batches():
    with pytest.raises(TypeError, match="must be a torch.Tensor, got ndarray"):
        check_inputs(np.zeros((1, 3, 4, 4)))
    with pytest.raises(ValueError, match="empty batch"):
        check_inputs(torch.zeros(0, 3, 4, 4))
    x = torch.zeros(2, 3, 4, 4)
    assert check_inputs(x) is x


def test_check_inputs_any_ndim_only_hints_unsqueeze_for_one_missing_axis():
    with pytest.raises(ValueError) as err:
        check_inputs(torch.zeros(4, 4))
    assert "unsqueeze" not in str(err.value)
    assert check_inputs(torch.zeros(4, 4), ndim=None).shape == (4, 4)


@pytest.mark.parametrize("n, size, expected", [(7, 3, [(0, 3), (3, 6), (6, 7)]), (4, None, [(0, 4)]), (2, 5, [(0, 2)])])
def test_batches_cover_the_range_in_order(n, size, expected):
    assert [(s.start, s.stop) for s in batches(n, size)] == expected


@pytest.mark.parametrize("size", [0, -1])
def test_batches_reject_a_non_positive_batch_size(size):
    with pytest.raises(ValueError, match="batch_size must be a positive int or None"):
        list(batches(3, size))


def test_input_gradients_returns_the_resolved_targets(make_cnn, make_batch):
    model, x = make_cnn("smooth"), make_batch()
    grad, t = input_gradients(model, x, None)
    assert grad.shape == x.shape and not grad.requires_grad
    assert t.tolist() == model(x).argmax(1).tolist()


def test_set_deterministic_repeats_every_generator():
    def draw():
        cl.set_deterministic(7, threads=1)
        return random.random(), np.random.rand(), torch.rand(2).tolist()

    assert draw() == draw()
    assert torch.get_num_threads() == 1
    assert torch.are_deterministic_algorithms_enabled()


def test_pin_cpu_kernels_asks_for_avx2_on_x86_only_and_keeps_user_settings(monkeypatch):
    from course_lib import reproducibility

    for key in reproducibility.X86_KERNELS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")  # a user's own choice wins
    monkeypatch.setattr(reproducibility.platform, "machine", lambda: "aarch64")
    reproducibility.pin_cpu_kernels()
    assert "ATEN_CPU_CAPABILITY" not in os.environ
    monkeypatch.setattr(reproducibility.platform, "machine", lambda: "x86_64")
    reproducibility.pin_cpu_kernels()
    env = os.environ
    assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["MKL_ENABLE_INSTRUCTIONS"] == "AVX2"
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX512_CORE"


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the pin is for x86-64")
def test_the_test_run_uses_the_pinned_kernels():
    # conftest.py pins the kernels at import; the stored notebook outputs were made with them.
    assert torch.backends.cpu.get_cpu_capability() == "AVX2"
