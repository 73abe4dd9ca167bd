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
# # Gradient saliency
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
import sys

if "google.colab" in sys.modules:  # Colab: install the course's package once per session
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q",
         "course_lib @ git+https://github.com/interpreting-neural-networks/course@main"],
        check=True,
    )

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

imagenet = cl.load_model("efficientnet_lite0")  # on Colab, try "resnet50"
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
with torch.no_grad():
    base = model64(x64)[0, pred[0]]
    for eps in [1.0, 0.1, 0.01]:
        actual = model64(x64 + eps * direction)[0, pred[0]] - base
        predicted = eps * (grad64[0] * direction[0]).sum()
        print(f"eps={eps:<5} change in score {float(actual):+.5f}  linear prediction {float(predicted):+.5f}")

# %% [markdown]
# For small steps the linear prediction is close to the actual change; for large steps it is
# not. The gradient describes the model in an infinitesimal neighbourhood of the image, nothing
# more.

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

# %%
maps = {how: cl.reduce_channels(grad, how) for how in cl.REDUCTIONS}
fig = viz.method_grid(
    x, maps, denormalize=imagenet.denormalize, signed={"signed": True},
    row_titles=[labels[int(c)] for c in pred], cell=1.5,
)
plt.show()

# %% [markdown]
# The two absolute reductions look alike; the signed one looks different, with positive and
# negative values side by side, often on neighbouring pixels of the same edge. Rank
# correlations make "alike" precise (Spearman's $\rho$ over all pixels, averaged over the three
# images):

# %%
def rank_agreement(a, b):
    """Mean Spearman rank correlation between two N x H x W stacks of maps."""
    return float(np.mean([spearmanr(u.flatten(), v.flatten())[0] for u, v in zip(a, b)]))


pairs = [("max_abs", "sum_abs"), ("max_abs", "signed"), ("sum_abs", "signed")]
for a, b in pairs:
    print(f"rho({a}, {b}) = {rank_agreement(maps[a], maps[b]):.3f}")

# %% [markdown]
# The absolute reductions rank pixels almost identically; the signed sum is nearly unrelated
# to them because its sign flips across edges, so its magnitude and the absolute maps'
# magnitude disagree where channels cancel. Which to use depends on the question: *where is the
# model sensitive?* (absolute) or *which way does this pixel push?* (signed). Whatever you
# pick, say so in the caption: the three are different pictures of the same gradient.

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
# $f_c(x) - f_c(0)$. For a network it is a first-order estimate. Note what "zero" means here:
# the preprocessing maps channel values from $[0, 1]$ to $[-1, 1]$, so zero is mid-grey, and
# gradient x input attributes relative to a grey image; under another normalisation the same
# method would compare with another image. Chapter 03 makes this reference explicit as the
# *baseline*.

# %%
gxi = cl.gradient_x_input(model, x)
fig = viz.method_grid(
    x,
    {"gradient (signed)": cl.reduce_channels(grad, "signed"),
     "gradient x input (signed)": cl.reduce_channels(gxi, "signed")},
    denormalize=imagenet.denormalize,
    signed={"gradient (signed)": True, "gradient x input (signed)": True},
    cell=1.6,
)
plt.show()

# %% [markdown]
# Where the image is close to mid-grey, gradient x input is close to zero whatever the
# gradient: the method cannot attribute to what is already at the reference.
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
# values. **VarGrad** {footcite}`adebayo2018sanity` takes their variance,
# $\frac1n \sum_i (\nabla f_c(x+\epsilon_i))^2 - \hat M_c(x)^2$. The target class is fixed on
# the clean image, so every noisy copy explains the same class.
#
# Here is the implementation; `batch_size` sets how many noisy copies go through the model at
# once.

# %%
print(inspect.getsource(cl.noise_tunnel))

# %% [markdown]
# SmoothGrad is nothing but an average, so before calling the library let us compute it by
# hand: 48 noisy copies of the cat, their gradients, and the running mean. `smoothgrad` draws
# all its noise at once from a generator seeded with `seed`; our first draw of 16 copies is
# exactly the noise of `smoothgrad(n_samples=16)`, so the two averages must agree. Then we
# draw 32 more from the same generator.

# %%
cat, cat_class = x[:1], int(pred[0])
sigma = float(cl.noise_stdev(cat, 0.15))
generator = torch.Generator().manual_seed(0)
noisy_grads = []
for copies in [16, 32]:
    noise = torch.randn((copies, *cat.shape[1:]), generator=generator)
    noisy_grads.append(cl.vanilla_gradient(model, cat + sigma * noise, target=cat_class))
noisy_grads = torch.cat(noisy_grads)  # 48 x 3 x 224 x 224
n_total = len(noisy_grads)

ours16 = cl.smoothgrad(model, cat, n_samples=16, noise_level=0.15, batch_size=16)
print(f"noise sigma = {sigma:.3f} (0.15 of the input range)")
print("hand-made mean of the first 16 == smoothgrad(n_samples=16):",
      torch.allclose(noisy_grads[:16].mean(dim=0, keepdim=True), ours16, atol=1e-6))

# %% [markdown]
# From the same 48 gradients we get all three statistics, and can draw them beside the
# vanilla gradient:

# %%
mean, mean_sq = noisy_grads.mean(dim=0, keepdim=True), noisy_grads.pow(2).mean(dim=0, keepdim=True)
family = {
    "vanilla": maps["max_abs"][:1],
    "SmoothGrad": cl.reduce_channels(mean, "max_abs"),
    "SmoothGrad-sq": cl.reduce_channels(mean_sq, "max_abs"),
    "VarGrad": cl.reduce_channels(mean_sq - mean**2, "max_abs"),
}
fig = viz.method_grid(cat, family, denormalize=imagenet.denormalize, cell=2.0)
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
    print(f"{name:<14} neighbour correlation {neighbour_correlation(m):.3f}")

# %% [markdown]
# The squared and variance variants are clearly smoother than the vanilla gradient and pick
# out the eyes and the nose. Plain SmoothGrad, even with 48 samples, is *more* speckled than
# the vanilla gradient. The next measurement shows why.

# %% [markdown]
# ### How many samples?
#
# SmoothGrad is a Monte Carlo estimate of an expectation, so its error should shrink like
# $1/\sqrt{n}$. Compare the running mean after $n$ samples with the mean of all 48, for
# SmoothGrad and for SmoothGrad-squared:

# %%
counts = [1, 2, 4, 8, 16, 24]
steps = torch.arange(1, n_total + 1).view(-1, 1, 1, 1)
running = {"SmoothGrad": noisy_grads.cumsum(dim=0) / steps,
           "SmoothGrad-sq": noisy_grads.pow(2).cumsum(dim=0) / steps}
errors = {}
for name, r in running.items():
    errors[name] = [float((r[k - 1] - r[-1]).norm() / r[-1].norm()) for k in counts]
    print(name, " ".join(f"n={k}: {e:.2f}" for k, e in zip(counts, errors[name])))

# %%
fig, ax = plt.subplots(figsize=(4, 2.8))
for name, errs in errors.items():
    ax.loglog(counts, errs, "o-", label=name)
ax.loglog(counts, errors["SmoothGrad"][0] / np.sqrt(counts), "--", color="grey", label=r"$\propto 1/\sqrt{n}$")
ax.set_xlabel("samples n")
ax.set_ylabel(f"relative distance to n = {n_total}")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# Read the SmoothGrad curve first. One noisy gradient is several times larger than the
# average it estimates: the gradients of the noisy copies point in very different directions
# and mostly cancel. The error falls roughly like $1/\sqrt{n}$, so every halving of the error
# costs four times the samples, and each sample is a forward and a backward pass. That is why
# SmoothGrad with a handful of samples can look *noisier* than the vanilla gradient, and why
# the paper used around 50. SmoothGrad-squared averages positive numbers that cannot cancel,
# so it settles much sooner. (The last points of each curve are optimistic: the reference
# contains the samples being compared.)
#
# ### How much noise?
#
# The noise level trades detail for stability. Too little, and the map is the vanilla
# gradient; too much, and the noisy copies no longer look like the image, so the map blurs
# into the model's general preferences. {footcite}`smilkov2017smoothgrad` recommend 10 to 20
# percent of the input range; measure it on your model rather than trusting the number. Here
# with SmoothGrad-squared, which converges with few samples:

# %%
levels = [0.05, 0.15, 0.3, 0.6]
sweep = {"noise 0 (vanilla)": maps["max_abs"][:1]}
sweep |= {f"noise {lv:g}": cl.smoothgrad_squared(model, cat, n_samples=12, noise_level=lv, batch_size=12,
                                                 reduce="max_abs")
          for lv in levels}
fig = viz.method_grid(cat, sweep, denormalize=imagenet.denormalize, cell=1.8)
plt.show()
for name, m in sweep.items():
    print(f"{name:<18} neighbour correlation {neighbour_correlation(m):.3f}   "
          f"rank agreement with the vanilla map {rank_agreement(m, sweep['noise 0 (vanilla)']):.3f}")

# %% [markdown]
# At noise level 0.05 the squared map is at its smoothest and shows the eyes, the nose and
# the line of the mouth. As the noise grows, the agreement with the vanilla map falls to near
# zero and the map drifts into two broad blobs around the eyes: at 0.6 the noisy copies hardly
# look like a cat any more, and the map shows where *any* cat-like input would be sensitive.
# For this model and image the useful range is lower than the usual recommendation, which is
# exactly why the noise level should be measured, not copied.

# ### Checking against Captum's NoiseTunnel
#
# Captum wraps any attribution method in `NoiseTunnel`. It draws its noise from the global
# generator, in chunks of `nt_samples_batch_size` copies; seeding that generator with our seed
# gives it the very same noisy images (the chunks draw the same numbers as one draw when a
# copy's size, here 3 x 224 x 224, is a multiple of 16), so the results must agree.

# %%
for kind, ours_fn in [("smoothgrad", cl.smoothgrad), ("smoothgrad_sq", cl.smoothgrad_squared),
                          ("vargrad", cl.vargrad)]:
    ours = ours_fn(model, cat, n_samples=4, noise_level=0.15, batch_size=4, seed=7)
    torch.manual_seed(7)
    theirs = NoiseTunnel(Saliency(model)).attribute(
        cat, nt_type=kind, nt_samples=4, nt_samples_batch_size=4, stdevs=sigma,
        target=cat_class, abs=False)
    print(f"{kind:<14} max |difference| = {float((ours - theirs).abs().max()):.2e}")

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

# %% [markdown]
# The probability's gradient is the logit's gradient scaled (roughly) by $p(1-p)$ plus terms
# from the other classes, so a confident prediction gets a faint map for reasons that have
# nothing to do with the image. The course explains logits unless a chapter says otherwise.
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
#   pass, batched, a local linear model of the network.
# - How the channels are collapsed changes the picture: the absolute reductions agree with
#   each other, the signed sum shows direction and looks different.
# - Gradient x input estimates contributions relative to an all-zero input, which after
#   normalisation is an image in its own right (here mid-grey).
# - SmoothGrad averages gradients over noisy copies; SmoothGrad-squared and VarGrad change the
#   statistic. Noise level and sample count are measurable trade-offs, and the estimate
#   converges like a Monte Carlo mean.
# - Every function here agrees with Captum.
#
# ## Exercises
#
# `exercises/02_gradient_saliency.ipynb`: implement SmoothGrad yourself, write a channel
# reduction, and predict what the noise level and the reference of gradient x input do. Your
# instructor grades them with one command.
#
# ## References
#
# ```{footbibliography}
# ```
