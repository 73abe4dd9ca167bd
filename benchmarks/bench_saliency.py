"""course_lib's gradient saliency and SmoothGrad against Captum's, on EfficientNet-Lite0.

Writes benchmarks/results/saliency.json (see benchmarks/_results.py).

    python benchmarks/bench_saliency.py
"""
from __future__ import annotations

import torch
from _results import best_of, row, write
from captum.attr import NoiseTunnel, Saliency

import course_lib as cl


def main() -> None:
    cl.set_deterministic(seed=0, threads=2)
    imagenet = cl.load_model("efficientnet_lite0")
    model = imagenet.model
    photos = torch.stack([imagenet.preprocess(cl.load_photo(n)) for n in ("chelsea", "coffee", "rocket", "astronaut")])
    one = photos[:1]
    with torch.no_grad():
        targets = model(photos).argmax(1)
    saliency = Saliency(model)
    tunnel = NoiseTunnel(saliency)
    sigma = float(cl.noise_stdev(one, 0.15)[0])
    rows = []

    ours = best_of(lambda: cl.vanilla_gradient(model, photos, targets))
    theirs = best_of(lambda: saliency.attribute(photos, target=targets, abs=False))
    rows.append(row("vanilla_gradient, 4 images 224 x 224 (Captum Saliency, abs=False)", ours, theirs))

    ours = best_of(lambda: cl.smoothgrad(model, one, targets[:1], n_samples=25, batch_size=25))
    theirs = best_of(lambda: tunnel.attribute(one, nt_type="smoothgrad", nt_samples=25, nt_samples_batch_size=25,
                                              stdevs=sigma, target=targets[:1], abs=False))
    rows.append(row("smoothgrad, 1 image, 25 samples in one batch (Captum NoiseTunnel)", ours, theirs))

    path = write("saliency", rows, title="Gradient saliency and SmoothGrad against Captum",
                 note="EfficientNet-Lite0 on the CPU; best of 3 runs. course_lib's smoothgrad makes one "
                      "extra forward pass on the clean input to fix the target class.")
    for r in rows:
        print(f"{r['what']}: course_lib {r['course_lib_s']:.3f} s, Captum {r['library_s']:.3f} s, ratio {r['ratio']:.2f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
