"""The method registry (course_lib.methods) behind the course map is complete and truthful."""
from __future__ import annotations

import inspect

import pytest
import torch

import course_lib
from course_lib import methods
from course_lib.methods import METHODS, passes

pytestmark = pytest.mark.usefixtures("deterministic")

# Options a method needs on the tests' tiny CNNs (conftest.make_model) beyond model and inputs.
TINY_CNN_OPTIONS = {"layer": "2", "target_layer": "2",
                    # the perturbation methods: a window and stride, four 4 x 4 segments, budgets
                    "window": 3, "stride": 2, "segments": course_lib.grid_segments(8, 8, 2, 2),
                    "n_samples": 10, "n_permutations": 3}
TINY_CNN_LAYER_CHANNELS = 6  # K: the channels of layer "2" (a CAM's cost depends on them)
TINY_CNN_SEGMENTS = 4  # M: the segments of TINY_CNN_OPTIONS["segments"]
SIZE = 8


def test_every_public_name_of_the_method_families_is_a_method_or_a_listed_helper():
    missing = methods.unclassified()
    assert not missing, (
        "add these public names to course_lib/methods.py, to METHODS (with question, chapter and "
        f"cost) or to HELPERS: {', '.join(missing)}"
    )


def test_registered_methods_are_public_names_of_course_lib():
    for m in METHODS:
        assert m.name in course_lib.__all__, f"{m.name} is registered but course_lib does not export it"
    assert len({m.name for m in METHODS}) == len(METHODS), "a method is registered twice"


def test_the_guide_recommends_only_registered_methods():
    names = set(methods.by_name())
    for question, recommended, why in methods.GUIDE:
        assert recommended and set(recommended) <= names, question
        assert why.strip()


def test_every_method_names_its_question_and_chapter():
    for m in METHODS:
        assert m.question.endswith("?"), m.name
        assert m.chapter[:2].isdigit() and "_" in m.chapter, m.name


def test_cost_of_an_unknown_option_is_an_error():
    with pytest.raises(NameError):
        passes(methods.Method("x", "x", "x?", "02_x", forward="n_unknown", backward="0"), {})


class PassCounter:
    """Rows of input that go forward through a model, and rows whose gradient comes back."""

    def __init__(self, model):
        self.forward = self.backward = 0
        self.handle = model.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        out = output[0] if isinstance(output, (tuple, list)) else output
        self.forward += out.shape[0]
        if out.requires_grad:
            out.register_hook(self._count_backward)

    def _count_backward(self, grad):
        self.backward += grad.shape[0]


def _measurable() -> list:
    out = []
    for m in METHODS:
        params = list(inspect.signature(getattr(course_lib, m.name)).parameters)
        if params[:2] == ["model", "inputs"]:
            out.append(m)
    return out


@pytest.mark.parametrize("method", _measurable(), ids=lambda m: m.name)
def test_registered_cost_is_the_number_of_passes_measured(method, make_cnn, make_batch):
    fn = getattr(course_lib, method.name)
    sig = inspect.signature(fn)
    required = [p.name for p in list(sig.parameters.values())[2:]
                if p.default is inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD and p.kind is not p.VAR_POSITIONAL]
    missing = [p for p in required if p not in TINY_CNN_OPTIONS]
    assert not missing, f"say in TINY_CNN_OPTIONS what {method.name}'s {missing} is on the tiny CNN"
    options = {p: TINY_CNN_OPTIONS[p] for p in required}
    model, x = make_cnn("relu_inplace"), make_batch(1, SIZE)
    if method.name == "cam":  # CAM needs global average pooling into the classifier
        model[4] = torch.nn.AdaptiveAvgPool2d(1)
        model[6] = torch.nn.Linear(TINY_CNN_LAYER_CHANNELS, model[6].out_features).double()
        options["layer"] = "3"  # the ReLU that is pooled
    counter = PassCounter(model)
    try:
        fn(model, x, 0, **options)
    finally:
        counter.handle.remove()
    defaults = {p.name: p.default for p in sig.parameters.values() if p.default is not inspect.Parameter.empty}
    forward, backward = passes(method, {**defaults, **options, "H": SIZE, "W": SIZE, "K": TINY_CNN_LAYER_CHANNELS,
                                              "M": TINY_CNN_SEGMENTS})
    assert (counter.forward, counter.backward) == (forward, backward), (
        f"{method.name}: measured {counter.forward} forward and {counter.backward} backward rows per "
        f"example, the registry says {method.forward!r} = {forward:g} and {method.backward!r} = {backward:g}"
    )


def test_pass_counter_counts_a_gradient_pass(make_cnn, make_batch):
    model, x = make_cnn("relu_inplace"), make_batch(2, SIZE)
    counter = PassCounter(model)
    with torch.no_grad():
        model(x)
    course_lib.vanilla_gradient(model, x, 0)
    counter.handle.remove()
    assert (counter.forward, counter.backward) == (4, 2)


def test_course_map_has_one_row_per_registered_method_and_renders_every_cost():
    from scripts import course_map

    rows = course_map.map_markdown().splitlines()[2:]
    assert len(rows) == len(METHODS)
    for m, line in zip(sorted(METHODS, key=lambda m: m.chapter), rows):
        assert f"course_lib.{m.name}`" in line and f"{m.forward} forward" in line
