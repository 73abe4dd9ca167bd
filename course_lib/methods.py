"""The course's methods as data: what question each answers, where it is taught, what it costs.

The course map, the API reference and their tests are generated from this table, so a method
added to a family's ``__all__`` without an entry here fails a test (``tests/test_methods.py``)
instead of silently missing from the map.

Cost is counted in passes through the model *per input example*, as expressions in the
method's own options at their defaults (``n_samples``, ``n_steps``, ...; ``H`` and ``W`` are
the input's height and width, ``K`` the number of channels of a CAM's layer, ``M`` the number of segments): ``forward`` counts every forward pass, ``backward`` those that
are also differentiated. ``tests/test_methods.py`` measures both on a tiny model and holds the
expressions to the measurement.
"""
from __future__ import annotations

from dataclasses import dataclass

FAMILIES = ("attribution", "cam", "perturbation", "attention")


@dataclass(frozen=True)
class Method:
    name: str  # the course_lib name
    title: str  # how the chapters call it
    question: str  # the question it answers
    chapter: str  # notebooks/<chapter>.py teaches it
    forward: str  # forward passes per example, an expression in the options
    backward: str  # backward passes per example
    needs: str = "gradients"  # what it needs of the model


METHODS: tuple[Method, ...] = (
    Method("vanilla_gradient", "Vanilla gradient (saliency)",
           "Which input values would change the class score most if nudged?",
           "02_gradient_saliency", forward="1", backward="1"),
    Method("gradient_x_input", "Gradient x input",
           "How much does each input value contribute, to first order, relative to an all-zero input?",
           "02_gradient_saliency", forward="1", backward="1"),
    Method("smoothgrad", "SmoothGrad",
           "Which input regions matter, with the gradient's pixel-level noise averaged out?",
           "02_gradient_saliency", forward="1 + n_samples", backward="n_samples"),
    Method("smoothgrad_squared", "SmoothGrad-squared",
           "Where is the gradient large on average around the input, whatever its sign?",
           "02_gradient_saliency", forward="1 + n_samples", backward="n_samples"),
    Method("vargrad", "VarGrad",
           "Where does the gradient change most when the input is perturbed?",
           "02_gradient_saliency", forward="1 + n_samples", backward="n_samples"),
    Method("integrated_gradients", "Integrated Gradients",
           "How much does each input value contribute to the change of the score from a baseline, with contributions that add up to it?",
           "03_integrated_gradients", forward="1 + n_steps", backward="n_steps"),
    Method("deeplift", "DeepLift (rescale rule)",
           "The same contributions as Integrated Gradients, from one backward pass instead of n_steps?",
           "03_integrated_gradients", forward="2", backward="2"),
    Method("deeplift_shap", "DeepLiftShap",
           "Which input values contribute, on average over a set of baselines (2 passes per baseline)?",
           "03_integrated_gradients", forward="3", backward="2"),
    Method("gradient_shap", "GradientSHAP",
           "Which input values contribute, in expectation over baselines and input noise?",
           "03_integrated_gradients", forward="1 + n_samples", backward="n_samples"),
    Method("cam", "CAM",
           "Where in the image is the evidence for the class, read off the classifier's own weights?",
           "04_class_activation_maps", forward="1", backward="0",
           needs="global average pooling into one linear layer"),
    Method("grad_cam", "Grad-CAM",
           "Where in the image is a layer's evidence for the class, at that layer's resolution?",
           "04_class_activation_maps", forward="1", backward="1"),
    Method("grad_cam_plus_plus", "Grad-CAM++",
           "Where is the evidence for the class when several objects of it are in the image?",
           "04_class_activation_maps", forward="1", backward="1"),
    Method("hires_cam", "HiResCAM",
           "Which positions of a layer, weighted by their own gradient, raise the class score?",
           "04_class_activation_maps", forward="1", backward="1"),
    Method("layer_cam", "LayerCAM",
           "Where is the positive evidence for the class in a layer, also in early layers?",
           "04_class_activation_maps", forward="1", backward="1"),
    Method("score_cam", "Score-CAM",
           "Which of a layer's activation maps, kept alone as a mask, keep the class score up?",
           "04_class_activation_maps", forward="1 + K", backward="0", needs="forward passes only"),
    Method("guided_backprop", "Guided Backprop",
           "Which input edges and textures does the network's positive backward signal reach?",
           "04_class_activation_maps", forward="1", backward="1"),
    Method("guided_grad_cam", "Guided Grad-CAM",
           "Which fine details inside the class's Grad-CAM region does the network respond to?",
           "04_class_activation_maps", forward="2", backward="2"),
    Method("occlusion", "Occlusion",
           "How much does the score drop when a patch of the image is hidden, averaged over the patches covering each pixel?",
           "05_occlusion_and_shapley",
           forward="1 + (ceil((H - window) / stride) + 1) * (ceil((W - window) / stride) + 1)",
           backward="0", needs="forward passes only"),
    Method("lime", "LIME",
           "Which superpixels does a weighted linear surrogate, fitted to random on/off coalitions, credit?",
           "05_occlusion_and_shapley", forward="1 + n_samples", backward="0", needs="forward passes only"),
    Method("kernel_shap", "KernelSHAP",
           "What are the superpixels' Shapley values, estimated by a kernel-weighted regression?",
           "05_occlusion_and_shapley", forward="1 + n_samples", backward="0", needs="forward passes only"),
    Method("exact_shapley", "Exact Shapley values",
           "What is each superpixel's fair share of f(x) - f(baseline), over all 2^M coalitions?",
           "05_occlusion_and_shapley", forward="1 + 2 ** M", backward="0", needs="forward passes only"),
    Method("permutation_shapley", "Permutation sampling (Shapley values)",
           "What are the superpixels' Shapley values, estimated from random orders, with a standard error?",
           "05_occlusion_and_shapley", forward="3 + n_permutations * (M - 1)", backward="0",
           needs="forward passes only"),
)

# Public names of the method families that are not methods themselves: building blocks and
# constants. Each is listed, so that a new public name must be placed in one table or the other.
# The value is the chapter that teaches it, or None for the module's methods' chapter.
HELPERS: dict[str, str | None] = {
    "REDUCTIONS": "02_gradient_saliency",
    "reduce_channels": None,
    "noise_stdev": None,
    "noise_tunnel": None,  # the general form behind smoothgrad, smoothgrad_squared and vargrad
    "IG_RULES": "03_integrated_gradients",
    "path_rule": "03_integrated_gradients",
    "Normalization": "03_integrated_gradients",
    "PIXEL_BASELINES": "03_integrated_gradients",
    "IMAGENET_MEAN": "03_integrated_gradients",
    "pixel_baseline": "03_integrated_gradients",
    "average_over_baselines": "03_integrated_gradients",
    "FILLS": "05_occlusion_and_shapley",
    "MAX_EXACT_SEGMENTS": "05_occlusion_and_shapley",
    "all_coalitions": "05_occlusion_and_shapley",
    "coalition_values": "05_occlusion_and_shapley",
    "constrained_shap_fit": "05_occlusion_and_shapley",
    "count_windows": "05_occlusion_and_shapley",
    "gaussian_blur": "05_occlusion_and_shapley",
    "grid_segments": "05_occlusion_and_shapley",
    "kernel_shap_coalitions": "05_occlusion_and_shapley",
    "lime_coalitions": "05_occlusion_and_shapley",
    "lime_kernel": "05_occlusion_and_shapley",
    "make_baseline": "05_occlusion_and_shapley",
    "segment_map": "05_occlusion_and_shapley",
    "segment_values": "05_occlusion_and_shapley",
    "shapley_from_values": "05_occlusion_and_shapley",
    "shapley_kernel": "05_occlusion_and_shapley",
    "superpixels": "05_occlusion_and_shapley",
    "weighted_ridge": "05_occlusion_and_shapley",
    # Attention (chapter 10) reads weights a model already computes: no method with a cost here.
    "AttentionMaps": "10_attention_in_bert",
    "STATISTICS": "10_attention_in_bert",
    "attention_grid": "10_attention_in_bert",
    "attention_maps": "10_attention_in_bert",
    "attention_replaced": "10_attention_in_bert",
    "average_attention": "10_attention_in_bert",
    "head_statistics": "10_attention_in_bert",
    "heads_table": "10_attention_in_bert",
    "self_attention_modules": "10_attention_in_bert",
    "show_attention": "10_attention_in_bert",
    "show_head_statistic": "10_attention_in_bert",
    "word_level_attention": "10_attention_in_bert",
}

# Names outside the method families that a chapter introduces (the API reference links them).
TAUGHT_IN: dict[str, str] = {
    "load_model": "01_why_interpret",
    "load_photo": "01_why_interpret",
    "load_dataset": "01_why_interpret",
    "list_models": "01_why_interpret",
    "list_datasets": "01_why_interpret",
    "LoadedModel": "01_why_interpret",
    "set_deterministic": "01_why_interpret",
    "share_on_mask": "02_gradient_saliency",
    "pointing_game": "04_class_activation_maps",
}

# "Which method for which question": a question a reader brings, the methods that answer it,
# and why those. Names must be registered methods.
GUIDE: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Which pixels is the prediction most sensitive to, right now?",
     ("vanilla_gradient",),
     "One backward pass; a local sensitivity, noisy on ReLU networks."),
    ("Which regions matter, as a map a person can read?",
     ("smoothgrad",),
     "Averaging over noisy copies removes the gradient's speckle; costs n_samples passes."),
    ("How much does each pixel contribute to the score, not just affect it?",
     ("gradient_x_input",),
     "A first-order contribution relative to an all-zero input: the reference matters."),
    ("Contributions that add up to the score's change from a reference image?",
     ("integrated_gradients", "deeplift"),
     "Complete by construction: IG integrates n_steps gradients along a path, DeepLift needs one backward pass."),
    ("Contributions that do not hinge on one arbitrary reference image?",
     ("gradient_shap", "deeplift_shap"),
     "Averaged over a set of baselines: Shapley-like values, at the cost of one pass per baseline or draw."),
    ("Where is the model's sensitivity unstable?",
     ("vargrad", "smoothgrad_squared"),
     "Spread and magnitude of the gradient around the input, both unsigned."),
    ("Where in the image does a CNN see the class?",
     ("grad_cam", "cam"),
     "Grad-CAM: one backward pass, any CNN; coarse (the layer's resolution), class-specific, choose the layer with care. CAM: no backward pass, only for a network ending in global average pooling and one linear layer."),
    ("Where are all the objects of a class, not only the strongest?",
     ("grad_cam_plus_plus", "layer_cam"),
     "Weights kept per position spread the map over several instances."),
    ("A class map without trusting gradients?",
     ("score_cam",),
     "Scores masked images instead: one forward pass per channel of the layer."),
    ("Fine detail inside the class's region?",
     ("guided_grad_cam",),
     "Guided Backprop's edges, gated by Grad-CAM's class-specific region."),
    ("What does the score need, without trusting gradients at all?",
     ("occlusion",),
     "Hides one window at a time: one forward pass per window; the fill must be one the model has seen."),
    ("A fair share of the score among a few image regions?",
     ("exact_shapley", "permutation_shapley", "kernel_shap"),
     "Shapley values of superpixels: exact for up to about 12 (2^M passes), sampled beyond, permutation sampling with a standard error."),
)


def by_name() -> dict[str, Method]:
    """The registered methods keyed by their course_lib name."""
    return {m.name: m for m in METHODS}


def chapter_of(name: str) -> str | None:
    """The chapter that teaches the public name ``name``, when the tables say."""
    if name in by_name():
        return by_name()[name].chapter
    if TAUGHT_IN.get(name):
        return TAUGHT_IN[name]
    if HELPERS.get(name):
        return HELPERS[name]
    if name in HELPERS:
        # A helper belongs to the chapter of the methods defined beside it.
        import course_lib

        module = getattr(getattr(course_lib, name, None), "__module__", None)
        for m in METHODS:
            if getattr(getattr(course_lib, m.name, None), "__module__", None) == module:
                return m.chapter
        family = _family_of(name)
        for m in METHODS:
            if _family_of(m.name) == family:
                return m.chapter
    return None


def _family_of(name: str) -> str | None:
    import importlib

    for family in FAMILIES:
        if name in importlib.import_module(f"course_lib.{family}").__all__:
            return family
    return None


def unclassified() -> list[str]:
    """Public names of the method families that are neither a method nor a listed helper."""
    import importlib

    known = set(by_name()) | set(HELPERS)
    names = []
    for family in FAMILIES:
        names += [n for n in importlib.import_module(f"course_lib.{family}").__all__ if n not in known]
    return sorted(names)


def passes(method: Method, options: dict) -> tuple[float, float]:
    """(forward, backward) passes per example for ``method`` with ``options`` (H, W included)."""
    env = {"__builtins__": {}, "ceil": __import__("math").ceil, "min": min, "max": max}
    return eval(method.forward, env, dict(options)), eval(method.backward, env, dict(options))
