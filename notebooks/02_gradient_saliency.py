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
# # 02. Gradient saliency
#
# The oldest question one can ask a differentiable model is also the cheapest: *if this pixel
# changed a little, how much would the class score change?* The answer is the gradient of the
# score with respect to the input, one backward pass away. This chapter computes it, draws it
# three ways, multiplies it by the input, and then smooths it by averaging over noisy copies
# of the image, the family of SmoothGrad, SmoothGrad-squared and VarGrad.
#
# **After this chapter you can**
# - compute vanilla gradients and gradient x input for a batch of images and check them
#   against Captum;
# - choose a channel reduction (max of absolute values, sum of absolute values, signed sum) and
#   say what each one hides;
# - use SmoothGrad and its variants, and choose the noise level and the number of samples with
#   numbers rather than taste;
# - recognise the pitfalls: saturated probabilities, models in training mode, gradients that
#   silently vanish.

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
import copy
import inspect
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from captum.attr import InputXGradient, NoiseTunnel, Saliency
from scipy.stats import spearmanr

import course_lib as cl
from course_lib import viz
from course_lib.core import input_gradients

cl.set_deterministic(seed=0, threads=2)
viz.use_style()

# With the internet (Colab) any name of cl.list_models() works here, e.g. "resnet50". Two
# statements below hold for this model only and change with it: its preprocessing maps
# [0, 1] to [-1, 1] (mean 0.5, std 0.5), so an input of zero is mid-grey (under ResNet's
# ImageNet mean and std, zero is the average ImageNet colour); and its activations are ReLU6.
imagenet = cl.load_model("efficientnet_lite0")
model, labels = imagenet.model, imagenet.labels
names = ["chelsea", "coffee", "motorcycle"]
x = torch.stack([imagenet.preprocess(cl.load_photo(n)) for n in names])
with torch.no_grad():
    logits = model(x)
pred = logits.argmax(dim=1)
for n, c, p in zip(names, pred, logits.softmax(dim=1).amax(dim=1)):
    print(f"{n:>10}: {labels[int(c)]} ({float(p):.2f})")

# %% [markdown]
# ## The idea: a local linear model
#
# Let $f_c(x)$ be the score (the logit) of class $c$ for an image $x \in \mathbb{R}^{C \times
# H \times W}$. Near $x$, a first-order Taylor expansion says
#
# $$ f_c(x + \delta) \approx f_c(x) + \nabla_x f_c(x) \cdot \delta . $$
#
# Each entry of the gradient $\nabla_x f_c(x)$ is the rate at which the score changes when one
# channel of one pixel changes. A large entry means the score is *sensitive* to that pixel
# {footcite}`simonyan2014deep`. That is sensitivity, not contribution: a pixel the model relies
# on heavily can have a small gradient if the score is saturated there. Keep the distinction in
# mind; Integrated Gradients (chapter 03) is built on it.
#
# The whole computation is one forward and one backward pass. This is the core that every
# gradient method in `course_lib` shares:

# %%
print(inspect.getsource(input_gradients))

# %% [markdown]
# Three details matter. The input is a detached *copy*, so the caller's tensor never gets
# `requires_grad` or a `.grad`. `torch.autograd.grad` returns the gradient instead of
# accumulating it into the parameters' `.grad`, so the model is left as it was. And summing
# the target scores of a batch gives each image its own gradient in one pass, because each
# score depends only on its own image (true in eval mode; in training mode batch normalisation
# mixes the images of a batch).
#
# Before trusting the gradient, check the promise of the Taylor expansion: for a small step
# $\delta = \varepsilon d$ along a random unit direction $d$, the change in score should match
# $\varepsilon\, \nabla_x f_c \cdot d$.

# %%
grad = cl.vanilla_gradient(model, x)  # N x 3 x 224 x 224, signed; target = predicted class
print("gradient:", tuple(grad.shape))

# In float64: in float32 the fifth decimal of these small changes differs from one CPU to another.
model64, x64 = copy.deepcopy(model).double(), x[:1].double()
grad64 = cl.vanilla_gradient(model64, x64, target=pred[:1])
direction = torch.randn(x64.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
direction /= direction.norm()
# Count the ReLU6 units whose piece (0, linear, 6) differs between x and x + eps * d.
def relu6_pieces(model, inputs):
    """For every ReLU6 output: 0 below the kink at 0, 1 on the linear piece, 2 at the cap of 6."""
    pieces = []
    hooks = cl.Hooks()
    for m in model.modules():
        if isinstance(m, torch.nn.ReLU6):
            hooks.forward_pre(m, lambda mod, args: pieces.append(
                (args[0] > 0).to(torch.int8) + (args[0] > 6).to(torch.int8)))
    with hooks, torch.no_grad():
        model(inputs)
    return torch.cat([p.flatten() for p in pieces])


base_pieces = relu6_pieces(model64, x64)
print(f"{'step eps':>9} {'change in score':>16} {'linear prediction':>18} {'relative error':>15} "
      f"{'ReLU6 units switched':>21}")
with torch.no_grad():
    base = model64(x64)[0, pred[0]]
    for eps in [1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6]:
        actual = float(model64(x64 + eps * direction)[0, pred[0]] - base)
        predicted = eps * float((grad64[0] * direction[0]).sum())
        switched = int((relu6_pieces(model64, x64 + eps * direction) != base_pieces).sum())
        print(f"{eps:>9.0e} {actual:>+16.4e} {predicted:>+18.4e} {abs(actual - predicted) / abs(predicted):>15.1e} "
              f"{switched:>21}")
print(f"ReLU6 units in the network for this image: {base_pieces.numel():,}")
print(f"a step of eps = 1 along a unit direction changes each input value by {1 / direction[0].numel() ** 0.5:.4f} "
      f"(root mean square); one 8-bit grey level is {2 / 255:.4f} in this model's input units")

# %% [markdown]
# Read the last column first. EfficientNet-Lite0 is *piecewise linear*: convolutions, batch
# normalisation (in eval mode an affine map), average pooling and the linear head are linear,
# and ReLU6, $\min(\max(0, z), 6)$, has two kinks. Between kinks the network is exactly
# linear, so as long as no unit switches piece the gradient predicts the change exactly, up to
# float64 rounding: that is the $10^{-6}$ step, where the relative error is below $10^{-6}$ and
# no unit switched. A step of $10^{-5}$ already moves one of the network's 6.2 million units
# across a kink and the relative error jumps to $5 \times 10^{-4}$; every switch bends the
# function, so the error grows with the step, and at $\varepsilon = 1$, with some 24,000 units
# switched, it is 17 percent. Even that largest step is invisible: it moves each input value by
# about a third of one 8-bit grey level (last line). The gradient is a description of the model in a tiny
# neighbourhood of the image, nothing more: the exact linear region around a real photo is
# smaller than any visible change.

# %% [markdown]
# ## From three channels to one map
#
# The gradient has one value per channel per pixel. To draw it as a heatmap we collapse the
# channels, and there are three common choices:
#
# | reduction | formula | keeps |
# |---|---|---|
# | `max_abs` | $\max_k \lvert \partial f_c / \partial x_{k,i,j} \rvert$ | magnitude of the most sensitive channel (the original saliency map) |
# | `sum_abs` | $\sum_k \lvert \partial f_c / \partial x_{k,i,j} \rvert$ | total magnitude over channels |
# | `signed` | $\sum_k \partial f_c / \partial x_{k,i,j}$ | direction: brightening the pixel raises (+) or lowers (-) the score |

# %% mystnb={"image": {"alt": "The cat photo (predicted tiger cat), then its gradient reduced over colour channels three ways, max_abs and sum_abs on an inferno scale and the signed sum on an orange-purple scale with orange meaning brightening raises the score; each with its own colour bar, clipped at the 99th percentile. The two absolute maps look almost the same; the signed map mixes orange and purple speckle on neighbouring pixels."}}
maps = {how: cl.reduce_channels(grad, how) for how in cl.REDUCTIONS}
shown = [0]  # one photo drawn at full resolution (keeps the page light); the numbers below cover all three
fig = viz.method_grid(
    x[shown], {how: m[shown] for how, m in maps.items()}, denormalize=imagenet.denormalize,
    signed={"signed": True}, row_titles=[labels[int(pred[i])] for i in shown], label="gradient",
)
plt.show()

# %% [markdown]
# The two absolute reductions look alike; the signed one, drawn with orange for "brightening
# this pixel raises the score" and purple for "lowers it", shows both signs side by side, often
# on neighbouring pixels of the same edge. To compare the maps with numbers we must compare like
# with like: a rank correlation between a signed map and an unsigned one mostly measures how
# many pixels are negative, not whether the maps agree. So we compare the *magnitudes*
# ($\lvert$signed$\rvert$ against the absolute reductions), with Spearman's $\rho$ over all
# pixels of each image, and we measure directly what the signed sum adds: how often the three
# colour channels of a pixel agree in sign, and how much of the total magnitude the sum keeps,
# $\sum_{ij} \lvert \sum_k g_{kij} \rvert \,/\, \sum_{ij} \sum_k \lvert g_{kij} \rvert$ (1 when
# the channels never disagree).

# %%
def rank_agreement(a, b):
    """Spearman rank correlation of two maps, per image of two N x H x W stacks."""
    return np.array([spearmanr(u.flatten(), v.flatten())[0] for u, v in zip(a, b)])


signs = torch.sign(grad)
same_sign = (signs == signs[:, :1]).all(dim=1).double().mean(dim=(1, 2))
kept = maps["signed"].abs().sum(dim=(1, 2)) / maps["sum_abs"].sum(dim=(1, 2))
comparisons = {
    "rho(max_abs, sum_abs)": rank_agreement(maps["max_abs"], maps["sum_abs"]),
    "rho(|signed|, sum_abs)": rank_agreement(maps["signed"].abs(), maps["sum_abs"]),
    "rho(|signed|, max_abs)": rank_agreement(maps["signed"].abs(), maps["max_abs"]),
    "pixels whose 3 channels share a sign": same_sign.numpy(),
    "magnitude kept by the signed sum": kept.numpy(),
}
print(f"{'':<38}" + "".join(f"{n:>12}" for n in names))
for what, values in comparisons.items():
    print(f"{what:<38}" + "".join(f"{v:>12.2f}" for v in values))

# %% [markdown]
# The absolute reductions rank the pixels almost identically ($\rho \ge 0.95$ on every photo).
# The signed sum's magnitude agrees with them less but still clearly ($\rho$ between 0.73 and
# 0.89): it is the same gradient, seen after the channels have been added. What it loses is
# measured in the last two rows: on the cat and the motorcycle only about a third of the pixels
# have all three channel gradients of one sign (half on the espresso), and the sum keeps 70 to
# 86 percent of the total magnitude; the rest cancels between channels that pull in opposite
# directions, a colour change rather than a brightness change. Which map to use depends on the
# question: *where is the model sensitive?* (an absolute reduction) or *which way does
# brightening this pixel push the score?* (signed). Whatever you pick, say so in the caption.

# %% [markdown]
# ## Gradient x input
#
# The gradient says how sensitive the score is; multiplying it by the input gives a rough
# estimate of each pixel's *contribution* relative to an input of zero
# {footcite}`shrikumar2016not`:
#
# $$ A_{k,i,j} = x_{k,i,j}\, \frac{\partial f_c}{\partial x_{k,i,j}}(x) . $$
#
# For a linear model $f_c(x) = w \cdot x + b$ this is exact: the contributions sum to
# $w \cdot x = f_c(x) - f_c(0)$, a property called *completeness*. For a network it is a
# first-order estimate. Note what "zero" means here: this model's preprocessing maps channel
# values from $[0, 1]$ to $[-1, 1]$, so zero is mid-grey, and gradient x input attributes
# relative to a grey image. That is a statement about this model's normalisation: with
# ResNet's ImageNet mean and standard deviation, zero is the average ImageNet colour, and the
# same method compares with another image. Chapter 03 makes this reference explicit as the
# *baseline*.

# %% mystnb={"image": {"alt": "The cat photo, the signed gradient (orange: brightening the pixel raises the score) and the signed gradient x input (orange: the pixel adds to the score relative to the grey image), both on an orange-purple scale, each with a colour bar. Gradient x input is near zero where the photo is close to mid-grey."}}
gxi = cl.gradient_x_input(model, x)
fig = viz.method_grid(
    x[shown],
    {"gradient (signed)": cl.reduce_channels(grad, "signed")[shown],
     "gradient x input (signed)": cl.reduce_channels(gxi, "signed")[shown]},
    denormalize=imagenet.denormalize,
    signed={"gradient (signed)": True, "gradient x input (signed)": True},
    sign_legend={"gradient x input (signed)": viz.CONTRIBUTION_LEGEND},
    row_titles=[names[i] for i in shown],
)
plt.show()

# %% [markdown]
# The two colour bars say different things. Orange in the gradient means "brightening this
# pixel raises the score"; orange in gradient x input means "this pixel, as it is, adds to the
# score relative to the grey image", and a dark pixel with a positive gradient is purple there.
# Where the image is close to mid-grey, gradient x input is close to zero whatever the
# gradient: the method cannot attribute to what is already at the reference.
#
# Does completeness hold? Compare the sum of the contributions with $f_c(x) - f_c(0)$, the
# change of the score from the grey image to the photo:

# %%
with torch.no_grad():
    score_x = logits.gather(1, pred[:, None])[:, 0]
    score_0 = model(torch.zeros_like(x)).gather(1, pred[:, None])[:, 0]
print(f"{'photo':>10} {'f(x)':>7} {'f(0)':>7} {'f(x) - f(0)':>12} {'sum of grad x input':>20} "
      f"{'local bias b(x)':>16}")
for n, fx, f0, total in zip(names, score_x, score_0, gxi.sum(dim=(1, 2, 3))):
    print(f"{n:>10} {float(fx):>7.2f} {float(f0):>7.2f} {float(fx - f0):>12.2f} {float(total):>20.2f} "
          f"{float(fx - total):>16.2f}")

# %% [markdown]
# The contributions do not add up: the scores rose by 8 to 11 from the grey image, yet gradient
# x input credits the pixels with a total of -1.85 for the cat, +1.04 for the espresso and
# -1.20 for the motorcycle. For two of the three photos even the sign is wrong.
#
# The last column says why. Inside the linear region around $x$ (no ReLU6 switches piece, as
# the Taylor check showed) the network is an affine function,
# $f_c(x) = \nabla f_c(x) \cdot x + b_c(x)$, where the *local bias* $b_c(x)$ collects every
# bias, batch-norm shift and saturated ReLU6 (a constant 6) along the active paths. Gradient x
# input sums to $\nabla f_c(x) \cdot x = f_c(x) - b_c(x)$: it explains the score minus the
# local bias, and here the local bias (9.3 to 11.1) is comparable to the whole score (10.4 of
# 11.4 for the espresso) or larger than it (the cat and the motorcycle). The bias of the
# region around $x$ is not $f_c(0)$, because the grey image lies in another region with other
# active units. A linear model has one region, which is why completeness held there.
#
# Chapter 03 repairs this with Integrated Gradients: instead of one gradient at $x$, it
# integrates the gradients along the straight path from the baseline (here the grey image) to
# $x$, crossing all the regions in between, and the contributions then add up to
# $f_c(x) - f_c(\text{baseline})$ by construction, up to the error of approximating the
# integral with finitely many steps, which chapter 03 measures.
#
# ### Checking against Captum
#
# Captum {footcite}`kokhlikyan2020captum` is what you would use in practice. Our functions must give
# the same numbers: `Saliency(abs=False)` is the signed gradient, `Saliency()` its absolute value,
# `InputXGradient` gradient x input.

# %%
target = pred.tolist()
x_captum = x.clone().requires_grad_(True)  # Captum expects inputs that require gradients
checks = {
    "vanilla_gradient vs Saliency(abs=False)":
        (grad, Saliency(model).attribute(x_captum, target=target, abs=False)),
    "max_abs reduction vs Saliency() + max":
        (maps["max_abs"], Saliency(model).attribute(x_captum, target=target).amax(dim=1)),
    "gradient_x_input vs InputXGradient":
        (gxi, InputXGradient(model).attribute(x_captum, target=target)),
}
for name, (ours, theirs) in checks.items():
    print(f"{name:<42} max |difference| = {float((ours - theirs.detach()).abs().max()):.2e}")

# %% [markdown]
# The differences are exactly zero: both compute the same backward pass.

# %% [markdown]
# ## SmoothGrad and its relatives
#
# Vanilla gradient maps are speckled. Part of the speckle is real: the gradient of a ReLU
# network jumps as units switch on and off, so it changes abruptly between neighbouring
# inputs. SmoothGrad {footcite}`smilkov2017smoothgrad` averages it away by averaging the gradient
# over $n$ noisy copies of the image:
#
# $$ \hat M_c(x) = \frac{1}{n} \sum_{i=1}^{n} \nabla_x f_c(x + \epsilon_i),\qquad
#    \epsilon_i \sim \mathcal{N}(0, \sigma^2),\qquad \sigma = \text{noise level} \times (x_{\max} - x_{\min}). $$
#
# Two variants change the statistic. **SmoothGrad-squared** averages the squared gradient,
# $\frac1n \sum_i (\nabla f_c(x+\epsilon_i))^2$, which is non-negative and emphasises the large
# values. **VarGrad** {footcite}`adebayo2018local` takes their variance,
# $\frac1n \sum_i (\nabla f_c(x+\epsilon_i))^2 - \hat M_c(x)^2$. The target class is fixed on
# the clean image, so every noisy copy explains the same class.
#
# Here is the implementation; `batch_size` sets how many noisy copies go through the model at
# once.

# %%
print(inspect.getsource(cl.noise_tunnel))

# %% [markdown]
# SmoothGrad is nothing but an average, so before calling the library we compute it by hand:
# 50 noisy copies of the cat at noise level 0.15, and the gradient of each for the class
# predicted on the *clean* image (a noisy copy may be classified differently; we still ask
# about the cat's class). `smoothgrad` draws all its noise at once from a generator seeded with
# `seed`, so the first 16 of our copies carry exactly the noise of `smoothgrad(n_samples=16)`,
# and the two averages must agree.

# %%
cat, cat_class = x[:1], int(pred[0])
n_noisy = 50
sigma = float(cl.noise_stdev(cat, 0.15))
noise = torch.randn((n_noisy, *cat.shape[1:]), generator=torch.Generator().manual_seed(0))
noisy_grads = torch.cat([cl.vanilla_gradient(model, cat + sigma * chunk, target=cat_class)
                         for chunk in noise.split(10)])  # 50 x 3 x 224 x 224

ours16 = cl.smoothgrad(model, cat, n_samples=16, noise_level=0.15, batch_size=16)
print(f"noise sigma = {sigma:.3f} (0.15 of the input range {float(cat.max() - cat.min()):.2f})")
print("hand-made mean of the first 16 == smoothgrad(n_samples=16):",
      torch.allclose(noisy_grads[:16].mean(dim=0, keepdim=True), ours16, atol=1e-6))

# %% [markdown]
# From the same 50 gradients we get every statistic of the family. Besides SmoothGrad as
# defined (average the signed gradient, then take the magnitude for drawing), we also average
# the *magnitude* $\lvert\nabla f_c\rvert$ of each noisy gradient: the two differ only in where
# the absolute value is taken, and that turns out to matter. All maps use the `max_abs`
# reduction, each with its own colour scale:

# %% mystnb={"image": {"alt": "Three maps of the cat side by side, each with its own inferno colour bar: SmoothGrad (magnitude of the mean signed gradient over 50 noisy copies), the mean of gradient magnitudes, and SmoothGrad-squared. The mean of magnitudes and SmoothGrad-squared are smooth and bright on the eyes and nose; SmoothGrad of signed gradients is a fine speckle, more speckled than the vanilla map above."}}
mean = noisy_grads.mean(dim=0, keepdim=True)
mean_abs = noisy_grads.abs().mean(dim=0, keepdim=True)
mean_sq = noisy_grads.pow(2).mean(dim=0, keepdim=True)
family = {
    "vanilla |g|": maps["max_abs"][:1],
    "SmoothGrad |mean g|": cl.reduce_channels(mean, "max_abs"),
    "mean |g|": cl.reduce_channels(mean_abs, "max_abs"),
    "SmoothGrad-sq mean g²": cl.reduce_channels(mean_sq, "max_abs"),
    "VarGrad": cl.reduce_channels(mean_sq - mean**2, "max_abs"),
}
# The photo and the vanilla map are in the figure above, and VarGrad is drawn only as a number
# below (it looks like SmoothGrad-squared, for a reason measured there).
fig, axes = plt.subplots(1, 3, figsize=(10.2, 2.8), layout="constrained")
for ax, name in zip(axes, ["SmoothGrad |mean g|", "mean |g|", "SmoothGrad-sq mean g²"]):
    viz.show_heatmap(ax, family[name][0], title=name, label="gradient²" if "sq" in name else "|gradient|")
plt.show()

# %% [markdown]
# To put a number on "speckled", use the *neighbour correlation* of a map: the correlation
# between each pixel and the one beside it (averaged over the horizontal and vertical
# neighbours). Pure speckle scores 0, a smooth map close to 1.

# %%
def neighbour_correlation(m):
    """Mean correlation of each pixel with its right and lower neighbour, for N x H x W maps."""
    values = []
    for v in m.double():
        pairs = [(v[1:, :], v[:-1, :]), (v[:, 1:], v[:, :-1])]
        values += [torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1] for a, b in pairs]
    return float(torch.stack(values).mean())


for name, m in family.items():
    print(f"{name:<22} neighbour correlation {neighbour_correlation(m):.3f}")
share = float((mean**2).sum() / mean_sq.sum())
print(f"\nsquared mean / mean square, summed over pixels: {share:.3f}")

# %% [markdown]
# Averaging the magnitudes works as the paper promises: `mean |g|` (0.70) is much smoother
# than the vanilla gradient (0.44) and concentrates on the face. SmoothGrad as defined, with
# the same 50 samples, is *more* speckled than the vanilla gradient (0.29): the signed
# gradients of the noisy copies point in very different directions, their average is small, and
# what is left of it is mostly Monte Carlo noise. On this model and this image, then, where the
# absolute value is taken decides whether SmoothGrad smooths at the paper's sample count; how
# many samples the signed average would need is the subject of the next measurement. (Captum's
# `NoiseTunnel(Saliency(model))` takes the absolute value first, because `Saliency` returns
# $\lvert g\rvert$ by default: see the check below.)
#
# SmoothGrad-squared {footcite}`hooker2019benchmark` and VarGrad (not drawn) look alike, with
# neighbour correlations of 0.629 and 0.626, for a measured reason: VarGrad is the mean square minus the squared mean, and the squared mean is only
# 3.4 percent of the mean square here, so VarGrad is SmoothGrad-squared minus a few percent.
# The two can only differ where the noisy gradients agree in sign, which on this image they
# rarely do.

# %% [markdown]
# ### How many samples?
#
# SmoothGrad is a Monte Carlo estimate of an expectation, so its error should shrink like
# $1/\sqrt{n}$. Compare the running mean after $n$ samples with the mean of all 50, for each
# statistic:

# %%
counts = [1, 2, 4, 8, 16, 25]
steps = torch.arange(1, n_noisy + 1).view(-1, 1, 1, 1)
running = {"SmoothGrad (mean g)": noisy_grads.cumsum(dim=0) / steps,
           "mean |g|": noisy_grads.abs().cumsum(dim=0) / steps,
           "SmoothGrad-sq (mean g²)": noisy_grads.pow(2).cumsum(dim=0) / steps}
errors = {}
for name, r in running.items():
    errors[name] = [float((r[k - 1] - r[-1]).norm() / r[-1].norm()) for k in counts]
    print(f"{name:<24}", " ".join(f"n={k}: {e:.2f}" for k, e in zip(counts, errors[name])))

# %% mystnb={"image": {"alt": "Log-log plot of the relative distance of the running mean after n samples to the mean of 50 samples, for n from 1 to 25: SmoothGrad of signed gradients starts near 5 and falls roughly like one over the square root of n (a grey dashed reference line); the mean of magnitudes and SmoothGrad-squared start lower, below 2, and fall similarly."}}
fig, ax = plt.subplots(figsize=(4.6, 3.2), layout="constrained")
for name, errs in errors.items():
    ax.loglog(counts, errs, "o-", label=name)
ax.loglog(counts, errors["SmoothGrad (mean g)"][0] / np.sqrt(counts), "--", color="grey",
          label=r"$\propto 1/\sqrt{n}$")
ax.set_xlabel("samples n")
ax.set_ylabel(f"relative distance to n = {n_noisy}")
ax.legend()
plt.show()

# %% [markdown]
# One noisy signed gradient is several times larger than the average it estimates, and the
# error of the running mean falls roughly like $1/\sqrt{n}$: every halving costs four times the
# samples, each a forward and a backward pass. At $n = 25$ the signed average is still 0.77 of
# its own size away from the 50-sample mean, so even 50 samples leave it dominated by Monte
# Carlo error here: on this ReLU6 network and this photo the signed gradients cancel so much
# (their mean is a few percent of a single gradient) that the paper's sample count of about
# 50 is far too few. Magnitudes and squares cannot cancel, so their averages settle faster:
# at $n = 8$, 0.30 for the mean of magnitudes against 1.71 for the signed mean. (The last points
# of each curve are optimistic: the reference contains the samples being compared.)
#
# ### Does it localise better? Measured where the object is known
#
# Smoothness is not correctness, and a smooth map is not yet a faithful one. On the course's
# Shapes images we know which pixels belong to the object (not which pixels this model uses:
# that question is chapter 08's), so we can ask how much of a map's total mass falls on the
# object. A uniform or random map scores the share of the image the object covers (printed
# below). SmoothGrad on the small Shapes CNN, averaging signed gradients as defined, with 50
# samples per image, on 32 test images; we count how many noisy copies the model no longer
# classifies correctly, and repeat the two low noise levels with a second noise seed to see how
# much of the result is Monte Carlo error.

# %%
shapes = cl.load_model("shapes_cnn")
test = cl.load_dataset("shapes", n=32, seed=900000).batch  # the held-out test seed
xs, ys, masks = shapes.preprocess(test.images), test.labels, test.masks.double()
vanilla_shapes = cl.vanilla_gradient(shapes.model, xs, target=ys, reduce="max_abs")
on_vanilla = cl.share_on_mask(vanilla_shapes, test.masks)
print(f"share of the image covered by the object: {float(masks.mean(dim=(1, 2)).mean()):.3f} on average")


def smoothgrad_on_object(level, noise_seed):
    """SmoothGrad (signed mean, then max_abs) and mean |g| of the 32 images, their mass on the
    object, and how many of the noisy copies are misclassified."""
    sd = cl.noise_stdev(xs, level).view(-1, 1, 1, 1)
    shape_noise = torch.randn((50, *xs.shape[1:]), generator=torch.Generator().manual_seed(noise_seed))
    total, total_abs, wrong = torch.zeros_like(xs), torch.zeros_like(xs), 0
    for e in shape_noise:
        noisy = xs + sd * e
        g = cl.vanilla_gradient(shapes.model, noisy, target=ys)  # target fixed: the true class
        total, total_abs = total + g, total_abs + g.abs()
        with torch.no_grad():
            wrong += int((shapes.model(noisy).argmax(dim=1) != ys).sum())
    sg = cl.reduce_channels(total / 50, "max_abs")
    on_abs = cl.share_on_mask(cl.reduce_channels(total_abs / 50, "max_abs"), test.masks)
    return sg, cl.share_on_mask(sg, test.masks), on_abs, wrong


print(f"{'noise':>6} {'copies misclassified':>21} {'SmoothGrad on object':>21} {'better than vanilla':>20} "
      f"{'mean |g| on object':>19}")
print(f"{0:>6} {'0 %':>21} {float(on_vanilla.mean()):>14.3f} ± {float(on_vanilla.std()):.3f}")
sweep_maps = {"noise 0": vanilla_shapes[:2]}
on_sg_by_level = {}
for level in [0.05, 0.1, 0.2, 0.4]:
    sg, on_sg, on_abs, wrong = smoothgrad_on_object(level, noise_seed=1)
    on_sg_by_level[level] = on_sg
    sweep_maps[f"noise {level:g}"] = sg[:2]
    print(f"{level:>6} {100 * wrong / (50 * len(xs)):>19.0f} % {float(on_sg.mean()):>14.3f} ± "
          f"{float(on_sg.std()):.3f} {int((on_sg > on_vanilla).sum()):>14} of 32 "
          f"{float(on_abs.mean()):>12.3f} ± {float(on_abs.std()):.3f}")

# %%
for level in [0.05, 0.1]:
    _, again, _, _ = smoothgrad_on_object(level, noise_seed=2)
    change = (again - on_sg_by_level[level]).abs()
    print(f"noise {level}: with another noise seed, mass on the object {float(again.mean()):.3f} "
          f"(per image it moves by at most {float(change.max()):.3f}); better than vanilla on "
          f"{int((again > on_vanilla).sum())} of 32")

# %% mystnb={"image": {"alt": "Two Shapes test images (a dotted red cross and a plain red square) and their SmoothGrad maps at noise levels 0, 0.05, 0.1, 0.2 and 0.4, each on its own inferno colour bar. Up to 0.1 the maps follow the object's outline; at 0.2 and 0.4 the mass spreads over the background."}}
fig = viz.method_grid(test.images[:2], sweep_maps, row_titles=[shapes.labels[int(c)] for c in ys[:2]],
                      shared_scale=False, label="|gradient|")
plt.show()

# %% [markdown]
# At low noise (0.05 and 0.1 of the input range, no copy misclassified) SmoothGrad puts more
# of its mass on the object than the vanilla gradient: 0.44 against 0.39 on average, and the
# gain is not one lucky image: it holds for 32 and 31 of the 32 images (third column), and it
# is not Monte Carlo luck either: with another noise seed each image's score moves by far less
# than the gain (the lines above the figure). Here, on this small network, SmoothGrad as
# defined works with 50 samples. Averaging the magnitudes (last column) helps little at 0.05
# and not at all at 0.1, although it was the smoother map on the cat: smoothness and
# localisation are different properties, and each needs its own measurement.
# Past a noise level of about 0.2 the copies stop looking like the image to the model (44
# percent of them are misclassified at 0.2, 80 percent at 0.4), and the map spreads over the
# background: it now answers "where would *some* input near here be sensitive?", not "where is
# this image's evidence?". The figure shows the same drift.
#
# The ImageNet model tells the same story through its predictions. Here is how many of 50
# noisy copies of the cat keep the clean prediction, and how many stay within ImageNet's five
# domestic-cat classes (indices 281 to 285):

# %%
with torch.no_grad():
    top3 = model(cat).softmax(dim=1)[0].topk(3)
    print("clean image:", ", ".join(f"{labels[int(i)]} {float(p):.2f}" for p, i in zip(*top3)))
    for level in [0.05, 0.15, 0.3, 0.6]:
        sd = float(cl.noise_stdev(cat, level))
        p = torch.cat([model(cat + sd * chunk).argmax(dim=1) for chunk in noise.split(25)])
        cats = int(((p >= 281) & (p <= 285)).sum())
        top = labels[int(p.mode().values)]
        print(f"noise {level:<5} same class as clean: {int((p == cat_class).sum()):>2}/50   a cat class: "
              f"{cats:>2}/50   most common: {top}")

# %% [markdown]
# The cat is a borderline case between cat classes (the first line), so many copies switch to
# another *cat* class, at low noise as at moderate noise; that is harmless for the map, because
# the target stays fixed on the clean prediction. What matters is the second count: up to 0.3
# nearly every copy is still a cat, at 0.6 none is, and the average then describes other images.
# {footcite}`smilkov2017smoothgrad` recommend 10 to 20 percent of the input range. On the
# Shapes CNN localisation was best at 0.05 to 0.1 and failed by 0.2; the cat's copies stay cats
# up to 0.3. The useful range depends on the model and the image: measure it rather than copy
# the number.
#
# ### Checking against Captum's NoiseTunnel
#
# Captum wraps any attribution method in `NoiseTunnel`. Its defaults differ from ours in two
# ways that change the result. `stdevs` is an *absolute* standard deviation (default 1.0), not
# a fraction of the input range: the cat's input values span 1.68, so 1.0 is a noise level of
# 0.6, where no copy of the cat is a cat any more (above), so we pass our $\sigma$. And `Saliency`
# returns $\lvert g\rvert$ unless `abs=False`, so `NoiseTunnel(Saliency(model))` averages
# magnitudes (our `mean |g|`), not signed gradients (SmoothGrad as defined). Captum draws its
# noise from the global generator in chunks of `nt_samples_batch_size` copies; seeding that
# generator with our seed gives the same noise as our single draw (chunk by chunk or at once,
# the same numbers come out when a copy's size, here 3 x 224 x 224, is a multiple of 16). We
# check with chunks of 2 copies for 4 samples, so Captum's chunking is exercised. The check is
# per image on purpose: on a batch the two differ by design. Captum takes one absolute `stdevs`
# for the whole batch and draws different noise for each example; `course_lib` scales
# $\sigma$ to each image's own range and gives every example the same draws, so that a batch
# gives exactly the maps its images give one by one.

# %%
for kind, ours_fn in [("smoothgrad", cl.smoothgrad), ("smoothgrad_sq", cl.smoothgrad_squared),
                      ("vargrad", cl.vargrad)]:
    ours = ours_fn(model, cat, n_samples=4, noise_level=0.15, batch_size=4, seed=7)
    torch.manual_seed(7)
    theirs = NoiseTunnel(Saliency(model)).attribute(
        cat, nt_type=kind, nt_samples=4, nt_samples_batch_size=2, stdevs=sigma,
        target=cat_class, abs=False)
    print(f"{kind:<14} max |difference| = {float((ours - theirs).abs().max()):.2e}   "
          f"(largest value {float(ours.abs().max()):.2e}; tolerance 1e-5)")
torch.manual_seed(7)
default_abs = NoiseTunnel(Saliency(model)).attribute(cat, nt_type="smoothgrad", nt_samples=4,
                                                   nt_samples_batch_size=2, stdevs=sigma, target=cat_class)
by_hand = torch.stack([cl.vanilla_gradient(model, cat + sigma * e, target=cat_class)[0].abs()
                       for e in torch.randn((4, *cat.shape[1:]), generator=torch.Generator().manual_seed(7))]).mean(0)
print(f"Saliency's default abs=True: the mean of |g|, max |difference| = "
      f"{float((default_abs[0] - by_hand).abs().max()):.2e}")

# %% [markdown]
# ## Pitfalls
#
# **Explaining the probability instead of the logit.** The softmax saturates: when the model is
# sure, the probability barely moves whatever the pixels do, and its gradient shrinks towards
# zero. Compare the gradient norms for the espresso, which the model is sure of, and the
# motorcycle, which it is not:

# %%
prob_model = torch.nn.Sequential(model, torch.nn.Softmax(dim=1)).eval()
g_logit = cl.vanilla_gradient(model, x[1:], target=pred[1:].tolist())
g_prob = cl.vanilla_gradient(prob_model, x[1:], target=pred[1:].tolist())
probs = torch.softmax(logits[1:], dim=1).amax(dim=1)
for n, p, gl, gp in zip(names[1:], probs, g_logit, g_prob):
    print(f"{n:>10}: p = {float(p):.2f}   |grad logit| = {float(gl.norm()):.3f}   "
          f"|grad probability| = {float(gp.norm()):.4f}   ratio {float(gp.norm() / gl.norm()):.3f}")

# %% mystnb={"image": {"alt": "The espresso's max_abs gradient maps for the logit and for the probability, side by side on one shared inferno scale with one colour bar: the logit map shows bright speckle on the cup, the probability map is nearly black."}}
shared = {"|grad logit|": cl.reduce_channels(g_logit, "max_abs"),
          "|grad probability|": cl.reduce_channels(g_prob, "max_abs")}
scale = viz.map_scale([m[0] for m in shared.values()])  # one scale for the espresso's two maps
fig, axes = plt.subplots(1, 2, figsize=(6.4, 2.8), layout="constrained")
for ax, (name, m) in zip(axes, shared.items()):
    artist = viz.show_heatmap(ax, m[0], title=f"espresso: {name}", vmax=scale, colorbar=False)
viz.add_colorbar(artist, list(axes), clipped=True, clip_percentile=99, label="|gradient|, one scale")
plt.show()
for n, a, b in zip(names[1:], *shared.values()):
    print(f"{n:>10}: rank correlation of the two maps {rank_agreement(a[None], b[None])[0]:.2f}")

# %% [markdown]
# The probability's gradient is the logit's gradient scaled (roughly) by $p(1-p)$ plus terms
# from the other classes. On one shared scale the confident espresso's probability map all but
# disappears (the figure), for a reason that has nothing to do with the image; drawn each on its own scale,
# the two maps would look alike, because they rank the pixels similarly (last lines): the
# difference is in the magnitude, which per-map colour scales hide. The course explains logits
# unless a chapter says otherwise.
#
# **A model in training mode.** Dropout and batch normalisation in training mode make every
# map different and let the images of a batch influence each other. Every course method warns:

# %%
model.train()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    cl.vanilla_gradient(model, x[:1])
model.eval()
print(caught[0].message)

# %% [markdown]
# **A gradient read from a detached tensor.** `tensor.detach()` cuts the graph; a gradient
# asked of anything computed from it is `None`, and code that turns `None` into zeros reports
# a map (or a TCAV score) of exactly zero without any error. `course_lib` never detaches
# before differentiating and asks `torch.autograd.grad` for the gradient, which raises
# instead of returning nothing.
#
# **Hooks and modified models.** Gradient saliency needs no hooks, but the methods of later
# chapters do. A hook left on a model changes every later result on it; `course_lib` removes
# its hooks in `finally`, and its tests check that no hook, mode, `requires_grad` or `.grad`
# changes, even when a method fails half-way.
#
# **In-place activations.** Tutorials often turn off `inplace=True` ReLUs because *module*
# backward hooks break on them. Input gradients do not need hooks; the tests run every method
# on models with `ReLU(inplace=True)` and with `ReLU6`, the activation of this chapter's model.
#
# **Sensitivity is not importance.** Gradients answer a local question. A pixel can matter a
# great deal while the gradient there is small (saturation), and the maps can look convincing
# for a model that has learned nothing: chapter 08 checks them with randomised models
# {footcite}`adebayo2018sanity,kindermans2019unreliability`.

# %% [markdown]
# ## Summary
#
# - The vanilla gradient is the sensitivity of a class score to each input value: one backward
#   pass, batched, and an exact linear model of the network only inside the tiny region where
#   no ReLU6 switches piece.
# - How the channels are collapsed changes the picture: the absolute reductions rank pixels
#   almost identically; the signed sum shows direction, and loses the part of the gradient on
#   which the colour channels disagree.
# - Gradient x input is complete for a linear model only. On this network its contributions do
#   not add up to the change of score from the grey image, and for two of three photos not even
#   its sign: the local bias is missing. Chapter 03's Integrated Gradients fixes this.
# - SmoothGrad's signed average needs many samples where gradients cancel: on the cat even 50
#   left it more speckled than the plain gradient, while averaging magnitudes smoothed it. On
#   the Shapes CNN, SmoothGrad as defined put more mass on the object at low noise, on nearly
#   every image, and less once the noisy copies were misclassified.
#   SmoothGrad-squared and VarGrad differ by the squared mean, a few percent here.
# - Every function here agrees with Captum, once Captum's absolute `stdevs` and default
#   `abs=True` are accounted for.
#
# ## Exercises
#
# The exercises for this chapter are in
# [`exercises/02_gradient_saliency.ipynb`](https://github.com/interpreting-neural-networks/course/blob/main/exercises/02_gradient_saliency.ipynb)
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/interpreting-neural-networks/course/blob/main/exercises/02_gradient_saliency.ipynb):
# predict and verify what a reduction hides, find the bug in a SmoothGrad implementation,
# choose a noise level for a stated question, and write SmoothGrad yourself. The book's
# "How to use" page says how to fill them in and hand them in.
#
# ## References
#
# ```{footbibliography}
# ```
