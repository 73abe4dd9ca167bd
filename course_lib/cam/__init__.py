"""Class activation maps (chapter 04): CAM, Grad-CAM and its variants, Guided Backprop.

Every CAM has the call shape ``method(model, inputs, target=None, *, layer, upsample=True,
relu=True) -> N x H x W``; ``base.BaseCAM`` owns the pipeline and each variant overrides one
small piece of it.

``course_lib.cam`` is this subpackage and also the CAM function itself: ``cl.cam(model, x,
layer=...)`` calls ``course_lib.cam.cam``. (A function named ``cam`` re-exported into
``course_lib`` would hide the subpackage of the same name, so the subpackage is made callable.)
"""
import inspect as _inspect
import sys as _sys
import types as _types

from .base import BaseCAM, Captured, capture, upsample_maps
from .grad_cam import (
    CAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    cam,
    grad_cam,
    grad_cam_plus_plus,
    hires_cam,
    layer_cam,
)
from .guided_backprop import GuidedActivations, guided_backprop, guided_grad_cam
from .score_cam import ScoreCAM, channel_masks, score_cam

# "cam" is not listed: ``from .cam import *`` in course_lib would replace the subpackage by the
# function. ``course_lib.cam(...)`` works through the callable module below.
__all__ = [
    "grad_cam",
    "grad_cam_plus_plus",
    "guided_backprop",
    "guided_grad_cam",
    "hires_cam",
    "layer_cam",
    "score_cam",
]


class _CallableModule(_types.ModuleType):
    """The subpackage, callable as ``cam``."""

    def __call__(self, *args, **kwargs):
        return cam(*args, **kwargs)


__signature__ = _inspect.signature(cam)
_sys.modules[__name__].__class__ = _CallableModule
