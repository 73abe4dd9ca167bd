"""course_lib: the shared, tested implementations behind *Interpreting Neural Networks*.

Every attribution method has one call shape::

    method(model, inputs, target=None, **options) -> Tensor shaped like inputs

``inputs`` is a batch (N x C x H x W for images); ``target`` is an int, a sequence of ints
or None (the predicted class). Nothing is left behind on the model: no hooks, no changed mode,
``requires_grad`` or ``.grad``.

Each method family is a subpackage that lists its public names in ``__all__``; they are all
re-exported here, so ``course_lib.integrated_gradients`` and
``course_lib.attribution.integrated_gradients`` are the same function.
"""
from . import attention, attribution, cam, localisation, perturbation, viz
from .attention import *  # noqa: F401,F403
from .attribution import *  # noqa: F401,F403
from .cam import *  # noqa: F401,F403
from .localisation import pointing_game, share_on_mask
from .core import Hooks, check_inputs, get_layer, logits_of, preserved_state, resolve_target
from .perturbation import *  # noqa: F401,F403
from .reproducibility import set_deterministic
from .zoo import LoadedModel, list_datasets, list_models, load_dataset, load_model, load_photo

__all__ = sorted([
    *attention.__all__,
    *attribution.__all__,
    *cam.__all__,
    *perturbation.__all__,
    "Hooks",
    "cam",  # the callable subpackage course_lib.cam (see its docstring)
    "LoadedModel",
    "check_inputs",
    "get_layer",
    "list_datasets",
    "list_models",
    "load_dataset",
    "load_model",
    "load_photo",
    "logits_of",
    "pointing_game",
    "preserved_state",
    "resolve_target",
    "set_deterministic",
    "share_on_mask",
])
