"""course_lib's Grad-CAM, Grad-CAM++ and Score-CAM against pytorch-grad-cam's, per image.

Same model, layer and image for both, on one thread; the two are timed in turns (ours, theirs,
ours, ...) so that other load on the machine hits both alike, and the best of the turns is kept,
in CPU time (the work done) and in wall time. Score-CAM's
cost is also counted in forward passes. Writes benchmarks/results/cam.json (see
benchmarks/_results.py).

    python benchmarks/bench_cam.py
"""
from __future__ import annotations

import copy
import time

import torch
from _results import row, write
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, ScoreCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

import course_lib as cl


def interleaved(ours, theirs, repeat: int = 5) -> dict[str, float]:
    """Best CPU time and best wall time of ``ours()`` and of ``theirs()`` over ``repeat``
    alternating calls each. On one thread, CPU time is the work done, whatever else the machine
    runs; wall time also counts waiting for a core."""
    best = {"ours_cpu": float("inf"), "theirs_cpu": float("inf"),
            "ours_wall": float("inf"), "theirs_wall": float("inf")}
    for _ in range(repeat):
        for who, fn in (("ours", ours), ("theirs", theirs)):
            cpu, wall = time.process_time(), time.perf_counter()
            fn()
            best[f"{who}_cpu"] = min(best[f"{who}_cpu"], time.process_time() - cpu)
            best[f"{who}_wall"] = min(best[f"{who}_wall"], time.perf_counter() - wall)
    return best


def theirs_fn(cam_class, model, layer: str, x, target: int, batch_size: int | None = None):
    """pytorch-grad-cam as its README uses it (a context manager), on its own copy of the model:
    it switches the model to eval mode and leaves .grad on every parameter."""
    model = copy.deepcopy(model)
    module = dict(model.named_modules())[layer]

    def run():
        with cam_class(model, [module]) as c:
            if batch_size is not None:
                c.batch_size = batch_size
            return c(x, [ClassifierOutputTarget(target)])

    return run


def forward_passes(fn, model) -> int:
    """How many examples go through ``model`` while ``fn()`` runs."""
    count = [0]
    handle = model.register_forward_pre_hook(lambda _m, args: count.__setitem__(0, count[0] + args[0].shape[0]))
    try:
        fn()
    finally:
        handle.remove()
    return count[0]


def main() -> None:
    cl.set_deterministic(seed=0, threads=1)
    imagenet = cl.load_model("efficientnet_lite0")
    effnet = imagenet.model
    photo = imagenet.preprocess(cl.load_photo("chelsea"))[None]
    shapes = cl.load_model("shapes_cnn")
    square = shapes.preprocess(cl.load_dataset("shapes", n=1, seed=900_000).batch.images)
    with torch.no_grad():
        t_photo = int(effnet(photo).argmax())
        t_square = int(shapes.model(square).argmax())

    cases = [
        ("grad_cam", "EfficientNet-Lite0, bn2 (1280 x 7 x 7), 1 image 224 x 224", cl.grad_cam, GradCAM,
         effnet, "bn2", photo, t_photo, {}),
        ("grad_cam_plus_plus", "EfficientNet-Lite0, bn2 (1280 x 7 x 7), 1 image 224 x 224", cl.grad_cam_plus_plus,
         GradCAMPlusPlus, effnet, "bn2", photo, t_photo, {}),
        ("grad_cam", "Shapes CNN, features.layer3 (128 x 8 x 8), 1 image 64 x 64", cl.grad_cam, GradCAM,
         shapes.model, "features.layer3", square, t_square, {}),
        ("score_cam", "EfficientNet-Lite0, blocks.2 (40 x 28 x 28), 1 image 224 x 224, 16 masks per batch",
         cl.score_cam, ScoreCAM, effnet, "blocks.2", photo, t_photo, {"batch_size": 16}),
        ("score_cam", "Shapes CNN, features.layer3 (128 x 8 x 8), 1 image 64 x 64, 16 masks per batch",
         cl.score_cam, ScoreCAM, shapes.model, "features.layer3", square, t_square, {"batch_size": 16}),
        ("score_cam", "Shapes CNN, features.layer3, 1 image, course_lib's default 64 masks per batch",
         cl.score_cam, ScoreCAM, shapes.model, "features.layer3", square, t_square, {}),
    ]
    rows = []
    for name, what, ours_fn, theirs_cls, model, layer, x, target, options in cases:
        ours = lambda: ours_fn(model, x, target, layer=layer, **options)  # noqa: E731
        theirs = theirs_fn(theirs_cls, model, layer, x, target, batch_size=options.get("batch_size", 16))
        ours(), theirs()  # warm up
        repeat = 3 if name == "score_cam" else 15
        t = interleaved(ours, theirs, repeat)
        extra = {"course_lib_wall_s": round(t["ours_wall"], 4), "library_wall_s": round(t["theirs_wall"], 4)}
        if name == "score_cam":
            module = dict(model.named_modules())[layer]
            k = cl.cam.capture(model, x, target, module, gradients=False).activations.shape[1]
            extra.update(channels=k, forward_passes=forward_passes(ours, model))
        rows.append(row(f"{name}: {what}", t["ours_cpu"], t["theirs_cpu"], **extra))

    path = write(
        "cam", rows, title="Class activation maps against pytorch-grad-cam",
        note="CPU seconds on one thread (wall seconds in extra columns); each method and its "
             "pytorch-grad-cam counterpart timed in turns, best of 15 (Score-CAM: 3) turns each. "
             "pytorch-grad-cam's backward pass fills .grad of every "
             "parameter; course_lib asks autograd for the input's gradient only. Score-CAM costs one "
             "forward pass per channel of the layer plus one, in both libraries.",
    )
    for r in rows:
        passes = f", {r['forward_passes']} forward passes ({r['channels']} channels + 1)" if "channels" in r else ""
        print(f"{r['what']}: course_lib {r['course_lib_s']:.3f} s, pytorch-grad-cam {r['library_s']:.3f} s "
              f"(CPU), ratio {r['ratio']:.2f}; wall {r['course_lib_wall_s']:.3f} s vs {r['library_wall_s']:.3f} s"
              f"{passes}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
