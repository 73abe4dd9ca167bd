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
# These exercises go with chapter 02. You write two of the methods the chapter uses, work
# out a channel reduction by hand, find where gradient x input is blind, and predict what
# SmoothGrad's two knobs do. Five items, 19 points:
#
# | item | what you do | points |
# |---|---|---|
# | 1 `reduce_channels` | write the three channel reductions | 4 |
# | 2 `reductions_by_hand` | reduce one pixel's gradient by hand | 4 |
# | 3 `gradient_x_input_zero` | find where gradient x input sees nothing | 2 |
# | 4 `smoothgrad` | write SmoothGrad from gradients | 7 |
# | 5 `noise_and_samples` | predict what the noise level and the sample count do | 2 |
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
# Items 1 and 4 ask you to write functions that `course_lib` already has: calling
# `course_lib.reduce_channels`, `course_lib.smoothgrad` (or its siblings) or Captum's
# `NoiseTunnel` in them scores zero for the item. `course_lib.vanilla_gradient` is allowed.

# %%
import sys

if "google.colab" in sys.modules:  # Colab: install the course's package once per session
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q",
         "course_lib @ git+https://github.com/interpreting-neural-networks/course@main"],
        check=True,
    )

# %%
import torch

import course_lib as cl
from course_lib.grading import public_checks

# %% [markdown]
# ## 1. Channel reductions (4 points)
#
# A gradient has one value per pixel *and colour channel*: N x C x H x W. To draw one map per
# image, we collapse the channel axis. Chapter 02 uses three reductions:
#
# - `"max_abs"`: the largest |value| over the channels, the classic saliency map of
#   Simonyan et al.;
# - `"sum_abs"`: the sum of the |values| over the channels;
# - `"signed"`: the plain sum over the channels, which keeps the direction.
#
# Write `reduce_channels(attributions, how)`, which returns the N x H x W map. Any other `how`
# must raise a `ValueError`: a typo should not quietly give you some map. Return a new tensor
# and leave `attributions` unchanged (no in-place `abs_()`).

# %% tags=["answer"]
def reduce_channels(attributions, how="max_abs"):
    """N x C x H x W attributions -> N x H x W map, reduced by 'max_abs', 'sum_abs' or 'signed'."""
    # YOUR ANSWER
    ### BEGIN SOLUTION
    if how == "max_abs":
        return attributions.abs().amax(dim=1)
    if how == "sum_abs":
        return attributions.abs().sum(dim=1)
    if how == "signed":
        return attributions.sum(dim=1)
    raise ValueError(f"unknown reduction {how!r}: use 'max_abs', 'sum_abs' or 'signed'")
    ### END SOLUTION


# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("02", "reduce_channels")

# %% tags=["skip-grading"]
# Try it: your reductions of a random "gradient" next to course_lib's.
g = torch.randn(1, 3, 2, 2, generator=torch.Generator().manual_seed(0))
for how in ("max_abs", "sum_abs", "signed"):
    print(f"{how:8s} yours {reduce_channels(g, how).flatten().tolist()}")
    print(f"{'':8s} ref   {cl.reduce_channels(g, how).flatten().tolist()}")

# %% [markdown]
# ## 2. One pixel by hand (4 points)
#
# For the class *tabby*, one pixel of the cat photo has the gradient
# (R, G, B) = (+0.4, -0.5, +0.2). Work out by hand (then check with your function):
#
# - `answer_max_abs`: the pixel's value in the `max_abs` map;
# - `answer_sum_abs`: its value in the `sum_abs` map;
# - `answer_brighter`: brighten the pixel by adding the same small step e to all three
#   channels of the model's input. To first order the tabby score changes by
#   `answer_brighter` x e. What is `answer_brighter`?
# - `answer_keeps_sign`: which map, `"max_abs"`, `"sum_abs"` or `"signed"`, can tell a pixel
#   whose brightening raises the score from one whose brightening lowers it?

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
answer_max_abs = 0.5  # |-0.5| is the largest
answer_sum_abs = 1.1  # 0.4 + 0.5 + 0.2
answer_brighter = 0.1  # 0.4 - 0.5 + 0.2: the signed sum is the derivative along "brighter"
answer_keeps_sign = "signed"
### END SOLUTION

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("02", "reductions_by_hand")

# %% [markdown]
# ## 3. Where gradient x input is blind (2 points)
#
# Gradient x input multiplies each gradient by the input *the model sees*. EfficientNet-Lite0
# sees a pixel value p in [0, 1] as x = (p - 0.5) / 0.5 (its preprocessing normalises with
# mean 0.5 and standard deviation 0.5).
#
# - `answer_zero_pixel`: which pixel value p gets a gradient x input of exactly 0 in every
#   channel, whatever its gradient?
# - `answer_black_factor`: for a black pixel (p = 0), gradient x input equals
#   `answer_black_factor` x gradient. What is `answer_black_factor`?
#
# Think about what your answers mean for a photo with a grey or a black background.

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
answer_zero_pixel = 0.5  # (0.5 - 0.5) / 0.5 = 0: mid-grey is invisible to gradient x input
answer_black_factor = -1.0  # (0 - 0.5) / 0.5 = -1: black pixels get the gradient with its sign flipped
### END SOLUTION

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("02", "gradient_x_input_zero")

# %% [markdown]
# ## 4. SmoothGrad from gradients (7 points)
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
    ### BEGIN SOLUTION
    x = inputs.detach()
    n = x.shape[0]
    if target is None:
        # Decide the class once, on the clean input: noisy copies may be predicted otherwise.
        with torch.no_grad():
            target = model(x).argmax(dim=1)
    target = torch.as_tensor(target).long().flatten().expand(n)  # int, list or tensor -> N classes
    flat = x.flatten(1)
    sigma = noise_level * (flat.amax(dim=1) - flat.amin(dim=1))  # one scale per example
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn((n_samples, *x.shape[1:]), generator=generator).to(x)
    total = torch.zeros_like(x)
    for i in range(n_samples):
        noisy = (x + sigma.view(n, 1, 1, 1) * noise[i]).requires_grad_(True)
        score = model(noisy).gather(1, target.view(n, 1)).sum()
        # autograd.grad returns the input gradient only; .backward() would fill the model's .grad.
        (grad,) = torch.autograd.grad(score, noisy)
        total += grad
    return total / n_samples
    ### END SOLUTION


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
viz.show_heatmap(axes[1], reduce_channels(mine, "max_abs")[0], title="yours (max_abs)")
viz.show_heatmap(axes[2], cl.reduce_channels(ref, "max_abs")[0], title="course_lib (max_abs)")
plt.show()

# %% [markdown]
# ## 5. The two knobs (2 points)
#
# Answer with a letter. The try-it cell below draws SmoothGrad maps of the cat at three noise
# levels, if you want to look (about 30 s).
#
# **`answer_noise_level`.** You raise the noise level from 0.05 to 0.5, with n_samples fixed.
# What happens to the SmoothGrad map?
#
# - A. It gets sharper: the fine speckle on the fur stands out more.
# - B. It gets smoother: the speckle averages away, and with too much noise the map turns into
#   broad blobs that no longer follow fine structure such as the eyes' outlines.
# - C. Nothing: the noise has mean zero, so it cancels out whatever its size.
# - D. It turns into the gradient x input map.
#
# **`answer_samples`.** You raise n_samples from 10 to 100, with the noise level fixed at 0.15.
# What happens?
#
# - A. The map blurs more, as with a larger noise level.
# - B. The map explains a different class.
# - C. The leftover graininess of the random draws shrinks (roughly like 1 / sqrt(n_samples)):
#   the map settles towards the same average instead of blurring further.
# - D. Nothing: 10 samples already give the exact average.

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
answer_noise_level = "B"
answer_samples = "C"
### END SOLUTION

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("02", "noise_and_samples")

# %% tags=["skip-grading"]
# Try it: SmoothGrad (max_abs) of the cat at three noise levels, 8 samples each.
loaded = cl.load_model("efficientnet_lite0")
x = loaded.preprocess(cl.load_photo("chelsea")).unsqueeze(0)
levels = (0.02, 0.15, 0.5)
maps = {f"noise {s}": cl.smoothgrad(loaded.model, x, n_samples=8, noise_level=s, batch_size=4,
                                    reduce="max_abs") for s in levels}
fig = viz.method_grid(x, maps, denormalize=loaded.denormalize)
plt.show()
