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
# # 03. Integrated Gradients, baselines, DeepLift and Shapley values
#
# Chapter 02 ended with a failure: gradient x input was meant to split the score among the
# pixels, yet its contributions did not add up to the score. This chapter moves from
# *sensitivity* (how much would the score change if this pixel moved a little?) to
# *contribution* (how much of the score's change from a reference image does this pixel
# account for?). Integrated Gradients answers the second question by integrating gradients
# along a path from a *baseline* to the image; DeepLift gets a similar answer from one backward
# pass; Shapley values are the answer game theory gives, exact but exponentially expensive,
# and GradientSHAP and DeepLiftShap approximate them.
#
# **After this chapter you can**
# - state the axioms Integrated Gradients is built on (sensitivity, implementation
#   invariance) and check completeness numerically;
# - compute Integrated Gradients with any of five quadrature rules, and choose the number of
#   steps from the completeness gap rather than a default;
# - choose a baseline (black, white, blur, noise, a dataset mean, an average) knowing what each
#   one makes invisible;
# - use DeepLift's rescale rule, know when it equals Integrated Gradients and when Captum's
#   implementation silently does something else;
# - compute Shapley values exactly for a small game, and say what GradientSHAP and
#   DeepLiftShap approximate and what the exact computation would cost on an image.

# %% [markdown]
# ## Setup

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
import inspect
import math
import sys
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import DeepLift, DeepLiftShap, GradientShap, IntegratedGradients

import course_lib as cl
from course_lib import viz
from course_lib.core import input_gradients

cl.set_deterministic(seed=0, threads=2)
viz.use_style()

# With the internet (Colab) any name of cl.list_models() works here, e.g. "resnet50". Three
# statements below hold for this model and change with it: its preprocessing maps [0, 1] to
# [-1, 1] (mean 0.5, std 0.5), so the all-zero input is mid-grey and black is -1; its
# activations are ReLU6; and how fast its score saturates along a path (measured below).
imagenet = cl.load_model("efficientnet_lite0")
model, labels = imagenet.model, imagenet.labels
norm = cl.Normalization(mean=0.5, std=0.5)  # for a torchvision ResNet: Normalization(cl.IMAGENET_MEAN, (0.229, 0.224, 0.225))
names = ["chelsea", "coffee", "motorcycle"]
x = torch.stack([imagenet.preprocess(cl.load_photo(n)) for n in names])
with torch.no_grad():
    logits = model(x)
pred = logits.argmax(dim=1)
for n, c, p in zip(names, pred, logits.softmax(dim=1).amax(dim=1)):
    print(f"{n:>10}: {labels[int(c)]} ({float(p):.2f})")


def scores(inputs, target, net=model, batch_size=32):
    """The target logit of every input, without gradients (a number or one target per input)."""
    t = torch.as_tensor(target).expand(len(inputs))
    with torch.no_grad():
        return torch.cat([net(inputs[i : i + batch_size]).gather(1, t[i : i + batch_size, None])[:, 0]
                          for i in range(0, len(inputs), batch_size)])


# %% [markdown]
# ## Where chapter 02 left off
#
# Gradient x input multiplies each pixel's gradient by its value. For this model's
# normalisation the value is the distance from mid-grey, so the contributions should add up to
# the change of the score from the grey image, $f_c(x) - f_c(0)$. They do not:

# %%
grey = torch.zeros_like(x)
change = scores(x, pred) - scores(grey, pred)
gxi = cl.gradient_x_input(model, x, pred)
print(f"{'photo':>10} {'f(x) - f(grey)':>15} {'sum of gradient x input':>24}")
for n, d, a in zip(names, change, gxi.sum(dim=(1, 2, 3))):
    print(f"{n:>10} {float(d):>15.2f} {float(a):>24.2f}")

# %% [markdown]
# The gradient is measured at the photo only. Whatever happened to the score between the grey
# image and the photo, in regions of the input where other ReLU6 units were active, is not in
# it. The fix is to look at the whole way from the reference to the photo.
#
# ## What an attribution should satisfy
#
# Sundararajan, Taly and Yan {footcite}`sundararajan2017axiomatic` asked which properties an
# attribution $A_i(x)$ of a score $f$ to input features $x_i$, relative to a baseline $b$,
# should have, and proposed two axioms:
#
# - **Sensitivity.** If $x$ and $b$ differ in one feature only and $f(x) \neq f(b)$, that
#   feature must get a non-zero attribution.
# - **Implementation invariance.** Two networks that compute the same function (however
#   differently built) must get the same attributions.
#
# and one property follows for the method they build:
#
# - **Completeness.** The attributions add up to the change of the score:
#   $\sum_i A_i(x) = f(x) - f(b)$.
#
# Gradients (and gradient x input) are implementation invariant, since they depend on the
# function only, but they fail sensitivity wherever the function is flat; DeepLift, below, is
# the other way round. The smallest example is a score that saturates,
# $f(x) = 1 - \mathrm{ReLU}(1 - x)$: it rises from 0 to 1 as $x$ goes from 0 to 1, then stays
# at 1. At $x = 2$ against the baseline $b = 0$ the score changed by 1, but the gradient at
# $x = 2$ is 0:

# %%
class Saturating(torch.nn.Module):
    """f(x) = 1 - relu(1 - x) per input feature, summed: N x d -> N x 1 (one class)."""

    def forward(self, v):
        return (1 - torch.relu(1 - v)).sum(dim=1, keepdim=True)


toy, v = Saturating().eval(), torch.tensor([[2.0]])
print("f(2) - f(0)             =", float(toy(v) - toy(torch.zeros_like(v))))
grad_at_v, _ = input_gradients(toy, v, 0)  # gradient_x_input itself expects images
print("gradient at x=2         =", abs(float(grad_at_v)))  # abs: the zero comes out as -0.0
print("gradient x input at x=2 =", abs(float(grad_at_v * v)))
print("Integrated Gradients    =", float(cl.integrated_gradients(toy, v, 0, baseline=0.0, n_steps=16)))

# %% [markdown]
# The photos are in the same situation, in many dimensions at once: their scores are
# saturated (as measured below), so the gradient at the photo says little about how the score
# got there.
#
# ## Integrated Gradients
#
# Walk in a straight line from the baseline to the input, $\gamma(\alpha) = b + \alpha (x - b)$
# for $\alpha \in [0, 1]$, and add up along the way how much each feature pushed the score:
#
# $$ \mathrm{IG}_i(x) = (x_i - b_i) \int_0^1 \frac{\partial f}{\partial x_i}\big(b + \alpha (x - b)\big)\, d\alpha . $$
#
# By the fundamental theorem of calculus along the path, $\sum_i \mathrm{IG}_i(x) =
# \int_0^1 \frac{d}{d\alpha} f(\gamma(\alpha))\, d\alpha = f(x) - f(b)$: completeness holds
# exactly for the integral. Sensitivity follows from it, and implementation invariance from
# using gradients only. In the toy, the gradient is 1 on the first half of the path and 0
# after, so the integral is $2 \times 0.5 = 1$, the whole change.
#
# A computer replaces the integral by a weighted sum over `n_steps` points $\alpha_k$ on the
# path, a quadrature rule: $\int_0^1 g(\alpha)\, d\alpha \approx \sum_k w_k\, g(\alpha_k)$.
# `course_lib` offers the rules Captum offers:

# %%
print(inspect.getsource(cl.path_rule))

# %% [markdown]
# (Gauss-Legendre's nodes come on $[-1, 1]$; the map $\alpha = (1 + t)/2$ moves them to
# $[0, 1]$ and halves the weights.) The method evaluates every path point of every image in
# chunks of `batch_size` forward and backward passes, and with `return_delta=True` reports the
# *completeness gap* $\sum_i A_i - (f(x) - f(b))$ of each image, the quadrature's error made
# visible:

# %%
print(inspect.getsource(cl.integrated_gradients))

# %% [markdown]
# ### What happens along the path
#
# The gap depends on one function of one variable: the path derivative
# $s(\alpha) = \frac{d}{d\alpha} f(\gamma(\alpha)) = \nabla f(\gamma(\alpha)) \cdot (x - b)$,
# whose integral is $f(x) - f(b)$ and whose value at $\alpha = 1$ is the sum of gradient x
# input (for the grey baseline). Here it is for the cat, at 129 evenly spaced points, with the
# score itself:

# %%
cat, cat_class = x[:1], int(pred[0])
grid = torch.linspace(0, 1, 129, dtype=torch.float64)  # alpha = j / 128
path_points = grid.to(cat.dtype).view(-1, 1, 1, 1) * cat  # baseline 0: b + alpha (x - b) = alpha x
path_grads = torch.cat([cl.vanilla_gradient(model, chunk, cat_class) for chunk in path_points.split(32)])
s = (path_grads * cat).sum(dim=(1, 2, 3)).double()  # the path derivative at each alpha
path_scores = scores(path_points, cat_class).double()
cat_change = float(path_scores[-1] - path_scores[0])
print(f"f(cat) - f(grey)                          = {cat_change:.3f}")
print(f"trapezoid sum of s over the 129 points     = {float(torch.trapezoid(s, grid)):.3f}")
print(f"s(1), the sum of gradient x input          = {float(s[-1]):.3f}")
for a in (1 / 64, 1 / 32, 1 / 16, 1 / 8):
    j = round(a * 128)
    print(f"share of the change reached at alpha = {a:<7.4g}: {float(path_scores[j] - path_scores[0]) / cat_change:6.1%}")
print(f"largest s: {float(s.max()):.1f} at alpha = {float(grid[s.argmax()]):.4f}")

# %% mystnb={"image": {"alt": "Two line plots against alpha from 0 to 1. Left: the cat's score rises from its grey-image value to almost its final value within the first few percent of the path, then stays nearly flat. Right: the path derivative has a tall narrow spike near alpha 0.05 and is small everywhere else."}}
fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.0), layout="constrained")
axes[0].plot(grid, path_scores - path_scores[0], ".-", ms=3)
axes[0].set_xlabel(r"$\alpha$ (0 = grey image, 1 = photo)")
axes[0].set_ylabel(r"$f(\gamma(\alpha)) - f(\mathrm{grey})$")
axes[0].set_title("tiger-cat logit along the path")
axes[1].plot(grid, s, ".-", ms=3)
axes[1].axhline(0, color="grey", lw=0.8)
axes[1].set_xlabel(r"$\alpha$")
axes[1].set_ylabel(r"$s(\alpha) = \nabla f \cdot (x - b)$")
axes[1].set_title("path derivative: its integral is the change")
plt.show()

# %% [markdown]
# The cat is recognised long before it is fully there. Along the straight path from grey the
# tiger-cat logit has gained 81 percent of its total change at $\alpha = 1/16$, a cat at a
# sixteenth of its contrast, and 97 percent at $1/8$; after that it wanders by less than one
# logit. The path derivative is a narrow spike around $\alpha \approx 0.05$ (up to 279) and
# close to zero over the remaining 90 percent of the path; at the photo itself it is $-1.85$,
# the sum of gradient x input. This is the *saturation* that defeats gradients at the input:
# nearly all of the score was earned in a stretch of the path the photo is far from.
# (Model-specific: how early the score saturates depends on the network, and on the baseline,
# as the baselines section shows.)
#
# For the quadrature this is bad news. The whole integral sits in a spike a few hundredths
# wide, and even 129 evenly spaced points resolve it poorly: their trapezoid sum, 8.36, misses
# the change of 9.24 by a tenth.
#
# ### The rules and the completeness gap
#
# Every uniform rule with up to 128 steps (and the trapezoid with up to 129 points) uses only
# points of this grid, so their gaps follow from $s$ without another pass through the model.
# First a check that this shortcut is what `integrated_gradients` computes:

# %%
def gap_from_grid(method, n_steps):
    """The completeness gap of a uniform rule whose points lie on the grid j / 128."""
    alphas, weights = cl.path_rule(method, n_steps)
    index = (alphas * 128).round().long()
    assert torch.allclose(index.double() / 128, alphas), "a point off the grid"
    return float((weights * s[index]).sum()) - cat_change


_, delta = cl.integrated_gradients(model, cat, cat_class, n_steps=8, method="riemann_middle", return_delta=True)
print(f"riemann_middle, 8 steps: gap from the grid {gap_from_grid('riemann_middle', 8):+.4f}, "
      f"from integrated_gradients {float(delta):+.4f}")

# %% [markdown]
# Gauss-Legendre's points are not on the grid, so `integrated_gradients` computes those; the
# maps are kept for later.

# %%
gl_steps = [16, 32, 50, 128]  # 50 is Captum's default
ig_cat, gl_gaps = {}, {}
for n in gl_steps:
    ig_cat[n], d = cl.integrated_gradients(model, cat, cat_class, n_steps=n, return_delta=True)
    gl_gaps[n] = float(d)

uniform_steps = {"riemann_left": [2, 4, 8, 16, 32, 64, 128], "riemann_right": [2, 4, 8, 16, 32, 64, 128],
                 "riemann_middle": [2, 4, 8, 16, 32, 64], "riemann_trapezoid": [3, 5, 9, 17, 33, 65, 129]}
gaps = {m: {n: gap_from_grid(m, n) for n in steps} for m, steps in uniform_steps.items()}
gaps["gausslegendre"] = gl_gaps
print(f"completeness gap as a share of f(cat) - f(grey) = {cat_change:.2f}")
for m, by_n in gaps.items():
    print(f"{m:>18}: " + "  ".join(f"{n}: {g / cat_change:+.1%}" for n, g in by_n.items()))

# %% mystnb={"image": {"alt": "Log-log plot of the absolute completeness gap, as a share of the score change, against the number of steps, one line per rule, with a dashed line at 1 percent. All rules stay above 1 percent up to 128 steps; the Riemann rules fall to about 3 percent at 64 steps and rise again at 128, Gauss-Legendre falls to 4 percent at 128."}}
fig, ax = plt.subplots(figsize=(5.2, 3.4), layout="constrained")
for (m, by_n), marker in zip(gaps.items(), "os^vD"):
    ax.loglog(list(by_n), [abs(g) / cat_change for g in by_n.values()], marker + "-", label=m, ms=4)
ax.axhline(0.01, ls="--", color="grey", lw=1)
ax.text(2.1, 0.011, "1 percent", color="grey", fontsize=8)
ax.set_xlabel("n_steps (gradient evaluations)")
ax.set_ylabel("|gap| / (f(x) - f(grey))")
ax.set_title("cat, grey baseline")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# On this image no rule gets the gap below 1 percent within 128 steps. With few steps the gap
# is as large as the change itself: the points miss the spike, or hit it and overweight it
# (the middle rule at 8 steps overshoots by 44 percent). Captum's default of 50
# Gauss-Legendre steps leaves a gap of 9.1 percent. The errors do not fall steadily, because
# each rule's points land on and off the spike as their number changes: the Riemann rules touch
# 3 percent at 64 steps and are back near 10 percent at 128, Gauss-Legendre is worse at 32
# steps (42 percent) than at 16 (34 percent) before reaching 4.0 percent at 128. Left, right
# and trapezoid nearly coincide: they differ only in the weight of the two ends, where $s$ is
# small. The textbook ordering (left and right are first-order rules, middle and trapezoid
# second order, Gauss-Legendre higher) is about smooth integrands; this one is a spike. On the
# espresso and the moped, below, 128 steps give 0.9 and 1.6 percent; on the small Shapes CNN,
# 64 steps give at most 1.5 percent (four images, three baselines, below).
#
# Two lessons. First, the number of steps is a property of the model, the image and the
# baseline: print the gap (`return_delta=True`) and raise `n_steps` until it is small, rather
# than trusting a default. Second, the gap is a strict test. The *direction* of the map
# settles much earlier than its sum: here is the cosine similarity of each map with the
# 128-step map (1 means the same map up to scale):

# %%
for n in gl_steps[:-1]:
    print(f"Gauss-Legendre {n:>3} steps: cos(IG_n, IG_128) = {float(F.cosine_similarity(ig_cat[n].flatten(), ig_cat[128].flatten(), dim=0)):.3f}")

# %% [markdown]
# ## Integrated Gradients on the photos
#
# The maps use Gauss-Legendre with 128 steps (the cat's is the one computed above); each image
# reports its own gap:

# %%
N_STEPS = 128
rest, rest_delta = cl.integrated_gradients(model, x[1:], pred[1:], n_steps=N_STEPS, return_delta=True)
ig = torch.cat([ig_cat[N_STEPS], rest])
ig_delta = torch.cat([torch.tensor([gl_gaps[N_STEPS]]), rest_delta])
for n, d, c, a in zip(names, ig_delta, change, ig.sum(dim=(1, 2, 3))):
    print(f"{n:>10}: f(x) - f(grey) = {float(c):6.2f}   sum of IG = {float(a):6.2f}   gap = {float(d):+.3f} ({float(d / c):+.1%})")

# %% mystnb={"image": {"alt": "The cat photo, its gradient x input and its Integrated Gradients, both summed over colour channels, on one shared orange-purple scale with orange positive and a single colour bar. Both maps are speckled, with the same eyes, nose and fur edges lit."}}
maps = {"gradient x input": cl.reduce_channels(gxi[:1], "signed"),
        f"IG, {N_STEPS} steps": cl.reduce_channels(ig[:1], "signed")}
fig = viz.method_grid(cat, maps, signed={k: True for k in maps}, denormalize=imagenet.denormalize,
                      row_titles=[labels[cat_class]], shared_scale=True,
                      label="logit per pixel (channels summed)")
plt.show()

# %% [markdown]
# Pixel by pixel the two maps of the cat look alike: the same edges and textures, speckled
# with both signs side by side (pixel maps take much space; the other two photos are shown by
# blocks below). The difference is in the totals. Summing each map over blocks of 16 x 16
# pixels shows where the score's change is credited, in logits (the 196 blocks of an IG map
# add up to the change of the score, up to the gap):

# %%
def block_sums(a, size=16):
    """Sum an N x C x H x W attribution over channels and size x size blocks: N x H/size x W/size."""
    return F.avg_pool2d(a.sum(dim=1, keepdim=True), size)[:, 0] * size * size


# %% mystnb={"image": {"alt": "Three rows (cat, espresso, moped): the photo and 14 by 14 grids of block totals of gradient x input and of Integrated Gradients, on one shared orange-purple scale, orange positive. Both are patchworks of small orange and purple blocks spread over the whole photo; neither outlines the object."}}
blocks = {"gradient x input": block_sums(gxi), f"IG, {N_STEPS} steps": block_sums(ig)}
fig = viz.method_grid(x, blocks, signed={k: True for k in blocks}, denormalize=imagenet.denormalize,
                      row_titles=[labels[int(c)] for c in pred], shared_scale=True, cell=2.0,
                      label="logit per 16 x 16 block")
plt.show()
for n, g_blocks, i_blocks in zip(names, blocks["gradient x input"], blocks[f"IG, {N_STEPS} steps"]):
    print(f"{n:>10}: total over the blocks: gradient x input {float(g_blocks.sum()):6.2f}, IG {float(i_blocks.sum()):5.2f};  "
          f"largest |block|: {float(g_blocks.abs().max()):.2f} and {float(i_blocks.abs().max()):.2f};  "
          f"cos = {float(F.cosine_similarity(g_blocks.flatten(), i_blocks.flatten(), dim=0)):.2f}")

# %% [markdown]
# Block by block the two maps agree little (cosine 0.38 to 0.39 over the 196 blocks), and
# their totals differ: IG's blocks add up to the change of score minus the gap (8.88, 11.24,
# 7.90), gradient x input's to -1.85, 1.04 and -1.20. Neither reads like an outline of the
# object: both spread the credit over the whole photo in small amounts of both signs, no block
# holding more than four logits. These maps describe how this network's score depends on the
# pixels relative to grey; they are not segmentations.
#
# ## Baselines
#
# The baseline is the reference an attribution is relative to: it answers "compared with
# what?", and no choice is neutral {footcite}`sturmfels2020visualizing`. `pixel_baseline`
# defines each one in pixel space and normalises it as the model's inputs are, so "black" is
# black whatever the normalisation (here $-1$; the all-zero input is mid-grey):

# %%
print(inspect.getsource(cl.pixel_baseline))

# %%
kinds = ["black", "white", "blur", "uniform", "mean"]
options = {"blur": dict(sigma=10.0), "uniform": dict(seed=0), "mean": dict(mean_pixels=cl.IMAGENET_MEAN)}
baselines = {"grey (zero)": grey}
baselines |= {k: cl.pixel_baseline(k, x, norm, **options.get(k, {})) for k in kinds}
print({k: tuple(round(float(v), 3) for v in norm.pixels(b)[0, :, 0, 0]) for k, b in baselines.items()},
      "<- top-left pixel of the cat's baseline, in [0, 1] RGB")

# %% mystnb={"image": {"alt": "Six small framed images: the baselines for the cat photo, namely mid-grey, black, white, a strongly blurred cat, uniform colour noise, and the flat ImageNet mean colour."}}
fig, axes = plt.subplots(1, len(baselines), figsize=(1.6 * len(baselines), 1.9), layout="constrained")
for ax, (k, b) in zip(axes, baselines.items()):
    viz.show_image(ax, b[0], title=k, denormalize=imagenet.denormalize)
    ax.set_axis_on()  # a frame, so that the white baseline shows
    ax.set_xticks([])
    ax.set_yticks([])
plt.show()

# %% [markdown]
# Integrated Gradients of the cat against each of them, with 32 Gauss-Legendre steps each
# (the map's direction is settled by then, as measured above; the gaps are printed), and the
# average over four uniform-noise baselines at 8 steps each (the same cost), a way to depend
# on no single reference:

# %%
B_STEPS = 32
by_baseline = {"grey (zero)": ig_cat[B_STEPS]}  # computed above
baseline_gaps = {"grey (zero)": (gl_gaps[B_STEPS], cat_change)}
for k, b in list(baselines.items())[1:]:
    by_baseline[k], d = cl.integrated_gradients(model, cat, cat_class, baseline=b[:1], n_steps=B_STEPS,
                                                return_delta=True)
    baseline_gaps[k] = (float(d), float(scores(cat, cat_class) - scores(b[:1], cat_class)))
noise_refs = [cl.pixel_baseline("uniform", cat, norm, seed=k) for k in range(4)]
by_baseline["average of 4 noises"] = cl.average_over_baselines(
    cl.integrated_gradients, model, cat, cat_class, baselines=noise_refs, n_steps=B_STEPS // 4)
for k, (d, c) in baseline_gaps.items():
    print(f"{k:>12}: f(cat) - f(baseline) = {c:6.2f}   gap = {d:+.3f} ({d / c:+.1%})")

# %% mystnb={"image": {"alt": "The cat photo, then its Integrated Gradients maps against the grey, black and white baselines, channels summed, each on its own orange-purple scale with orange positive and its own colour bar. The three maps light up different parts of the face."}}
def baseline_maps(panels, with_photo):
    """One row: optionally the cat, then the IG maps of the given baselines, each with its colour bar."""
    fig, axes = plt.subplots(1, len(panels) + with_photo, figsize=(3.4 * (len(panels) + with_photo), 2.9),
                             layout="constrained")
    if with_photo:
        viz.show_image(axes[0], cat[0], title="tiger cat", denormalize=imagenet.denormalize)
    for ax, k in zip(axes[with_photo:], panels):
        viz.show_heatmap(ax, cl.reduce_channels(by_baseline[k], "signed")[0], signed=True, title=k,
                         label="logit per pixel")
    plt.show()


baseline_maps(["grey (zero)", "black", "white"], with_photo=True)

# %% mystnb={"image": {"alt": "Integrated Gradients maps of the cat against the blurred cat, uniform noise and the average of four noises, channels summed, each on its own orange-purple scale with orange positive and its own colour bar. The blur map lights edges and whiskers; the noise maps light the eyes and the nose."}}
baseline_maps(["blur", "uniform", "average of 4 noises"], with_photo=False)

# %% [markdown]
# The map changes with the reference, in a way one can predict from the factor $x - b$.
# Against black the bright fur and the light rims of the eyes carry the map; against white the
# dark pupils and the nose; against the blurred cat the edges and fine texture that the blur
# removed (a blur baseline asks which *details* matter, not which colours); the noise baselines
# light up the eyes and nose without the fur's texture. (The mean-colour map, not drawn, looks
# like the grey one: the two colours are close, and the DeepLift maps of the two baselines
# agree at 0.79, below.) The completeness gaps at 32 steps differ as much, from $-3.5$ percent
# (uniform noise) to 42 percent (grey): the number of steps needed depends on the baseline too.
#
# **What a baseline makes invisible.** Every attribution here carries the factor $x_i - b_i$:
# a pixel equal to the baseline gets exactly zero, however much the model relies on it. A
# black baseline cannot credit black pixels, a white one white pixels, the grey one grey
# pixels. DeepLift (next section) gives a complete attribution in one backward pass per
# baseline, so we can afford every baseline on all three photos. Here is the share of the total
# attribution magnitude that falls on the darkest pixels (all three channels below 0.1), per
# baseline:

# %%
dl_by_baseline = {k: cl.deeplift(model, x, pred, baseline=b) for k, b in baselines.items()}
dark = (norm.pixels(x) < 0.1).all(dim=1, keepdim=True).expand_as(x)  # N x 3 x H x W
print("share of dark pixels in the photo:" + "".join(f"  {n} {float(dark[i, 0].float().mean()):.1%}" for i, n in enumerate(names)))
for k, a in dl_by_baseline.items():
    shares = [float(a[i].abs()[dark[i]].sum() / a[i].abs().sum()) for i in range(len(names))]
    print(f"{k:>12}: share of |attribution| on dark pixels" + "".join(f"  {n} {v:.1%}" for n, v in zip(names, shares)))

# %% [markdown]
# The dark pixels are 0.9 to 3.3 percent of each photo. Against black they get 0.2 to 0.6
# percent of the attribution, almost nothing (not exactly zero, because "dark" here means
# below 0.1, not exactly 0); against every other baseline 2.6 to 7.8 percent, more than their
# share, since they are far from grey, white, the blur and the noise. Every baseline has such
# a blind spot: white cannot credit white pixels, the blur cannot credit regions that are
# already smooth, grey cannot credit grey. Averaging over several baselines spreads the blind
# spot thin instead of removing it.
#
# **How much the baselines agree.** The maps are signed, so compare them as signed maps: the
# cosine similarity of two attribution tensors (+1: the same up to scale, 0: unrelated, -1:
# opposite), for each pair of baselines, as the mean and the spread (standard deviation) over
# the three photos:

# %%
def cosine(a, b):
    """Cosine similarity of each pair of signed attribution tensors, shape N."""
    return F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)


dl_by_baseline["average of 8 noises"] = cl.average_over_baselines(
    cl.deeplift, model, x, pred, baselines=[cl.pixel_baseline("uniform", x, norm, seed=k) for k in range(8)])
short = {"grey (zero)": "grey", "average of 8 noises": "8 noises"}
keys = list(dl_by_baseline)
print(f"{'DeepLift':>10}" + "".join(f"{short.get(k, k):>12}" for k in keys))
for k1 in keys:
    cells = [cosine(dl_by_baseline[k1], dl_by_baseline[k2]) for k2 in keys]
    print(f"{short.get(k1, k1):>10}" + "".join(f"{float(c.mean()):>7.2f} ±{float(c.std()):.2f}" for c in cells))

# %% [markdown]
# Two baselines give similar maps only when they are similar images: grey and the ImageNet
# mean colour (0.79), grey and white less so (0.53). Black and white give opposite maps
# ($-0.59$): a pixel brighter than black is darker than white, and $x - b$ flips its sign. A
# single noise draw agrees with almost nothing (0.00 to 0.09), and the average of eight noises
# agrees with one of its own members at 0.41. The baseline is part of the question ("compared
# with a black image?", "compared with the same image without its details?"), and the answer
# changes with it: report the baseline with every map.

# %% [markdown]
# ## DeepLift: differences through the network in one pass
#
# DeepLift {footcite}`shrikumar2017learning` propagates *differences from the baseline*
# instead of gradients. Linear layers (convolutions, batch norm in eval mode, pooling by
# averages) pass differences as they pass gradients. Through an element-wise activation
# $y = g(z)$, the **rescale rule** replaces the derivative $g'(z)$ by the slope of the secant
# between the baseline's pre-activation $z_b$ and the input's:
#
# $$ m = \frac{g(z) - g(z_b)}{z - z_b} \qquad (\text{the gradient } g'(z) \text{ where } z = z_b). $$
#
# The attributions are $(x - b) \odot$ (the gradient computed with these multipliers), and
# since every layer passes its output difference down exactly, they add up to $f(x) - f(b)$
# with no quadrature: one forward pass (input and baseline in one batch, so that every
# activation sees $z$ and $z_b$ side by side) and one backward pass.
#
# `course_lib` does this without touching the model: during the forward pass a
# `torch.overrides.TorchFunctionMode` intercepts every activation *function* (`F.relu`,
# `F.hardtanh` which `nn.ReLU6` calls, `torch.sigmoid`, ...) and max pooling, and runs it
# through an autograd function whose backward pass is the rescale rule. Module activations and
# activations called as functions in `forward` are caught alike, and when the mode exits
# nothing of it remains:

# %%
deeplift_module = sys.modules["course_lib.attribution.deeplift"]
print(inspect.getsource(deeplift_module._Rescale))

# %% [markdown]
# On the photos it is complete up to float32 rounding:

# %%
dl, dl_delta = cl.deeplift(model, x, pred, return_delta=True)
for n, a, d, c in zip(names, dl.sum(dim=(1, 2, 3)), dl_delta, change):
    print(f"{n:>10}: sum of DeepLift = {float(a):6.3f}   f(x) - f(grey) = {float(c):6.3f}   gap = {float(d):+.1e}")

# %% [markdown]
# **One pass instead of n_steps.** Counting the rows of input that go through the model and
# the rows that are differentiated, for one image:

# %%
class RowCounter:
    """Counts the rows of input the model sees, and how many of them are differentiated."""

    def __init__(self, m):
        self.forward = self.backward = 0
        self.handle = m.register_forward_hook(self.hook)

    def hook(self, module, args, output):
        self.forward += output.shape[0]
        if output.requires_grad:
            self.backward += output.shape[0]


for name, run in [("deeplift", lambda: cl.deeplift(model, cat, cat_class)),
                  ("integrated_gradients, 4 steps", lambda: cl.integrated_gradients(model, cat, cat_class, n_steps=4))]:
    counter = RowCounter(model)
    try:
        run()
    finally:
        counter.handle.remove()
    print(f"{name:<30} rows forward {counter.forward:>3}, of which differentiated {counter.backward:>3}")

# %% [markdown]
# DeepLift costs what two gradient evaluations cost (the baseline rides along in the batch);
# Integrated Gradients costs one more forward pass (to fix the target) plus `n_steps`
# gradient evaluations, 128 here. The measured seconds per image are on the book's performance
# page (`benchmarks/bench_integrated_gradients.py`).
#
# **How close to Integrated Gradients?** For a network with one layer of ReLUs the two are
# equal: along the straight path each unit's pre-activation moves linearly, and the average of
# $g'$ over the segment is exactly the secant's slope {footcite}`ancona2018towards`. With more
# layers they drift apart. First the Shapes CNN (seven ReLU layers, in residual
# blocks), four test images, three baselines, against 64-step IG:

# %%
shapes = cl.load_model("shapes_cnn")
shapes_model = shapes.model
data = cl.load_dataset("shapes", n=4, seed=900_000)
sx = shapes.preprocess(data.batch.images)
with torch.no_grad():
    s_pred = shapes_model(sx).argmax(dim=1)
print("true:     ", [shapes.labels[int(c)] for c in data.batch.labels])
print("predicted:", [shapes.labels[int(c)] for c in s_pred])
s_baselines = {"black": cl.pixel_baseline("black", sx, norm), "blur": cl.pixel_baseline("blur", sx, norm, sigma=4.0),
               "grey (zero)": torch.zeros_like(sx)}
for k, b in s_baselines.items():
    ig_s, d = cl.integrated_gradients(shapes_model, sx, s_pred, baseline=b, n_steps=64, return_delta=True)
    dl_s = cl.deeplift(shapes_model, sx, s_pred, baseline=b)
    gx_s = cl.vanilla_gradient(shapes_model, sx, s_pred) * (sx - b)
    rel_gap = (d / (scores(sx, s_pred, shapes_model) - scores(b, s_pred, shapes_model))).abs().max()
    print(f"{k:>12}: cos(DeepLift, IG) {' '.join(f'{float(c):.2f}' for c in cosine(dl_s, ig_s))}   "
          f"cos(gradient x (x - b), IG) {' '.join(f'{float(c):.2f}' for c in cosine(gx_s, ig_s))}   "
          f"(largest IG gap {float(rel_gap):.2%})")

# %% [markdown]
# On this shallow network DeepLift tracks Integrated Gradients closely when the baseline is
# near the image (the blurred copy: cosine 0.91 to 0.98, higher than gradient x (input $-$
# baseline)), and less when it is far (black: 0.57 to 0.77).
#
# Then EfficientNet-Lite0, 33 ReLU6 layers deep, against the grey baseline, pixel by pixel
# and block by block:

# %%
for i, n in enumerate(names):
    print(f"{n:>10}: cos(DeepLift, IG) = {float(cosine(dl[i : i + 1], ig[i : i + 1])):.2f} per pixel, "
          f"{float(cosine(block_sums(dl[i : i + 1]), block_sums(ig[i : i + 1]))):.2f} per block;   "
          f"cos(gradient x input, IG) = {float(cosine(gxi[i : i + 1], ig[i : i + 1])):.2f} per pixel, "
          f"{float(cosine(block_sums(gxi[i : i + 1]), block_sums(ig[i : i + 1]))):.2f} per block")
print("how much the credit cancels, sum |a| / |sum a|, per pixel and per 16 x 16 block:")
for name, a in [("gradient x input", gxi), (f"IG, {N_STEPS} steps", ig), ("DeepLift", dl)]:
    per_pixel = a.flatten(1).abs().sum(1) / a.flatten(1).sum(1).abs()
    per_block = block_sums(a).flatten(1).abs().sum(1) / block_sums(a).flatten(1).sum(1).abs()
    print(f"{name:>18}: " + "   ".join(f"{n} {float(p):6.1f} / {float(b):4.1f}" for n, p, b in zip(names, per_pixel, per_block)))

# %% mystnb={"image": {"alt": "Three rows (cat, espresso, moped): the photo and 14 by 14 grids of block totals of Integrated Gradients and of DeepLift, on one shared orange-purple scale, orange positive. IG's blocks are larger and of both signs; DeepLift's are small and almost all orange."}}
blocks_dl = {f"IG, {N_STEPS} steps": block_sums(ig), "DeepLift": block_sums(dl)}
fig = viz.method_grid(x, blocks_dl, signed={k: True for k in blocks_dl}, denormalize=imagenet.denormalize,
                      row_titles=[labels[int(c)] for c in pred], shared_scale=True, cell=2.0,
                      label="logit per 16 x 16 block")
plt.show()

# %% [markdown]
# On EfficientNet-Lite0 the two are nearly unrelated: cosine 0.03 to 0.15 per pixel, 0.20 to
# 0.27 per block, lower than gradient x input's agreement with IG. The last lines and the
# figure say how they differ. Integrated Gradients gives pixels and blocks large contributions
# of both signs that cancel (the absolute contributions of the pixels add up to 74 to 179
# times the total); DeepLift's credit is small, smooth and almost all positive (11 to 25 times
# per pixel, 1.2 to 1.3 per block: blocks hardly cancel at all). Both are complete; 33 layers
# of secants are not the integral along the path, and on a photo there is no ground truth to
# say which split is right. On Shapes there is one, below.
#
# **Implementation invariance, broken.** DeepLift's multipliers are secants, and the secants
# taken along different wirings of one function need not agree. Take $\max(x_1, x_2)$ built
# two ways: as a max pooling over two values (DeepLift's max-pooling rule), and as
# $x_2 + \mathrm{ReLU}(x_1 - x_2)$. Same function, so the same gradients everywhere and the same
# Integrated Gradients; DeepLift follows the wiring:

# %%
class MaxPool(torch.nn.Module):
    def forward(self, v):  # N x 2 -> N x 1
        return F.max_pool1d(v[:, None, :], 2)[:, 0]


class MaxRelu(torch.nn.Module):
    def forward(self, v):
        return v[:, 1:] + torch.relu(v[:, :1] - v[:, 1:])


pair, pair_baseline = torch.tensor([[3.0, 1.0]]), torch.tensor([[0.0, 2.0]])
for net in (MaxPool().eval(), MaxRelu().eval()):
    ig_pair = cl.integrated_gradients(net, pair, 0, baseline=pair_baseline, n_steps=64, method="riemann_middle")
    dl_pair = cl.deeplift(net, pair, 0, baseline=pair_baseline)
    print(f"{type(net).__name__:>8}: IG = {ig_pair[0].tolist()}   DeepLift = {dl_pair[0].tolist()}")

# %% [markdown]
# Both DeepLift answers are complete (each sums to $f(x) - f(b) = 3 - 2 = 1$), and both are
# defensible: the pooling rule gives the whole change to $x_1$, the input that won the max;
# the ReLU wiring splits it like Integrated Gradients, which credits $x_1$ while it leads on
# the path ($\alpha > 1/2$) and charges $x_2$ for its fall from 2 to 1 over the half where it
# led. They differ, for one and the same function, which is what implementation invariance
# forbids.
#
# **What Captum's DeepLift does on this network.** Captum's `DeepLift` hooks a fixed table of
# activation *module types* (ReLU, ELU, LeakyReLU, Sigmoid, Tanh, Softplus, max pooling,
# Softmax). `nn.ReLU6` is not in it, so on EfficientNet-Lite0 it applies no rule at all and
# returns the plain gradient times $(x - b)$, gradient x input for the grey baseline. It warns
# only that it sets hooks, not that it found nothing to hook:

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Captum's notice that it sets hooks
    captum_dl = DeepLift(model).attribute(x, target=pred).detach()
for i, n in enumerate(names):
    print(f"{n:>10}: sum of Captum DeepLift = {float(captum_dl[i].sum()):6.2f} (f(x) - f(grey) = {float(change[i]):5.2f})   "
          f"max |Captum DeepLift - gradient x input| = {float((captum_dl[i] - gxi[i]).abs().max()):.1e}")

# %% [markdown]
# The same happens with any activation outside the table (`nn.SiLU`, `nn.GELU`, `nn.Hardswish`)
# and with activations called as functions (`F.relu` in a `forward`, as many models do). The
# tests check `course_lib`'s DeepLift against Captum where Captum has the rules, and against
# completeness where it has not (`tests/test_deeplift.py`); they also found Captum 0.9
# incomplete on a ReLU directly followed by a max pooling (Captum issue 1104).
#
# ## Shapley values
#
# Integrated Gradients and DeepLift split $f(x) - f(b)$ among features. Game theory has a
# classic answer to "how to split a total among players fairly" {footcite}`shapley1953value`.
# Let the players be the features, and let a coalition $S$ be worth the score of the input
# that keeps the features in $S$ and takes the baseline's values elsewhere,
# $v(S) = f(x_S, b_{\bar S})$. Player $i$'s Shapley value averages its marginal contribution
# over all orders in which the players could join:
#
# $$ \phi_i = \sum_{S \subseteq N \setminus \{i\}} \frac{|S|!\,(d - |S| - 1)!}{d!}\,\big(v(S \cup \{i\}) - v(S)\big). $$
#
# It is the only split with four properties: **efficiency** (the values add up to
# $v(N) - v(\emptyset) = f(x) - f(b)$, completeness again), **symmetry** (players that
# contribute alike get alike), **null player** (a player that never changes the worth gets 0)
# and **linearity** (the value of a sum of games is the sum of the values). The price is $2^d$
# evaluations of the model, one per coalition. Chapter 05 computes them over superpixels;
# here they serve as the yardstick for the gradient methods.
#
# A toy small enough to enumerate: $f(x) = \max(x_1, x_2) + x_3$ at $x = (3, 1, 2)$ against
# the baseline $0$. Every coalition, its worth, and the values (`cl.shapley_from_values`
# applies the formula above to the eight worths):

# %%
class Toy(torch.nn.Module):
    def forward(self, v):  # N x 3 -> N x 1
        return torch.maximum(v[:, :1], v[:, 1:2]) + v[:, 2:]


toy3, point, origin = Toy().eval(), torch.tensor([[3.0, 1.0, 2.0]]), torch.zeros(1, 3)
coalitions = cl.all_coalitions(3)  # 8 x 3 bool: row s holds the players of coalition s
worth = toy3(torch.where(coalitions, point, origin))[:, 0]
for c, w in zip(coalitions, worth):
    print(f"S = {{{', '.join(f'x{i + 1}' for i in range(3) if c[i]) or ' '}}}: v(S) = {float(w):.0f}")
shapley = cl.shapley_from_values(worth)
print("Shapley values:        ", [round(float(p), 3) for p in shapley], " sum", round(float(shapley.sum()), 3))
print("Integrated Gradients:  ", [round(float(p), 3) for p in cl.integrated_gradients(toy3, point, 0, n_steps=64)[0]])
print("DeepLift:              ", [round(float(p), 3) for p in cl.deeplift(toy3, point, 0)[0]])

# %% [markdown]
# All three are complete (they sum to 5) and agree on $x_3$, which enters additively. They
# disagree on how to split the max. Integrated Gradients walks the straight line
# $(3\alpha, \alpha)$, on which $x_1$ always leads, so $x_2$ gets nothing; the Shapley value
# also looks at the coalition without $x_1$, where $x_2$ alone lifts the max from 0 to 1, and
# gives $x_2$ half of that. Integrated Gradients is itself a Shapley-type value, the
# Aumann-Shapley value of a game played along one path {footcite}`sundararajan2017axiomatic`,
# but not the one over coalitions of features: the two coincide for additive functions and
# differ where features interact.
#
# ### Approximating Shapley values: GradientSHAP and DeepLiftShap
#
# With a *set* of baselines $b^{(1)}, \ldots, b^{(K)}$ (a background sample of the data), the
# game becomes $v(S) = \frac1K \sum_k f(x_S, b^{(k)}_{\bar S})$, and by linearity its Shapley
# values are the average of the single-baseline values. Two cheap estimators target it
# {footcite}`lundberg2017unified`:
#
# - **DeepLiftShap** averages DeepLift over the $K$ baselines: $2K$ rows of forward and
#   backward passes per image.
# - **GradientSHAP** {footcite}`erion2021improving` draws, `n_samples` times, a baseline from
#   the set, a point $\alpha \sim U(0, 1)$ on its path and (optionally) Gaussian noise on the
#   input, and averages gradient $\times$ (input $-$ baseline): a Monte Carlo estimate of
#   Integrated Gradients averaged over the baselines ("expected gradients").
#
# Neither computes Shapley values of the pixels: they are DeepLift and Integrated Gradients,
# averaged, and inherit those methods' answers to interactions. The Shapes images let us
# measure how far off they are, because they are small enough for exact Shapley values of a
# coarse game: 9 patches of a 3 x 3 grid, 512 coalitions per image and baseline. The set of
# baselines: black and a blurred copy of each image. We compare each method's sum over a patch
# with the patch's exact value:

# %%
patches = cl.grid_segments(64, 64, 3, 3)  # 64 x 64 patch ids 0..8
s_refs = torch.stack([s_baselines["black"], s_baselines["blur"]])  # K x N x 3 x 64 x 64
exact = sum(cl.exact_shapley(shapes_model, sx, s_pred, segments=patches, baseline=b) for b in s_refs) / len(s_refs)
truth = cl.segment_values(exact, patches)  # N x 9: each patch's exact value, per image
expected_change = scores(sx, s_pred, shapes_model) - sum(scores(b, s_pred, shapes_model) for b in s_refs) / len(s_refs)
for i, (t, e) in enumerate(zip(truth, expected_change)):
    print(f"image {i}: the 9 exact values sum to {float(t.sum()):.4f}; f(x) - mean of f(baseline) = {float(e):.4f}")


def per_image(method, **kwargs):
    """Run ``method`` image by image, each against its own K baselines."""
    return torch.cat([method(shapes_model, sx[i : i + 1], s_pred[i : i + 1], baselines=s_refs[:, i], **kwargs)
                      for i in range(len(sx))])


estimates = {
    "DeepLiftShap": per_image(cl.deeplift_shap),
    "GradientSHAP, 64 draws": per_image(cl.gradient_shap, n_samples=64, seed=0),
    "IG, 32 steps, averaged": torch.cat([cl.average_over_baselines(
        cl.integrated_gradients, shapes_model, sx[i : i + 1], s_pred[i : i + 1],
        baselines=[b[i : i + 1] for b in s_refs], n_steps=32) for i in range(len(sx))]),
    "gradient x (x - b), averaged": sum(cl.vanilla_gradient(shapes_model, sx, s_pred) * (sx - b) for b in s_refs) / len(s_refs),
}


def patch_sums(a):
    """Sum an N x 3 x 64 x 64 attribution over each patch: N x 9."""
    summed = a.sum(dim=1)
    return torch.stack([summed[:, patches == p].sum(dim=1) for p in range(9)], dim=1)


print(f"{'method':>30} {'correlation with the exact values':>34} {'same top patch':>16}")
print(f"{'':>30} {'mean':>17} {'lowest':>16}")
for name, a in estimates.items():
    est = patch_sums(a)
    r = torch.stack([torch.corrcoef(torch.stack([e, t]))[0, 1] for e, t in zip(est, truth)])
    top = (est.argmax(dim=1) == truth.argmax(dim=1)).sum()
    print(f"{name:>30} {float(r.mean()):>17.3f} {float(r.min()):>16.3f} {int(top):>10}/{len(sx)}")

# %% mystnb={"image": {"alt": "Four Shapes images (cross, plain square, cross, dotted square), each followed by two 3 by 3 grids: the exact Shapley values of its nine patches and DeepLiftShap summed over the same patches, on one orange-purple scale per panel with orange positive. Both grids, on one shared scale, have their largest orange values on the patches that hold the object."}}
panels = {"exact Shapley": truth.view(-1, 3, 3), "DeepLiftShap, summed": patch_sums(estimates["DeepLiftShap"]).view(-1, 3, 3)}
fig = viz.method_grid(data.batch.images, panels, signed={k: True for k in panels}, cell=1.8,
                      shared_scale=True, clip_percentile=100,
                      row_titles=[shapes.labels[int(c)] for c in s_pred], label="logit per patch")
plt.show()

# %% [markdown]
# The nine exact values add up to $f(x)$ minus the mean score of the baselines, as efficiency
# demands. Summed over the patches, DeepLiftShap, GradientSHAP and Integrated Gradients
# averaged over the same two baselines all follow the exact values closely (correlation about
# 0.95 on average, above 0.91 on every image) and find the most valuable patch in three of
# four images; gradient x (input $-$ baseline) does clearly worse. The figure shows the exact
# values and DeepLiftShap's on one scale: the patches that hold the object carry most of the
# value. This is a coarse game on a small network. It shows that the cheap estimators can be
# close to Shapley values, not that they are close on every model: on EfficientNet-Lite0
# DeepLift and Integrated Gradients disagree with each other (cosine 0.03 to 0.15), so they
# cannot both be close to the same values there.
#
# ### What exact Shapley values of pixels would cost
#
# Tutorials sometimes compute "SHAP" for an image by looping over pixels: for each pixel and
# each background image, change that one pixel and run the model. That is one forward pass per
# pixel per background sample, and it is not a Shapley value either, only each pixel's
# marginal contribution to one coalition. Exact Shapley values over pixels need $2^d$
# coalitions. Counting, and timing a batch of forward passes on this machine (the seconds
# depend on the machine and its load, so this output is not checked by the tests):

# %% tags=["nbval-ignore-output"]
batch = x[:1].expand(16, -1, -1, -1).contiguous()
with torch.no_grad():
    model(batch)  # warm-up
    start = time.perf_counter()
    model(batch)
    per_pass = (time.perf_counter() - start) / len(batch)
pixels_per_image, background = 224 * 224, 100
loop_passes = pixels_per_image * background
print(f"one forward pass: {per_pass * 1000:.0f} ms on this CPU (in batches of 16)")
print(f"per-pixel loop with {background} background images: {loop_passes:,} passes, about "
      f"{loop_passes * per_pass / 3600:.0f} hours per image")
print(f"exact Shapley values over the {pixels_per_image:,} pixels: 2^{pixels_per_image} = "
      f"10^{pixels_per_image * math.log10(2):.0f} passes")

# %% [markdown]
# The per-pixel loop costs five million forward passes per image with a background of 100
# images: hours to days on a CPU like this one, for numbers that are not Shapley values. Exact
# values over pixels are out of reach by any hardware ($10^{15104}$ passes). The estimators
# above cost, per image: DeepLiftShap 1 + 2K rows (one forward pass to fix the target), 5 for
# the two Shapes baselines; GradientSHAP 1 + `n_samples`; Integrated Gradients per baseline
# 1 + `n_steps`. Exact Shapley values are for small games, like chapter 05's superpixels, and
# as a yardstick.
#
# ## Checking against Captum
#
# Captum's `IntegratedGradients`, `DeepLift`, `DeepLiftShap` and `GradientShap` are what you
# would otherwise use. The comparisons, each with its tolerance (relative to the map's largest
# value, in float32):

# %%
steps = dict(internal_batch_size=32)
ig_captum = {
    "gausslegendre": (ig_cat[16], IntegratedGradients(model).attribute(cat, target=cat_class, n_steps=16, **steps)),
    "riemann_middle": (cl.integrated_gradients(model, cat, cat_class, n_steps=16, method="riemann_middle"),
                       IntegratedGradients(model).attribute(cat, target=cat_class, n_steps=16, method="riemann_middle", **steps)),
}
ours_trap = cl.integrated_gradients(model, cat, cat_class, n_steps=17, method="riemann_trapezoid")
theirs_trap = IntegratedGradients(model).attribute(cat, target=cat_class, n_steps=17, method="riemann_trapezoid", **steps)
checks = [(f"IG {m}, 16 steps (EfficientNet, cat)", ours, theirs) for m, (ours, theirs) in ig_captum.items()]
checks.append(("IG riemann_trapezoid, 17 points, x 16/17", ours_trap * 16 / 17, theirs_trap))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Captum's notice that it sets hooks
    checks.append(("DeepLift (Shapes CNN: ReLUs, in Captum's table)",
                   cl.deeplift(shapes_model, sx, s_pred, baseline=s_refs[1]),
                   DeepLift(shapes_model).attribute(sx, s_refs[1], target=s_pred)))
    background_set = s_refs[:, 0]  # the first image's black and blurred baselines, as a set for all
    checks.append(("DeepLiftShap (Shapes CNN)", cl.deeplift_shap(shapes_model, sx, s_pred, baselines=background_set),
                   DeepLiftShap(shapes_model).attribute(sx, background_set, target=s_pred)))
TOLERANCE = 1e-5
for name, ours, theirs in checks:
    theirs = theirs.detach()  # Captum returns attributions that still require gradients
    diff = float((ours - theirs).abs().max() / theirs.abs().max())
    print(f"{name:<48} max |difference| / max |value| = {diff:.1e}  (tolerance {TOLERANCE:g})")
print(f"{'IG riemann_trapezoid, 17 points, as they are':<48} max |difference| / max |value| = "
      f"{float((ours_trap - theirs_trap).abs().max() / theirs_trap.abs().max()):.3f}")

# %% [markdown]
# Integrated Gradients agrees with Captum exactly for Gauss-Legendre and the middle rule: the
# same points, the same float32 weights, the same chunks. Captum's trapezoid does not, by
# 6 percent: its weights are $1/n$ with the two ends halved, which sum to $(n-1)/n$, so its
# attributions are short by a factor $16/17$ here; scaled by that factor ours agree to
# $10^{-7}$. (The tests hold the Riemann rules to $10^{-10}$ in float64, and Gauss-Legendre to
# the float32 rounding of Captum's weights.) On the Shapes CNN, whose ReLUs are in Captum's
# table, DeepLift and DeepLiftShap agree to float32 rounding; on EfficientNet-Lite0 they
# cannot, as shown above.
#
# GradientSHAP draws random numbers, and Captum draws them from numpy's and torch's global
# generators (the baselines and the points on the path from numpy, the noise from torch).
# `course_lib` draws from its own generator, seeded by `seed`, so the two agree only when given
# the same draws; the tests give them the same draws and find them equal to $10^{-10}$ in
# float64 (`tests/test_gradient_shap.py`). With different draws they agree in expectation, the
# distance shrinking like a Monte Carlo error:

# %%
for n_samples in (8, 128):
    np.random.seed(0)
    torch.manual_seed(0)
    theirs = GradientShap(shapes_model).attribute(sx, background_set, n_samples=n_samples, target=s_pred)
    ours = cl.gradient_shap(shapes_model, sx, s_pred, baselines=background_set, n_samples=n_samples, seed=0)
    print(f"n_samples = {n_samples:>3}: ||ours - Captum|| / ||Captum|| = {float((ours - theirs).norm() / theirs.norm()):.3f}")

# %% [markdown]
# **Defaults that differ.**
#
# | | `course_lib` | Captum | what it changes |
# |---|---|---|---|
# | IG `n_steps`, rule | 50, Gauss-Legendre | 50, Gauss-Legendre | nothing; both too few for the cat (above) |
# | IG internal batch | `batch_size=32` path points | `internal_batch_size=None`: all at once | memory only (all 50 points of a 224 x 224 image in one pass) |
# | IG `riemann_trapezoid` | weights sum to 1 | weights sum to $(n-1)/n$ | Captum's attributions are short by $1/n$ |
# | baseline | `baseline=None`: zeros | `baselines=None`: zeros | nothing; zero is mid-grey here, not black |
# | target | `None`: the predicted class | `None`: only for single-output models | Captum needs `target` for a classifier |
# | DeepLift on ReLU6, SiLU, GELU, `F.relu` | rescale rule | plain gradient | Captum is not DeepLift there, silently |
# | GradientSHAP `n_samples`, noise | 20, `stdev=0` | 5, `stdevs=0.0` | Captum's default estimate is noisier |
# | GradientSHAP random numbers | own generator, `seed` | numpy and torch global generators | seed both globals to repeat Captum's |
#
# ## Pitfalls
#
# **Trusting the default number of steps.** Fifty Gauss-Legendre steps left the cat's
# attributions 9.1 percent short of the change they claim to explain. Ask for the gap
# (`return_delta=True`, Captum's `return_convergence_delta=True`) and raise `n_steps` until it
# is small for *your* model, images and baseline; it varied here from 0.9 to 4.0 percent
# across three photos at 128 steps, and with the baseline.
#
# **A baseline in the wrong units.** A baseline is an input of the model, so it must be
# normalised as the inputs are. `torch.zeros_like(x)` is mid-grey for this model, not black; a
# baseline built from 0..255 pixel values is far outside the inputs, and `course_lib` refuses
# it rather than explain a path through images the model never sees:

# %%
try:
    cl.integrated_gradients(model, cat, cat_class, baseline=torch.full_like(cat, 255.0))
except ValueError as error:
    print(error)

# %% [markdown]
# **Reading zero as "unimportant".** An attribution of zero may mean the pixel equals the
# baseline (every black pixel against a black baseline), not that the model ignores it.
#
# **Reading single pixels.** Pixel-level IG maps of this network are made of large
# contributions of both signs that cancel; sums over regions (blocks, superpixels, the object's
# mask) are what add up to the score, and what can be compared between methods.
#
# **Captum's DeepLift on an unlisted activation.** On ReLU6 (MobileNet, EfficientNet-Lite),
# SiLU (EfficientNet), GELU, or an `F.relu` in `forward`, Captum's `DeepLift` is gradient x
# (input $-$ baseline), with no warning about it. Check its convergence delta: on the cat its
# attributions sum to $-1.85$ where the score rose by 9.24.
#
# **Captum's trapezoid.** `method="riemann_trapezoid"` in Captum 0.9 loses a share $1/n$ of
# every attribution; use `"riemann_middle"` or `"gausslegendre"`, or correct by $n/(n-1)$.
#
# **Too few samples.** GradientSHAP is a Monte Carlo estimate: Captum's default of five
# samples, or eight here, leaves an error of the size of the map itself (above, 0.66 between
# two estimates with 8 samples each).
#
# **A model in training mode.** As in chapter 02, batch normalisation and dropout then change
# every score along the path; every `course_lib` method warns.
#
# ## Summary
#
# - Gradient x input is not complete on a network: the gradient at the photo misses how the
#   score rose on the way from the reference. Integrated Gradients integrates the gradient
#   along the straight path from a baseline; it satisfies sensitivity and implementation
#   invariance, and its attributions add up to $f(x) - f(b)$ up to the quadrature's gap.
# - On EfficientNet-Lite0 the cat's score saturates within the first tenth of the path from
#   grey, so the integrand is a narrow spike and the gap falls slowly and irregularly with the
#   number of steps: 9.1 percent with Captum's default of 50 steps, 4.0 percent at 128.
#   Measure the gap; the map's direction settles much earlier than its sum.
# - The baseline is part of the question. Pixels equal to it get zero; black and white give
#   opposite maps; maps from different baselines agree only when the baselines look alike.
# - DeepLift's rescale rule is complete after one forward and one backward pass. It equals
#   Integrated Gradients for one layer of ReLUs, tracks it on the shallow Shapes CNN, and is
#   nearly unrelated to it on EfficientNet-Lite0; it is not implementation invariant.
#   Captum's DeepLift is silently gradient x (input $-$ baseline) on ReLU6 networks.
# - Shapley values are the unique fair split of $f(x) - f(b)$, at $2^d$ model evaluations;
#   they differ from Integrated Gradients where features interact. DeepLiftShap and
#   GradientSHAP average DeepLift and Integrated Gradients over a set of baselines; on Shapes
#   their patch sums correlate about 0.95 with the exact Shapley values.
# - `course_lib` agrees with Captum exactly where both compute the same thing, and says where
#   they do not (trapezoid weights, missing activation rules, random draws).
#
# ## Exercises
#
# The exercises for this chapter are in
# [`exercises/03_integrated_gradients.ipynb`](https://github.com/interpreting-neural-networks/course/blob/main/exercises/03_integrated_gradients.ipynb)
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/interpreting-neural-networks/course/blob/main/exercises/03_integrated_gradients.ipynb):
# write Integrated Gradients with the trapezoid rule from gradients, predict what a baseline
# does to the pixels equal to it, compute a three-player Shapley value by hand, choose the
# number of steps for a target gap, and reason about an interaction Integrated Gradients and
# Shapley values split differently. The book's "How to use" page says how to fill them in and
# hand them in.
#
# ## References
#
# ```{footbibliography}
# ```
