# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercises 05: Occlusion, LIME and Shapley values on superpixels
#
# These exercises go with chapter 05. You write occlusion's core, predict what perturbation
# methods cost, read an error-versus-cost table to choose an estimator, and work out Shapley
# values by hand on a small game where they disagree with "hide one and see". Four items,
# 17 points:
#
# | item | what you do | points |
# |---|---|---|
# | 1 `occlusion_map` | write occlusion: the score drop per window, averaged where windows overlap | 7 |
# | 2 `forward_passes` | predict the forward passes of occlusion, exact Shapley and permutation sampling | 4 |
# | 3 `read_errors` | read an error-versus-cost table and say which estimator to trust | 3 |
# | 4 `shapley_by_hand` | Shapley values and leave-one-out on a three-segment game | 3 |
#
# **How you are graded.** Fill in the cells marked `# YOUR ANSWER`: replace each
# `raise NotImplementedError` by your code and each `None` by your answer, and keep the names.
# The grader runs every code cell of your notebook from the top, then checks each item, with a
# time limit per item. It skips the *try it* cells (tagged `skip-grading`). Under each item, a
# *check* cell runs that item's public checks here and prints what passes and why not; when you
# hand in, the grader adds hidden checks (for the answers to questions, the check cell only
# tells you whether your answer has the right form). Hand in the notebook, or the `.py` that
# File > Download gives: both are graded the same way.

# %%
# Colab: install what this notebook needs and Colab lacks, and say if the runtime must restart.
# Generated from _config.yml by scripts/sync_install_cells.py: change it there, not here.
import sys

if "google.colab" in sys.modules:
    import importlib
    import importlib.metadata as metadata
    import importlib.util
    import subprocess

    NEEDED = {  # module: what pip installs when it is missing
        "course_lib": "course_lib @ git+https://github.com/interpreting-neural-networks/course@main",
        "pytorch_grad_cam": "grad-cam>=1.5",
        "bertviz": "bertviz>=1.4",
    }
    missing = [spec for module, spec in NEEDED.items() if importlib.util.find_spec(module) is None]
    if missing:
        before = {d.metadata["Name"].lower(): d.version for d in metadata.distributions()}
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)
        importlib.invalidate_caches()
        after = {d.metadata["Name"].lower(): d.version for d in metadata.distributions()}
        changed = {name for name, version in before.items() if after.get(name) != version}
        # A restart is needed only if pip replaced a package this process has already imported.
        stale = sorted(module for module, dists in metadata.packages_distributions().items()
                       if module in sys.modules and changed & {d.lower() for d in dists})
        if stale:
            print(f"Installed {', '.join(missing)}. pip also changed {', '.join(sorted(changed))}, "
                  f"already imported here ({', '.join(stale)}): restart the runtime "
                  "(Runtime > Restart session), then run the notebook again from the top.")
        else:
            print(f"Installed {', '.join(missing)}. No restart needed.")
    else:
        print("Everything this notebook needs is installed.")

# %%
import math

import torch

import course_lib as cl
from course_lib.grading import public_checks

# %% [markdown]
# ## 1. Occlusion (7 points)
#
# Write `occlusion_map(model, image, target, window, stride, fill=0.0)`:
#
# - `image`: one image, a 1 x C x H x W float tensor; `model(batch)` returns N x K logits;
#   `target`: the class whose logit is explained; `window` and `stride`: ints (square windows,
#   the same stride along both axes); `fill`: the value every channel of a hidden pixel takes;
# - windows start at 0, `stride`, `2 * stride`, ... along each axis, and go on until the image
#   is covered: along a side of L pixels there are ceil((L - window) / stride) + 1 of them, so
#   the last window may hang over the border (it is then cut, as slicing does);
# - for each window, the drop is f(image) - f(image with the window set to `fill`), for the
#   target's logit;
# - returns an H x W tensor: for each pixel, the **mean** drop over the windows that cover it;
# - needs no gradient: do not leave `.grad` on the model, and do not change `image`.

# %% tags=["answer"]
def occlusion_map(model, image, target, window, stride, fill=0.0):
    """Mean score drop over the windows covering each pixel: 1 x C x H x W image -> H x W map."""
    # YOUR ANSWER
    ### BEGIN SOLUTION
    _, _, height, width = image.shape

    def starts(size):
        return [i * stride for i in range(math.ceil((size - window) / stride) + 1)]

    total = torch.zeros(height, width, dtype=image.dtype)
    count = torch.zeros(height, width, dtype=image.dtype)
    with torch.no_grad():
        clean = model(image)[0, target]
        for r in starts(height):
            for c in starts(width):
                occluded = image.clone()
                occluded[:, :, r : r + window, c : c + window] = fill
                drop = clean - model(occluded)[0, target]
                # Sum the drops and count the windows per pixel; divide at the end: the mean.
                total[r : r + window, c : c + window] += drop
                count[r : r + window, c : c + window] += 1
    return total / count
    ### END SOLUTION


# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("05", "occlusion_map")

# %% tags=["skip-grading"]
# Try it: your map beside course_lib's on a Shapes test image (window 8, stride 4, grey fill).
shapes = cl.load_model("shapes_cnn")
batch = cl.load_dataset("shapes", n=1, seed=900_000).batch
x = shapes.preprocess(batch.images)
target = int(batch.labels[0])
mine = occlusion_map(shapes.model, x, target, 8, 4, 0.0)
theirs = cl.occlusion(shapes.model, x, target, window=8, stride=4, fill=0.0)[0, 0]
print("largest |difference| from course_lib:", float((mine - theirs).abs().max()))
print("share of the positive mass on the object:",
      float((mine.clamp(min=0) * batch.masks[0]).sum() / mine.clamp(min=0).sum()))

# %% [markdown]
# ## 2. What does it cost? (4 points)
#
# Predict, for one 224 x 224 image, how many forward passes each method makes (not counting
# course_lib's one extra pass on the clean image). Numbers:
#
# - `answer_windows_16_8`: occlusion with window 16 and stride 8;
# - `answer_windows_50_25`: occlusion with window 50 and stride 25;
# - `answer_exact_10`: exact Shapley values of 10 superpixels (every coalition scored once);
# - `answer_permutation_10_50`: `cl.permutation_shapley` with 10 superpixels and
#   `n_permutations=50`, which scores a coalition that every order shares only once.

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
answer_windows_16_8 = 729  # 27 positions per side: (224 - 16) / 8 + 1
answer_windows_50_25 = 64  # ceil(174 / 25) + 1 = 8 per side, the last window cut
answer_exact_10 = 1024  # 2 ** 10
answer_permutation_10_50 = 452  # empty and full once, then 9 per order: 2 + 50 * 9
### END SOLUTION

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("05", "forward_passes")

# %% tags=["skip-grading"]
# Try it: count the images a model is asked to score.
class Counted(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.images = inner, 0

    def forward(self, x):
        self.images += len(x)
        return self.inner(x)


counted = Counted(shapes.model).eval()
cl.occlusion(counted, x, target, window=10, stride=5, batch_size=256)
print("occlusion on 64 px, window 10, stride 5:", counted.images - 1, "passes; count_windows says",
      cl.count_windows(64, 10, 5))

# %% [markdown]
# ## 3. Which estimator to trust? (3 points)
#
# Chapter 05 measured the error of three estimators of Shapley values against the exact ones
# on six Shapes images with 10 to 12 superpixels, ten seeds each (relative error, mean ±
# standard error):
#
# | forward passes per image | KernelSHAP | permutation sampling | LIME |
# |---|---|---|---|
# | 32 | 0.098 ± 0.008 | 0.082 ± 0.007 | 0.324 ± 0.008 |
# | 128 | 0.041 ± 0.003 | 0.038 ± 0.003 | 0.096 ± 0.004 |
# | 256 | 0.029 ± 0.002 | 0.025 ± 0.002 | 0.063 ± 0.003 |
# | 512 | 0.021 ± 0.001 | 0.019 ± 0.002 | 0.047 ± 0.003 |
# | 2048 | 0.010 ± 0.001 | 0.011 ± 0.001 | 0.036 ± 0.003 |
#
# `answer_within_5_percent`: you can afford 256 forward passes per image and need values within
# 5 percent of the Shapley values. Which estimators do that on these images? (A letter.)
#
# - A. LIME only.
# - B. KernelSHAP and permutation sampling, not LIME.
# - C. All three.
# - D. None of them: only the exact values.
#
# `answer_shrink_factor`: predict, without the table, by what factor KernelSHAP's error shrinks
# when the budget grows from 512 to 2,048 passes. (A number.)
#
# `answer_lime_floor`: LIME's error hardly moves between 512 and 2,048 passes. Why? (A letter.)
#
# - A. 2,048 samples are still too few for 12 segments; ten times more would bring it to 1 percent.
# - B. Its weighting and ridge penalty define another target: the estimate converges, but not to
#   the Shapley values.
# - C. float32 rounding of the model's scores.
# - D. The superpixels are too large for LIME.

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
answer_within_5_percent = "B"  # 0.029 and 0.025 at 256 passes; LIME 0.063
answer_shrink_factor = 2.0  # 1 / sqrt(calls): four times the calls, half the error
answer_lime_floor = "B"
### END SOLUTION

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("05", "read_errors")

# %% [markdown]
# ## 4. Shapley values by hand (3 points)
#
# An image is cut into three segments: A (the object), B and C (background). The logit
# $v(S)$ when only the segments in $S$ show the image (the others show the baseline):
#
# | $S$ | {} | {A} | {B} | {C} | {A, B} | {A, C} | {B, C} | {A, B, C} |
# |---|---|---|---|---|---|---|---|---|
# | $v(S)$ | 0 | 4 | 0 | 0 | 6 | 4 | 1 | 6 |
#
# Numbers:
#
# - `answer_phi_b`: the Shapley value of B;
# - `answer_phi_c`: the Shapley value of C;
# - `answer_leave_out_c`: occlusion's answer for C, the drop of the score when C alone is
#   hidden from the full image.
#
# Then compare the last two: what does each method say about C, and which contexts does each
# look at? The try-it cell checks your values with course_lib.

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
# Weights |S|! (M - |S| - 1)! / M! for the coalitions S without B: 1/3, 1/6, 1/6, 1/3 for {}, {A}, {C}, {A, C}
# phi_B = 1/3 (v(B) - v()) + 1/6 (v(AB) - v(A)) + 1/6 (v(BC) - v(C)) + 1/3 (v(ABC) - v(AC))
#       = 0 + 2/6 + 1/6 + 2/3 = 7/6
answer_phi_b = 7 / 6
# C adds something only after B alone: v(BC) - v(B) = 1, with weight 1! 1! / 3! = 1/6
answer_phi_c = 1 / 6
# Hidden from the full image, C changes nothing: v(ABC) - v(AB) = 0
answer_leave_out_c = 0.0
### END SOLUTION

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("05", "shapley_by_hand")

# %% tags=["skip-grading"]
# Try it: the same game as a table indexed like cl.all_coalitions (bit 0 = A, bit 1 = B, bit 2 = C).
worth = {(): 0, ("A",): 4, ("B",): 0, ("C",): 0, ("A", "B"): 6, ("A", "C"): 4, ("B", "C"): 1, ("A", "B", "C"): 6}
table = torch.zeros(8)
for members, value in worth.items():
    table[sum(1 << "ABC".index(m) for m in members)] = value
print("Shapley values of A, B, C:", cl.shapley_from_values(table).tolist())
