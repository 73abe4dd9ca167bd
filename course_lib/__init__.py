"""course_lib: the shared, tested implementations behind *Interpreting Neural Networks*.

Every attribution method has one call shape::

    method(model, inputs, target=None, **options) -> Tensor shaped like inputs

``inputs`` is a batch (N x C x H x W for images); ``target`` is an int, a sequence of ints
or None (the predicted class). Nothing is left behind on the model: no hooks, no changed mode,
``requires_grad`` or ``.grad``.
"""
from .attribution import (
    REDUCTIONS,
    gradient_x_input,
    noise_stdev,
    noise_tunnel,
    reduce_channels,
    smoothgrad,
    smoothgrad_squared,
    vanilla_gradient,
    vargrad,
)
from .core import Hooks, check_inputs, get_layer, logits_of, preserved_state, resolve_target
from .reproducibility import set_deterministic
from . import viz
from .zoo import LoadedModel, list_datasets, list_models, load_dataset, load_model, load_photo

__all__ = [
    "REDUCTIONS",
    "Hooks",
    "LoadedModel",
    "check_inputs",
    "get_layer",
    "gradient_x_input",
    "list_datasets",
    "list_models",
    "load_dataset",
    "load_model",
    "load_photo",
    "logits_of",
    "noise_stdev",
    "noise_tunnel",
    "preserved_state",
    "reduce_channels",
    "resolve_target",
    "set_deterministic",
    "smoothgrad",
    "smoothgrad_squared",
    "vanilla_gradient",
    "vargrad",
]
