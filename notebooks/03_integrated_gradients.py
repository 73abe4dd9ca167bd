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
print(f"largest s on the 129 points: {float(s.max()):.1f} at alpha = {float(grid[s.argmax()]):.4f}")
late = path_scores[16:] - path_scores[-1]  # alpha >= 1/8
print(f"for alpha >= 1/8 the score stays within [{float(late.min()):+.2f}, {float(late.max()):+.2f}] of its final value")

# %% mystnb={"image": {"alt": "Two line plots against alpha from 0 to 1. Left: the cat's score rises from its grey-image value to almost its final value within the first eighth of the path (81 percent of the change by alpha 1/16, 97 percent by 1/8), then stays nearly flat. Right: the path derivative has a tall narrow spike near alpha 0.05 and is small everywhere else."}}
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
# sixteenth of its contrast, and 97 percent at $1/8$; after that it stays within half a logit
# of its final value. The path derivative is a narrow spike around $\alpha \approx 0.05$ (279 at
# its highest point of the 129) and close to zero over the rest of the path; at the photo
# itself it is $-1.85$, the sum of gradient x input. This is the *saturation* that defeats
# gradients at the input: nearly all of the score was earned in a stretch of the path the
# photo is far from. (Model-specific: how early the score saturates depends on the network,
# and on the baseline, as the baselines section shows.)
#
# The spike is not a smooth bump that a finer grid would trace. A network of ReLU6 units,
# convolutions and pooling is piecewise linear in its input, so its gradient is piecewise
# constant, and $s(\alpha)$ jumps each time a unit switches on the path. Zooming into the spike
# with 41 points $2.5 \times 10^{-4}$ apart:

# %%
fine = torch.linspace(0.040, 0.050, 41, dtype=torch.float64)
fine_grads = torch.cat([cl.vanilla_gradient(model, chunk, cat_class)
                        for chunk in (fine.to(cat.dtype).view(-1, 1, 1, 1) * cat).split(32)])
s_fine = (fine_grads * cat).sum(dim=(1, 2, 3)).double()
jumps = s_fine.diff().abs()
print(f"s on [0.040, 0.050]: from {float(s_fine.min()):.1f} to {float(s_fine.max()):.1f}; between neighbours it "
      f"changes by {float(jumps.median()):.1f} (median), {float(jumps.max()):.1f} at most")

# %% [markdown]
# Between points a quarter of a thousandth apart, $s$ moves by 13 (median) and up to 38, and
# it reaches 321, above anything the 129-point grid saw. The integrand is non-smooth (piecewise
# constant, for a piecewise-linear network) and concentrated in a stretch a few hundredths
# wide. For the quadrature this is bad news: even 129 evenly spaced points resolve it poorly,
# and their trapezoid sum, 8.36, misses the change of 9.24 by a tenth.
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
gl_steps = [16, 32, 50, 64, 128]  # 50 is Captum's default
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

# %% mystnb={"image": {"alt": "Log-log plot of the absolute completeness gap, as a share of the score change, against the number of steps, one line per rule, with a dashed line at 1 percent. All rules stay above 1 percent up to 128 steps; the left, right and trapezoid rules fall to about 3 percent at 64 steps and rise to about 10 percent at 128, the middle rule is at 22 percent at 64 steps, Gauss-Legendre goes from 34 percent at 16 steps to 42 at 32, 9 at 50, 12 at 64 and 4 at 128."}}
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
# each rule's points land on and off the spike as their number changes: the left, right and
# trapezoid rules touch 3 percent at 64 steps and are back near 10 percent at 128, while the
# middle rule is at $-22$ percent at 64; Gauss-Legendre is worse at 32 steps (42 percent) than
# at 16 (34 percent), then 9.1 at 50, 11.7 at 64 and 4.0 at 128. Left, right
# and trapezoid nearly coincide: they differ only in the weight of the two ends, where $s$ is
# small. The textbook ordering (left and right are first-order rules, middle and trapezoid
# second order, Gauss-Legendre higher) is about smooth integrands; this one is a spike. On the
# espresso and the moped, below, 128 steps give 0.9 and 1.6 percent; on the small Shapes CNN,
# 64 steps give at most 1.5 percent (four images, three baselines, below).
#
# Two lessons. First, the number of steps is a property of the model, the image and the
# baseline: print the gap (`return_delta=True`) and raise `n_steps` until it is small, rather
# than trusting a default. Second, the gap is a strict test. The *direction* of the map
# changes less than its sum: here is the cosine similarity of each map with the 128-step map
# (1 means the same map up to scale; the 128-step map has its own gap of 4 percent, so this
# measures agreement between settings, not closeness to the integral):

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

# %% mystnb={"image": {"alt": "The cat photo, its gradient x input and its Integrated Gradients, both summed over colour channels, on one shared orange-purple scale with orange positive and a single colour bar. Both maps are speckled over the fur; Integrated Gradients puts much more weight on the left eye and the nose."}}
maps = {"gradient x input": cl.reduce_channels(gxi[:1], "signed"),
        f"IG, {N_STEPS} steps": cl.reduce_channels(ig[:1], "signed")}
fig = viz.method_grid(cat, maps, signed={k: True for k in maps}, denormalize=imagenet.denormalize,
                      sign_legend={k: viz.CONTRIBUTION_LEGEND for k in maps},
                      row_titles=[labels[cat_class]], shared_scale=True,
                      label="logit per pixel (channels summed)")
plt.show()

# %% [markdown]
# The two maps of the cat light the same kind of places (the eyes, the nose, edges and fur
# texture), speckled with both signs side by side, but they are not the same map: IG is much
# stronger around the left eye and down the bridge of the nose, and as signed maps their cosine
# similarity is only 0.40 (printed below; pixel maps take much space, the other two photos are
# shown by blocks). Their totals differ too. Summing each map over blocks of 16 x 16 pixels
# shows where the score's change is credited, in logits (the 196 blocks of an IG map add up to
# the change of the score, up to the gap):

# %%
def block_sums(a, size=16):
    """Sum an N x C x H x W attribution over channels and size x size blocks: N x H/size x W/size."""
    return F.avg_pool2d(a.sum(dim=1, keepdim=True), size)[:, 0] * size * size


# %% mystnb={"image": {"alt": "Three rows (cat, espresso, moped): the photo and 14 by 14 grids of block totals of gradient x input and of Integrated Gradients, on one shared orange-purple scale, orange positive. Both are patchworks of small orange and purple blocks spread over the whole photo; neither outlines the object."}}
blocks = {"gradient x input": block_sums(gxi), f"IG, {N_STEPS} steps": block_sums(ig)}
fig = viz.method_grid(x, blocks, signed={k: True for k in blocks}, denormalize=imagenet.denormalize,
                      sign_legend={k: viz.CONTRIBUTION_LEGEND for k in blocks},
                      row_titles=[labels[int(c)] for c in pred], shared_scale=True, cell=2.0,
                      label="logit per 16 x 16 block")
plt.show()
for n, g_blocks, i_blocks in zip(names, blocks["gradient x input"], blocks[f"IG, {N_STEPS} steps"]):
    print(f"{n:>10}: total over the blocks: gradient x input {float(g_blocks.sum()):6.2f}, IG {float(i_blocks.sum()):5.2f};  "
          f"largest |block|: {float(g_blocks.abs().max()):.2f} and {float(i_blocks.abs().max()):.2f};  "
          f"cos = {float(F.cosine_similarity(g_blocks.flatten(), i_blocks.flatten(), dim=0)):.2f} over blocks")
for n, g_map, i_map in zip(names, gxi, ig):
    print(f"{n:>10}: cos = {float(F.cosine_similarity(g_map.flatten(), i_map.flatten(), dim=0)):.2f} over pixels")

# %% [markdown]
# Pixel by pixel (cosine 0.35 to 0.42) and block by block (0.38 to 0.39 over the 196 blocks)
# the two maps agree little, and their totals differ: IG's blocks add up to the change of the
# score plus its signed gap (for the cat $9.24 - 0.365 = 8.88$; 11.24 and 7.90 for the other
# two), gradient x input's to $-1.85$, 1.04 and $-1.20$. Neither reads like an outline of the
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
# Integrated Gradients of the cat against each of them, with 64 Gauss-Legendre steps each
# (each map's gap is printed), and the average over four uniform-noise baselines at 8 steps
# each (half the cost of one map), a way to depend on no single reference:

# %%
B_STEPS = 64
by_baseline = {"grey (zero)": ig_cat[B_STEPS]}  # computed above
baseline_gaps = {"grey (zero)": (gl_gaps[B_STEPS], cat_change)}
for k, b in list(baselines.items())[1:]:
    by_baseline[k], d = cl.integrated_gradients(model, cat, cat_class, baseline=b[:1], n_steps=B_STEPS,
                                                return_delta=True)
    baseline_gaps[k] = (float(d), float(scores(cat, cat_class) - scores(b[:1], cat_class)))
noise_refs = [cl.pixel_baseline("uniform", cat, norm, seed=k) for k in range(4)]
by_baseline["average of 4 noises"] = cl.average_over_baselines(
    cl.integrated_gradients, model, cat, cat_class, baselines=noise_refs, n_steps=8)
for k, (d, c) in baseline_gaps.items():
    print(f"{k:>12}: f(cat) - f(baseline) = {c:6.2f}   gap = {d:+.3f} ({d / c:+.1%})")

# %% mystnb={"image": {"alt": "The cat photo, then its Integrated Gradients maps against the grey, black and white baselines, channels summed, each on its own orange-purple scale with orange positive and its own colour bar. The grey map lights the left eye and the nose; the black map is spread over the fur, with pale near-zero rings around both eyes; the white map lights the left pupil, the nose and the chin."}}
def baseline_maps(panels, with_photo):
    """One row: optionally the cat, then the IG maps of the given baselines, each with its colour bar."""
    fig, axes = plt.subplots(1, len(panels) + with_photo, figsize=(3.4 * (len(panels) + with_photo), 2.9),
                             layout="constrained")
    if with_photo:
        viz.show_image(axes[0], cat[0], title="tiger cat", denormalize=imagenet.denormalize)
    for ax, k in zip(axes[with_photo:], panels):
        viz.show_heatmap(ax, cl.reduce_channels(by_baseline[k], "signed")[0], signed=True, title=k,
                         label="logit per pixel", sign_legend=viz.CONTRIBUTION_LEGEND)
    plt.show()


baseline_maps(["grey (zero)", "black", "white"], with_photo=True)

# %% mystnb={"image": {"alt": "Integrated Gradients maps of the cat against the blurred cat, uniform noise and the average of four noises, channels summed, each on its own orange-purple scale with orange positive and its own colour bar. The blur map lights edges and whiskers; the noise maps light the eyes and the nose."}}
baseline_maps(["blur", "uniform", "average of 4 noises"], with_photo=False)

# %% [markdown]
# The map changes with the reference. Part of the change comes from the factor $x - b$, which
# makes pixels far from the baseline eligible for large attributions; the rest comes from the
# gradients along a different path, so the factor does not predict the map. Measured over the
# cat's pixels (channels summed):

# %%
brightness = norm.pixels(cat)[0].mean(dim=0)  # H x W, 0 = black, 1 = white
brightest, darkest = brightness >= brightness.quantile(0.9), brightness <= brightness.quantile(0.1)
for k in ("black", "white"):
    magnitude = by_baseline[k][0].abs().sum(dim=0)  # |IG| per pixel
    distance = (cat - baselines[k][:1])[0].abs().sum(dim=0)  # |x - b| per pixel
    r = torch.corrcoef(torch.stack([magnitude.flatten(), distance.flatten()]))[0, 1]
    print(f"{k:>6} baseline: correlation of |IG| with |x - b| over pixels {float(r):.2f};  share of |IG| on the "
          f"brightest 10% of pixels {float(magnitude[brightest].sum() / magnitude.sum()):.1%}, "
          f"on the darkest 10% {float(magnitude[darkest].sum() / magnitude.sum()):.1%}")

# %% [markdown]
# The factor tilts the map without deciding it: the correlation of $|\mathrm{IG}|$ with
# $|x - b|$ is weak (0.34 against black, 0.37 against white); the brightest tenth of the
# pixels holds 14.7 percent of the attribution against black (6.7 against white) and the
# darkest tenth 18.5 percent against white (4.7 against black): more than a tenth, far from
# all of it. In the figure the black map does not light the bright fur uniformly: the eyes
# are surrounded by pale, near-zero rings.
# The blur map lights edges and whiskers, what the blur removed (a blur baseline asks which
# *details* matter, not which colours), and the noise maps light the eyes and nose. (The
# mean-colour map, not drawn, is close to the grey one: the two colours are close, and the
# DeepLift maps of the two baselines agree at 0.79, below.) The completeness gaps at 64 steps
# range from 0.6 percent (uniform noise) and 1.7 (blur) to $-11.7$ (grey) and 18 (black): the
# same number of steps that suffices for one baseline leaves a large gap for another.
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
# share, since they are far from grey, white, the blur and the noise. Every constant baseline
# has such a blind spot, by the same factor: white cannot credit white pixels, grey cannot
# credit grey ones.
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
# gradient evaluations (4 in the count above, 128 for this chapter's maps). The measured seconds per image are on the book's performance
# page (`benchmarks/bench_integrated_gradients.py`).
#
# **How close to Integrated Gradients?** For a network with one layer of ReLUs the two are
# equal: along the straight path each unit's pre-activation moves linearly, and the average of
# $g'$ over the segment is exactly the secant's slope {footcite}`ancona2018towards`. With a
# second layer the pre-activations of the second layer no longer move linearly, and the two
# drift apart. On two small random networks (float64, four input points of five features, 2000-step IG so that its
# own error is negligible):

# %%
torch.manual_seed(1)
one_layer = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).double().eval()
two_layers = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(),
                                 torch.nn.Linear(16, 3)).double().eval()
v5, b5 = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
for name, net in [("one hidden layer", one_layer), ("two hidden layers", two_layers)]:
    ig_small = cl.integrated_gradients(net, v5, [0, 1, 2, 0], baseline=b5, n_steps=2000, method="riemann_middle",
                                       batch_size=None)
    dl_small = cl.deeplift(net, v5, [0, 1, 2, 0], baseline=b5)
    print(f"{name:>17}: max |IG - DeepLift| = {float((ig_small - dl_small).abs().max()):.1e}   "
          f"(max |IG| = {float(ig_small.abs().max()):.2f})")

# %% [markdown]
# With one layer the difference is the quadrature's error of IG; with two it is a hundred times
# larger. Then the Shapes CNN (seven ReLU layers, in residual blocks), four test images, three
# baselines, against 64-step IG:

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
# On this shallow network DeepLift is close to Integrated Gradients when the baseline is near
# the image (the blurred copy: cosine 0.91 to 0.98, higher than gradient x (input $-$
# baseline), 0.36 to 0.90). When the baseline is far it is not closer to IG than the cheaper
# gradient x (input $-$ baseline): against black, cosine 0.57 to 0.77 for DeepLift and 0.51 to
# 0.81 for gradient x (input $-$ baseline).
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
                      sign_legend={k: viz.CONTRIBUTION_LEGEND for k in blocks_dl},
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
# of secants are not the integral along the path. Which split is closer to a fair one? Exact
# Shapley values of a coarse game on the cat give a yardstick, in the Shapley section below.
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
# incomplete on a ReLU directly followed by a max pooling (Captum issue 1104). Because its
# rules live in hooks on modules, Captum's `DeepLift` also requires each activation module to
# be used once per forward pass: torchvision's ResNet blocks call their one `self.relu` twice,
# and Captum stops with a `RuntimeError` there unless each use gets its own module
# (`course_lib` intercepts calls, so a module used twice is simply two calls). Both
# implementations have only the rescale rule; the DeepLift paper's second rule,
# **RevealCancel**, which propagates the positive and negative parts of each difference
# separately so that canceling inputs both get credit, is in neither.
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
# applies the formula above to the eight worths). The max is wired as
# $x_2 + \mathrm{ReLU}(x_1 - x_2)$, as above, so that DeepLift has a rule for it:

# %%
class Toy(torch.nn.Module):
    def forward(self, v):  # N x 3 -> N x 1: max(v1, v2) + v3, the max through a ReLU
        return v[:, 1:2] + torch.relu(v[:, :1] - v[:, 1:2]) + v[:, 2:]


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
# can differ where features interact (they need not: for $x_1 x_2$ at $(1, 1)$ against 0 both
# give $(0.5, 0.5)$).
#
# **Where DeepLift has no rule.** Written with `torch.maximum` instead, the max has no
# DeepLift rule: its plain gradient is used, which misses part of the change against the
# baseline $(0, 2, 0)$. The same holds for `clamp`, products of two activations
# (attention, squeeze-and-excitation gates), softmax and layer norm. `course_lib` then warns
# that the attributions are incomplete:

# %%
class ToyMaximum(torch.nn.Module):
    def forward(self, v):  # the same function, through torch.maximum
        return torch.maximum(v[:, :1], v[:, 1:2]) + v[:, 2:]


other_origin = torch.tensor([[0.0, 2.0, 0.0]])
for net in (Toy().eval(), ToyMaximum().eval()):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a, d = cl.deeplift(net, point, 0, baseline=other_origin, return_delta=True)
    print(f"{type(net).__name__:>10}, baseline (0, 2, 0): DeepLift {(a[0] + 0.0).tolist()}, f(x) - f(b) = "
          f"{float(net(point) - net(other_origin)):.0f}, gap {float(d):+.1f}"
          + "".join(f"\n    warning: {str(w.message).split('. The model')[0]}" for w in caught))

# %% [markdown]
# With the ReLU wiring DeepLift is complete (the gap is 0); with `torch.maximum` it misses by
# 2, and `course_lib` says so. Among the course's models, the transformers break completeness
# this way:
# the BERT and MiniLM text models (chapters 10 and 11) and the Vision Transformers
# (chapter 12), whose attention multiplies activations, normalises with softmax and layer
# norm. On the tiny Shapes ViT against black:

# %%
shapes_vit = cl.load_model("shapes_vit")
vit_images = shapes_vit.preprocess(cl.load_dataset("shapes", n=4, seed=900_000).batch.images)
vit_black = cl.pixel_baseline("black", vit_images, norm)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the incompleteness warning: measured here instead
    _, vit_gap = cl.deeplift(shapes_vit.model, vit_images, baseline=vit_black, return_delta=True)
with torch.no_grad():
    vit_logits, vit_logits_b = shapes_vit.model(vit_images).logits, shapes_vit.model(vit_black).logits
vit_change = (vit_logits - vit_logits_b).gather(1, vit_logits.argmax(dim=1, keepdim=True))[:, 0]
print("DeepLift on the Shapes ViT: gap / (f(x) - f(b)) =", [f"{float(g):+.0%}" for g in vit_gap / vit_change])

# %% [markdown]
# The gaps reach $-99$ percent of the change: on a transformer, use Integrated Gradients
# (chapters 11 and 12) or check `return_delta` before reading a DeepLift map.
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
#   Integrated Gradients averaged over the baselines ("expected gradients"). Its noise on the
#   input is chapter 02's SmoothGrad, applied to IG with one path point per draw; Captum's
#   `NoiseTunnel(IntegratedGradients(model))` does the same with a whole path per noisy copy,
#   at `nt_samples` x `n_steps` gradients.
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


def patch_sums(a, segments=patches):
    """Sum an N x C x H x W attribution over channels and each segment of ``segments``: N x 9."""
    summed = a.sum(dim=1)
    return torch.stack([summed[:, segments == p].sum(dim=1) for p in range(int(segments.max()) + 1)], dim=1)


def against_truth(name, est, exact_values):
    """One row: correlation (mean, lowest), relative L2 error (range) and same top patch, N x 9 each."""
    r = torch.stack([torch.corrcoef(torch.stack([e, t]))[0, 1] for e, t in zip(est, exact_values)])
    err = (est - exact_values).norm(dim=1) / exact_values.norm(dim=1)
    top = (est.argmax(dim=1) == exact_values.argmax(dim=1)).sum()
    print(f"{name:>30} {float(r.mean()):>6.2f} {float(r.min()):>7.2f}   {float(err.min()):.2f} to {float(err.max()):.2f}"
          f" {int(top):>8}/{len(est)}")


# The floor: no model, only the masks. Split each image's total f(x) - mean f(b) among the
# patches in proportion to the object's pixels in each.
object_pixels = torch.stack([data.batch.masks[:, patches == p].sum(dim=1) for p in range(9)], dim=1).double()
mask_only = object_pixels / object_pixels.sum(dim=1, keepdim=True) * truth.sum(dim=1, keepdim=True)
print(f"{'':>30} {'correlation':>14}   {'relative':>12} {'same top':>10}")
print(f"{'method':>30} {'mean':>6} {'lowest':>7}   {'L2 error':>12} {'patch':>10}")
for name, a in estimates.items():
    against_truth(name, patch_sums(a), truth)
against_truth("mask-only split (no model)", mask_only.to(truth.dtype), truth)

# %% mystnb={"image": {"alt": "Four Shapes images (cross, plain square, cross, dotted square), each followed by two 3 by 3 grids: the exact Shapley values of its nine patches and DeepLiftShap summed over the same patches, on one shared orange-purple scale with orange positive. Both grids have their largest orange values on the patches that hold the object."}}
panels = {"exact Shapley": truth.view(-1, 3, 3), "DeepLiftShap, summed": patch_sums(estimates["DeepLiftShap"]).view(-1, 3, 3)}
fig = viz.method_grid(data.batch.images, panels, signed={k: True for k in panels}, cell=1.8,
                      sign_legend={k: viz.CONTRIBUTION_LEGEND for k in panels},
                      shared_scale=True, clip_percentile=100,
                      row_titles=[shapes.labels[int(c)] for c in s_pred], label="logit per patch")
plt.show()

# %% [markdown]
# The nine exact values add up to $f(x)$ minus the mean score of the baselines, as efficiency
# demands. The figure shows the exact values and DeepLiftShap's on one scale: the patches that
# hold the object carry most of the value. That makes correlation an easy test. A split that
# never runs the model, the total shared out in proportion to each patch's object pixels,
# already correlates 0.87 with the exact values on average and finds the top patch in three of
# four images. The relative error $\lVert \hat\phi - \phi \rVert / \lVert \phi \rVert$
# separates the methods from that floor: DeepLiftShap (0.18 to 0.27) and Integrated Gradients
# averaged over the same two baselines (0.18 to 0.37) are clearly below the mask-only split
# (0.37 to 0.59), GradientSHAP with 64 draws less clearly (0.24 to 0.45, its Monte Carlo
# error included), and gradient x (input $-$ baseline) is worse than the floor (0.61 to
# 0.92). The cheap estimators are measurably closer to the Shapley values than a guess from
# the masks, with errors of 0.18 to 0.37 of the values' size for the best of them.
#
# ### A yardstick on the photo
#
# On EfficientNet-Lite0 DeepLift and Integrated Gradients disagree with each other (cosine
# 0.03 to 0.15), so they cannot both be close to the same values. The same coarse game
# measures which is closer on the cat: its nine 3 x 3 patches against the grey baseline, $2^9 = 512$
# forward passes, compared with each map summed over the patches:

# %%
photo_patches = cl.grid_segments(224, 224, 3, 3)
cat_truth = cl.segment_values(cl.exact_shapley(model, cat, cat_class, segments=photo_patches, baseline=grey[:1],
                                               batch_size=32), photo_patches)
print(f"the 9 exact values sum to {float(cat_truth.sum()):.3f}; f(cat) - f(grey) = {cat_change:.3f}")
cat_rows = {"exact Shapley": cat_truth[0]}
cat_rows |= {name: patch_sums(a, photo_patches)[0].to(cat_truth.dtype)
             for name, a in [("DeepLift", dl[:1]), (f"IG, {N_STEPS} steps", ig[:1]), ("gradient x input", gxi[:1])]}
cat_rows["equal split (no model)"] = cat_truth[0].sum().expand(9) / 9
print(f"{'patch (row by row)':>23}" + "".join(f"{p:>6}" for p in range(9)) + "   correlation   relative L2 error")
for name, values in cat_rows.items():
    line = f"{name:>23}" + "".join(f"{float(v):6.2f}" for v in values)
    if name != "exact Shapley":
        r = torch.corrcoef(torch.stack([values, cat_truth[0]]))[0, 1] if values.std() > 0 else torch.tensor(float("nan"))
        line += f"   {float(r):11.2f}   {float((values - cat_truth[0]).norm() / cat_truth[0].norm()):17.2f}"
    print(line)

# %% [markdown]
# On the cat the exact values are spread almost evenly over the nine patches (0.71 to 1.63,
# the centre patch highest), so an equal split, which never runs the model, misses them by
# only 0.28. Against that floor none of the three maps does well. DeepLift is the closest of
# them in size (0.51) but orders the patches against the exact values (correlation $-0.30$);
# Integrated Gradients misses by 0.74, piling 2.71 on the top-left patch (correlation 0.49);
# gradient x input orders them best (0.68, the only one to find the centre patch) but gets
# their sizes and signs wrong (1.22). So DeepLift is closer than IG to this game's fair split,
# and neither says which part of the photo matters most. One photo and one coarse game: a
# measurement where there was only disagreement, not a ranking of the methods.
#
# ### What exact Shapley values of pixels would cost
#
# Exact Shapley values over the $d$ input features need $2^d$ coalitions. Tutorials sometimes
# estimate them for an image with a loop over the features instead: draw a random order of the
# $d = C \times H \times W$ values (`torch.randperm`) and a background image, start from the
# background and switch the input's values on one by one in that order, running the model
# after each switch; each feature's change of score is one marginal contribution, and the
# average over many draws is the estimate. That is *permutation sampling*, an unbiased Monte
# Carlo estimator of the Shapley values {footcite}`castro2009polynomial,strumbelj2014explaining`,
# whose error falls like $1/\sqrt{\text{draws}}$. Its cost is $d$ forward passes per draw.
# Counting, and timing a batch of forward passes on this machine (the seconds depend on the
# machine and its load, so this output is not checked by the tests):

# %% tags=["nbval-ignore-output"]
batch = x[:1].expand(16, -1, -1, -1).contiguous()
with torch.no_grad():
    model(batch)  # warm-up
    start = time.perf_counter()
    model(batch)
    per_pass = (time.perf_counter() - start) / len(batch)
features, draws = 3 * 224 * 224, 100
loop_passes = features * draws
print(f"one forward pass: {per_pass * 1000:.0f} ms on this CPU (in batches of 16)")
print(f"permutation sampling over the d = {features:,} input values, {draws} draws: {loop_passes:,} passes, about "
      f"{loop_passes * per_pass / 3600:.0f} hours per image")
print(f"exact Shapley values over the {features:,} values: 2^{features} = "
      f"10^{features * math.log10(2):.0f} passes")

# %% [markdown]
# With 100 draws the loop costs 15 million forward passes per image: days on a CPU like this
# one, and each of the 150,528 estimates is still an average of only 100 marginal
# contributions. Exact values over single input values are out of reach by any hardware
# ($10^{45313}$ passes). The cheap form of the same estimator plays with groups of features
# instead of single values: superpixels or patches, a few dozen players, hence a few dozen
# passes per draw (chapter 05; Captum's `ShapleyValueSampling` with a `feature_mask`). The
# estimators above cost, per image: DeepLiftShap 1 + 2K rows (one forward pass to fix the
# target), 5 for the two Shapes baselines; GradientSHAP 1 + `n_samples`; Integrated Gradients
# per baseline 1 + `n_steps`. Exact Shapley values are for small games, like the 3 x 3 patches
# above, and as a yardstick.
#
# ## Checking against Captum
#
# Captum's `IntegratedGradients`, `DeepLift`, `DeepLiftShap` and `GradientShap` are what you
# would otherwise use. The comparisons, each with its tolerance (relative to the map's largest
# value, in float32):

# %%
# Three photos with three different targets, 16 steps: 48 path points in chunks of 20 on both
# sides, so that chunks mix images and steps. The other rules on the four Shapes images.
checks = [("IG gausslegendre (EfficientNet, 3 photos)", cl.integrated_gradients(model, x, pred, n_steps=16, batch_size=20),
           IntegratedGradients(model).attribute(x, target=pred, n_steps=16, internal_batch_size=20))]
for m, n in [("riemann_middle", 16), ("riemann_trapezoid", 17)]:
    ours = cl.integrated_gradients(shapes_model, sx, s_pred, n_steps=n, method=m, batch_size=20)
    theirs = IntegratedGradients(shapes_model).attribute(sx, target=s_pred, n_steps=n, method=m, internal_batch_size=20)
    if m == "riemann_trapezoid":
        ours_trap, theirs_trap = ours, theirs.detach()
        checks.append(("IG riemann_trapezoid (Shapes), 17 points, x 16/17", ours * 16 / 17, theirs))
    else:
        checks.append((f"IG {m} (Shapes CNN, 4 images)", ours, theirs))
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
    print(f"{name:<50} max |difference| / max |value| = {diff:.1e}  (tolerance {TOLERANCE:g})")
print(f"{'IG riemann_trapezoid (Shapes), 17 points, as they are':<50} max |difference| / max |value| = "
      f"{float((ours_trap - theirs_trap).abs().max() / theirs_trap.abs().max()):.3f}")

# %% [markdown]
# Integrated Gradients agrees with Captum to float32 rounding ($10^{-7}$) for Gauss-Legendre on
# three photos with three targets, and for the middle rule on the Shapes images: the same
# points and the same float32 weights, chunked differently (Captum splits its 20 rows by whole
# steps), which only changes the order of the sums. Captum's trapezoid does not agree, by
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
    distance = float((ours - theirs).norm() / theirs.norm())
    # Two independent estimates with the same error e are sqrt(2) e apart.
    print(f"n_samples = {n_samples:>3}: ||ours - Captum|| / ||Captum|| = {distance:.3f}, "
          f"so each estimate's own error is about {distance / math.sqrt(2):.2f}")

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
# | DeepLift on an operation without a rule (`torch.maximum`, attention, layer norm) | plain gradient, a warning when incomplete | plain gradient, no warning | check the gap (`return_delta`, `return_convergence_delta`) |
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
# samples, or eight here, leaves an error of about half the map's size (above, two independent
# estimates with 8 samples each are 0.66 apart, so each is off by about 0.47).
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
# - On EfficientNet-Lite0 the cat's score saturates within the first eighth of the path from
#   grey, so the integrand is a narrow, jagged spike (piecewise constant, for a piecewise-linear
#   network) and the gap falls slowly and irregularly with the number of steps: 9.1 percent
#   with Captum's default of 50 steps, 4.0 percent at 128. Measure the gap; the map's
#   direction changes less than its sum.
# - The baseline is part of the question. Pixels equal to it get zero; black and white give
#   opposite maps; maps from different baselines agree only when the baselines look alike.
# - DeepLift's rescale rule is complete after one forward and one backward pass, where it has
#   a rule for every nonlinearity (not on transformers: `course_lib` warns). It equals
#   Integrated Gradients for one layer of ReLUs, is closest to it on the Shapes CNN when the
#   baseline is near the image, and is nearly unrelated to it on EfficientNet-Lite0. Against
#   the exact Shapley values of the cat's 3 x 3 patches DeepLift is closer than IG (relative
#   error 0.51 against 0.74), though both are further off than an equal split (0.28). It is
#   not implementation invariant. Captum's DeepLift is silently
#   gradient x (input $-$ baseline) on ReLU6 networks.
# - Shapley values are the unique fair split of $f(x) - f(b)$, at $2^d$ model evaluations;
#   they can differ from Integrated Gradients where features interact. Permutation sampling
#   estimates them without bias at $d$ passes per draw, affordable over patches, not pixels.
#   DeepLiftShap and GradientSHAP average DeepLift and Integrated Gradients over a set of
#   baselines; on Shapes the patch sums of DeepLiftShap and of averaged IG are off the exact
#   values by 0.18 to 0.37 (relative error), GradientSHAP's with 64 draws by up to 0.45,
#   against 0.37 to 0.59 for a split that reads only the object masks.
# - `course_lib` agrees with Captum to float32 rounding where both compute the same thing, and
#   says where they do not (trapezoid weights, missing activation rules, random draws).
#
# ## Exercises
#
# The exercises for this chapter are in
# [`exercises/03_integrated_gradients.ipynb`](https://github.com/interpreting-neural-networks/course/blob/main/exercises/03_integrated_gradients.ipynb)
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/interpreting-neural-networks/course/blob/main/exercises/03_integrated_gradients.ipynb):
# write Integrated Gradients with the trapezoid rule from gradients, predict what a baseline
# does to the pixels equal to it, work out which image the zero baseline is under the
# ImageNet normalisation, compute a three-player Shapley value by hand, choose the number of
# steps for a target gap, and reason about an interaction Integrated Gradients and Shapley
# values split differently. The book's "How to use" page says how to fill them in and
# hand them in.
#
# ## References
#
# ```{footbibliography}
# ```
