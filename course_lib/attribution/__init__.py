"""Attribution methods: each maps (model, inputs, target) to a tensor shaped like the input."""
from .saliency import REDUCTIONS, gradient_x_input, reduce_channels, vanilla_gradient
from .smoothgrad import noise_stdev, noise_tunnel, smoothgrad, smoothgrad_squared, vargrad

__all__ = [
    "REDUCTIONS",
    "gradient_x_input",
    "noise_stdev",
    "noise_tunnel",
    "reduce_channels",
    "smoothgrad",
    "smoothgrad_squared",
    "vanilla_gradient",
    "vargrad",
]
