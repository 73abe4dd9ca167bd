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
# # 05. Occlusion, LIME and Shapley values on superpixels
#
# Every method so far asked the network for a gradient. This chapter asks a blunter question
# that needs no gradient at all: *what happens to the score when part of the image is taken
# away?* Occlusion slides a patch over the image and records the drop. LIME and Shapley values
# cut the image into superpixels, switch them on and off in many combinations, and share the
# score out among them: LIME with a weighted linear fit, Shapley values with the one sharing
# rule that satisfies a short list of fairness axioms. Shapley values can be computed exactly
# when there are few superpixels, so here, for once, the estimators can be judged against the
# truth.
#
# **After this chapter you can**
# - compute occlusion maps in batches, predict their cost in forward passes, and choose the
#   window, stride and fill with numbers (localisation against the true object masks of Shapes);
# - explain why the fill is part of the question, and recognise an out-of-distribution fill;
# - cut an image into superpixels and compute LIME, KernelSHAP, permutation-sampling and exact
#   Shapley values on them, and check them against Captum;
# - read an error-versus-cost plot and say which estimator to trust at which budget, and how
#   unstable LIME is across random seeds.

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

import matplotlib.pyplot as plt
import numpy as np
import torch
from captum._utils.models.linear_model import SkLearnRidge
from captum.attr import KernelShap, Lime, Occlusion, ShapleyValueSampling
from scipy.stats import spearmanr
from skimage.segmentation import mark_boundaries

import course_lib as cl
from course_lib import viz
from course_lib.perturbation.shapley import permutation_coalitions
from course_lib.zoo.shapes_models import TEST_SEED

cl.set_deterministic(seed=0, threads=2)
viz.use_style()


class Counted(torch.nn.Module):
    """The model, counting the images it is asked to score: the cost of a perturbation method."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.images = inner, 0

    def forward(self, x):
        self.images += len(x)
        return self.inner(x)


# With the internet (Colab) any name of cl.list_models() works here, e.g. "resnet50". Statements
# below about the fill "zero" hold for this normalisation only (mean 0.5, std 0.5: zero is
# mid-grey); under ImageNet's mean and std, zero is the average ImageNet colour.
imagenet = cl.load_model("efficientnet_lite0")
net = Counted(imagenet.model).eval()
photos = ["chelsea", "coffee"]
x = torch.stack([imagenet.preprocess(cl.load_photo(n)) for n in photos])
with torch.no_grad():
    logits = imagenet.model(x)
pred = logits.argmax(dim=1)
for n, c, p in zip(photos, pred, logits.softmax(dim=1).amax(dim=1)):
    print(f"{n:>8}: {imagenet.labels[int(c)]} ({float(p):.2f})")

# The Shapes CNN and twelve images of the held-out test set, with their true object masks.
shapes = cl.load_model("shapes_cnn")
small = Counted(shapes.model).eval()
test = cl.load_dataset("shapes", n=12, seed=TEST_SEED).batch
xs, masks, ys = shapes.preprocess(test.images), test.masks, test.labels
with torch.no_grad():
    print("Shapes CNN correct on", int((shapes.model(xs).argmax(dim=1) == ys).sum()), "of", len(ys),
          f"test images; objects cover {float(masks.float().mean()):.0%} of the pixels on average")

# %% [markdown]
# ## Occlusion
#
# ### The idea
#
# Let $f_c(x)$ be the logit of class $c$. Put a window $w$ of the *fill* $b$ over the image,
# $x^{(w)} = x \odot (1 - m_w) + b \odot m_w$ with $m_w$ the window's mask, and record how much
# the score drops, $\Delta_w = f_c(x) - f_c(x^{(w)})$. Sliding the window with a stride smaller
# than its size covers each pixel by several windows; the pixel's attribution is the **mean**
# drop over the windows $W(i,j)$ that cover it {footcite}`zeiler2014visualizing`:
#
# $$ A_{ij} = \frac{1}{|W(i,j)|} \sum_{w \in W(i,j)} \big( f_c(x) - f_c(x^{(w)}) \big). $$
#
# Positive means that hiding the pixel lowers the score. Every window costs one forward pass.
# Windows start at 0 and move by the stride until the image is covered, so along a side of
# $L$ pixels there are $\lceil (L - \text{window}) / \text{stride} \rceil + 1$ positions (the
# last one may hang over the border and is cut), and an image costs the product over its two
# sides. Here is the implementation: all occluded copies of a batch go through the model in
# chunks of `batch_size`, built chunk by chunk so memory never holds them all.

# %%
print(inspect.getsource(cl.occlusion))

# %%
for window, stride in [(32, 16), (32, 32), (16, 8), (32, 1)]:
    print(f"window {window:2d}, stride {stride:2d}: {cl.count_windows(224, window, stride):6,d} "
          f"forward passes for one 224 x 224 image")

# %% [markdown]
# Halving the stride costs three to four times the passes; a stride of 1, Captum's default for
# `Occlusion`, costs tens of thousands. Now the maps of the two photos, window 32 and stride 16:

# %% mystnb={"image": {"alt": "Photos with their occlusion maps (window 32, stride 16) on an orange-purple scale: orange where covering a patch lowers the predicted class's logit, purple where it raises it, each with a colour bar in logits."}}
net.images = 0
# Four 224-pixel images per pass: on the CPU, bigger batches of this model lose more time to
# page faults than they gain (benchmarks/bench_perturbation.py measures it); 64 suits Shapes.
occ = cl.occlusion(net, x, pred, window=32, stride=16, batch_size=4)
print(f"forward passes: {net.images} (= 2 clean + 2 x {cl.count_windows(224, 32, 16)})")
fig = viz.method_grid(x, {"occlusion, window 32, stride 16": occ[:, 0]}, denormalize=imagenet.denormalize,
                      signed={"occlusion, window 32, stride 16": True}, label="logit drop",
                      row_titles=[imagenet.labels[int(c)] for c in pred])
plt.show()
for n, m in zip(photos, occ[:, 0]):
    r, c = divmod(int(m.argmax()), m.shape[1])
    print(f"{n:>8}: largest drop {float(m.max()):.2f} at row {r}, column {c}; "
          f"{float((m < 0).double().mean()):.0%} of the pixels have a negative value")

# %% [markdown]
# The espresso shows occlusion doing what it promises: the largest drops, up to 0.93 logits,
# lie on the cup and its crema, and hiding the saucer or the table changes little. The cat is
# harder to read. Its largest drop is 0.27 logits, and 56 percent of its pixels have a negative
# value: hiding them *raises* the tiger-cat logit a little. The face fills the frame, and with
# one 32-pixel patch hidden, the rest of it still carries the evidence. Occlusion measures what
# a patch adds *given everything else*, so evidence that is spread out and redundant gets
# little credit anywhere. The Shapley values below will show how much this cat is actually
# worth to the model.

# %% [markdown]
# ### Checking against Captum
#
# Captum's `Occlusion` places its windows the same way and also averages overlapping windows.
# Its windows are given over all dimensions of one example, so a window covering every channel
# is `(3, 32, 32)`. Its fill is `baselines` (0 by default, as ours). Two defaults matter:
# `strides=1`, where we ask for a stride explicitly, and `perturbations_per_eval=1`, one
# occluded image per forward pass (our `batch_size` defaults to 64). We compare on the cat with
# window 64 and stride 32, and on four Shapes images with overlapping windows and a blurred fill.
# Captum returns float32 sums divided by the window counts; the tolerance is $10^{-5}$ of the
# map's largest value, for float32 sums taken in a different order.

# %%
OCCLUSION_RTOL = 1e-5
checks = {  # model, inputs, target, window, stride, fill, images per pass (the same for both)
    "EfficientNet-Lite0, cat, window 64, stride 32, fill 0":
        (imagenet.model, x[:1], pred[:1].tolist(), 64, 32, "zero", 4),
    "Shapes CNN, 4 images, window 10, stride 5, blur":
        (shapes.model, xs[:4], ys[:4].tolist(), 10, 5, "blur", 64),
}
for name, (model, inputs, target, window, stride, fill, batch) in checks.items():
    ours = cl.occlusion(model, inputs, target, window=window, stride=stride, fill=fill, batch_size=batch)
    theirs = Occlusion(model).attribute(
        inputs, sliding_window_shapes=(3, window, window), strides=(3, stride, stride),
        baselines=cl.make_baseline(inputs, fill), target=target, perturbations_per_eval=batch)
    rel = float((ours - theirs).abs().max() / theirs.abs().max())
    print(f"{name:<55} max |difference| / max |map| = {rel:.1e}  (tolerance {OCCLUSION_RTOL:g}: {rel <= OCCLUSION_RTOL})")

# %% [markdown]
# Both agree within the tolerance, so the two libraries compute the same maps; the test suite
# holds them to $10^{-6}$ in float64 on many more settings (overlapping windows, rectangular
# windows, cut-off last windows, five kinds of fill).

# %% [markdown]
# ### Window and stride, measured against the true masks
#
# On Shapes we know where the object is, so a map can be scored. Two numbers per map, each
# averaged over the twelve test images (with its standard error over images):
# - **share inside**: the share of the map's positive mass that lies on the object's mask
#   (a map that ignores the object scores about the mask's area, 18 percent here);
# - **pointing**: whether the map's largest value lies on the object.
#
# A third number compares maps with each other: the overlap (intersection over union) of their
# top-10-percent pixels with those of the finest setting, window 6 and stride 3.

# %%
def top_overlap(a, b, fraction=0.1):
    """Intersection over union of the top ``fraction`` pixels of two stacks of maps: N values."""
    k = int(fraction * a[0].numel())
    out = []
    for u, v in zip(a, b):
        tu, tv = set(u.flatten().topk(k).indices.tolist()), set(v.flatten().topk(k).indices.tolist())
        out.append(len(tu & tv) / len(tu | tv))
    return torch.tensor(out, dtype=torch.float64)


def mean_se(values):
    v = torch.as_tensor(values, dtype=torch.float64)
    return f"{float(v.mean()):.2f} ± {float(v.std() / math.sqrt(len(v))):.2f}"


settings = [(6, 3), (10, 5), (16, 8), (10, 10), (24, 12)]
shape_maps = {}
print(f"{'window':>6} {'stride':>6} {'passes':>7}  {'share inside':>13} {'pointing':>11} {'top-10% overlap with 6/3':>26}")
for window, stride in settings:
    small.images = 0
    m = cl.occlusion(small, xs, ys, window=window, stride=stride, progress=False)[:, 0]
    shape_maps[(window, stride)] = m
    passes = (small.images - len(xs)) // len(xs)
    print(f"{window:6d} {stride:6d} {passes:7d}  {mean_se(cl.share_on_mask(m, masks)):>13} {mean_se(cl.pointing_game(m, masks)):>11} "
          f"{mean_se(top_overlap(m, shape_maps[(6, 3)])):>26}")

# %% mystnb={"image": {"alt": "One Shapes image and its occlusion maps for several window sizes and strides, signed orange-purple maps of the logit drop with colour bars; small windows give sharp maps on the object's edges, large windows blur over the object."}}
k = 1  # one test image, drawn with every setting
fig = viz.method_grid(xs[k : k + 1], {f"window {w}, stride {s}": shape_maps[(w, s)][k : k + 1] for w, s in settings},
                      denormalize=shapes.denormalize, signed={f"window {w}, stride {s}": True for w, s in settings},
                      label="logit drop", row_titles=[test.classes[int(ys[k])]])
plt.show()

# %% [markdown]
# The finest setting (window 6, stride 3, 441 passes per image) puts 83 percent of the
# positive mass on the object and always points at it. Larger windows smear. A window that
# touches the object anywhere gives its whole drop to every background pixel it covers, so at
# window 24 (25 passes) only 40 percent of the mass is on the object, and its top region
# overlaps the finest map's by 0.39. The stride matters as well as the window. Window 10 with
# stride 5 points at the object on every image. With stride 10 (non-overlapping tiles, 49
# passes) it does so on 83 percent of them, and its top region agrees less with the finest map
# (0.53 against 0.68): with non-overlapping tiles a map is no finer than its grid of tiles.
# Detail is expensive: halving the stride costs three to four times the passes (49 to 144 at
# window 10).

# %% [markdown]
# ### The fill is part of the question
#
# "Hide this patch" has no meaning until we say what replaces it. With the fill zero this
# model sees a mid-grey patch (an input of zero is mid-grey under its normalisation), which is
# close to the muted grey clutter of Shapes backgrounds. We compare it with the image's own
# mean colour, a blurred copy of the image (Gaussian, $\sigma$ = 4 pixels, a sixteenth of the
# side), and two fills that Shapes images never contain: a black patch and a saturated red one.
# Window 10, stride 5 throughout. Beside the localisation numbers: the mean |attribution| on
# background pixels and on object pixels.

# %%
fills = {
    "zero (grey)": "zero",
    "image mean": "mean",
    "blur": "blur",
    "black": -1.0,
    "red": torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1),
}
fill_maps = {"zero (grey)": shape_maps[(10, 5)]}
background = ~masks
print(f"{'fill':<12} {'share inside':>13} {'pointing':>11} {'mean |A| background':>20} {'mean |A| object':>16}")
for name, fill in fills.items():
    if name not in fill_maps:
        fill_maps[name] = cl.occlusion(shapes.model, xs, ys, window=10, stride=5, fill=fill)[:, 0]
    m = fill_maps[name]
    on_bg = (m.abs() * background).flatten(1).sum(1) / background.flatten(1).sum(1)
    on_obj = (m.abs() * masks).flatten(1).sum(1) / masks.flatten(1).sum(1)
    print(f"{name:<12} {mean_se(cl.share_on_mask(m, masks)):>13} {mean_se(cl.pointing_game(m, masks)):>11} "
          f"{mean_se(on_bg):>20} {mean_se(on_obj):>16}")

# %% mystnb={"image": {"alt": "One Shapes image and its occlusion maps with different fill values, signed orange-purple maps of the logit drop with colour bars; the maps change with the fill."}}
fig = viz.method_grid(xs[k : k + 1], {name: m[k : k + 1] for name, m in fill_maps.items()},
                      denormalize=shapes.denormalize, signed={name: True for name in fill_maps},
                      label="logit drop", row_titles=[test.classes[int(ys[k])]])
plt.show()

# %% [markdown]
# Grey and the image's mean colour behave alike (both are close to the background): 72 and 74
# percent of the mass on the object, pointing at it on every image. The blurred fill gives the
# object much less (a mean |attribution| of 1.28 on the object against 3.19 for grey). A
# blurred red square is still a red blob, so blurring part of it removes less of the evidence.
# What remains is mostly its edges, and the map points at the object on only 67 percent of
# the images. Black and red patches are out of distribution: Shapes images never contain
# them. Wherever they land, even on empty background, the score drops (a mean |attribution| of
# 1.84 and 1.88 on the background, against 0.26 for grey). The share on the object falls to
# 28 and 23 percent, near the 18 percent of a map blind to the object, and the maps point at
# the object on 42 and 17 percent of the images. Such a map explains the patch, not the image.
#
# The fill matters on the photos too. The cat again, with a blurred copy as the fill
# ($\sigma$ = 14 pixels, a sixteenth of the side):

# %% mystnb={"image": {"alt": "The cat photo and its occlusion maps with a grey fill and with a blurred fill, on one shared orange-purple scale of the logit drop with one colour bar."}}
occ_blur = cl.occlusion(imagenet.model, x[:1], pred[:1], window=32, stride=16, fill="blur", batch_size=4)
rho = spearmanr(occ[0, 0].flatten(), occ_blur[0, 0].flatten())[0]
print(f"cat, grey fill vs blurred fill: Spearman rho {rho:.2f}, top-10% overlap "
      f"{float(top_overlap(occ[:1, 0], occ_blur[:, 0])[0]):.2f}, largest drop {float(occ[0, 0].max()):.2f} vs "
      f"{float(occ_blur[0, 0].max()):.2f}")
fig = viz.method_grid(x[:1], {"grey fill": occ[:1, 0], "blurred fill": occ_blur[:, 0]}, denormalize=imagenet.denormalize,
                      signed={"grey fill": True, "blurred fill": True}, label="logit drop", shared_scale=True)
plt.show()

# %% [markdown]
# The broad pattern survives the change of fill (a rank correlation of 0.78 over pixels), but
# the top region does not (an overlap of 0.39 between the top 10 percent of pixels): *which*
# patches matter most depends on what hides them.

# %% [markdown]
# ## Superpixels
#
# Occlusion's windows ignore the image's structure. The methods of the rest of this chapter
# use *superpixels* instead: regions of similar colour, here from SLIC {footcite}`achanta2012slic`
# (scikit-image), which clusters pixels by colour and position. `cl.superpixels` takes RGB
# images in $[0, 1]$ (model inputs must be denormalised first) and returns integer segment ids
# $0 \dots M-1$; SLIC treats the requested number as a target, so $M$ varies from image to
# image. The same segments go to every method below, so their values can be compared segment
# by segment.

# %% mystnb={"image": {"alt": "Five images with their SLIC superpixel boundaries drawn over them: the cat photo and four Shapes images, each titled with its class and number of segments."}}
segments = cl.superpixels(test.images, 12)
n_segments = [int(s.max()) + 1 for s in segments]
print("segments per Shapes image:", n_segments)
cat_segments = cl.superpixels(imagenet.denormalize(x[:1]), 8, compactness=20)[0]
print("segments of the cat:", int(cat_segments.max()) + 1)


def purity(segs, masks):
    """Share of pixels whose segment is mostly on the same side (object or background) as they are."""
    out = []
    for s, m in zip(segs, masks):
        frac = cl.segment_values(m[None].double(), s)[0]  # object share of each segment
        majority = (frac > 0.5)[s]
        out.append(float((majority == m).double().mean()))
    return out


print(f"pixels on the majority side of their segment: {mean_se(purity(segments, masks))} (Shapes)")
fig, axes = plt.subplots(1, 5, figsize=(11, 2.4), layout="constrained")
axes[0].imshow(mark_boundaries(viz.to_image(x[0], imagenet.denormalize), cat_segments.numpy()))
axes[0].set_title(f"cat, {int(cat_segments.max()) + 1} segments")
for ax, i in zip(axes[1:], range(4)):
    ax.imshow(mark_boundaries(test.images[i].permute(1, 2, 0).numpy(), segments[i].numpy()))
    ax.set_title(f"{test.classes[int(ys[i])]}, {n_segments[i]} segments")
for ax in axes:
    ax.set_axis_off()
plt.show()

# %% [markdown]
# ## Shapley values of superpixels
#
# ### The game and its one fair sharing rule
#
# Treat the $M$ segments as players. A coalition $S$ is worth $v(S) = f_c(x_S)$: the logit when
# the segments in $S$ show the image and the others show the baseline (here the fill zero,
# mid-grey). The Shapley value {footcite}`shapley1953value` of segment $k$ is its marginal
# contribution averaged over every order in which the segments could arrive:
#
# $$ \phi_k = \sum_{S \subseteq \{1..M\} \setminus \{k\}} \frac{|S|!\,(M - |S| - 1)!}{M!}
#    \big( v(S \cup \{k\}) - v(S) \big). $$
#
# It is the only sharing rule with four properties: **efficiency** (the values sum to
# $v(\text{all}) - v(\varnothing) = f_c(x) - f_c(b)$), **symmetry** (segments that contribute
# alike get the same value), the **null player** (a segment that never changes the score gets
# zero) and **linearity** in the game {footcite}`lundberg2017unified`. Chapter 03 comes to
# Shapley values from the gradient side, over pixels; here the players are a handful of
# superpixels and the formula can be evaluated *exactly* on a real network: all
# $2^M$ coalitions, 4,096 forward passes for 12 segments, each extra segment doubling the cost.
#
# `cl.coalition_values` scores every coalition; `cl.shapley_from_values` applies the formula
# (coalition $s$ is the integer whose bit $k$ says whether segment $k$ is in):

# %%
print(inspect.getsource(cl.shapley_from_values))

# %% [markdown]
# We take the first six test images with at most 12 segments, score all their coalitions, and
# check efficiency on each (the tests check symmetry, null players and linearity on games solved
# by hand).

# %%
chosen = [i for i, m in enumerate(n_segments) if m <= 12][:6]
small.images = 0
tables = cl.coalition_values(small, xs[chosen], ys[chosen], segments=segments[chosen], progress=False)
tables = [t.double() for t in tables]
print(f"images {chosen}, segments {[n_segments[i] for i in chosen]}: {small.images - len(chosen):,} forward passes")
exact = [cl.shapley_from_values(t) for t in tables]
for i, t, phi in zip(chosen, tables, exact):
    print(f"image {i:2d}: sum of Shapley values {float(phi.sum()):7.3f}, f(x) - f(baseline) "
          f"{float(t[-1] - t[0]):7.3f}, largest value {float(phi.max()):6.3f} of {len(phi)}")

# %% mystnb={"image": {"alt": "Three Shapes images with their exact Shapley values on superpixels and their occlusion maps (window 6, stride 3), signed orange-purple maps with colour bars."}}
exact_maps = torch.stack([cl.segment_map(phi, segments[i]) for i, phi in zip(chosen, exact)])
occ_chosen = shape_maps[(6, 3)][chosen]
print("share of positive mass on the object:")
print(f"  exact Shapley values on superpixels: {mean_se(cl.share_on_mask(exact_maps, masks[chosen]))}")
print(f"  occlusion, window 6, stride 3:       {mean_se(cl.share_on_mask(occ_chosen, masks[chosen]))}")
fig = viz.method_grid(xs[chosen[:3]], {"exact Shapley": exact_maps[:3], "occlusion 6/3": occ_chosen[:3]},
                      denormalize=shapes.denormalize, signed={"exact Shapley": True, "occlusion 6/3": True},
                      label="logit", row_titles=[test.classes[int(ys[i])] for i in chosen[:3]], cell=2.4)
plt.show()

# %% [markdown]
# Efficiency holds on every image to the printed digits. The object's segment takes most of
# the credit: 89 percent of the positive mass lies on the object, a little more than the finest
# occlusion map's 83 percent, at a cost of 1,024 to 4,096 passes per image against 441. The
# values can also be negative where occlusion at this scale sees nothing: next to the plain
# square, the segment holding the green disc gets a negative value; its presence lowers the
# square's logit. What Shapley values on superpixels cannot do is look inside a segment: the
# whole triangle gets one value, while occlusion shows that its edges matter and its centre
# does not.
#
# On the cat, eight superpixels make exact Shapley values cheap (256 passes):

# %% mystnb={"image": {"alt": "The cat photo with the exact Shapley values of its 8 superpixels painted on the segments, on a signed orange-purple scale with a colour bar in logits."}}
net.images = 0
cat_table = cl.coalition_values(net, x[:1], pred[:1], segments=cat_segments, batch_size=4)[0].double()
cat_exact = cl.shapley_from_values(cat_table)
print(f"forward passes: {net.images - 1}; sum of values {float(cat_exact.sum()):.3f} = f(x) - f(grey) "
      f"{float(cat_table[-1] - cat_table[0]):.3f}")
occ_per_segment = cl.segment_values(occ[:1], cat_segments)[0]
print(f"Shapley values of the segments: {float(cat_exact.min()):.2f} to {float(cat_exact.max()):.2f} logits; "
      f"their mean occlusion values: {float(occ_per_segment.min()):.2f} to {float(occ_per_segment.max()):.2f}")
fig = viz.method_grid(x[:1], {"exact Shapley (8 segments)": cl.segment_map(cat_exact, cat_segments)[None],
                              "occlusion 32/16": occ[:1, 0]},
                      denormalize=imagenet.denormalize, label="logit",
                      signed={"exact Shapley (8 segments)": True, "occlusion 32/16": True})
plt.show()

# %% [markdown]
# All eight segments get positive values, from 0.34 to 2.20 logits, and together they account
# for the 9.24 logits between the cat and a grey image. Averaged over the same segments, the
# occlusion map stays between -0.14 and 0.08. The two are not in conflict; they answer
# different questions. Occlusion asks what a patch adds to an image that is otherwise
# complete, and with the rest of the face in view the answer is "almost nothing". The Shapley
# value averages a segment's contribution over every context, including those in which most
# of the face is already grey, where each remaining piece matters a great deal.

# %% [markdown]
# ## Three estimators
#
# With more than a dozen or so segments the $2^M$ coalitions are out of reach, and Shapley
# values must be estimated. All the estimators below only ever ask for $v$ of some coalitions,
# so on our six images, where we hold the whole table, we can run any of them at any budget by
# looking its coalitions up instead of calling the model. The function below turns coalitions
# into table positions; we first check, for each estimator, that the lookup gives what the
# library function gives when it calls the model.

# %%
def table_index(z):
    """Coalitions (S x M bool) -> their positions in a table from cl.coalition_values."""
    return (z.long() << torch.arange(z.shape[1])).sum(dim=1)


# %% [markdown]
# ### Permutation sampling
#
# The Shapley value is an average over orders of arrival, so sample orders: for each random
# order, add the segments one at a time and record each one's marginal contribution
# {footcite}`castro2009polynomial,strumbelj2014explaining`. The mean over $n$ orders is
# unbiased, each order costs $M - 1$ passes (the empty and the full coalition are shared), and
# the standard deviation of the contributions over orders, divided by $\sqrt{n}$, is an honest
# standard error. Every order's contributions sum to $f_c(x) - f_c(b)$, so efficiency holds at
# any $n$.

# %%
def permutation_estimate(table, m, calls, seed):
    """Permutation-sampling Shapley values and standard errors from a table, within ``calls`` passes."""
    n = max(2, (calls - 2) // (m - 1))
    orders, coalitions = permutation_coalitions(m, n, seed)
    path = table[table_index(coalitions.reshape(-1, m))].view(n, m)  # v after each arrival
    path = torch.cat([table[0].expand(n, 1), path], dim=1)
    contributions = torch.empty(n, m, dtype=torch.float64).scatter_(1, orders, path[:, 1:] - path[:, :-1])
    return contributions.mean(dim=0), contributions.std(dim=0) / math.sqrt(n)


i0, m0 = chosen[0], n_segments[chosen[0]]
img0, y0, seg0 = xs[i0 : i0 + 1], int(ys[i0]), segments[i0]
library = cl.segment_values(cl.permutation_shapley(shapes.model, img0, y0, segments=seg0, n_permutations=20, seed=3), seg0)[0]
lookup, _ = permutation_estimate(tables[0], m0, 2 + 20 * (m0 - 1), seed=3)
print(f"permutation_shapley vs table lookup: max |difference| {float((library - lookup).abs().max()):.1e}")

# %% [markdown]
# The difference is float32 rounding: the model's score of one image changes in the last digits
# with the other images of its batch. Against Captum's `ShapleyValueSampling`, which draws its
# orders with `torch.randperm` from the global generator as we do from ours (its default
# `n_samples` is 25 orders):

# %%
mask0 = seg0[None, None].expand(1, 3, 64, 64).contiguous()  # Captum wants the mask of one example
ours = cl.permutation_shapley(shapes.model, img0, y0, segments=seg0, n_permutations=20, seed=3)
torch.manual_seed(3)
theirs = ShapleyValueSampling(shapes.model).attribute(img0, target=y0, feature_mask=mask0, n_samples=20,
                                                      perturbations_per_eval=64)
print(f"permutation_shapley vs Captum ShapleyValueSampling: max |difference| / max |value| = "
      f"{float((ours - theirs).abs().max() / theirs.abs().max()):.1e} (tolerance 1e-5)")

# %% [markdown]
# ### KernelSHAP
#
# KernelSHAP {footcite}`lundberg2017unified` gets the same values from a regression. Fit a
# linear model $g(z) = \phi_0 + \sum_k \phi_k z_k$ to the coalitions $z \in \{0,1\}^M$ with
# weights
#
# $$ \pi(z) = \frac{M - 1}{\binom{M}{|z|}\, |z|\, (M - |z|)} ; $$
#
# over *all* coalitions, with $\phi_0 = v(\varnothing)$ and $\sum_k \phi_k = v(\text{all}) -
# v(\varnothing)$ imposed, the coefficients are exactly the Shapley values (the tests check this
# on games solved by hand). The estimator samples coalitions with probability proportional to
# $\pi$ (a size $k$ with probability $\propto 1/(k(M-k))$, then $k$ segments at random) and
# solves the constrained least squares on the sample. Eliminating one unknown with the
# efficiency constraint leaves an ordinary least-squares problem:

# %%
print(inspect.getsource(cl.constrained_shap_fit))

# %%
def kernel_shap_estimate(table, m, calls, seed):
    z = cl.kernel_shap_coalitions(m, calls, seed)  # the full and the empty coalition come first
    y = table[table_index(z)]
    return cl.constrained_shap_fit(z[2:], y[2:], float(y[0]), float(y[1]))


library = cl.segment_values(cl.kernel_shap(shapes.model, img0, y0, segments=seg0, n_samples=200, seed=3), seg0)[0]
print(f"kernel_shap vs table lookup: max |difference| {float((library - kernel_shap_estimate(tables[0], m0, 200, 3)).abs().max()):.1e}")
ours = cl.kernel_shap(shapes.model, img0, y0, segments=seg0, n_samples=200, seed=3)
torch.manual_seed(3)
theirs = KernelShap(shapes.model).attribute(img0, target=y0, feature_mask=mask0, n_samples=200, perturbations_per_eval=64)
scale = float(tables[0].abs().max())
print(f"kernel_shap vs Captum KernelShap: max |difference| / max |score| = "
      f"{float((ours - theirs).abs().max()) / scale:.1e} (tolerance 5e-5)")

# %% [markdown]
# Our coalitions are Captum's: the same draws in the same order from a generator seeded like
# `torch.manual_seed(3)`. The small difference is Captum's, by design: it fits in float32, and
# it imposes the two constraints only approximately, by giving the full and the empty coalition
# a weight of $10^6$ in an ordinary weighted regression. The tolerance is stated relative to the
# scores the fit is given, because float32 rounding of those scores is what limits it.

# %% [markdown]
# ### LIME
#
# LIME {footcite}`ribeiro2016why` also fits a linear model to random coalitions, but with
# other choices: each segment is kept with probability 1/2, a coalition is weighted by its
# closeness to the full image,
# $\pi(z) = \exp\!\big(-d(z)^2 / (2\,\text{width}^2)\big)$ with $d(z) = 1 - \sqrt{|z|/M}$
# the cosine distance between $z$ and the all-ones vector, and the fit is a ridge regression
# (penalty $\alpha = 1$, unconstrained intercept). These are the `lime` package's defaults for
# images (width 0.25; the package also adds the full image as the first sample, we do not).
# Nothing in this objective makes the coefficients Shapley values, or makes them sum to
# $f_c(x) - f_c(b)$.

# %%
print(inspect.getsource(cl.lime_kernel))
print(inspect.getsource(cl.weighted_ridge))


# %%
def lime_estimate(table, m, calls, seed, alpha=1.0, width=0.25):
    z = cl.lime_coalitions(m, calls, seed)
    y = table[table_index(z)]
    return cl.weighted_ridge(z, y, cl.lime_kernel(z, width), alpha)[0]


library = cl.segment_values(cl.lime(shapes.model, img0, y0, segments=seg0, n_samples=200, seed=3), seg0)[0]
print(f"lime vs table lookup: max |difference| {float((library - lime_estimate(tables[0], m0, 200, 3)).abs().max()):.1e}")
ours = cl.lime(shapes.model, img0, y0, segments=seg0, n_samples=200, seed=3)
same_weights = lambda _image, _perturbed, z, **kw: cl.lime_kernel(z.bool(), 0.25).float()  # noqa: E731
torch.manual_seed(3)
theirs = Lime(shapes.model, interpretable_model=SkLearnRidge(alpha=1.0), similarity_func=same_weights).attribute(
    img0, target=y0, feature_mask=mask0, n_samples=200, perturbations_per_eval=64)
print(f"lime vs Captum Lime (same samples, weights and ridge): max |difference| / max |score| = "
      f"{float((ours - theirs).abs().max()) / scale:.1e} (tolerance 1e-6)")

# %% [markdown]
# Captum's `Lime` draws the same coalitions (its default `perturb_func`), but its other
# defaults are not the `lime` package's: it measures closeness as the cosine distance between
# the *images* (not the coalitions) with width 1.0, and fits a Lasso with $\alpha = 0.01$,
# which sets small coefficients to exactly zero. The comparison above passes our weights and
# a ridge fit to it explicitly; with its defaults it answers a different question.
#
# ### How unstable is LIME?
#
# LIME's answer depends on its random coalitions. From the tables, five seeds per image at three
# budgets: the rank correlation between the maps of two seeds (Spearman, signed values, all
# pairs of seeds, six images), and how often two seeds agree on the top segment.

# %%
print(f"{'samples':>8} {'rank correlation between seeds':>32} {'same top segment':>17}")
for n in (50, 200, 1000):
    rhos, tops = [], []
    for t, i in zip(tables, chosen):
        runs = [lime_estimate(t, n_segments[i], n, seed) for seed in range(5)]
        for a in range(5):
            for b in range(a + 1, 5):
                rhos.append(spearmanr(runs[a], runs[b])[0])
                tops.append(float(runs[a].argmax() == runs[b].argmax()))
    print(f"{n:8d} {mean_se(rhos):>32} {mean_se(tops):>17}")

# %% mystnb={"image": {"alt": "One Shapes image and three LIME maps from 50 samples with different seeds, signed orange-purple maps with colour bars clipped at the 75th percentile; the three maps disagree on which segments matter."}}
j = 1  # one image: LIME from three seeds at 50 samples, beside the exact values
runs = {f"seed {s}": cl.segment_map(lime_estimate(tables[j], n_segments[chosen[j]], 50, s), segments[chosen[j]])[None]
        for s in range(3)}
runs["exact Shapley"] = exact_maps[j : j + 1]
# The object's segment dwarfs the others: the scale is clipped at the 75th percentile of |values|
# so that the background segments, where the seeds disagree, can be seen.
fig = viz.method_grid(xs[chosen[j] : chosen[j] + 1], runs, denormalize=shapes.denormalize,
                      signed={name: True for name in runs}, label="logit", clip_percentile=75,
                      row_titles=["LIME, 50 samples"], cell=2.0)
plt.show()
values = {name: cl.segment_values(m, segments[chosen[j]])[0] for name, m in runs.items()}
order = values["exact Shapley"].argsort(descending=True)
print("segment " + "".join(f"{name:>15}" for name in values))
for k in order.tolist():
    print(f"{k:7d} " + "".join(f"{float(v[k]):15.2f}" for v in values.values()))

# %% [markdown]
# With the scale clipped at the 75th percentile of |values|, the object's segment is
# saturated and the others can be read, and the table puts numbers on them. The seeds agree on
# the object (segment 3) and on segment 0, and disagree elsewhere, in size and in sign:
# segment 1, worth 0.03 exactly, gets -0.12, 0.32 and -0.40. All three seeds also give the
# object less than its Shapley value (about 5.3 against 6.42): the ridge penalty shrinks every
# coefficient. Over the six images, at 50 samples, two seeds rank the segments with a
# correlation of only 0.52; 1,000 samples bring it to 0.95. The top segment, the object, is
# the same for every pair of seeds at every budget: on these images one segment dominates,
# and LIME's instability lives in the ranking of the others, which is exactly what a reader
# of a LIME map tends to look at next.

# %% [markdown]
# ## Error against the truth as the budget grows
#
# Now the question the exact values were computed for. For each estimator and budget (forward
# passes per image), the relative error $\lVert \hat\phi - \phi \rVert / \lVert \phi \rVert$
# against the exact values, over the six images and ten seeds; the error bars are the standard
# error of that mean. The dashed line falls like $1/\sqrt{\text{calls}}$.

# %%
budgets = [32, 64, 128, 256, 512, 1024, 2048]
estimators = {
    "KernelSHAP": kernel_shap_estimate,
    "permutation sampling": lambda t, m, n, s: permutation_estimate(t, m, n, s)[0],
    "LIME": lime_estimate,
}
errors = {name: [] for name in estimators}
for name, estimate in estimators.items():
    for n in budgets:
        e = [float((estimate(t, n_segments[i], n, seed) - phi).norm() / phi.norm())
             for t, i, phi in zip(tables, chosen, exact) for seed in range(10)]
        errors[name].append((np.mean(e), np.std(e, ddof=1) / math.sqrt(len(e))))
print("relative error (mean ± standard error over 6 images x 10 seeds)")
print(f"{'calls':>6} " + " ".join(f"{name:>22}" for name in estimators))
for b, n in enumerate(budgets):
    print(f"{n:6d} " + " ".join(f"{errors[name][b][0]:>14.3f} ± {errors[name][b][1]:.3f}" for name in estimators))

# %% mystnb={"image": {"alt": "Log-log plot of the error of the Shapley estimators (permutation sampling, KernelSHAP, LIME) against the exact values as the number of forward passes per image grows, with a grey dashed line falling like one over the square root of the calls and a note of the cost of the exact values."}}
fig, ax = plt.subplots(figsize=(5.2, 3.4), layout="constrained")
for name, marker in zip(estimators, "osd"):
    mean, se = np.array(errors[name]).T
    ax.errorbar(budgets, mean, yerr=se, marker=marker, capsize=3, label=name)
ax.plot(budgets, errors["KernelSHAP"][0][0] * np.sqrt(budgets[0] / np.array(budgets)), "--", color="grey",
        label=r"$\propto 1/\sqrt{\mathrm{calls}}$")
exact_cost = int(np.median([len(t) for t in tables]))
ax.axvline(exact_cost, color="black", lw=0.8)
ax.text(exact_cost * 0.93, 0.25, f"exact values:\n{exact_cost:,} calls\n(median image)", ha="right", fontsize=8)
ax.set_xscale("log", base=2)
ax.set_yscale("log")
ax.set_xlabel("forward passes per image")
ax.set_ylabel("relative error against exact Shapley")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# KernelSHAP and permutation sampling converge to the exact values at about the
# $1/\sqrt{\text{calls}}$ rate: 10 and 8 percent error at 32 calls, 3 percent at 256, 1
# percent at 2,048, which is already the price of the exact values on the median image here
# (11 segments). Sampling pays off with more segments: 20 would need over a million
# coalitions, while the sampling error depends on the budget, not on $2^M$. On this model the two are within a standard error or two of each other at every
# budget. (A permutation budget is rounded down to whole orders of $M - 1$ passes, so at 32
# calls it spends fewer.) LIME starts far worse (32 percent at 32 calls, where its ridge
# penalty shrinks every coefficient), improves, and then levels off near 4 percent (0.036 at
# 2,048 calls). Its weighting and penalty define a different target; more samples estimate
# that target more precisely, never the Shapley values.
#
# Are the permutation estimator's standard errors honest? If they are, the error of each value
# divided by its standard error behaves like a standard normal variable: about 95 percent within
# $\pm 2$, mean square about 1.

# %%
z = []
for t, i, phi in zip(tables, chosen, exact):
    for seed in range(10):
        estimate, stderr = permutation_estimate(t, n_segments[i], 512, seed)
        z.append((estimate - phi) / stderr)
z = torch.cat(z)
print(f"{len(z)} values at 512 calls: {float((z.abs() < 2).double().mean()):.1%} within 2 standard errors, "
      f"mean of (error / standard error)^2 = {float(z.pow(2).mean()):.2f}")

# %% [markdown]
# Yes, at this budget: 95.7 percent within two standard errors and a mean square of 0.94. A
# single run of permutation sampling thus tells you how far off it probably is. KernelSHAP
# reports no error of its own; repeat it with a few seeds to get one.

# %% [markdown]
# ## Pitfalls
#
# **The baseline is part of the answer.** Shapley values share out $f_c(x) - f_c(b)$; change
# $b$ and both the total and its sharing change. The same six images with a blurred copy as the
# baseline (KernelSHAP, 512 samples, whose error at that budget the plot above puts at about
# 2 percent):

# %%
blur_values = [cl.segment_values(cl.kernel_shap(shapes.model, xs[i : i + 1], int(ys[i]), segments=segments[i],
                                                n_samples=512, baseline="blur"), segments[i])[0]
               for i in chosen]
for i, phi, phi_blur in zip(chosen, exact, blur_values):
    print(f"image {i:2d}: total {float(phi.sum()):6.2f} (grey baseline) vs {float(phi_blur.sum()):6.2f} (blur); "
          f"rank correlation of the segments {spearmanr(phi, phi_blur)[0]:.2f}; "
          f"top segment the same: {bool(phi.argmax() == phi_blur.argmax())}")

# %% [markdown]
# The totals change, on image 1 even their sign (4.07 with the grey baseline, -1.02 with the
# blurred one: the blurred copy scores higher than the image itself), and so does the sharing
# (rank correlations of the segments between 0.22 and 0.84), although here the top segment
# stays the same. A Shapley value answers "compared with what?", and the baseline is the what.
#
# **An out-of-distribution fill explains the fill.** Shown above: black or red patches change
# the score wherever they land, and the map follows the patches, not the object.
#
# **Superpixels decide what can be found.** A segment that mixes object and background gives
# both the same value; a part of the object that SLIC merged with the clutter cannot be found
# at all. Check the segmentation (the purity above) before reading the values.
#
# **Library defaults.** Captum's `Occlusion` uses stride 1 by default (tens of thousands of
# passes on a photo) and one occluded image per forward pass; its `Lime` is not the `lime`
# package's LIME (distance between images, width 1, Lasso); its `KernelShap` imposes the
# efficiency constraint only approximately. Say which settings you used.
#
# **Probability or logit.** We explain logits, as every chapter of the course does: a
# probability near 1 saturates (chapter 02 measures what that does to a gradient), and a
# saturated score hides the drops that occlusion and the Shapley methods are made of.

# %% [markdown]
# ## When is each method worth its cost?
#
# | method | forward passes per image (this chapter) | what you get |
# |---|---|---|
# | occlusion | $\prod_{\text{sides}} (\lceil (L - \text{window})/\text{stride} \rceil + 1)$: 169 for window 32 / stride 16 on 224 px | a map at the window's resolution; no axioms; needs a fill |
# | exact Shapley | $2^M$: 256 for 8 segments, 4,096 for 12 | the ground truth for the chosen segments and baseline |
# | permutation sampling | $2 + n(M-1)$ | unbiased, with its own standard error; efficiency at any $n$ |
# | KernelSHAP | $n$ | Shapley values by regression; efficiency exact; no standard error |
# | LIME | $n$ | a local linear surrogate; not Shapley values; varies with the seed |
#
# The cheapest method that answers the question is the right one. Occlusion is the quick look
# at *where* (169 passes on a photo at window 32, stride 16), provided a fill exists that the
# model has seen: here grey on Shapes, never black or red. When the features can be few, exact
# Shapley values are affordable and end the guessing: 256 passes for the cat's eight segments,
# 4,096 for twelve. Beyond a dozen segments, sample: permutation sampling or KernelSHAP, whose
# error here was 3 percent at 256 passes per image and 1 percent at 2,048; permutation sampling
# also reports its own standard error. Use LIME when you want LIME's local surrogate, not as a
# cheap Shapley value, and with enough samples for its ranking to be stable (0.95 between seeds
# at 1,000 here, 0.52 at 50). These numbers are for this model and these segments; measure on
# yours.

# %% [markdown]
# ## Summary
#
# - Occlusion averages the score drop over the windows that cover each pixel; it costs one
#   forward pass per window, $\prod(\lceil (L - w)/s \rceil + 1)$ per image, and batching them
#   is what makes it practical.
# - Small windows with overlapping strides localise best (83 percent of the mass on the Shapes
#   objects at window 6, stride 3; 40 percent at window 24). Evidence that is spread out, like
#   the cat's face, gets little credit from any single window.
# - The fill defines what "hidden" means. A fill the model has never seen (black or red
#   patches on Shapes) moves the score wherever it lands, and the map explains the patch.
# - Superpixels turn an image into a handful of players. With up to a dozen of them, exact
#   Shapley values are affordable, satisfy efficiency to rounding, and serve as ground truth.
# - KernelSHAP and permutation sampling converge to them like $1/\sqrt{\text{calls}}$;
#   permutation sampling's standard errors are honest. LIME converges to something else and
#   is unstable across seeds at small budgets. The baseline is part of every Shapley value.
# - Every method here agrees with Captum: occlusion to float32 rounding, permutation sampling
#   to rounding given the same orders, LIME and KernelSHAP to the float32 rounding of Captum's
#   fits given the same samples and weights.
#
# ## Exercises
#
# The exercises for this chapter are in
# [`exercises/05_occlusion_and_shapley.ipynb`](https://github.com/interpreting-neural-networks/course/blob/main/exercises/05_occlusion_and_shapley.ipynb)
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/interpreting-neural-networks/course/blob/main/exercises/05_occlusion_and_shapley.ipynb).
#
# ## References
#
# ```{footbibliography}
# ```
