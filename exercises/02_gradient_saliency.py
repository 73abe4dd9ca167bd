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
# # Exercises 02: Gradient saliency
#
# These exercises go with chapter 02. You predict what a channel reduction keeps, find where
# gradient x input's missing contribution went, find the bug in a colleague's SmoothGrad,
# write SmoothGrad yourself, and choose a noise level from measurements. Five items, 20 points:
#
# | item | what you do | points |
# |---|---|---|
# | 1 `predict_reduction` | predict, then verify, what each reduction keeps of two pixels | 3 |
# | 2 `local_bias` | compute gradient x input by hand on a one-unit ReLU network, and explain the gap | 4 |
# | 3 `find_the_bug` | find the two wrong lines in a SmoothGrad implementation | 3 |
# | 4 `smoothgrad` | write SmoothGrad from gradients | 8 |
# | 5 `choose_noise` | choose the noise level and the fix from a table of measurements | 2 |
#
# **How you are graded.** Fill in the cells marked `# YOUR ANSWER`: replace each
# `raise NotImplementedError` by your code and each `None` by your answer, and keep the names.
# The grader runs every code cell of your notebook from the top, then checks each item on small
# models of its own, with a time limit per item. It skips the *try it* cells (they carry the
# cell tag `skip-grading`): your answers must not depend on them, and they are the place for
# slow experiments on the real photo. A cell that raises or hangs costs only what it defines.
# Under each item, a *check* cell runs that item's public checks here and prints what passes
# and why not; when you hand in, the grader adds hidden checks (for the answers to questions,
# the check cell only tells you whether your answer has the right form).
#
# Item 4 asks you to write a function that `course_lib` already has: calling
# `course_lib.smoothgrad` (or its siblings) or Captum's `NoiseTunnel` in it scores zero for the
# item. `course_lib.vanilla_gradient` is allowed.

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
# ## 1. What a reduction keeps (3 points)
#
# Predict, then verify. For one class, two pixels of an image have the gradients
#
# | pixel | R | G | B |
# |---|---|---|---|
# | P | +0.30 | -0.40 | +0.20 |
# | Q | +0.25 | +0.25 | -0.05 |
#
# - `answer_ranks_p_first`: which of chapter 02's reductions (`max_abs`, `sum_abs`, `signed`)
#   give P a *larger* value than Q? (A letter.)
#   - A. all three
#   - B. `max_abs` and `sum_abs`, not `signed`
#   - C. `signed` only
#   - D. none of them
# - `answer_kept_p`: the share of P's total magnitude that the signed sum keeps,
#   $\lvert R+G+B \rvert / (\lvert R\rvert+\lvert G\rvert+\lvert B\rvert)$. (A number.)
# - `answer_brighten_q`: brighten Q by adding the same small step e to its three channels (of
#   the model's input). To first order the score changes by `answer_brighten_q` x e. (A number.)
#
# Work them out by hand first. The try-it cell shows how to check such a prediction with
# `course_lib`, on two other pixels: predict those first, too.

# %% tags=["answer"]
# YOUR ANSWER
answer_ranks_p_first = None
answer_kept_p = None
answer_brighten_q = None

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("02", "predict_reduction")

# %% tags=["skip-grading"]
# Try it: two other pixels, U = (-0.6, +0.1, +0.1) and V = (+0.2, +0.2, +0.2), as a
# 1 x 3 x 1 x 2 "gradient". Which reductions put U first? Predict, then run.
g = torch.tensor([[-0.6, 0.2], [0.1, 0.2], [0.1, 0.2]]).view(1, 3, 1, 2)
for how in cl.REDUCTIONS:
    print(f"{how:8s} U = {cl.reduce_channels(g, how)[0, 0, 0]:+.2f}   V = {cl.reduce_channels(g, how)[0, 0, 1]:+.2f}")

# %% [markdown]
# ## 2. Where the missing contribution went (4 points)
#
# A network with two inputs and one ReLU unit:
#
# $$ f(x_1, x_2) = 2\,\mathrm{relu}(x_1 - x_2 - 1) + 0.5 . $$
#
# It is piecewise linear, like chapter 02's EfficientNet-Lite0 on a small scale. At
# $x = (3, 1)$:
#
# - `answer_gxi_sum`: the sum of gradient x input, $\sum_i x_i\, \partial f / \partial x_i$;
# - `answer_change`: $f(x) - f(0)$, what a complete attribution would sum to;
# - `answer_why`: why do the two differ? (A letter.)
#   - A. The gradient of a ReLU network cannot be computed exactly, only numerically.
#   - B. Near $x$, $f$ is $\nabla f(x) \cdot x$ plus a constant (the local bias, here
#     $2 \times (-1) + 0.5$), and that constant is not $f(0)$, because the unit is on at $x$ and
#     off at 0; gradient x input never counts the difference.
#   - C. $f$ is not differentiable at $x = (3, 1)$.
#   - D. The gap is the output bias 0.5, which gradient x input leaves out.
# - `answer_complete_x1`: give a value $x_1$ for which, at the point $(x_1, 0)$, gradient x
#   input *does* sum to $f(x) - f(0)$. (A number; several are right.)
#
# Work with pencil and paper. The try-it cell checks the same reasoning at another point,
# $(5, 1)$, and at your `answer_complete_x1`: predict what it will print before you run it.

# %% tags=["answer"]
# YOUR ANSWER
answer_gxi_sum = None
answer_change = None
answer_why = None
answer_complete_x1 = None

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("02", "local_bias")

# %% tags=["skip-grading"]
# Try it: the network in torch, gradient x input against f(x) - f(0).
def f(x):
    return 2 * torch.relu(x[..., 0] - x[..., 1] - 1) + 0.5


points = [[5.0, 1.0]] + ([[float(answer_complete_x1), 0.0]] if answer_complete_x1 is not None else [])
for point in points:
    x = torch.tensor(point, requires_grad=True)
    (grad,) = torch.autograd.grad(f(x), x)
    print(f"x = {point}: sum of gradient x input {float((grad * x).sum()):+.2f}, "
          f"f(x) - f(0) {float(f(x) - f(torch.zeros(2))):+.2f}")

# %% [markdown]
# ## 3. Find the bug (3 points)
#
# A colleague wrote this SmoothGrad. The letters label its lines.
#
# ```python
# def colleague_smoothgrad(model, x, n_samples=50, noise_level=0.15, seed=0):
#     g = torch.Generator().manual_seed(seed)
#     sigma = noise_level * (x.max() - x.min())                   # (A)
#     total = torch.zeros_like(x)                                 # (B)
#     for _ in range(n_samples):
#         noisy = x + sigma * torch.randn(x.shape, generator=g)
#         target = model(noisy).argmax(dim=1)                     # (C)
#         total += cl.vanilla_gradient(model, noisy, target)      # (D)
#     return total / n_samples                                    # (E)
# ```
#
# - `answer_bug_one_image`: used on one image at a time, one line makes the function answer a
#   different question from SmoothGrad's. Which? (A letter A-E.)
# - `answer_effect`: what does that line do to the map at a high noise level? (A letter.)
#   - A. The map averages gradients of whichever class each noisy copy happens to be given, a
#     mixture of several classes' evidence.
#   - B. The noise is no longer scaled by the noise level.
#   - C. Nothing: the argmax of a noisy copy is always the clean image's class.
#   - D. It leaves gradients in the model's parameters.
# - `answer_bug_batch`: the function is then used on a batch of images with very different
#   ranges (one dark, one bright). Which other line is now wrong? (A letter A-E.)

# %% tags=["answer"]
# YOUR ANSWER
answer_bug_one_image = None
answer_effect = None
answer_bug_batch = None

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("02", "find_the_bug")

# %% [markdown]
# ## 4. SmoothGrad from gradients (8 points)
#
# SmoothGrad averages the gradient over noisy copies of the input,
# $\hat M(x) = \frac{1}{n} \sum_{i=1}^{n} \nabla_x S_c(x + \epsilon_i)$ with
# $\epsilon_i \sim \mathcal N(0, \sigma^2)$. Write
# `smoothgrad(model, inputs, target=None, n_samples=25, noise_level=0.15, seed=0)` for a batch
# `inputs` (N x C x H x W) that returns an N x C x H x W tensor, as follows.
#
# 1. **Noise scale.** Each example gets its own
#    sigma = `noise_level` x (max - min of that example), the paper's definition.
# 2. **Noise.** Draw all the noise at once, exactly like this, so the grader can compare with
#    its reference:
#    `noise = torch.randn((n_samples, *inputs.shape[1:]), generator=torch.Generator().manual_seed(seed)).to(inputs)`.
#    Copy i of example j is `inputs[j] + sigma[j] * noise[i]`: every example gets the same
#    n_samples draws.
# 3. **Target.** An int, a list of ints (one per example) or `None`, which means the class the
#    model predicts for the *clean* input. Decide it before adding noise, and use it for
#    every copy.
# 4. **Average** the gradients of the target score with respect to the noisy copies.
# 5. **Leave no trace.** The model's parameters must have no `.grad` afterwards (take input
#    gradients with `torch.autograd.grad`, not `.backward()`), and the `inputs` tensor passed
#    in must be unchanged.
#
# The grader checks each of these on small models of its own.

# %% tags=["answer"]
def smoothgrad(model, inputs, target=None, n_samples=25, noise_level=0.15, seed=0):
    """Mean input gradient over n_samples noisy copies of each example: N x C x H x W like inputs."""
    # YOUR ANSWER
    raise NotImplementedError


# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("02", "smoothgrad")

# %% tags=["skip-grading"]
# Try it on the cat (about 15 s on a laptop CPU): your SmoothGrad next to course_lib's.
import matplotlib.pyplot as plt

from course_lib import viz

loaded = cl.load_model("efficientnet_lite0")
x = loaded.preprocess(cl.load_photo("chelsea")).unsqueeze(0)
mine = smoothgrad(loaded.model, x, n_samples=8, noise_level=0.15, seed=0)
ref = cl.smoothgrad(loaded.model, x, n_samples=8, noise_level=0.15, seed=0, batch_size=None)
print("largest difference from course_lib:", (mine - ref).abs().max().item())
fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.8))
viz.show_image(axes[0], x[0], "input", denormalize=loaded.denormalize)
viz.show_heatmap(axes[1], cl.reduce_channels(mine, "max_abs")[0], title="yours (max_abs)")
viz.show_heatmap(axes[2], cl.reduce_channels(ref, "max_abs")[0], title="course_lib (max_abs)")
plt.show()

# %% [markdown]
# ## 5. Choose the noise level (2 points)
#
# You want SmoothGrad maps of *this model's evidence* for the true class of Shapes-like
# images, for another model than the chapter's. You measured, with 50 noisy copies per image on
# 40 images, the share of the map's mass on the object and how many noisy copies the model
# misclassifies:
#
# | noise level | copies misclassified | SmoothGrad mass on the object |
# |---|---|---|
# | 0 (vanilla) | 0 % | 0.31 |
# | 0.05 | 0 % | 0.33 |
# | 0.1 | 2 % | 0.36 |
# | 0.2 | 31 % | 0.38 |
# | 0.4 | 77 % | 0.18 |
#
# - `answer_noise`: which noise level do you use? (A number from the table.)
# - `answer_fix`: at your noise level but with only 8 samples, the SmoothGrad map looks *more*
#   speckled than the vanilla gradient. What do you do? (A letter.)
#   - A. Lower the noise level to 0.01.
#   - B. Average over many more samples (hundreds, for signed gradients), or average the
#     gradients' magnitudes.
#   - C. Explain the probability instead of the logit.
#   - D. Raise the noise level to 0.4 to smooth harder.

# %% tags=["answer"]
# YOUR ANSWER
answer_noise = None
answer_fix = None

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("02", "choose_noise")
