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


# An occlusion map's value is a drop: orange means hiding the pixel *lowers* the score. Shapley
# and LIME values are contributions relative to the baseline (viz.CONTRIBUTION_LEGEND's
# statement, on two lines to fit beside small maps).
OCCLUSION_LEGEND = "orange: hiding it lowers the score\npurple: hiding it raises the score"
CONTRIBUTION_LEGEND = "orange: adds to the score vs baseline\npurple: takes away from it"


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
print(f"halving the stride from 32 to 16 (window 32): {cl.count_windows(224, 32, 16) / cl.count_windows(224, 32, 32):.1f} "
      "times the passes")

# %% [markdown]
# Halving the stride multiplies the passes by 3.4 here (by 4 in the limit of many windows, two
# per side); a stride of 1, Captum's default for `Occlusion`, costs tens of thousands. Now the
# maps of the two photos, window 32 and stride 16:

# %% mystnb={"image": {"alt": "Photos with their occlusion maps (window 32, stride 16) on an orange-purple scale: orange where hiding a patch lowers the predicted class's logit, purple where hiding it raises the logit, each with a colour bar in logits."}}
net.images = 0
# Four 224-pixel images per pass: on the CPU, bigger batches of this model lose more time to
# page faults than they gain (benchmarks/bench_perturbation.py measures it); 64 suits Shapes.
occ = cl.occlusion(net, x, pred, window=32, stride=16, batch_size=4)
print(f"forward passes: {net.images} (= 2 clean + 2 x {cl.count_windows(224, 32, 16)})")
name = "occlusion, window 32, stride 16"
fig = viz.method_grid(x, {name: occ[:, 0]}, denormalize=imagenet.denormalize, signed={name: True},
                      label="logit drop", sign_legend={name: OCCLUSION_LEGEND},
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
# - **pointing**: whether the map's largest value lies on the object. An occlusion map is
#   constant over blocks of stride x stride pixels (they are covered by the same windows), so
#   its largest value is often shared by a whole block, or several, straddling the object's
#   edge; `cl.pointing_game` then scores the share of the tied pixels on the object, the chance
#   of a hit if the tie were broken at random, rather than let the first tied pixel decide.
#
# A third number compares maps with each other: the overlap (intersection over union) of their
# top-10-percent pixels with those of the finest setting, window 6 and stride 3. For the same
# reason, pixels tied with the last of the top 10 percent are counted in too.

# %%
def top_overlap(a, b, fraction=0.1):
    """Intersection over union of the top ``fraction`` pixels of two stacks of maps: N values.

    Pixels tied with the k-th largest value are all in (topk would pick among them by position)."""
    k = int(fraction * a[0].numel())

    def top(m):
        m = m.flatten()
        return m >= m.kthvalue(len(m) - k + 1).values

    return torch.tensor([float((top(u) & top(v)).sum() / (top(u) | top(v)).sum()) for u, v in zip(a, b)],
                        dtype=torch.float64)


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
print(f"window 10: stride 5 costs {cl.count_windows(64, 10, 5) / cl.count_windows(64, 10, 10):.1f} times the passes of stride 10")

# %% mystnb={"image": {"alt": "One Shapes image and its occlusion maps for several window sizes and strides, signed orange-purple maps of the logit drop (orange: hiding the patch lowers the score) with colour bars; small windows give compact maps on the square itself; larger windows spread onto the background, and at windows 16 and 24 a purple patch appears near the green disc."}}
k = 1  # one test image, drawn with every setting
fig = viz.method_grid(xs[k : k + 1], {f"window {w}, stride {s}": shape_maps[(w, s)][k : k + 1] for w, s in settings},
                      denormalize=shapes.denormalize, signed={f"window {w}, stride {s}": True for w, s in settings},
                      label="logit drop", row_titles=[test.classes[int(ys[k])]],
                      sign_legend={f"window {w}, stride {s}": OCCLUSION_LEGEND for w, s in settings})
plt.show()

# %% [markdown]
# The finest setting (window 6, stride 3, 441 passes per image) puts 83 percent of the
# positive mass on the object and always points at it. Larger windows smear. A window that
# touches the object anywhere gives its whole drop to every background pixel it covers, so at
# window 24 (25 passes) only 40 percent of the mass is on the object, its pointing score is
# 0.78, and its top region overlaps the finest map's by 0.39. The stride matters as well as
# the window. Window 10 with stride 5 points at the object on every image. With stride 10
# (non-overlapping tiles, 49 passes) the peak is a whole tile, and on some images it straddles
# the object's edge: on average 90 percent of the tied peak pixels lie on the object. Its top
# region also agrees less with the finest map (0.54 against 0.69): with non-overlapping tiles
# a map is no finer than its grid of tiles. Detail is expensive: at window 10, halving the
# stride costs 2.9 times the passes (49 to 144).

# %% [markdown]
# ### The fill is part of the question
#
# "Hide this patch" has no meaning until we say what replaces it. With the fill zero this
# model sees a mid-grey patch (an input of zero is mid-grey under its normalisation), which is
# close to the muted grey clutter of Shapes backgrounds. We compare it with the image's own
# mean colour, a blurred copy of the image (Gaussian, $\sigma$ = 4 pixels, a sixteenth of the
# side), a black patch and a saturated red one. How often do Shapes images contain those two
# colours? Counted on 200 test images (RGB in $[0, 1]$; black: every channel below 0.15;
# saturated red: red above 0.8, green and blue below 0.2):

# %%
many = cl.load_dataset("shapes", n=200, seed=TEST_SEED).batch
black_px = many.images.amax(dim=1) < 0.15
red_px = (many.images[:, 0] > 0.8) & (many.images[:, 1] < 0.2) & (many.images[:, 2] < 0.2)
for name, px in (("black", black_px), ("saturated red", red_px)):
    print(f"{name:>13} pixels: {float(px.double().mean()):.1e} of all pixels, in {int(px.flatten(1).any(1).sum())} "
          f"of 200 images, {float((px & many.masks).sum() / px.sum().clamp(min=1)):.0%} of them on objects")
print(f"mean colour of the object in the image drawn below ({test.classes[int(ys[k])]}):",
      [round(float(v), 2) for v in test.images[k][:, masks[k]].mean(dim=1)])

# %% [markdown]
# Black is out of distribution: hardly a pixel of the data is black. Saturated red is not: it
# is the colour of some of the objects, and this image's square is close to it. The two can fail in
# different ways, a fill the model has never seen, and a fill that adds a blob of object
# colour. Window 10, stride 5 throughout. Beside the localisation numbers: the mean
# |attribution| on background pixels and on object pixels.

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

# %% mystnb={"image": {"alt": "A red square from Shapes and its occlusion maps with five fills (grey, image mean, blur, black, red), signed orange-purple maps of the logit drop (orange: hiding the patch lowers the score) with colour bars; the maps change with the fill."}}
print(f"red fill on the {test.classes[int(ys[k])]} drawn below: mean value {float(fill_maps['red'][k][masks[k]].mean()):.2f} "
      f"on the object, {float(fill_maps['red'][k][~masks[k]].mean()):.2f} on the background "
      f"(grey fill: {float(fill_maps['zero (grey)'][k][masks[k]].mean()):.2f} and {float(fill_maps['zero (grey)'][k][~masks[k]].mean()):.2f})")
fig = viz.method_grid(xs[k : k + 1], {name: m[k : k + 1] for name, m in fill_maps.items()},
                      denormalize=shapes.denormalize, signed={name: True for name in fill_maps},
                      label="logit drop", row_titles=[test.classes[int(ys[k])]],
                      sign_legend={name: OCCLUSION_LEGEND for name in fill_maps})
plt.show()

# %% [markdown]
# Grey and the image's mean colour behave alike (both are close to the background): 72 and 74
# percent of the mass on the object, pointing at it on every image. The blurred fill gives the
# object much less (a mean |attribution| of 1.28 on the object against 3.19 for grey). A
# blurred red square is still a red blob, so blurring part of it removes less of the evidence.
# What remains is mostly its edges, and the pointing score drops to 0.91. Black is out of
# distribution, and wherever a black patch lands, even on empty background, the score drops (a
# mean |attribution| of 1.84 on the background, against 0.26 for grey). The share on the
# object falls to 28 percent, near the 18 percent of a map blind to the object, and the
# pointing score to 0.47. Such a map explains the patch, not the image.
#
# Red fails differently: it hides little and adds a lot. On the red square drawn above, the red
# map averages 0.83 on the square, against 1.80 with grey: where a red patch lands on the
# square, red replaces red and little is hidden. On the background it averages 1.10, against
# 0.08 with grey: there a red patch adds a blob of object colour beside the square or a bump
# to its outline, and the score drops. The map answers "what if there were more red here?":
# over the twelve images 23 percent of its mass is on the object, a mean |attribution| of 1.88
# is on the background, and its pointing score is 0.15, below the 0.18 of a map blind to the
# object.
#
# The fill matters on the photos too. The cat again, with a blurred copy as the fill
# ($\sigma$ = 14 pixels, a sixteenth of the side):

# %% mystnb={"image": {"alt": "The cat photo and its occlusion maps with a grey fill and with a blurred fill, on one shared orange-purple scale of the logit drop (orange: hiding the patch lowers the score) with one colour bar."}}
occ_blur = cl.occlusion(imagenet.model, x[:1], pred[:1], window=32, stride=16, fill="blur", batch_size=4)
rho = spearmanr(occ[0, 0].flatten(), occ_blur[0, 0].flatten())[0]
print(f"cat, grey fill vs blurred fill: Spearman rho {rho:.2f}, top-10% overlap "
      f"{float(top_overlap(occ[:1, 0], occ_blur[:, 0])[0]):.2f}, largest drop {float(occ[0, 0].max()):.2f} vs "
      f"{float(occ_blur[0, 0].max()):.2f}")
fig = viz.method_grid(x[:1], {"grey fill": occ[:1, 0], "blurred fill": occ_blur[:, 0]}, denormalize=imagenet.denormalize,
                      signed={"grey fill": True, "blurred fill": True}, label="logit drop", shared_scale=True,
                      sign_legend={"grey fill": OCCLUSION_LEGEND, "blurred fill": OCCLUSION_LEGEND})
plt.show()

# %% [markdown]
# The broad pattern survives the change of fill (a rank correlation of 0.78 over pixels), but
# the top region does not (an overlap of 0.38 between the top 10 percent of pixels): *which*
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
# zero) and **linearity** in the game {footcite}`shapley1953value`. Chapter 03 comes to
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

# %% mystnb={"image": {"alt": "Three Shapes images (plain square, dotted square, triangle) with their exact Shapley values on superpixels and their occlusion maps (window 6, stride 3), signed orange-purple maps with colour bars; the object's segment is orange in every Shapley map, and the triangle's occlusion map is orange on its edges and purple in its centre."}}
exact_maps = torch.stack([cl.segment_map(phi, segments[i]) for i, phi in zip(chosen, exact)])
occ_chosen = shape_maps[(6, 3)][chosen]
print("share of positive mass on the object:")
print(f"  exact Shapley values on superpixels: {mean_se(cl.share_on_mask(exact_maps, masks[chosen]))}")
print(f"  occlusion, window 6, stride 3:       {mean_se(cl.share_on_mask(occ_chosen, masks[chosen]))}")
fig = viz.method_grid(xs[chosen[:3]], {"exact Shapley": exact_maps[:3], "occlusion 6/3": occ_chosen[:3]},
                      denormalize=shapes.denormalize, signed={"exact Shapley": True, "occlusion 6/3": True},
                      label="logit", row_titles=[test.classes[int(ys[i])] for i in chosen[:3]], cell=2.4,
                      sign_legend={"exact Shapley": CONTRIBUTION_LEGEND, "occlusion 6/3": OCCLUSION_LEGEND})
plt.show()
for j, i in enumerate(chosen[:3]):
    on_object = occ_chosen[j][masks[i]]
    low = int(exact[j].argmin())  # the segment with the most negative Shapley value
    print(f"{test.classes[int(ys[i])]:>13}: occlusion on the object from {float(on_object.min()):5.2f} to "
          f"{float(on_object.max()):4.2f}, {float((on_object < 0).double().mean()):3.0%} of its pixels negative; "
          f"most negative segment: Shapley {float(exact[j][low]):5.2f}, occlusion down to "
          f"{float(occ_chosen[j][segments[i] == low].min()):5.2f}")

# %% [markdown]
# Efficiency holds on every image to the printed digits. The object's segment takes most of
# the credit: 89 percent of the positive mass lies on the object, a little more than the finest
# occlusion map's 83 percent, at a cost of 1,024 to 4,096 passes per image against 441. The
# values can also be negative where occlusion at this scale sees little: next to the plain
# square, the segment holding the green disc gets -2.05 (its presence lowers the square's
# logit), while the occlusion map goes no lower than -0.56 there. What Shapley values on
# superpixels cannot do is look inside a segment: the whole triangle gets one value. Occlusion
# can, and it finds opposite effects within the triangle: its edges are orange (up to 3.17),
# its centre purple (down to -2.48; 34 percent of the triangle's pixels are negative). Hiding
# the centre *raises* the triangle logit. One value per segment adds such effects up and
# shows only their sum.
#
# On the cat, eight superpixels make exact Shapley values cheap (256 passes):

# %% mystnb={"image": {"alt": "The cat photo, the exact Shapley values of its 8 superpixels painted on the segments, and its occlusion map (window 32, stride 16), each on a signed orange-purple scale with its own colour bar in logits."}}
net.images = 0
cat_table = cl.coalition_values(net, x[:1], pred[:1], segments=cat_segments, batch_size=4)[0].double()
cat_exact = cl.shapley_from_values(cat_table)
print(f"forward passes: {net.images - 1}; sum of values {float(cat_exact.sum()):.3f} = f(x) - f(grey) "
      f"{float(cat_table[-1] - cat_table[0]):.3f}")
# Whole segments, like with like: hide one segment from the full image (leave-one-out, what
# occlusion asks of a patch), or show one segment alone on grey.
full = len(cat_table) - 1
leave_one_out = torch.stack([cat_table[full] - cat_table[full & ~(1 << s)] for s in range(len(cat_exact))])
alone = torch.stack([cat_table[1 << s] - cat_table[0] for s in range(len(cat_exact))])
for name, v in (("Shapley values", cat_exact), ("leave-one-out drops", leave_one_out), ("alone vs grey", alone)):
    print(f"{name:>19}: {float(v.min()):5.2f} to {float(v.max()):5.2f} logits")
top3 = logits[0].softmax(dim=0).topk(3)
print("top three classes of the cat:", ", ".join(f"{imagenet.labels[int(c)]} {float(p):.2f}" for p, c in zip(*top3)))
maps = {"exact Shapley (8 segments)": cl.segment_map(cat_exact, cat_segments)[None], "occlusion 32/16": occ[:1, 0]}
fig = viz.method_grid(x[:1], maps, denormalize=imagenet.denormalize, label="logit", signed={name: True for name in maps},
                      sign_legend={"exact Shapley (8 segments)": CONTRIBUTION_LEGEND, "occlusion 32/16": OCCLUSION_LEGEND})
plt.show()

# %% [markdown]
# All eight segments get positive values, from 0.34 to 2.20 logits, and together they account
# for the 9.24 logits between the cat and a grey image. The occlusion map beside them is
# measured on other units (32-pixel patches, not segments), so the comparison that fits is
# printed above for whole segments. Hiding one segment from the otherwise complete image moves
# the logit by -0.42 to 0.56 (leave-one-out, occlusion's question asked of a segment); showing
# one segment alone on grey is worth 2.61 to 8.28 logits. The Shapley value averages a
# segment's contribution over every context, from the full image to the nearly empty one, and
# lands between the two. Neither answer is wrong: with the rest of the face in view a piece
# adds little, and on a grey image any piece of the face carries much of the evidence. (The
# class explained is a near tie: tiger cat 0.39 against Egyptian cat 0.36 and tabby 0.17. We
# explain the tiger-cat logit, not the decision between the three.)

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
# (penalty $\alpha = 1$, unconstrained intercept). The kernel (width 0.25) and the ridge are the
# `lime` package's defaults for images; three of its other defaults are not ours. It hides a
# segment with the segment's own mean colour (`hide_color=None`), not with a fixed fill; it cuts
# the image with quickshift, not SLIC; and it explains whatever the classifier function
# returns, usually probabilities. It also adds the full image as the first sample; we do not.
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

# %% mystnb={"image": {"alt": "One Shapes image, three LIME maps from 50 samples with different seeds and the exact Shapley values, on one signed orange-purple scale with one colour bar clipped at the 75th percentile; the object's segment is saturated orange in all four, and the three LIME maps disagree on the background segments."}}
j = 1  # one image: LIME from three seeds at 50 samples, beside the exact values
runs = {f"seed {s}": cl.segment_map(lime_estimate(tables[j], n_segments[chosen[j]], 50, s), segments[chosen[j]])[None]
        for s in range(3)}
runs["exact Shapley"] = exact_maps[j : j + 1]
# The object's segment dwarfs the others: the one scale is clipped at the 75th percentile of
# |values| so that the background segments, where the seeds disagree, can be seen.
fig = viz.method_grid(xs[chosen[j] : chosen[j] + 1], runs, denormalize=shapes.denormalize,
                      signed={name: True for name in runs}, label="logit", clip_percentile=75,
                      row_titles=["LIME, 50 samples"], cell=2.0, shared_scale=True,
                      sign_legend={name: CONTRIBUTION_LEGEND for name in runs})
plt.show()
values = {name: cl.segment_values(m, segments[chosen[j]])[0] for name, m in runs.items()}
order = values["exact Shapley"].argsort(descending=True)
print("segment " + "".join(f"{name:>15}" for name in values))
for k in order.tolist():
    print(f"{k:7d} " + "".join(f"{float(v[k]):15.2f}" for v in values.values()))

# %% [markdown]
# On one scale clipped at the 75th percentile of |values|, the object's segment is saturated
# and the others can be read, and the table puts numbers on them. The seeds agree on the object
# (segment 3) and on segment 0, and disagree elsewhere, in size and in sign: segment 1, worth
# 0.03 exactly, gets -0.12, 0.32 and -0.40. All three seeds also give the object less than its
# Shapley value (about 5.3 against 6.42); at 50 samples this is largely the ridge penalty,
# which shrinks every coefficient (the section on errors below separates the penalty from the
# weighting). Over the six images, at 50 samples, two seeds rank the segments with a
# correlation of only 0.52; 1,000 samples bring it to 0.95. The top segment, the object, is the
# same for every pair of seeds at every budget: on these images one segment dominates, and
# LIME's instability lives in the ranking of the others, which is exactly what a reader of a
# LIME map tends to look at next.

# %% [markdown]
# ## Error against the truth as the budget grows
#
# Now the question the exact values were computed for. For each estimator and budget (forward
# passes per image), the relative error $\lVert \hat\phi - \phi \rVert / \lVert \phi \rVert$
# against the exact values, over the six images and ten seeds; the error bars are the standard
# error of that mean. A mean hides how far a single run can stray, and a single run is what one
# usually makes, so the table also gives the 90th percentile of the 60 runs' errors (dotted in
# the plot): nine runs in ten do at least that well. The dashed line falls like
# $1/\sqrt{\text{calls}}$.

# %%
budgets = [32, 64, 128, 256, 512, 1024, 2048]
estimators = {
    "KernelSHAP": kernel_shap_estimate,
    "permutation sampling": lambda t, m, n, s: permutation_estimate(t, m, n, s)[0],
    "LIME": lime_estimate,
}
errors = {name: [] for name in estimators}  # (mean, standard error, 90th percentile) per budget
for name, estimate in estimators.items():
    for n in budgets:
        e = [float((estimate(t, n_segments[i], n, seed) - phi).norm() / phi.norm())
             for t, i, phi in zip(tables, chosen, exact) for seed in range(10)]
        errors[name].append((np.mean(e), np.std(e, ddof=1) / math.sqrt(len(e)), np.percentile(e, 90)))
print("relative error over 6 images x 10 seeds: mean ± standard error, [90th percentile]")
print(f"{'calls':>6} " + " ".join(f"{name:>29}" for name in estimators))
for b, n in enumerate(budgets):
    print(f"{n:6d} " + " ".join(f"{errors[name][b][0]:>14.3f} ± {errors[name][b][1]:.3f} [{errors[name][b][2]:.3f}]"
                                for name in estimators))

# %% mystnb={"image": {"alt": "Log-log plot of the error of the Shapley estimators (permutation sampling, KernelSHAP, LIME) against the exact values as the number of forward passes per image grows: the mean error with standard-error bars and, dotted in the same colour, the 90th percentile of single runs, with a grey dashed line falling like one over the square root of the calls and a vertical line at the cost of the exact values."}}
fig, ax = plt.subplots(figsize=(7.4, 3.6), layout="constrained")
for name, marker in zip(estimators, "osd"):
    mean, se, p90 = np.array(errors[name]).T
    line = ax.errorbar(budgets, mean, yerr=se, marker=marker, capsize=3, label=f"{name}: mean")[0]
    ax.plot(budgets, p90, ":", color=line.get_color(), lw=1.2)
ax.plot([], [], ":", color="black", lw=1.2, label="90th percentile of runs")
ax.plot(budgets, errors["KernelSHAP"][0][0] * np.sqrt(budgets[0] / np.array(budgets)), "--", color="grey",
        label=r"$\propto 1/\sqrt{\mathrm{calls}}$")
exact_cost = int(np.median([len(t) for t in tables]))
ax.axvline(exact_cost, color="black", lw=0.8)
# x in data units, y in axes units: the note sits inside the frame whatever the data's range.
ax.text(exact_cost * 0.93, 0.96, f"exact values:\n{exact_cost:,} calls\n(median image)", ha="right", va="top",
        fontsize=8, transform=ax.get_xaxis_transform())
ax.set_xscale("log", base=2)
ax.set_yscale("log")
ax.set_xlabel("forward passes per image")
ax.set_ylabel("relative error against exact Shapley")
ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
plt.show()

# %% [markdown]
# KernelSHAP and permutation sampling converge to the exact values at about the
# $1/\sqrt{\text{calls}}$ rate: on average 10 and 8 percent error at 32 calls, 3 percent at 256,
# 1 percent at 2,048, which is already the price of the exact values on the median image here
# (11 segments). A single run strays further than the mean suggests: one run in ten is off by
# more than 17 and 15 percent at 32 calls, 5.1 and 4.2 percent at 256, 1.6 and 2.3 percent at
# 2,048. On this model the two estimators are within a standard error or two of each other at
# every budget. (A permutation budget is rounded down to whole orders of $M - 1$ passes, so at
# 32 calls it spends fewer.) Sampling pays off with more segments: 20 would need $2^{20}$, over
# a million, coalitions for the exact values, while a sampling estimator costs what its budget
# says. Its error at a given budget still depends on $M$ (a permutation costs $M - 1$ passes,
# so a budget buys fewer orders as $M$ grows), but not like $2^M$. LIME starts far worse (32
# percent at 32 calls), improves, and then levels off near 4 percent (0.036 at 2,048 calls).
#
# LIME levels off. Is that its ridge penalty or its weighting? Refit it without the penalty
# ($\alpha = 0$), at three budgets, and once on every coalition with its exact weight (the
# limit of infinitely many samples, since LIME draws every coalition with the same chance):

# %%
def lime_error(calls, alpha):
    return np.mean([float((lime_estimate(t, n_segments[i], calls, seed, alpha=alpha) - phi).norm() / phi.norm())
                    for t, i, phi in zip(tables, chosen, exact) for seed in range(10)])


print(f"{'samples':>14} {'alpha = 1':>10} {'alpha = 0':>10}   (LIME's mean relative error, 6 images x 10 seeds)")
for n in (50, 2048, 20000):
    print(f"{n:14,d} {lime_error(n, 1.0):10.3f} {lime_error(n, 0.0):10.3f}")
limit = []
for t, i, phi in zip(tables, chosen, exact):
    z = cl.all_coalitions(n_segments[i])
    limit.append(float((cl.weighted_ridge(z, t, cl.lime_kernel(z, 0.25), 0.0)[0] - phi).norm() / phi.norm()))
print(f"{'every coalition':>14} {'':>10} {np.mean(limit):10.3f}")

# %% [markdown]
# At 50 samples the penalty matters: without it, LIME's error falls from 0.212 to 0.071. At
# 2,048 samples it hardly does (0.036 against 0.034), at 20,000 not at all (0.033 against
# 0.032), and the fit on every coalition lands at 0.032. The penalty is a fixed amount, while
# the weighted squared errors it is added to grow with the number of samples, so its pull
# fades. What remains is the weighting: LIME weighs a coalition by its closeness to the full
# image, and the weighted fit that this defines has other coefficients than the Shapley
# values, however many samples estimate it.
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
# $b$ and both the total and its sharing change. Exact values again, now with a blurred copy as
# the baseline, on the three of our six images with the fewest segments (exact against exact,
# so that no estimation error mixes in):

# %%
fewest = sorted(range(len(chosen)), key=lambda j: n_segments[chosen[j]])[:3]
picked = [chosen[j] for j in fewest]
blur_tables = cl.coalition_values(shapes.model, xs[picked], ys[picked], segments=segments[picked],
                                  baseline="blur", progress=False)
for j, i, t in zip(fewest, picked, blur_tables):
    phi, phi_blur = exact[j], cl.shapley_from_values(t.double())
    print(f"image {i:2d} ({n_segments[i]} segments): total {float(phi.sum()):6.2f} (grey baseline) vs "
          f"{float(phi_blur.sum()):6.2f} (blur); rank correlation of the segments {spearmanr(phi, phi_blur)[0]:.2f}; "
          f"top segment the same: {bool(phi.argmax() == phi_blur.argmax())}")

# %% [markdown]
# The totals change, on image 1 even their sign (4.07 with the grey baseline, -1.02 with the
# blurred one: the blurred copy scores higher than the image itself), and so does the sharing:
# the rank correlation between the exact values of the segments under the two baselines is
# 0.72, 0.22 and 0.84 on the three images, although the top segment stays the same. A Shapley
# value answers "compared with what?", and the baseline is the what.
#
# **An out-of-distribution fill explains the fill.** Shown above: black patches change the
# score wherever they land, and the map follows the patches, not the object. A fill in the
# objects' own colour (red on Shapes) fails another way: it adds evidence instead of hiding it.
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
# **Probability or logit.** We explain logits, as every chapter of the course does. A
# probability near 1 saturates: hiding a patch that lowers the logit by a lot may move the
# probability hardly at all. Occlusion of the Shapes images (window 10, stride 5, grey fill) on
# the probability of the true class instead of its logit:

# %%
class Probability(torch.nn.Module):
    """The model's softmax probabilities in place of its logits."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x).softmax(dim=1)


with torch.no_grad():
    p_true = shapes.model(xs).softmax(dim=1).gather(1, ys[:, None])[:, 0]
print(f"probability of the true class: {float(p_true.min()):.4f} to {float(p_true.max()):.4f}")
prob_map = cl.occlusion(Probability(shapes.model).eval(), xs, ys, window=10, stride=5, progress=False)[:, 0]
for name, m in (("logit", shape_maps[(10, 5)]), ("probability", prob_map)):
    tiny = m.abs() < 0.01 * m.abs().flatten(1).amax(dim=1)[:, None, None]
    print(f"{name:>11}: share inside {mean_se(cl.share_on_mask(m, masks))}, pointing {mean_se(cl.pointing_game(m, masks))}, "
          f"pixels with |A| below 1% of the map's largest: {float(tiny.double().mean()):.0%}")

# %% [markdown]
# The model is sure of every test image (a probability of 0.9841 to 1.0000), and the
# probability map shows it: 81 percent of its pixels are below 1 percent of its largest value,
# against 43 percent for the logit map. Only the windows that bring a probability near 1 well
# down register at all; every other drop is flattened to about zero. Yet the probability map
# scores *better* on the share inside (0.91 against 0.72) and points at the object about as
# often (0.97 against 1.00). The share metric rewards a map that keeps only the decisive
# windows and zeroes the rest; it cannot tell that the graded effects elsewhere were lost. A
# saturated score hides the drops that occlusion and the Shapley methods are made of (chapter
# 02 measures what saturation does to a gradient): explain logits, and read a localisation
# score knowing what it does not see.

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
# model has seen and that adds nothing: here grey on Shapes, not black (which the data almost
# never contain) or red (the colour of some of the objects). When the features can be few, exact
# Shapley values are affordable and end the guessing: 256 passes for the cat's eight segments,
# 4,096 for twelve. Beyond a dozen segments, sample: permutation sampling or KernelSHAP, whose
# error here was 3 percent at 256 passes per image on average (one run in ten beyond 4 to 5
# percent) and 1 percent at 2,048; permutation sampling also reports its own standard error. Use LIME when you want LIME's local surrogate, not as a
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
# - The fill defines what "hidden" means. A fill the model has never seen (black on Shapes)
#   moves the score wherever it lands, and the map explains the patch; a fill in the objects'
#   colour (red) adds evidence instead of hiding it.
# - Superpixels turn an image into a handful of players. With up to a dozen of them, exact
#   Shapley values are affordable, satisfy efficiency to rounding, and serve as ground truth.
# - KernelSHAP and permutation sampling converge to them like $1/\sqrt{\text{calls}}$;
#   permutation sampling's standard errors are honest, and a single run strays further than
#   the mean error says. LIME converges to the fit its weighting defines, not to the Shapley
#   values, and is unstable across seeds at small budgets. The baseline is part of every
#   Shapley value.
# - Explain logits: probabilities near 1 flatten every drop but the decisive ones, and a
#   localisation score can reward that.
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
