"""course_lib's Integrated Gradients and DeepLift against Captum's, on EfficientNet-Lite0.

Integrated Gradients: the same image, target, rule, number of steps and internal batch size
for both, timed in turns (ours, Captum's, Captum's, ours, ...) so that other load on the
machine hits both alike; the best and the median of the turns are kept and their ratio
printed (goal: at most 1.1). DeepLift: seconds per image for a batch of four photos (Captum's
DeepLift on this ReLU6 network is gradient x input, not DeepLift, see chapter 03; its time is
shown for scale). Writes benchmarks/results/integrated_gradients.json (see
benchmarks/_results.py).

    python benchmarks/bench_integrated_gradients.py [--repeat 5] [--n-steps 50] [--batch-size 25]
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from _results import row, write
from captum.attr import DeepLift, IntegratedGradients

import course_lib as cl


def turns(first, second, repeat: int) -> tuple[list[float], list[float]]:
    """Times of ``first()`` and ``second()`` over ``repeat`` rounds, alternating which goes first."""
    times = ([], [])
    fns = (first, second)
    for r in range(repeat):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        for i in order:
            start = time.perf_counter()
            fns[i]()
            times[i].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--n-steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--method", default="gausslegendre", choices=cl.IG_RULES)
    args = parser.parse_args()

    cl.set_deterministic(seed=0, threads=2)
    imagenet = cl.load_model("efficientnet_lite0")
    model = imagenet.model
    photos = torch.stack([imagenet.preprocess(cl.load_photo(n)) for n in ("chelsea", "coffee", "rocket", "astronaut")])
    with torch.no_grad():
        targets = model(photos).argmax(1)
    one, target = photos[:1], int(targets[0])
    steps, bs, method = args.n_steps, args.batch_size, args.method

    ig = IntegratedGradients(model)

    def ours():
        return cl.integrated_gradients(model, one, target, n_steps=steps, method=method, batch_size=bs)

    def theirs():
        return ig.attribute(one, target=target, n_steps=steps, method=method, internal_batch_size=bs)

    ours(), theirs()  # warm-up: first calls allocate
    ours_t, theirs_t = turns(ours, theirs, args.repeat)
    best, median = min(ours_t) / min(theirs_t), statistics.median(ours_t) / statistics.median(theirs_t)
    what = f"integrated_gradients, 1 image, {method}, {steps} steps in chunks of {bs} (Captum IntegratedGradients)"
    rows = [row(what, min(ours_t), min(theirs_t), median_course_lib_s=round(statistics.median(ours_t), 4),
                median_library_s=round(statistics.median(theirs_t), 4), median_ratio=round(median, 3))]

    def ours_dl():
        return cl.deeplift(model, photos, targets)

    def theirs_dl():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Captum warns that it sets hooks
            return DeepLift(model).attribute(photos, target=targets)

    ours_dl(), theirs_dl()
    dl_ours, dl_theirs = turns(ours_dl, theirs_dl, args.repeat)
    n = len(photos)
    rows.append(row("deeplift, 4 images in one batch, per image (Captum DeepLift: no ReLU6 rule, so gradient x input)",
                    min(dl_ours) / n, min(dl_theirs) / n))

    path = write("integrated_gradients", rows, title="Integrated Gradients and DeepLift against Captum",
                 note=f"EfficientNet-Lite0 on the CPU, 224 x 224; best of {args.repeat} alternating turns "
                      "(the median ratio is also given). course_lib's integrated_gradients makes one extra "
                      "forward pass on the input to fix and check the target.")
    print(f"Integrated Gradients ({method}, {steps} steps, chunks of {bs}), 1 image:")
    print(f"  course_lib best {min(ours_t):.3f} s, median {statistics.median(ours_t):.3f} s")
    print(f"  Captum     best {min(theirs_t):.3f} s, median {statistics.median(theirs_t):.3f} s")
    print(f"  ratio course_lib / Captum: best {best:.3f}, median {median:.3f} (goal <= 1.1)")
    print(f"IG seconds per image (course_lib, best): {min(ours_t):.3f}")
    print(f"DeepLift seconds per image (course_lib, 4 images in one batch, best): {min(dl_ours) / n:.3f} "
          f"(Captum's hooks: {min(dl_theirs) / n:.3f})")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
