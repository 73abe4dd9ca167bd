"""Perturbation methods (chapter 05): occlusion, superpixels, LIME, KernelSHAP, exact Shapley."""

__all__: list[str] = []
