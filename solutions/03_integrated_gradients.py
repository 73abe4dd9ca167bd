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
# # Exercises 03: Integrated Gradients, baselines, DeepLift and Shapley values
#
# These exercises go with chapter 03. You write Integrated Gradients with the trapezoid rule,
# predict what a baseline makes invisible, compute Shapley values by hand, choose the number of
# steps from the completeness gap, and find out why Integrated Gradients and Shapley values
# split an interaction differently. Five items, 21 points:
#
# | item | what you do | points |
# |---|---|---|
# | 1 `ig_trapezoid` | write Integrated Gradients with the trapezoid rule from gradients | 8 |
# | 2 `baseline_blind_spot` | predict, then verify, what a baseline cannot credit | 3 |
# | 3 `shapley_by_hand` | compute three Shapley values by hand | 3 |
# | 4 `choose_n_steps` | choose the number of steps for a gap below 1 percent | 2 |
# | 5 `ig_vs_shapley` | predict both splits of an interaction, and say why they differ | 5 |
#
# **How you are graded.** Fill in the cells marked `# YOUR ANSWER`: replace each
# `raise NotImplementedError` by your code and each `None` by your answer, and keep the names.
# The grader runs every code cell of your notebook from the top, then checks each item, with a
# time limit per item. It skips the *try it* cells (tagged `skip-grading`): your answers must
# not depend on them, and they are the place for experiments. Under each item, a *check* cell
# runs that item's public checks here and prints what passes and why not; when you hand in,
# the grader adds hidden checks (for the answers to questions, the check cell only tells you
# whether your answer has the right form). Hand in the notebook, or the `.py` that
# File > Download gives: both are graded the same way.
#
# Item 1 asks you to write a function that `course_lib` already has: calling
# `course_lib.integrated_gradients` or Captum's `IntegratedGradients` in it scores zero for
# the item. `course_lib.vanilla_gradient` is allowed.

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
import torch

import course_lib as cl
from course_lib.grading import public_checks

# %% [markdown]
# ## 1. Integrated Gradients with the trapezoid rule (8 points)
#
# Write `ig_trapezoid(model, inputs, target, baseline, n_steps)`:
#
# - `inputs`: a batch, N x C x H x W float; `model(batch)` returns N x K logits; `target`: a
#   list of N class indices (example i explains `target[i]`); `baseline`: a tensor shaped like
#   `inputs` (example i is compared with `baseline[i]`); `n_steps` >= 2;
# - the points on the path are $\alpha_k = k / (n - 1)$ for $k = 0, \ldots, n - 1$ (both ends
#   included), with weights $w_k = 1 / (n - 1)$, except the two ends, which get half of that;
# - returns $(x - b) \odot \sum_k w_k\, \nabla f_{\text{target}}\big(b + \alpha_k (x - b)\big)$,
#   shaped like `inputs`;
# - leaves the model and the tensors passed in as they were (no `.grad` on the parameters).
#
# `cl.vanilla_gradient(model, batch, target)` gives the gradients of a batch of 4-D inputs.

# %% tags=["answer"]
def ig_trapezoid(model, inputs, target, baseline, n_steps):
    """Integrated Gradients with the trapezoid rule: N x ... -> N x ... attributions."""
    # YOUR ANSWER
    ### BEGIN SOLUTION
    x, b = inputs.detach(), baseline.detach()
    weights = [1.0 / (n_steps - 1)] * n_steps
    weights[0] /= 2
    weights[-1] /= 2  # the weights add up to 1: a linear model gets (x - b) * w exactly
    total = torch.zeros_like(x)
    for k, w in enumerate(weights):
        alpha = k / (n_steps - 1)
        total += w * cl.vanilla_gradient(model, b + alpha * (x - b), target)
    return total * (x - b)
    ### END SOLUTION


# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("03", "ig_trapezoid")

# %% tags=["skip-grading"]
# Try it: your function against course_lib's on two Shapes test images, black baseline, and the
# completeness of both (the sum of the attributions against f(x) - f(b)).
shapes = cl.load_model("shapes_cnn")
batch = cl.load_dataset("shapes", n=2, seed=900_000).batch
x = shapes.preprocess(batch.images)
norm = cl.Normalization(0.5, 0.5)
black = cl.pixel_baseline("black", x, norm)
target = batch.labels.tolist()
mine = ig_trapezoid(shapes.model, x, target, black, 17)
theirs, delta = cl.integrated_gradients(shapes.model, x, target, baseline=black, n_steps=17,
                                        method="riemann_trapezoid", return_delta=True)
print("largest |difference| from course_lib:", float((mine - theirs).abs().max()))
print("course_lib's completeness gaps:", delta.tolist())

# %% [markdown]
# ## 2. What a baseline cannot credit (3 points)
#
# A model whose preprocessing maps a pixel value $p \in [0, 1]$ to $(p - 0.5) / 0.5$, as
# chapter 03's does. Predict, then verify with the try-it cell:
#
# - `answer_black_pixel`: the Integrated Gradients attribution, summed over its three
#   channels, of a pixel whose colour is exactly black, (0, 0, 0), against the black baseline.
#   (A number.)
# - `answer_white_factor`: for a white pixel, (1, 1, 1), against the black baseline, the
#   factor $x_i - b_i$ of each channel, in the model's input units. (A number.)
# - `answer_zero_tensor`: against `baseline=torch.zeros_like(x)`, which pixels get an
#   attribution of exactly zero, whatever the model? (A letter.)
#   - A. the black pixels
#   - B. the mid-grey pixels, (0.5, 0.5, 0.5)
#   - C. the white pixels
#   - D. none: a zero baseline is "no image", it cannot equal a pixel

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
answer_black_pixel = 0.0  # x - b = 0 on every channel
answer_white_factor = 2.0  # (1 - 0.5) / 0.5 - (0 - 0.5) / 0.5 = 1 - (-1)
answer_zero_tensor = "B"  # the normalisation sends p = 0.5 to 0: zero is mid-grey here
### END SOLUTION

# %% tags=["public-checks"]
public_checks("03", "baseline_blind_spot")

# %% tags=["skip-grading"]
# Try it: paint a black and a white square on a Shapes image and look at their attributions.
painted = batch.images[:1].clone()
painted[:, :, 2:8, 2:8] = 0.0  # black
painted[:, :, 2:8, 56:62] = 1.0  # white
xp = shapes.preprocess(painted)
for kind in ("black", "white"):
    attr = cl.integrated_gradients(shapes.model, xp, target[:1], baseline=cl.pixel_baseline(kind, xp, norm))
    print(f"{kind} baseline: |attribution| on the black square {float(attr[0, :, 2:8, 2:8].abs().sum()):.4f}, "
          f"on the white square {float(attr[0, :, 2:8, 56:62].abs().sum()):.4f}")
print("the white pixel's channels against black, in model units:",
      (xp[0, :, 2, 56] - cl.pixel_baseline("black", xp, norm)[0, :, 2, 56]).tolist())

# %% [markdown]
# ## 3. Shapley values by hand (3 points)
#
# Three features and the score $f(x) = \max(x_1, x_2, x_3)$, at $x = (1, 2, 4)$ against the
# baseline $(0, 0, 0)$: a coalition $S$ is worth the max of the input that keeps the features
# in $S$ and has 0 elsewhere. Compute the Shapley values `answer_phi_1`, `answer_phi_2` and
# `answer_phi_3` by hand (fractions are fine, e.g. `7 / 6`). Then verify with the try-it cell.

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
# Over the 6 orders: x1 adds 1 only when it comes first (2 orders of 6); x2 adds 2 when first
# (2 orders) and 1 when second after x1 (1 order); x3 gets the rest.
answer_phi_1 = 1 / 3
answer_phi_2 = (2 * 2 + 1 * 1) / 6
answer_phi_3 = 4 - 1 / 3 - 5 / 6
### END SOLUTION

# %% tags=["public-checks"]
public_checks("03", "shapley_by_hand")

# %% tags=["skip-grading"]
# Try it: every coalition's worth, and the formula applied to them.
point = torch.tensor([1.0, 2.0, 4.0])
coalitions = cl.all_coalitions(3)
worth = torch.where(coalitions, point, torch.zeros(3)).amax(dim=1)
print("Shapley values:", cl.shapley_from_values(worth).tolist())

# %% [markdown]
# ## 4. How many steps? (2 points)
#
# Take the sixth Shapes test image, `cl.load_dataset("shapes", n=6, seed=900_000)`, index 5,
# its predicted class, and the black baseline. Run `cl.integrated_gradients(...,
# return_delta=True)` with `n_steps` in (2, 4, 8, 16, 32, 64), once with
# `method="gausslegendre"` and once with `method="riemann_right"`, and compare each gap with
# $f(x) - f(b)$.
#
# - `answer_n_steps`: the smallest `n_steps` in that list for which Gauss-Legendre's gap is
#   below 1 percent of $|f(x) - f(b)|$. (A number.)
# - `answer_faster_rule`: which rule reaches a gap below 1 percent with fewer steps on this
#   image? (A letter.)
#   - A. Gauss-Legendre
#   - B. the right Riemann sum
#   - C. they need the same number

# %% tags=["skip-grading"]
# Try it: your measurement goes here (the answer cell below must not depend on it).
data = cl.load_dataset("shapes", n=6, seed=900_000)
image = shapes.preprocess(data.batch.images[5:6])
with torch.no_grad():
    predicted = shapes.model(image).argmax(dim=1)
base = cl.pixel_baseline("black", image, norm)
with torch.no_grad():
    change = float(shapes.model(image)[0, predicted] - shapes.model(base)[0, predicted])
for method in ("gausslegendre", "riemann_right"):
    gaps = []
    for n in (2, 4, 8, 16, 32, 64):
        _, d = cl.integrated_gradients(shapes.model, image, predicted, baseline=base, n_steps=n,
                                       method=method, return_delta=True)
        gaps.append(f"{n}: {abs(float(d)) / abs(change):.2%}")
    print(f"{method:>14}: " + "  ".join(gaps))

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
answer_n_steps = 32  # 1.43% at 16 steps, 0.04% at 32
answer_faster_rule = "A"  # the right Riemann sum is still at 2% with 64 steps
### END SOLUTION

# %% tags=["public-checks"]
public_checks("03", "choose_n_steps")

# %% [markdown]
# ## 5. Integrated Gradients against Shapley values (5 points)
#
# Two features and the score $f(x) = \min(x_1, x_2)$, at $x = (1, 3)$ against the baseline
# $(0, 0)$. Predict, without running anything:
#
# - `answer_ig_x1`, `answer_ig_x2`: the Integrated Gradients attributions of $x_1$ and $x_2$;
# - `answer_shapley_x1`, `answer_shapley_x2`: their Shapley values (a coalition keeps the
#   features in it and has 0 elsewhere);
# - `answer_why`: why do the two splits differ? (A letter.)
#   - A. Integrated Gradients is not complete for the min, so it misses part of the change.
#   - B. Integrated Gradients only evaluates inputs on the straight line from $b$ to $x$, on
#     which $x_1$ is always the smaller, so $x_2$ never moves the min there; the Shapley value
#     also scores the input that keeps $x_1$ and has $x_2$ at 0, where adding $x_2$ raises the
#     min from 0 to 1.
#   - C. Shapley values give every player an equal share (symmetry), whatever the function.
#   - D. The min is not differentiable, so Integrated Gradients is undefined and any number
#     it returns is an approximation of the Shapley value.
#
# Then verify with the try-it cell.

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
answer_ig_x1 = 1.0  # on (alpha, 3 alpha) the min is x1: the gradient is (1, 0) all the way
answer_ig_x2 = 0.0
answer_shapley_x1 = 0.5  # v({x1}) = v({x2}) = 0, v({x1, x2}) = 1: symmetric players
answer_shapley_x2 = 0.5
answer_why = "B"
### END SOLUTION

# %% tags=["public-checks"]
public_checks("03", "ig_vs_shapley")

# %% tags=["skip-grading"]
# Try it: both splits with course_lib.
class Min(torch.nn.Module):
    def forward(self, v):  # N x 2 -> N x 1
        return v.amin(dim=1, keepdim=True)


pair = torch.tensor([[1.0, 3.0]])
print("Integrated Gradients:", cl.integrated_gradients(Min().eval(), pair, 0, n_steps=64)[0].tolist())
worth = Min()(torch.where(cl.all_coalitions(2), pair, torch.zeros(1, 2)))[:, 0]
print("Shapley values:", cl.shapley_from_values(worth).tolist())
