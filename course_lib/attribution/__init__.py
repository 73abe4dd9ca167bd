"""Attribution methods: each maps (model, inputs, target) to a tensor shaped like the input."""
from .saliency import REDUCTIONS, gradient_x_input, reduce_channels, vanilla_gradient
from .smoothgrad import noise_stdev, noise_tunnel, smoothgrad, smoothgrad_squared, vargrad
from .baselines import IMAGENET_MEAN, PIXEL_BASELINES, Normalization, average_over_baselines, pixel_baseline
from .deeplift import deeplift, deeplift_shap
from .gradient_shap import gradient_shap
from .integrated_gradients import IG_RULES, integrated_gradients, path_rule

__all__ = [
    "IG_RULES",
    "IMAGENET_MEAN",
    "PIXEL_BASELINES",
    "REDUCTIONS",
    "average_over_baselines",
    "deeplift",
    "deeplift_shap",
    "gradient_shap",
    "gradient_x_input",
    "integrated_gradients",
    "noise_stdev",
    "noise_tunnel",
    "Normalization",
    "path_rule",
    "pixel_baseline",
    "reduce_channels",
    "smoothgrad",
    "smoothgrad_squared",
    "vanilla_gradient",
    "vargrad",
]
