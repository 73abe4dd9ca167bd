"""Perturbation methods (chapter 05): occlusion, superpixels, LIME, KernelSHAP, exact Shapley.

No gradients: each method changes the input (hides a window, or switches superpixels between
the image and a baseline) and watches the target's score. They all take a ``batch_size`` for
their forward passes and the same fills / baselines (``make_baseline``).
"""
from .fill import FILLS, gaussian_blur, make_baseline
from .kernel_shap import constrained_shap_fit, kernel_shap, kernel_shap_coalitions, shapley_kernel
from .lime import lime, lime_coalitions, lime_kernel, weighted_ridge
from .occlusion import count_windows, occlusion
from .shapley import (
    MAX_EXACT_SEGMENTS,
    all_coalitions,
    coalition_values,
    exact_shapley,
    permutation_shapley,
    shapley_from_values,
)
from .superpixels import grid_segments, segment_map, segment_values, superpixels

__all__ = [
    "FILLS",
    "MAX_EXACT_SEGMENTS",
    "all_coalitions",
    "coalition_values",
    "constrained_shap_fit",
    "count_windows",
    "exact_shapley",
    "gaussian_blur",
    "grid_segments",
    "kernel_shap",
    "kernel_shap_coalitions",
    "lime",
    "lime_coalitions",
    "lime_kernel",
    "make_baseline",
    "occlusion",
    "permutation_shapley",
    "segment_map",
    "segment_values",
    "shapley_from_values",
    "shapley_kernel",
    "superpixels",
    "weighted_ridge",
]
