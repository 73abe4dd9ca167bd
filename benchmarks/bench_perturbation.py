"""How fast course_lib's perturbation methods are, beside Captum's on the same model and settings.

    python benchmarks/bench_perturbation.py [--repeats 3] [--quick]

Prints, for each comparison, the median seconds of course_lib and of Captum over interleaved
runs (ours, Captum, ours, Captum, ...: a load change on a shared machine hits both), their
ratio, and the forward passes each made (counted by a wrapper around the model):

1. occlusion on EfficientNet-Lite0 (one 224 x 224 photo; window 32, stride 16, the same
   internal batch size); the goal is a ratio of at most 1.1;
2. LIME and KernelSHAP on EfficientNet-Lite0 (the same superpixels, samples and weights);
3. occlusion on the Shapes CNN, batched against a loop of one forward pass per window (the
   tutorial way); the goal is at least 5x;
4. exact Shapley values on the Shapes CNN for 8, 10 and 12 segments (2^M passes each).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from captum._utils.models.linear_model import SkLearnRidge
from captum.attr import KernelShap, Lime, Occlusion

import course_lib as cl
from course_lib.zoo import make_shapes


class Counted(torch.nn.Module):
    """The model, counting the images it scores."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.images = inner, 0

    def forward(self, x):
        self.images += len(x)
        return self.inner(x)


LAST = {}  # the last result of each run, to check that the compared runs agree


def interleaved(runs: dict, repeats: int) -> dict:
    """Median seconds and forward passes per run for each named (model, fn) pair, interleaved."""
    times = {name: [] for name in runs}
    passes = {}
    for _ in range(repeats):
        for name, (counted, fn) in runs.items():
            counted.images = 0
            start = time.perf_counter()
            LAST[name] = fn()
            times[name].append(time.perf_counter() - start)
            passes[name] = counted.images
    return {name: (statistics.median(t), passes[name]) for name, t in times.items()}


def max_difference(a: str, b: str) -> str:
    return f"  same result: max |difference| = {float((LAST[a] - LAST[b]).abs().max()):.1e}"


def report(title: str, results: dict, ours: str, theirs: str, goal: str) -> None:
    (t_ours, p_ours), (t_theirs, p_theirs) = results[ours], results[theirs]
    print(f"\n{title}")
    print(f"  {ours:<28} {t_ours:7.2f} s  {p_ours:6d} forward passes")
    print(f"  {theirs:<28} {t_theirs:7.2f} s  {p_theirs:6d} forward passes")
    print(f"  ratio {ours} / {theirs} = {t_ours / t_theirs:.2f}   ({goal})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller settings, for a smoke run")
    args = parser.parse_args()
    cl.set_deterministic(0, threads=2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.repeats} interleaved repeats (medians)")

    # ---------------------------------------------------------------- EfficientNet-Lite0
    imagenet = cl.load_model("efficientnet_lite0")
    net = Counted(imagenet.model).eval()
    x = imagenet.preprocess(cl.load_photo("chelsea"))[None]
    with torch.no_grad():
        target = int(imagenet.model(x).argmax())
    window, stride, batch = (64, 64, 32) if args.quick else (32, 16, 32)
    occ = {
        "course_lib.occlusion": (net, lambda: cl.occlusion(net, x, target, window=window, stride=stride, batch_size=batch)),
        "captum Occlusion": (net, lambda: Occlusion(net).attribute(
            x, sliding_window_shapes=(3, window, window), strides=(3, stride, stride), baselines=0.0,
            target=target, perturbations_per_eval=batch)),
    }
    interleaved({k: v for k, v in list(occ.items())}, 1)  # warm-up: first-call allocations
    report(f"1. occlusion, EfficientNet-Lite0, chelsea 224 x 224, window {window}, stride {stride}, batch {batch}",
           interleaved(occ, args.repeats), "course_lib.occlusion", "captum Occlusion", "goal: at most 1.1")
    print(max_difference("course_lib.occlusion", "captum Occlusion"))

    segments = cl.superpixels(imagenet.denormalize(x)[0], 25)  # H x W
    m = int(segments.max()) + 1
    n_samples = 32 if args.quick else 200
    mask = segments[None, None].expand(1, 3, 224, 224).contiguous()
    similarity = lambda _o, _p, z, **kw: cl.lime_kernel(z.bool(), 0.25).float()  # noqa: E731

    def captum_lime():
        torch.manual_seed(0)
        return Lime(net, interpretable_model=SkLearnRidge(alpha=1.0), similarity_func=similarity).attribute(
            x, target=target, feature_mask=mask, n_samples=n_samples, perturbations_per_eval=batch)

    def captum_kernel_shap():
        torch.manual_seed(0)
        return KernelShap(net).attribute(x, target=target, feature_mask=mask, n_samples=n_samples,
                                         perturbations_per_eval=batch)

    lime_runs = {
        "course_lib.lime": (net, lambda: cl.lime(net, x, target, segments=segments, n_samples=n_samples, batch_size=batch)),
        "captum Lime": (net, captum_lime),
    }
    report(f"2a. LIME, EfficientNet-Lite0, {m} superpixels, {n_samples} samples, batch {batch}",
           interleaved(lime_runs, args.repeats), "course_lib.lime", "captum Lime", "same samples and weights")
    print(max_difference("course_lib.lime", "captum Lime"))
    shap_runs = {
        "course_lib.kernel_shap": (net, lambda: cl.kernel_shap(net, x, target, segments=segments, n_samples=n_samples,
                                                                batch_size=batch)),
        "captum KernelShap": (net, captum_kernel_shap),
    }
    report(f"2b. KernelSHAP, EfficientNet-Lite0, {m} superpixels, {n_samples} samples, batch {batch}",
           interleaved(shap_runs, args.repeats), "course_lib.kernel_shap", "captum KernelShap", "same samples")
    print(max_difference("course_lib.kernel_shap", "captum KernelShap"))

    # ---------------------------------------------------------------------- Shapes CNN
    shapes = cl.load_model("shapes_cnn")
    small = Counted(shapes.model).eval()
    images = shapes.preprocess(make_shapes(2, seed=1).images)
    sw, ss = 8, 4

    def one_pass_per_window():
        # The tutorial loop: every occluded copy alone through the model, overlaps averaged.
        out = torch.zeros(len(images), 64, 64)
        count = torch.zeros(64, 64)
        with torch.no_grad():
            clean = small(images)
            t = clean.argmax(dim=1)
            for i in range(len(images)):
                for r in range(0, 64 - sw + 1, ss):
                    for c in range(0, 64 - sw + 1, ss):
                        occluded = images[i : i + 1].clone()
                        occluded[..., r : r + sw, c : c + sw] = 0
                        out[i, r : r + sw, c : c + sw] += clean[i, t[i]] - small(occluded)[0, t[i]]
                        if i == 0:
                            count[r : r + sw, c : c + sw] += 1
        return out / count

    loop_runs = {
        "course_lib.occlusion": (small, lambda: cl.occlusion(small, images, None, window=sw, stride=ss, batch_size=256)),
        "loop, one pass per window": (small, one_pass_per_window),
    }
    interleaved(loop_runs, 1)
    results = interleaved(loop_runs, args.repeats)
    report(f"3. occlusion, Shapes CNN, {len(images)} images 64 x 64, window {sw}, stride {ss}",
           results, "course_lib.occlusion", "loop, one pass per window", "goal: at most 0.2, i.e. 5x faster")
    LAST["course_lib.occlusion"] = LAST["course_lib.occlusion"][:, 0]
    print(max_difference("course_lib.occlusion", "loop, one pass per window"))

    print("\n4. exact Shapley values, Shapes CNN, one image, batch 256")
    image = images[:1]
    for rows, cols in ((2, 4), (2, 5), (3, 4)):
        seg = cl.grid_segments(64, 64, rows, cols)
        small.images = 0
        start = time.perf_counter()
        cl.exact_shapley(small, image, None, segments=seg, batch_size=256)
        print(f"  {rows * cols:2d} segments: {time.perf_counter() - start:6.2f} s, {small.images - 1:5d} forward passes")


if __name__ == "__main__":
    main()
