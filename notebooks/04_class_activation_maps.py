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
# # 04. Class activation maps and Guided Backprop
#
# Chapter 02 asked which *pixels* the score is sensitive to. This chapter asks a coarser
# question that a CNN can answer more reliably: *where in the image does a layer hold the
# evidence for a class?* A convolutional layer keeps a spatial grid; weighting its channels by
# how much each one matters for the class and adding them up gives a map at that grid's
# resolution, the class activation map. CAM reads the weights off a network that ends in
# global average pooling; Grad-CAM gets them from a gradient and works for any CNN; Grad-CAM++,
# HiResCAM, LayerCAM and Score-CAM change one piece of the recipe each. Guided Backprop goes the
# other way, to full resolution, and we will measure why its sharp pictures say little about
# the class.
#
# **After this chapter you can**
# - derive CAM from a network's last layers, and show that Grad-CAM is the same map up to a
#   positive factor on such a network;
# - compute Grad-CAM step by step with the shape of every tensor, and check it against
#   pytorch-grad-cam and Captum;
# - choose the layer with a number: localisation against the true Shapes masks, layer by layer;
# - say when Grad-CAM++, HiResCAM, LayerCAM and Score-CAM differ from Grad-CAM, with
#   measurements, and what each costs;
# - compute Guided Backprop and Guided Grad-CAM on ReLU6 networks and networks that call their
#   activations as functions, and measure how little Guided Backprop depends on the class;
# - recognise the pitfalls: hooks left behind, module backward hooks on in-place activations,
#   libraries that silently skip ReLU6.

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
import contextlib
import copy
import dataclasses
import inspect
import io
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import GuidedBackprop, LayerGradCam
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

import course_lib as cl
from course_lib import viz
from course_lib.cam import BaseCAM, GradCAMPlusPlus as OurGradCAMPlusPlus, ScoreCAM as OurScoreCAM
from course_lib.cam import GradCAM as OurGradCAM, HiResCAM as OurHiResCAM, LayerCAM as OurLayerCAM
from course_lib.cam import GuidedActivations

cl.set_deterministic(seed=0, threads=2)
viz.use_style()

# With the internet (Colab) any CNN of cl.list_models() works here, e.g. "resnet50" (its last
# conv block is "layer4"). Statements marked *(EfficientNet-Lite0)* below are measurements on
# this model: its head is global average pooling and one linear layer, its activations are
# ReLU6, and its preprocessing maps [0, 1] to [-1, 1], so an input of zero is mid-grey.
imagenet = cl.load_model("efficientnet_lite0")
model, labels = imagenet.model, imagenet.labels
names = ["chelsea", "coffee", "astronaut", "motorcycle"]
x = torch.stack([imagenet.preprocess(cl.load_photo(n)) for n in names])
with torch.no_grad():
    logits = model(x)
pred = logits.argmax(dim=1)
for n, c, p in zip(names, pred, logits.softmax(dim=1).amax(dim=1)):
    print(f"{n:>10}: {labels[int(c)]} ({float(p):.2f})")

# The Shapes CNN and 200 held-out test images, with the true object masks.
shapes = cl.load_model("shapes_cnn")
test = cl.load_dataset("shapes", n=200, seed=900_000).batch
xs, ys, masks = shapes.preprocess(test.images), test.labels, test.masks
with torch.no_grad():
    shapes_logits = shapes.model(xs)
print(f"Shapes CNN: {int((shapes_logits.argmax(dim=1) == ys).sum())} of {len(ys)} test images right; "
      f"objects cover {float(masks.double().mean()):.2f} of an image on average")

# %% [markdown]
# ## CAM: a map the network already computes
#
# The Shapes CNN ends the way many classification CNNs do. Its last block, `features.layer3`,
# gives $K = 128$ activation maps $A_k$ of $8 \times 8$ positions; global average pooling (GAP)
# turns each map into one number; one linear layer with weights $w_{ck}$ and bias $b_c$ turns
# the $K$ numbers into class scores. Exchange the two sums and a map appears:
#
# $$ S_c \;=\; \sum_k w_{ck}\, \frac{1}{hw} \sum_{i,j} A_{kij} + b_c
#        \;=\; \frac{1}{hw} \sum_{i,j} \underbrace{\sum_k w_{ck} A_{kij}}_{M_c(i,j)} + b_c . $$
#
# $M_c$ is the class activation map (CAM) {footcite}`zhou2016learning`: the score of class $c$
# is exactly the average of $M_c$ over the positions, plus the bias. Nothing is approximated,
# so we can check it to rounding error on all 200 test images:

# %%
layer = "features.layer3"
cam_raw = cl.cam(shapes.model, xs, ys, layer=layer, upsample=False, relu=False)  # N x 8 x 8
score = shapes_logits.gather(1, ys[:, None])[:, 0]
bias = shapes.model.classifier.bias.detach()[ys]
print(f"CAM of {layer}: {tuple(cam_raw.shape)}")
print(f"max |mean of the map + bias - score| over {len(ys)} images: "
      f"{float((cam_raw.mean(dim=(1, 2)) + bias - score).abs().max()):.1e} "
      f"(scores range {float(score.min()):.1f} to {float(score.max()):.1f})")
negative = cam_raw.clamp(max=0).sum(dim=(1, 2)).abs() / cam_raw.abs().sum(dim=(1, 2))
print(f"share of |map| that is negative (evidence against the class): "
      f"{float(negative.mean()):.2f} on average, {float(negative.min()):.2f} to {float(negative.max()):.2f}")

# %% [markdown]
# The map is the score, position by position: its average plus the bias is the logit to
# within float32 rounding. A map may have negative parts (evidence against the class); here
# they are small, 1 percent of the map's magnitude on average and 5 at most, so the ReLU that
# CAM applies by convention (`relu=True`, the default) removes little. The $8 \times 8$ map is
# then upsampled to the image's $64 \times 64$ to lay it over the picture; the colour bar is
# in the map's own units, logit per position (the maps' averages are the scores).

# %% mystnb={"image": {"alt": "Three Shapes test images (a dotted red cross, a plain red square, a dotted purple square) and their class activation maps from features.layer3, upsampled from 8 x 8, on an inferno scale, each with a colour bar in logit per position clipped at the 99th percentile. The bright regions sit where the objects are: the centre and arms of the cross, most of each square."}}
shown = [0, 1, 3]
cams = cl.cam(shapes.model, xs[shown], ys[shown], layer=layer)  # N x 64 x 64, ReLU applied
fig = viz.method_grid(test.images[shown], {"CAM, features.layer3": cams},
                      row_titles=[shapes.labels[int(c)] for c in ys[shown]],
                      label="logit per position")
plt.show()

# %% [markdown]
# ## Grad-CAM: the same weights, from a gradient
#
# CAM needs a network that ends in GAP and one linear layer after the chosen layer. Grad-CAM
# {footcite}`selvaraju2017gradcam` gets the channel weights from a gradient instead, which any
# differentiable head provides: the weight of channel $k$ is the average over positions of the
# gradient of the score with respect to that channel's activations,
#
# $$ \alpha_{ck} = \frac{1}{hw} \sum_{i,j} \frac{\partial S_c}{\partial A_{kij}}, \qquad
#    \text{Grad-CAM}_c = \mathrm{ReLU}\Big(\sum_k \alpha_{ck} A_k\Big). $$
#
# On a GAP network the two coincide. Differentiating the first equation above,
# $\partial S_c / \partial A_{kij} = w_{ck} / (hw)$ at every position, so
# $\alpha_{ck} = w_{ck}/(hw)$ and CAM $= hw \times$ Grad-CAM: the same map up to the positive
# factor $hw$, 64 on the Shapes CNN. EfficientNet-Lite0 also ends in GAP and a linear layer, so
# its last block gives the same identity with $7 \times 7 = 49$ positions:

# %%
def ratio_range(a, b):
    """Smallest and largest a / b over the entries where b is not tiny."""
    keep = b.abs() > 1e-3 * b.abs().max()
    r = a[keep] / b[keep]
    return float(r.min()), float(r.max())


g_raw = cl.grad_cam(shapes.model, xs, ys, layer=layer, upsample=False, relu=False)
print("Shapes CNN, features.layer3:     CAM / Grad-CAM from %.4f to %.4f" % ratio_range(cam_raw, g_raw))
cam_photo = cl.cam(model, x[:1], pred[:1], layer="bn2", upsample=False, relu=False)
g_photo = cl.grad_cam(model, x[:1], pred[:1], layer="bn2", upsample=False, relu=False)
print("EfficientNet-Lite0, bn2 (7 x 7): CAM / Grad-CAM from %.4f to %.4f" % ratio_range(cam_photo, g_photo))

# %% [markdown]
# ### Grad-CAM step by step
#
# Here is the whole computation for the cat, written out with a forward hook on the last
# block (`bn2`, which in timm's EfficientNet is batch norm followed by ReLU6), and the shape of
# every tensor. Two details decide whether it is right. The activations are *copied* when the
# layer returns, because the next module may overwrite its input in place (`ReLU(inplace=True)`
# does). And the gradient is caught by a hook on that same output tensor, registered at the
# same moment, which receives the gradient with respect to that value. Module backward hooks,
# the usual alternative, break on in-place activations (see the pitfalls).

# %%
cat, cat_class = x[:1], int(pred[0])
captured = {}


def keep(module, inputs, output):
    captured["A"] = output.detach().clone()
    hooks.tensor(output, lambda grad: captured.__setitem__("dS/dA", grad.detach()))


with cl.Hooks() as hooks:  # every hook is removed when the block ends, also after an error
    hooks.forward(model.bn2, keep)
    x_in = cat.clone().requires_grad_(True)
    S = model(x_in)[0, cat_class]
    torch.autograd.grad(S, x_in)  # only the input's gradient: the parameters' .grad stay as they are
A, dS_dA = captured["A"], captured["dS/dA"]
alpha = dS_dA.mean(dim=(2, 3))  # one weight per channel
weighted = torch.einsum("nk,nkhw->nhw", alpha, A)
rectified = weighted.clamp(min=0)
upsampled = F.interpolate(rectified[:, None], size=cat.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
for what, t in [("input x", cat), ("activations A of bn2", A), ("gradients dS/dA", dS_dA),
                ("weights alpha (mean gradient)", alpha), ("sum_k alpha_k A_k", weighted),
                ("ReLU", rectified), ("upsampled to the input", upsampled)]:
    print(f"{what:<32} {str(tuple(t.shape)):>20}")
print(f"max |by hand - cl.grad_cam| = "
      f"{float((upsampled - cl.grad_cam(model, cat, cat_class, layer='bn2')).abs().max()):.1e}")

# %% [markdown]
# `course_lib` splits the same computation the way pytorch-grad-cam does, the library most
# people would use for it: one base class owns the pipeline (capture, weights, weighted sum,
# ReLU, upsampling), and each method overrides one small piece. This is the pipeline, and all of
# Grad-CAM:

# %%
print(inspect.getsource(BaseCAM.__call__))
print(inspect.getsource(OurGradCAM))

# %% [markdown]
# ### Grad-CAM on the photos
#
# The last block is the usual choice for Grad-CAM: the deepest layer that still has a spatial
# grid. On two of the photos, for the predicted class (the cat and the espresso follow below):

# %% mystnb={"image": {"alt": "The astronaut photo (predicted football helmet) and the motorcycle photo (predicted moped) with Grad-CAM of the last block bn2 over a grey copy, each with its own inferno colour bar clipped at the 99th percentile. The maps cover the helmet at the bottom right of the astronaut photo and the engine and tank of the motorcycle."}}
gc_photos = cl.grad_cam(model, x[2:], pred[2:], layer="bn2")  # N x 224 x 224
fig = viz.method_grid(x[2:], {"Grad-CAM, bn2": gc_photos}, overlay=True, denormalize=imagenet.denormalize,
                      row_titles=[labels[int(c)] for c in pred[2:]], label="Grad-CAM")
plt.show()

# %% [markdown]
# A map for the predicted class on a photo of one object cannot show what Grad-CAM is for,
# which is telling classes apart. Put the cat and the espresso side by side in one image and ask
# for each class in turn; a class-discriminative map must move to the half that holds the class:

# %%
def paste(canvas, image, top, left, size):
    """Put ``image`` (3 x H x W, normalised), resized to size x size, on ``canvas`` in place."""
    small = F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    canvas[:, top : top + size, left : left + size] = small


pair = torch.zeros(3, 224, 224)  # zero is mid-grey for this model's normalisation
paste(pair, x[0], 56, 0, 112)    # the cat on the left
paste(pair, x[1], 56, 112, 112)  # the espresso on the right
pair = pair[None]
tiger_cat, espresso = labels.index("tiger cat"), labels.index("espresso")
with torch.no_grad():
    top3 = model(pair).softmax(dim=1)[0].topk(3)
print("side by side, top 3:", ", ".join(f"{labels[int(i)]} {float(p):.2f}" for p, i in zip(*top3)))
pair_maps = cl.grad_cam(model, pair.expand(2, -1, -1, -1), [tiger_cat, espresso], layer="bn2")
for name, m in zip(["tiger cat", "espresso"], pair_maps):
    print(f"Grad-CAM for {name:<9}: {float(m[:, :112].sum() / m.sum()):.2f} of the map on the cat's half, "
          f"{float(m[:, 112:].sum() / m.sum()):.2f} on the espresso's")

# %% [markdown]
# The model calls the pair a cat (its three top classes are cats), yet each class's map sits on
# that class's half: 0.89 of the tiger-cat map on the cat, 0.84 of the espresso map on the
# espresso.

# %% mystnb={"image": {"alt": "The cat and the espresso side by side on a grey background, twice: Grad-CAM of bn2 for the target tiger cat is bright on the cat's half, for the target espresso on the espresso's half; each map has its own inferno colour bar."}}
fig = viz.method_grid(pair.expand(2, -1, -1, -1), {"Grad-CAM, bn2": pair_maps}, overlay=True,
                      denormalize=imagenet.denormalize, row_titles=["target: tiger cat", "target: espresso"],
                      label="Grad-CAM")
plt.show()

# %% [markdown]
# ## Which layer?
#
# Grad-CAM can be computed at any layer with a spatial grid, and the choice changes the map
# a great deal. Deep layers are coarse ($8 \times 8$ here) but their channels stand
# for whole objects; early layers are fine but their channels stand for edges and colours, and
# their gradient is a weaker guide. Shapes lets us measure instead of look, because we know
# every object's pixels. Two numbers per layer, over the 200 test images and the true class:
#
# - **on object**: the share of the map's (positive) mass that lies on the object's true mask;
#   the objects cover 0.17 of an image, so a map that ignores them scores about 0.17;
# - **pointing game**: how often the map's maximum lies on the object (chance: 0.17 too).
#
# Every variant of this chapter shares the forward and backward pass and differs only in what
# it does with the captured activations and gradients, so one capture per layer gives all of
# them (`course_lib.cam.capture` is the first step of the pipeline above):

# %%
VARIANTS = {"Grad-CAM": OurGradCAM(), "Grad-CAM++": OurGradCAMPlusPlus(),
            "HiResCAM": OurHiResCAM(), "LayerCAM": OurLayerCAM()}


def all_variants(net, inputs, targets, layer_name):
    """The four gradient CAMs of ``layer_name`` from one forward and one backward pass."""
    c = cl.cam.capture(net, inputs, targets, cl.get_layer(net, layer_name))
    return {name: cl.cam.upsample_maps(v.combine(c).clamp(min=0), tuple(inputs.shape[-2:]))
            for name, v in VARIANTS.items()}


def pearson(a, b):
    """Pearson correlation of each pair of maps in two stacks (flattened): N values."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    a, b = a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1))


shape_layers = {"features.stem": "32 x 32", "features.layer1": "16 x 16",
                "features.layer2": "8 x 8", "features.layer3": "8 x 8"}
scores = {}
for name in shape_layers:
    maps = all_variants(shapes.model, xs, ys, name)
    scores[name] = {v: (cl.share_on_mask(m, masks), cl.pointing_game(m, masks)) for v, m in maps.items()}
    if name == "features.layer3":
        same = float((maps["Grad-CAM"] - cl.grad_cam(shapes.model, xs, ys, layer=name)).abs().max())
        print(f"(one capture vs cl.grad_cam, max |difference| {same:.1e})")
    if name == "features.stem":
        stem_maps = maps
print(f"{'Grad-CAM at':<18}{'grid':>8} {'on object (mean ± sd)':>23} {'worst decile':>13} {'pointing':>9}")
for name, grid in shape_layers.items():
    on, hit = scores[name]["Grad-CAM"]
    print(f"{name:<18}{grid:>8} {float(on.mean()):>15.2f} ± {float(on.std()):.2f} "
          f"{float(on.quantile(0.1)):>13.2f} {float(hit.mean()):>9.2f}")

# %% mystnb={"image": {"alt": "Two Shapes test images (a dotted red cross and a plain red square) with Grad-CAM of the true class at four depths of the Shapes CNN (stem 32 x 32, layer1 16 x 16, layer2 8 x 8, layer3 8 x 8), upsampled to 64 x 64, each with its own colour bar. The stem map fills the object with speckle (and, on the square's image, a green blob of the background); the layer1 map has two bright bars on the vertical arm of the cross and outlines the background around the square; layer2 has blobs on the object; layer3 is a smooth blob centred on the object."}}
depth_maps = {name: cl.grad_cam(shapes.model, xs[:2], ys[:2], layer=name) for name in shape_layers}
fig = viz.method_grid(test.images[:2], depth_maps,
                      row_titles=[shapes.labels[int(c)] for c in ys[:2]], label="Grad-CAM")
plt.show()

# %% [markdown]
# The last block, where Grad-CAM is usually computed, is the most *reliable*: the map's maximum
# lies on the object in 94 percent of the images and the share on the object varies little
# (0.40 ± 0.05, 2.4 times the 0.17 of a map that ignores the object). Its $8 \times 8$ grid is
# coarse, so upsampled mass spills over the object's border, which caps the share. `layer2` has
# the same grid and puts more mass on the object (0.52), but its peak misses more often (0.86).
# `layer1` is the trap: the average is respectable (0.42), yet for the worst tenth of images
# only 0.06 of the map is on the object and the peak is on it in barely more than half of them;
# in the figure its map outlines the background around the plain square. Averaging the gradient
# over a $16 \times 16$ grid of channels that detect edges and colours leaves weights whose sign
# says little about the class. The stem's map follows the object closely, but a localisation
# score says where a map points, not whether it is about the class. A map that explains class
# $c$ should change when we ask for another class. Over the 200 test images, the true class
# against the *runner-up* (the class the model ranks highest after the true one) and the
# *lowest-ranked* class, every map after its ReLU:

# %%
ranked = shapes_logits.argsort(dim=1, descending=True)
runner_up = torch.where(ranked[:, 0] == ys, ranked[:, 1], ranked[:, 0])
lowest = ranked[:, -1]
print(f"{'Grad-CAM at':<18}{'r(true, runner-up)':>19} {'on object: true':>16}{'runner-up':>11}{'lowest':>8}"
      f"{'lowest all 0':>14}")
for name in shape_layers:
    true_map, second_map, lowest_map = (cl.grad_cam(shapes.model, xs, t, layer=name) for t in (ys, runner_up, lowest))
    r = pearson(true_map, second_map)  # NaN where a map is all zero: left out of the mean
    on = [float(cl.share_on_mask(m, masks).mean()) for m in (true_map, second_map, lowest_map)]
    all_zero = float((lowest_map.flatten(1).amax(dim=1) == 0).double().mean())
    print(f"{name:<18}{float(r.nanmean()):>19.2f} {on[0]:>16.2f}{on[1]:>11.2f}{on[2]:>8.2f}{all_zero:>14.2f}")
    if name == "features.layer3":
        layer3_lowest = lowest_map

# %% [markdown]
# The stem's map is not "the object, whatever the class". Between the true class and the
# runner-up it is less alike than at `layer3` ($r$ 0.27 on average, against 0.47), its share on the object falls from 0.47 for the true class to 0.31 for the
# runner-up and 0.10 for the lowest-ranked class, and for 26 percent of the images the lowest
# class's stem map is zero everywhere. `layer1` is the least tied to the class of all ($r$
# 0.12), and its runner-up map even puts more of its mass on the object than the true class's
# (0.51 against 0.42). What can ignore the class in an early layer is where the map *peaks*: a
# small, bright, saturated patch can capture the stem's peak whatever class is asked for (the
# exercises measure this on a model trained with a white tag in one corner).
#
# At `layer3` the lowest-ranked class keeps 0.01 of its map on the object, a number that is
# invisible in the usual picture. pytorch-grad-cam, and most figures in papers, scale every map
# to $[0, 1]$ before drawing it; a map whose largest value is tiny then looks exactly as sure of
# itself as one whose largest value is large. For `layer3`, the true class against the
# lowest-ranked class:

# %%
true3 = cl.grad_cam(shapes.model, xs, ys, layer=layer)
alive = layer3_lowest.flatten(1).amax(dim=1) > 0  # the lowest class's maps that are not all zero
print(f"lowest class's map not all zero in {int(alive.sum())} of {len(ys)} images; on those, median largest value: "
      f"true class {float(true3[alive].flatten(1).amax(dim=1).median()):.3f}, "
      f"lowest class {float(layer3_lowest[alive].flatten(1).amax(dim=1).median()):.3f}")
print(f"median share on object: true class {float(cl.share_on_mask(true3[alive], masks[alive]).median()):.2f}, "
      f"lowest class {float(cl.share_on_mask(layer3_lowest[alive], masks[alive]).median()):.2f}")
shown_low = int(alive.nonzero()[0])

# %% mystnb={"image": {"alt": "A Shapes test image (a dotted red cross) with Grad-CAM of features.layer3 for the true class, cross, and for the lowest-ranked class, circle, each on its own inferno scale with a colour bar clipped at the 99th percentile. The cross map is a broad blob over the cross, its colour bar reaching about 0.6; the circle map is one bright blob at the top right, off the cross, equally bright on its own scale, whose colour bar reaches only about 0.005."}}
fig = viz.method_grid(test.images[[shown_low]],
                      {f"true class ({shapes.labels[int(ys[shown_low])]})": true3[[shown_low]],
                       f"lowest class ({shapes.labels[int(lowest[shown_low])]})": layer3_lowest[[shown_low]]},
                      row_titles=[shapes.labels[int(ys[shown_low])]], label="Grad-CAM, features.layer3")
plt.show()

# %% [markdown]
# In 186 of the 200 images the lowest-ranked class's map is not zero everywhere, and there its
# largest value is about fifty times smaller than the true class's (median 0.010 against 0.542)
# and its median share on the object is 0.00. Drawn each on its own scale, as in the figure
# (and as every map scaled to $[0, 1]$ is), the circle's map on the cross is one bright blob
# beside the object, as bright as the cross's map; only the colour bars, about 0.005 against
# 0.6, say that one is evidence and the other is nearly nothing. When the question is how much
# evidence there is, or for which class, compare maps on one scale or keep their units.
#
# The same sweep on the ImageNet network has no object masks, but the side-by-side image of the
# cat and the espresso gives a test: for each class, the share of its Grad-CAM map on the half
# that holds the class (0.5 for a map that ignores the halves):

# %%
pair_layers = ["blocks.3", "blocks.4", "blocks.5", "blocks.5.3.bn2", "bn2"]
pair_by_layer = {}
print(f"{'Grad-CAM at':<16}{'grid':>8}{'tiger cat on the cat':>22}{'espresso on the espresso':>26}")
for name in pair_layers:
    m = cl.grad_cam(model, pair.expand(2, -1, -1, -1), [tiger_cat, espresso], layer=name)
    pair_by_layer[name] = m
    grid = cl.cam.capture(model, pair, tiger_cat, cl.get_layer(model, name), gradients=False).activations.shape[-1]
    print(f"{name:<16}{f'{grid} x {grid}':>8}{float(m[0][:, :112].sum() / m[0].sum()):>22.2f}"
          f"{float(m[1][:, 112:].sum() / m[1].sum()):>26.2f}")

# %% mystnb={"image": {"alt": "The cat and the espresso side by side on grey, twice, with Grad-CAM for tiger cat (top row) and for espresso (bottom row) at three depths of EfficientNet-Lite0: blocks.3 (14 x 14), blocks.4 (14 x 14) and blocks.5 (7 x 7), each with its own colour bar. For tiger cat, blocks.3 has spots on the cat's eyes and nose and a faint band on the grey below, blocks.4 is diffuse over both halves and the grey, and blocks.5 lies on the espresso cup. For espresso, blocks.3 draws the cup's rim and spots on the cat, blocks.4 the rim and the cat's eyes, blocks.5 the cup."}}
fig = viz.method_grid(pair.expand(2, -1, -1, -1), {f"Grad-CAM, {n}": pair_by_layer[n] for n in ["blocks.3", "blocks.4", "blocks.5"]},
                      overlay=True, denormalize=imagenet.denormalize, cell=1.6,
                      row_titles=["target: tiger cat", "target: espresso"], label="Grad-CAM")
plt.show()

# %% [markdown]
# Only the last block, `bn2`, puts each class's map on its own half (0.89 and 0.84). Inside the
# network the maps are unreliable, and not all in one direction: at `blocks.5` the tiger cat's
# map lies on the espresso (0.11 on the cat; the figure's top right), at `blocks.5.3.bn2` the
# espresso's map leans to the cat (0.46 on the espresso), and at `blocks.4` both are near the
# 0.5 of a map that ignores the halves (0.59 and 0.58). `blocks.3` leans the right way for both
# (0.78 and 0.62), with spots on the cat's eyes and nose and on the cup's rim. One image pair
# is a small test, but it says the same as the Shapes measurements: before trusting an inner
# layer's map, measure it against something you know.

# %% [markdown]
# ## Grad-CAM++ and several objects of one class
#
# Grad-CAM averages the gradient over positions. Grad-CAM++ {footcite}`chattopadhay2018gradcampp`
# argues that this average favours channels with a large footprint, so that of several objects
# of one class the largest dominates the map, and weights each position's positive gradient
# instead:
#
# $$ w_{ck} = \sum_{i,j} \alpha^{kc}_{ij}\, \mathrm{ReLU}\!\Big(\frac{\partial Y_c}{\partial A_{kij}}\Big),
#    \qquad Y_c = \exp(S_c). $$
#
# The paper solves for the $\alpha$ that would make the map reproduce the score, and gets a
# closed form in the second and third derivatives of $Y_c$. For a network that is piecewise
# linear in $A$ (ReLU, ReLU6), the derivatives of $S_c$ beyond the first vanish, so with
# $g = \partial S_c / \partial A_{kij}$ the exponential gives $\partial^2 Y_c/\partial A^2 =
# e^{S_c} g^2$ and $\partial^3 Y_c / \partial A^3 = e^{S_c} g^3$, and
#
# $$ \alpha^{kc}_{ij} = \frac{e^{S_c} g^2}{2 e^{S_c} g^2 + \sum_{a,b} A_{kab}\, e^{S_c} g^3}
#    = \frac{1}{2 + g \sum_{a,b} A_{kab}} \quad (g \ne 0). $$
#
# The factor $e^{S_c}$ cancels in $\alpha$ and multiplies every weight of an image by the same
# positive number, so `course_lib` drops it (it overflows float32 once a score passes 88):

# %%
print(inspect.getsource(OurGradCAMPlusPlus.channel_weights))

# %% [markdown]
# One consequence is worth checking before any experiment. At the last block of a GAP network
# the gradient is the same at every position, $g = w_{ck}/(hw)$, and $g \sum_{ab} A_{kab} =
# w_{ck} \bar A_k$ is channel $k$'s contribution $s_k$ to the score. The Grad-CAM++ weight is
# then $\mathrm{ReLU}(w_{ck}) / (2 + s_k)$: CAM's weight, with the channels that contribute
# most to the score damped. *(EfficientNet-Lite0, `bn2`)*:

# %%
c_cat = cl.cam.capture(model, cat, cat_class, model.bn2)
w_cls = model.classifier.weight.detach()[cat_class]
contribution = w_cls * c_cat.activations.mean(dim=(2, 3))[0]
predicted_weights = w_cls.clamp(min=0) / (2 + contribution)
weights_pp = OurGradCAMPlusPlus().channel_weights(c_cat)[0]
print(f"max relative |Grad-CAM++ weights - ReLU(w) / (2 + s_k)|: "
      f"{float((weights_pp - predicted_weights).abs().max() / predicted_weights.abs().max()):.1e}")

# %% [markdown]
# To test the claim we need images with several objects of one class, so we make them. Shapes
# has one object per image, but two test images of the same class whose objects do not touch
# can be merged by pasting one object, with its true mask, into the other image. From 2,000
# test images this gives pairs of every class; three numbers measure a map on them:
#
# - **on objects**: the share of the map's mass on the two objects;
# - **balance**: each object's share of that mass divided by its share of the two objects'
#   area, the smaller of the two: 1 when both get mass in proportion to their size, 0 when one
#   is ignored. A flat map scores a perfect 1, so balance alone rewards a map that says nothing;
# - **contrast**: the mean map value on the *weaker* of the two objects divided by the mean on
#   the background. A flat map scores 1; a map that finds both objects scores well above 1.

# %%
pool = cl.load_dataset("shapes", n=2000, seed=900_000).batch
grown = F.max_pool2d(pool.masks[:, None].float(), 3, stride=1, padding=1)[:, 0].flatten(1)  # 1-pixel margin
overlap = grown @ grown.T  # pixels two objects (with margins) would share
first, second, taken = [], [], torch.zeros(len(pool), dtype=torch.bool)
for i in range(len(pool)):
    if taken[i]:
        continue
    free = (pool.labels == pool.labels[i]) & (overlap[i] == 0) & ~taken
    free[i] = False
    if free.any():
        j = int(free.nonzero()[0])
        first.append(i), second.append(j)
        taken[[i, j]] = True
first, second = torch.tensor(first), torch.tensor(second)
mask_a, mask_b = pool.masks[first], pool.masks[second]
merged = torch.where(mask_b[:, None], pool.images[second], pool.images[first])
x2, y2 = shapes.preprocess(merged), pool.labels[first]
with torch.no_grad():
    right = int((shapes.model(x2).argmax(dim=1) == y2).sum())
print(f"{len(first)} two-object images, per class: {torch.bincount(y2, minlength=6).tolist()}; "
      f"classified right: {right}; the two objects cover "
      f"{float((mask_a | mask_b).double().mean()):.2f} of an image (a flat map's 'on objects')")


def objects_balance_contrast(maps, a, b):
    """On objects, balance and contrast (see above) of N maps for objects with masks a and b:
    three N-vectors."""
    m = maps.clamp(min=0).double()
    mass_a, mass_b = (m * a).sum(dim=(1, 2)), (m * b).sum(dim=(1, 2))
    area_a, area_b = a.sum(dim=(1, 2)).double(), b.sum(dim=(1, 2)).double()
    share = mass_a / (mass_a + mass_b).clamp(min=1e-30)
    fair = area_a / (area_a + area_b)
    balance = torch.minimum(share / fair, (1 - share) / (1 - fair))
    background = ~(a | b)
    on_background = (m * background).sum(dim=(1, 2)) / background.sum(dim=(1, 2))
    contrast = torch.minimum(mass_a / area_a, mass_b / area_b) / on_background.clamp(min=1e-30)
    return (mass_a + mass_b) / m.sum(dim=(1, 2)).clamp(min=1e-30), balance, contrast


flat = [float(t.mean()) for t in objects_balance_contrast(torch.ones(len(y2), 64, 64), mask_a, mask_b)]
contrasts = {}
print(f"{'':<17}" + "".join(f"{v:>24}" for v in VARIANTS))
print(f"{'':<17}" + "".join(f"{'on objects / balance':>24}" for v in VARIANTS))
for name in ["features.layer1", "features.layer2", "features.layer3"]:
    maps = all_variants(shapes.model, x2, y2, name)
    cells = []
    for v in VARIANTS:
        on, balance, contrasts[name, v] = objects_balance_contrast(maps[v], mask_a, mask_b)
        cells.append(f"{float(on.mean()):>10.2f} / {float(balance.mean()):.2f} ({float(balance.quantile(0.1)):.2f})")
    print(f"{name:<17}" + "".join(f"{c:>24}" for c in cells))
print(f"balance: mean (worst decile); a flat map: on objects {flat[0]:.2f}, balance {flat[1]:.2f}\n")
print(f"{'contrast':<17}" + "".join(f"{v:>24}" for v in VARIANTS))
for name in ["features.layer1", "features.layer2", "features.layer3"]:
    print(f"{name:<17}" + "".join(f"{float(contrasts[name, v].median()):>17.2f} ({float(contrasts[name, v].quantile(0.1)):.2f})"
                                   for v in VARIANTS))
print(f"contrast: median (worst decile); a flat map: {flat[2]:.2f}")

# %% [markdown]
# Balance alone flatters Grad-CAM++: by that number it gives the most balanced maps at every
# layer (tied with LayerCAM at `layer3`), yet a flat map would beat it (1.00). The contrast, which a flat map cannot win, tells a
# narrower story. At `layer1` Grad-CAM's weaker object is, in the median image, no brighter than
# the background (contrast 1.01, and 0.08 in the worst tenth: one object ignored); there
# Grad-CAM++ does what its paper promises and lifts it to 2.74, but HiResCAM (7.60) and LayerCAM
# (5.66), which keep the gradient per position, do much better. At `layer2` Grad-CAM++ is
# *worse* than Grad-CAM (2.02 against 3.26), and puts less of its mass on the objects (0.41
# against 0.54). At `layer3`, the last block of a GAP network, the four are within 0.02 of
# each other (2.39 to 2.41).
#
# The same test on the photo network: copies of the cat on a grey background, two of equal
# size, one large and one small, four, and three small ones, with the same three numbers
# (each copy's square is its mask; the contrast is that of the weakest copy).

# %%
layouts = {
    "two equal": [(62, 6, 100), (62, 118, 100)],
    "large and small": [(42, 4, 140), (77, 150, 70)],
    "four": [(6, 6, 100), (6, 118, 100), (118, 6, 100), (118, 118, 100)],
    "three small": [(20, 10, 70), (120, 80, 70), (30, 150, 70)],
}
collages, squares = [], []
for layout in layouts.values():
    canvas, regions = torch.zeros(3, 224, 224), []
    for top, left, size in layout:
        paste(canvas, x[0], top, left, size)
        region = torch.zeros(224, 224, dtype=torch.bool)
        region[top : top + size, left : left + size] = True
        regions.append(region)
    collages.append(canvas)
    squares.append(regions)
collages = torch.stack(collages)
with torch.no_grad():
    collage_pred = model(collages).argmax(dim=1)
print("predicted:", ", ".join(f"{k}: {labels[int(c)]}" for k, c in zip(layouts, collage_pred)))


def on_cats_balance_contrast(m, regions):
    m = m.clamp(min=0).double()
    mass = torch.stack([(m * r).sum() for r in regions])
    area = torch.stack([r.sum() for r in regions]).double()
    inside = float(mass.sum() / m.sum())
    balance = float(((mass / mass.sum()) / (area / area.sum())).min())
    background = ~torch.stack(regions).any(dim=0)
    contrast = float((mass / area).min() / ((m * background).sum() / background.sum()).clamp(min=1e-30))
    return inside, balance, contrast


cat_area = np.mean([float(torch.stack(r).any(dim=0).double().mean()) for r in squares])
print(f"the cats cover {cat_area:.2f} of an image on average (a flat map's 'on cats')")
collage_layers = ["bn2", "blocks.5.3.bn2", "blocks.5"]
collage_maps = {}
print(f"{'layer':<16}{'A < 0':>7}" + "".join(f"{v:>30}" for v in ["Grad-CAM", "Grad-CAM++", "LayerCAM"]))
print(f"{'':<23}" + "".join(f"{'on cats / balance / contrast':>30}" for v in range(3)))
for name in collage_layers:
    c = cl.cam.capture(model, collages, tiger_cat, cl.get_layer(model, name))
    negative_share = float((c.activations < 0).double().mean())
    if name == "blocks.5.3.bn2":
        g = c.gradients
        alpha = 1 / (2 + g * c.activations.sum(dim=(2, 3), keepdim=True))
        near_half = float(((alpha[g > 0] > 0.45) & (alpha[g > 0] <= 0.5)).double().mean())
    maps = {v: cl.cam.upsample_maps(VARIANTS[v].combine(c).clamp(min=0), (224, 224))
            for v in ["Grad-CAM", "Grad-CAM++", "LayerCAM"]}
    collage_maps[name] = maps
    row = []
    for v, vm in maps.items():
        stats = np.array([on_cats_balance_contrast(m, r) for m, r in zip(vm, squares)])
        row.append(f"{stats[:, 0].mean():>16.2f} / {stats[:, 1].mean():.2f} / {np.median(stats[:, 2]):>5.2f}")
    print(f"{name:<16}{negative_share:>7.2f}" + "".join(row))
print("on cats, balance: means over the four collages; contrast: their median")
print(f"Grad-CAM++ at blocks.5.3.bn2: alpha between 0.45 and 0.5 at {near_half:.0%} of the positions "
      f"with a positive gradient")

# %% mystnb={"image": {"alt": "Two collages of cat copies on grey (two equal cats; three small cats) with Grad-CAM, Grad-CAM++ and LayerCAM of blocks.5.3.bn2, each with its own colour bar. Grad-CAM puts a single hot spot on one of the two equal cats and lights up the background between the three small ones; Grad-CAM++ is almost uniform over the whole image; LayerCAM highlights every copy."}}
drawn = [0, 3]  # two equal, three small: the table covers all four
fig = viz.method_grid(collages[drawn], {f"{v}, blocks.5.3.bn2": collage_maps["blocks.5.3.bn2"][v][drawn]
                                        for v in ["Grad-CAM", "Grad-CAM++", "LayerCAM"]},
                      overlay=True, denormalize=imagenet.denormalize,
                      row_titles=[list(layouts)[i] for i in drawn], label="map")
plt.show()

# %% [markdown]
# On the photo network the picture is no kinder to Grad-CAM++. At `bn2`, the last block of a
# GAP network, Grad-CAM already shares its mass among the copies in proportion to their size
# (balance 0.92, contrast 2.37) and the three variants give nearly the same numbers. Inside the
# last stage, at `blocks.5.3.bn2` (after a ReLU6, $7 \times 7$), Grad-CAM does fail on several
# objects: it puts a hot spot on one copy of the two equal cats and ignores the other, and on
# the three small cats it lights up the background (balance 0.50, and a median contrast of
# 0.62: the weakest copy is darker than the background). LayerCAM, which keeps the gradient per
# position, finds every copy (balance 0.91, contrast 1.63). Grad-CAM++ scores a balance of
# 0.99, but for the wrong reason: its map is flat (contrast 1.00; third column), and its 0.50
# on cats is the 0.49 of the image the cats cover. At this layer $g \sum_{ab} A_{kab}$ is small,
# so $\alpha$ is close to 1/2 almost everywhere (the last line above): the weights become half
# the sums of the positive gradients, every channel with some positive gradient somewhere
# counts, whatever its negative gradients elsewhere, and the sum of many channels is flat. On
# `blocks.5`, a block output without activation (half its values negative), the closed form's
# assumption of non-negative activations fails and so does its balance (0.33).
# *(EfficientNet-Lite0.)* Measure a variant on your model and layer before trusting its promise.
#
# ## HiResCAM and LayerCAM: one line each
#
# Two more variants keep the gradient at every position instead of averaging it. HiResCAM
# {footcite}`draelos2020hirescam` multiplies gradient and activation element by element before
# summing over channels, $\sum_k \frac{\partial S_c}{\partial A_k} \odot A_k$; LayerCAM
# {footcite}`jiang2021layercam` keeps only the positive gradients,
# $\sum_k \mathrm{ReLU}(\frac{\partial S_c}{\partial A_k}) \odot A_k$. In the pipeline each is
# one `combine` method:

# %%
print(inspect.getsource(OurHiResCAM))
print(inspect.getsource(OurLayerCAM))

# %% [markdown]
# Where the gradient is the same at every position, as at the last block of a GAP network,
# HiResCAM *is* Grad-CAM; LayerCAM is CAM without the channels of negative weight, so it is
# close to Grad-CAM but not equal to it. They part from Grad-CAM in earlier layers.
# Localisation on the Shapes test images, layer by layer, for all four gradient variants, and
# at the last block how far each variant's map is from Grad-CAM's:

# %%
print(f"{'on object / pointing':<18}" + "".join(f"{v:>22}" for v in VARIANTS))
for name in shape_layers:
    print(f"{name:<18}" + "".join(f"{float(scores[name][v][0].mean()):>15.2f} / {float(scores[name][v][1].mean()):.2f}"
                                   for v in VARIANTS))
gc3, hr3 = (cl.grad_cam(shapes.model, xs, ys, layer=layer), cl.hires_cam(shapes.model, xs, ys, layer=layer))
print(f"features.layer3: max |HiResCAM - Grad-CAM| = {float((gc3 - hr3).abs().max()):.1e} "
      f"(largest value {float(gc3.abs().max()):.2f})")


def scaled(maps):
    """Each map scaled to [0, 1] (min-max), to compare the shapes of maps of different units."""
    maps = maps - maps.flatten(1).amin(dim=1)[:, None, None]
    return maps / maps.flatten(1).amax(dim=1)[:, None, None].clamp(min=1e-30)


print("\nAt the last block, each variant against Grad-CAM, maps at the layer's resolution (ReLU applied):")
print(f"{'':<28}{'max |difference| after scaling':>34}{'r: mean (smallest)':>22}")
for net, inputs, targets, where in [(shapes.model, xs, ys, layer), (model, x, pred, "bn2")]:
    c = cl.cam.capture(net, inputs, targets, cl.get_layer(net, where))
    last = {v: VARIANTS[v].combine(c).clamp(min=0) for v in VARIANTS}
    for v in ["Grad-CAM++", "HiResCAM", "LayerCAM"]:
        d = (scaled(last[v]) - scaled(last["Grad-CAM"])).abs().flatten(1).amax(dim=1)
        r = pearson(last[v], last["Grad-CAM"])
        print(f"{where + ', ' + v:<28}{f'mean {float(d.mean()):.3f}, largest {float(d.max()):.3f}':>34}"
              f"{f'{float(r.mean()):.3f} ({float(r.min()):.3f})':>22}")
print(f"(over the {len(ys)} Shapes test images and the {len(x)} photos)")

# %% mystnb={"image": {"alt": "Two Shapes test images (a dotted red cross and a plain red square) and the four gradient variants (Grad-CAM, Grad-CAM++, HiResCAM, LayerCAM) at the stem of the Shapes CNN, each with its own colour bar. Grad-CAM and Grad-CAM++ fill the whole object (and, on the square's image, a green blob of the background); HiResCAM and LayerCAM are bright on a few corners and edges of the object."}}
fig = viz.method_grid(test.images[:2], {v: m[:2] for v, m in stem_maps.items()},
                      row_titles=[shapes.labels[int(c)] for c in ys[:2]], label="map, features.stem")
plt.show()

# %% [markdown]
# Keeping the gradient per position pays off in the early layers, where Grad-CAM was weakest:
# at the stem HiResCAM and LayerCAM put 0.77 and 0.72 of their mass on the object, with the peak
# on it in 99 percent of the images, against Grad-CAM's 0.47; at `layer1` they lift the pointing
# score from 0.56 to 0.90 and 0.91, and Grad-CAM++ to 0.94, the best at that layer, though its
# share on the object stays near Grad-CAM's (0.43 against 0.42). Grad-CAM++ puts the least mass on the object
# at the stem (0.37, pointing 0.72) and at `layer2` (0.35). So in early layers the variant
# matters as much as the layer: at the stem the four span 0.37 to 0.77 on the object and 0.72
# to 0.99 in pointing, while Grad-CAM across the four layers spans 0.40 to 0.52 on the object.
#
# At the last block the variant barely matters. HiResCAM equals Grad-CAM exactly (to
# $3 \times 10^{-7}$, rounding), as the identity says, on both networks. Grad-CAM++ and LayerCAM
# are close but not equal: scaled to $[0, 1]$, their maps differ from Grad-CAM's by 0.13 on
# average and up to 0.46 on the Shapes CNN, and by up to 0.26 on the photos, with $r$ at least
# 0.918 (0.99 on average on Shapes, 0.98 on the photos); their localisation scores at `layer3` are
# Grad-CAM's to two decimals. The figure shows the stem maps: Grad-CAM and Grad-CAM++ paint
# the whole object, HiResCAM and LayerCAM pick out a few corners and edges where the gradient
# is positive.
#
# ## Score-CAM: weights from forward passes
#
# Score-CAM {footcite}`wang2020scorecam` needs no gradient. Each channel's activation map is
# upsampled to the image, scaled to $[0, 1]$ and used as a mask; the model scores the masked
# image, and the $K$ scores, passed through a softmax over the channels, are the weights:
#
# $$ w_{ck} = \operatorname{softmax}_k \big( S_c(x \odot M_k) \big), \qquad
#    M_k = \frac{\mathrm{up}(A_k) - \min \mathrm{up}(A_k)}{\max \mathrm{up}(A_k) - \min \mathrm{up}(A_k)} . $$
#
# The price is one forward pass per channel per image: 128 for the Shapes CNN's last block,
# 1,280 for EfficientNet's. `course_lib` batches the masked images (`batch_size` at a time) and
# counts on them; here on 12 Shapes test images, against Grad-CAM on the same images:

# %%
subset = slice(0, 12)
passes = []
counter = shapes.model.register_forward_pre_hook(lambda m, args: passes.append(args[0].shape[0]))
try:
    sc = cl.score_cam(shapes.model, xs[subset], ys[subset], layer=layer, batch_size=256, progress=False)
finally:
    counter.remove()
print(f"Score-CAM on {layer}: {sum(passes)} images through the model for 12 test images "
      f"({sum(passes) // 12} each: 128 masked + 1)")
gc_subset = cl.grad_cam(shapes.model, xs[subset], ys[subset], layer=layer)
for name, m in [("Grad-CAM", gc_subset), ("Score-CAM", sc)]:
    on, hit = cl.share_on_mask(m, masks[subset]), cl.pointing_game(m, masks[subset])
    print(f"{name:<10} on object {float(on.mean()):.2f} ± {float(on.std()):.2f}   pointing {float(hit.mean()):.2f}")

# %% [markdown]
# The softmax deserves a look. Its weights depend on how far apart the $K$ masked scores are:
# a few units apart and one channel takes nearly all the weight; much less than one unit and
# every channel gets about $1/K$, so the map becomes the plain average of the (scaled)
# activation maps, whatever the class. Two numbers tell which regime we are in: the *effective
# number of channels* $1/\sum_k w_k^2$ (128 if the weights were equal, 1 if one channel took
# them all), and how much the map changes when we ask for the runner-up class instead of the
# true one (Pearson's $r$ between the two maps, both after their ReLU, 1 if the class did not
# matter). Grad-CAM's maps on the same images, asked the same question, are the yardstick:

# %%
captured_sc = cl.cam.capture(shapes.model, xs[subset], ys[subset], cl.get_layer(shapes.model, layer),
                             gradients=False)
effective, maps_by_class = [], []
for target in (ys[subset], runner_up[subset]):
    w = OurScoreCAM(batch_size=256).channel_weights(dataclasses.replace(captured_sc, targets=target))
    effective.append(1 / w.pow(2).sum(dim=1))
    maps_by_class.append(cl.cam.upsample_maps(torch.einsum("nk,nkhw->nhw", w, captured_sc.activations).clamp(min=0),
                                        (64, 64)))
print(f"effective number of channels, true class: {float(effective[0].mean()):.1f} of 128 "
      f"(from {float(effective[0].min()):.1f} to {float(effective[0].max()):.1f})")
print(f"(these weights give cl.score_cam's maps: max |difference| {float((maps_by_class[0] - sc).abs().max()):.1e})")
gc_second = cl.grad_cam(shapes.model, xs[subset], runner_up[subset], layer=layer)
for name, r in [("Score-CAM", pearson(*maps_by_class)), ("Grad-CAM", pearson(gc_subset, gc_second))]:
    print(f"r({name} for the true class, for the runner-up): mean {float(r.nanmean()):.2f}, "
          f"from {float(r.min()):.2f} to {float(r.max()):.2f}")
plain_mean = cl.cam.upsample_maps(captured_sc.activations.mean(dim=1), (64, 64))  # every channel weighted 1/128
print(f"r(Score-CAM for the true class, the plain mean of the {captured_sc.activations.shape[1]} activation maps): "
      f"mean {float(pearson(maps_by_class[0], plain_mean).mean()):.2f}")

# %% [markdown]
# On the photo, at `blocks.3` (80 channels of $14 \times 14$, so 81 passes):

# %%
c_b3 = cl.cam.capture(model, cat, cat_class, cl.get_layer(model, "blocks.3"), gradients=False)
w_sc = OurScoreCAM(batch_size=27).channel_weights(c_b3)[0]
print(f"Score-CAM weights at blocks.3: largest {float(w_sc.max()):.3f} (1/80 = {1 / 80:.3f}), "
      f"effective number of channels {float(1 / w_sc.pow(2).sum()):.1f} of {len(w_sc)}")
# The rest of the pipeline by hand, so the 81 passes are not made twice.
score_photo = cl.cam.upsample_maps(torch.einsum("k,nkhw->nhw", w_sc, c_b3.activations).clamp(min=0), (224, 224))

# %% mystnb={"image": {"alt": "The cat photo (a close-up of the face) with Grad-CAM and Score-CAM of blocks.3 (14 x 14) over a grey copy, each with its own colour bar. Both maps are patchy; Score-CAM's is spread over the fur of the forehead and the muzzle, Grad-CAM's has a few spots, the brightest at the bottom left of the face."}}
fig = viz.method_grid(cat, {"Grad-CAM, blocks.3": cl.grad_cam(model, cat, cat_class, layer="blocks.3"),
                            "Score-CAM, blocks.3": score_photo},
                      overlay=True, denormalize=imagenet.denormalize, row_titles=[labels[cat_class]], label="map")
plt.show()

# %% [markdown]
# Score-CAM localises the Shapes objects as well as Grad-CAM (0.43 against 0.40 on the object,
# the peak on the object in all 12 images) at 129 forward passes per image instead of one
# forward and one backward. Its weights are far from one-hot (13 effective channels of 128 on
# average) and its map depends on the class much less than Grad-CAM's: asked for the runner-up
# class, Score-CAM draws nearly the same map ($r$ 0.89 on average) while Grad-CAM's changes
# ($r$ 0.33), both compared after their ReLU. The last line says why: with weights this spread
# out, Score-CAM's map is close to the plain mean of the layer's activation maps ($r$ 0.96),
# which involves no class at all. On the cat at `blocks.3` the scores of the 80 masked images
# are so close that the weights are nearly uniform (64 effective channels of 80, the largest
# 0.041 against 1/80 = 0.013); in the figure, Score-CAM's map spreads over the fur of the
# forehead and the muzzle, Grad-CAM's has a few spots.

# %% [markdown]
# ## Guided Backprop and Guided Grad-CAM
#
# Class activation maps are as coarse as their layer. Guided Backprop
# {footcite}`springenberg2015striving` produces maps at the input's full resolution by changing
# the backward pass at every ReLU-like unit. With $R$ the signal coming back from above and $z$
# the unit's input, the three classic rules are
#
# | backward rule at a ReLU | passes $R$ where |
# |---|---|
# | gradient | $z > 0$ (the unit was on) |
# | deconvnet {footcite}`zeiler2014visualizing` | $R > 0$ |
# | Guided Backprop | $z > 0$ **and** $R > 0$ |
#
# and for ReLU6 "the unit was on" means $0 < z < 6$. Libraries usually implement this by
# swapping or hooking the model's `nn.ReLU` modules, which misses two common cases: a ReLU6
# network such as this chapter's, and activations called as functions in `forward`
# (`F.relu(x)`, as torchvision's Inception does), which no module hook ever sees. `course_lib`
# intercepts the activation *functions* instead, with a torch function mode active during the
# forward pass only; the model is never modified:

# %%
from course_lib.cam.guided_backprop import _GuidedClamp  # noqa: E402  (the guided activation itself)

print(inspect.getsource(GuidedActivations))
print(inspect.getsource(_GuidedClamp))

# %% mystnb={"image": {"alt": "The espresso photo, then the maximum over colour channels of the absolute plain gradient, of Guided Backprop and of Guided Grad-CAM, each on an inferno scale with its own colour bar clipped at the 99th percentile. The gradient is grainy over the whole image and strongest on the cup, whose rim and crema show through; Guided Backprop shows cleaner outlines (the cup's rim, the handle, the spoon) with a fine regular grid of dots; Guided Grad-CAM keeps the outlines of the rim and the crema and drops the saucer."}}
two = x[:2]
gb = cl.guided_backprop(model, two, pred[:2])
ggc = cl.guided_grad_cam(model, two, pred[:2], layer="bn2")
vg = cl.vanilla_gradient(model, two, pred[:2])
fig = viz.method_grid(two[1:], {"gradient": cl.reduce_channels(vg[1:], "max_abs"),
                                "Guided Backprop": cl.reduce_channels(gb[1:], "max_abs"),
                                "Guided Grad-CAM": cl.reduce_channels(ggc[1:], "max_abs")},
                      denormalize=imagenet.denormalize, row_titles=[labels[int(pred[1])]],
                      label="max |value| over channels")
plt.show()

# %% [markdown]
# The plain gradient is grainy everywhere, saucer and table included, and strongest on the cup,
# where the rim and the crema show through the grain. Guided Backprop draws cleaner outlines:
# the cup's rim, the handle and the spoon, much as an edge detector would, with a fine regular
# grid of dots running through them. Guided Grad-CAM multiplies the two, Guided Backprop times
# the upsampled Grad-CAM of `bn2`, and keeps the outlines where Grad-CAM puts the class: the
# espresso's rim and crema, not the saucer.
#
# ### Does Guided Backprop explain the class?
#
# A map that explains a decision for class $c$ must change when $c$ changes. For each photo we
# compute the maps for the predicted class and for the class the model ranks 500th (a class
# it sees no evidence for), and correlate the two maps pixel by pixel (Pearson's $r$; the
# gradient-based maps are compared signed with signed, Grad-CAM unsigned with unsigned):

# %%
with torch.no_grad():
    far = logits.argsort(dim=1, descending=True)[:, 500]
print("rank-500 classes:", ", ".join(labels[int(c)] for c in far))


by_class = {}
for name, fn in [("gradient", cl.vanilla_gradient), ("Guided Backprop", cl.guided_backprop),
                 ("Grad-CAM (bn2)", lambda m, i, t: cl.grad_cam(m, i, t, layer="bn2"))]:
    by_class[name] = (fn(model, x, pred), fn(model, x, far))
gc_top, gc_far = by_class["Grad-CAM (bn2)"]
by_class["Guided Grad-CAM"] = tuple(g * c[:, None] for g, c in zip(by_class["Guided Backprop"], (gc_top, gc_far)))
print(f"{'r(predicted class, rank-500 class)':<36}" + "".join(f"{n:>12}" for n in names))
for name, (a, b) in by_class.items():
    print(f"{name:<36}" + "".join(f"{float(r):>12.3f}" for r in pearson(a, b)))

# %% [markdown]
# The plain gradient and Grad-CAM change with the class ($r$ between -0.43 and 0.57 for every
# photo). Guided Backprop barely does: $r$ from 0.984 to 0.999; the map for a king penguin on
# the cat photo is the map for the tiger cat, and the map for a West Highland white terrier on
# the espresso photo the map for the espresso. This is what
# {footcite}`nie2018theoretical` proved for Guided Backprop: zeroing every negative signal on
# the way back removes most of what the last layers contribute, and what remains is a partial
# reconstruction of the image's edges, largely independent of the class. Guided Grad-CAM
# inherits its class dependence from the Grad-CAM factor only ($r$ from 0.20 to 0.80). So a
# Guided Backprop map shows what the early layers see in the image, not why the network chose a
# class, and sanity checks that randomise the weights catch it too
# {footcite}`adebayo2018sanity` (chapter 08).
#
# The side-by-side image makes the same point: Guided Backprop's map for "espresso" still
# draws the cat.

# %%
gb_pair = cl.guided_backprop(model, pair.expand(2, -1, -1, -1), [tiger_cat, espresso])
for name, g in zip(["tiger cat", "espresso"], cl.reduce_channels(gb_pair, "max_abs")):
    print(f"Guided Backprop for {name:<9}: {float(g[:, :112].sum() / g.sum()):.2f} of the map on the cat's half")
print(f"r between the two guided maps: {float(pearson(gb_pair[:1], gb_pair[1:])[0]):.3f}")

# %% [markdown]
# ## Pitfalls
#
# Each pitfall is shown on a *copy* of a model, so that nothing here can change the models the
# rest of the chapter uses.
#
# **A guided backprop that leaves its hooks behind.** A common tutorial pattern registers a hook
# on every ReLU module and never removes it. Everything computed on that model afterwards is
# silently guided, including plain gradients:

# %%
def tutorial_guided_backprop(net, inputs, target):
    """The leaky pattern (do not use): hooks registered on every ReLU and never removed."""
    def clip_negative(module, args, output):
        output.register_hook(lambda grad: grad.clamp(min=0))

    for m in net.modules():
        if isinstance(m, torch.nn.ReLU):
            m.register_forward_hook(clip_negative)
    inputs = inputs.clone().requires_grad_(True)
    net(inputs)[:, target].sum().backward()  # also leaves .grad on every parameter
    return inputs.grad


leaky = copy.deepcopy(shapes.model)
tutorial_guided_backprop(leaky, xs[:8], 0)
left = sum(len(m._forward_hooks) for m in leaky.modules())
with_grad = sum(p.grad is not None for p in leaky.parameters())
later = cl.vanilla_gradient(leaky, xs[:8], ys[:8])  # a *plain* gradient, asked for later
print(f"hooks left on the copy: {left}; parameters left with a .grad: {with_grad} of "
      f"{len(list(leaky.parameters()))}")
print(f"later vanilla gradient vs guided backprop:     max |difference| = "
      f"{float((later - cl.guided_backprop(shapes.model, xs[:8], ys[:8])).abs().max()):.1e}")
print(f"later vanilla gradient vs the true gradient:   max |difference| = "
      f"{float((later - cl.vanilla_gradient(shapes.model, xs[:8], ys[:8])).abs().max()):.1e}")

# %% [markdown]
# The "vanilla gradient" computed afterwards is guided backprop to the last digit, and nothing
# says so. `course_lib` never registers a hook it does not remove in `finally`, and its guided
# backprop registers none at all; the tests count hooks, modes and `.grad` after every method,
# also after a forced error.

# %% [markdown]
# **Module backward hooks and in-place activations.** Capturing a layer's gradient with a module
# backward hook fails when the next module overwrites the layer's output in place, as the
# Shapes CNN's `ReLU(inplace=True)` does after every batch norm:

# %%
broken = copy.deepcopy(shapes.model)
handle = broken.features.layer3.bn1.register_full_backward_hook(lambda module, grad_in, grad_out: None)
try:
    cl.vanilla_gradient(broken, xs[:1], ys[:1])
except RuntimeError as error:
    print(f"RuntimeError: {str(error)[:230]}...")
finally:
    handle.remove()

# %% [markdown]
# Tutorials answer this by switching the ReLUs to `inplace=False`, which changes the model's
# modules (not the function it computes): a fix one must remember on every model. A
# tensor hook on the layer's output (what `course_lib` and pytorch-grad-cam use) works. But
# pytorch-grad-cam keeps a *view* of the output as the activations, not a copy, so on such a
# layer it records the values *after* the ReLU has overwritten them, mixed with gradients taken
# before it. The layers tutorials pick are often of this kind. Built without weights (on
# PyTorch's `meta` device, nothing is downloaded or allocated), torchvision's VGG-16 and
# ResNet-50 show what follows two common choices:

# %%
import torchvision  # noqa: E402  (only to show two architectures)

with torch.device("meta"):
    vgg16, resnet50 = torchvision.models.vgg16(), torchvision.models.resnet50()
print(f"VGG-16    features[28] = {vgg16.features[28]}\n          features[29] = {vgg16.features[29]}")
print(f"ResNet-50 layer4[-1].relu = {resnet50.layer4[-1].relu}; in Bottleneck.forward:")
print("\n".join(line for line in inspect.getsource(type(resnet50.layer4[-1]).forward).splitlines()
                if any(w in line for w in ("bn", "relu", "+= identity"))))

# %% [markdown]
# VGG-16's last convolution, `features[28]`, the usual Grad-CAM layer for that model, is
# followed directly by an in-place ReLU: the case measured next. ResNet-50's
# `layer4[-1].conv3` feeds a batch norm, which does not overwrite its input, so it is safe from
# this; but inside the same block `bn1` and `bn2` feed the in-place ReLU. On the Shapes CNN's
# `features.layer3.bn1`, followed by `ReLU(inplace=True)`, for the 200 test images, against the
# same network with out-of-place ReLUs (where there is nothing to overwrite):

# %%
def minmax(maps):
    """Each map scaled to [0, 1] as pytorch-grad-cam scales its output (once per layer, once
    after averaging the layers)."""
    for _ in range(2):
        maps = maps - maps.flatten(1).amin(dim=1)[:, None, None]
        maps = maps / (1e-7 + maps.flatten(1).amax(dim=1)[:, None, None])
    return maps


def pytorch_grad_cam(cam_class, net, inputs, targets, layer_name, **attributes):
    """pytorch-grad-cam's map, computed on a copy of ``net``: it switches the model to eval mode
    and leaves .grad on its parameters."""
    net = copy.deepcopy(net)
    # Its Score-CAM draws a progress bar on stderr: kept out of the chapter's outputs.
    with cam_class(net, [cl.get_layer(net, layer_name)]) as c, contextlib.redirect_stderr(io.StringIO()):
        for key, value in attributes.items():
            setattr(c, key, value)
        return torch.from_numpy(c(inputs, [ClassifierOutputTarget(int(t)) for t in targets]))


not_inplace = copy.deepcopy(shapes.model)
for m in not_inplace.modules():
    if isinstance(m, torch.nn.ReLU):
        m.inplace = False
bn1 = "features.layer3.bn1"
reference = minmax(cl.grad_cam(not_inplace, xs, ys, layer=bn1))
ours = minmax(cl.grad_cam(shapes.model, xs, ys, layer=bn1))
theirs = pytorch_grad_cam(GradCAM, shapes.model, xs, ys, bn1)
print(f"course_lib on the in-place network vs the out-of-place one: max |difference| "
      f"{float((ours - reference).abs().max()):.1e}")
print(f"pytorch-grad-cam on the in-place network vs the out-of-place one: max |difference| "
      f"{float((theirs - reference).abs().max()):.2f}, mean {float((theirs - reference).abs().mean()):.3f}")
moved = (theirs.flatten(1).argmax(dim=1) != reference.flatten(1).argmax(dim=1)).double().mean()
print(f"pytorch-grad-cam's peak is elsewhere than the true map's in {float(moved):.0%} of the images; "
      f"on object: true map {float(cl.share_on_mask(reference, masks).mean()):.2f}, "
      f"pytorch-grad-cam's {float(cl.share_on_mask(theirs, masks).mean()):.2f}")

# %% [markdown]
# The map is silently different: its peak moves in two thirds of the images, yet on average it
# puts as much of its mass on the object (0.34 against 0.33), which is why nobody notices. Copying the activations when the layer returns, as
# `course_lib` does, gives the layer's own output whatever comes after it.
#
# **Captum's Guided Backprop on ReLU6.** Captum overrides the backward pass of `nn.ReLU` modules
# only. On EfficientNet-Lite0, whose units are `nn.ReLU6`, it changes nothing and returns the
# plain gradient, without a warning:

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Captum warns that it sets hooks on ReLU modules
    captum_gb = GuidedBackprop(model).attribute(cat.clone().requires_grad_(True), target=cat_class)
print(f"Captum GuidedBackprop vs the plain gradient: max |difference| = "
      f"{float((captum_gb - vg[:1]).abs().max()):.1e}")
print(f"Captum GuidedBackprop vs guided backprop:    max |difference| = "
      f"{float((captum_gb - gb[:1]).abs().max()):.2f} (largest value {float(gb[:1].abs().max()):.2f})")

# %% [markdown]
# Guided backprop implemented by hooking modules has the same blind spot for a network that
# calls its activations as functions in `forward` (`F.relu(x)`, as torchvision's Inception
# does): there is no ReLU module to hook. A two-layer example:

# %%
class FunctionalReLUNet(torch.nn.Module):
    """Two convolutions with F.relu called in forward, global average pooling, a linear layer."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, inputs):
        h = F.relu(self.conv2(F.relu(self.conv1(inputs))))
        return self.fc(h.mean(dim=(2, 3)))


torch.manual_seed(0)
functional_net, x_small = FunctionalReLUNet().eval(), torch.randn(2, 3, 16, 16)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    captum_gb_f = GuidedBackprop(functional_net).attribute(x_small.clone().requires_grad_(True), target=0)
ours_gb_f = cl.guided_backprop(functional_net, x_small, 0)
plain_f = cl.vanilla_gradient(functional_net, x_small, 0)
print(f"F.relu network: Captum GuidedBackprop vs the plain gradient: max |difference| = "
      f"{float((captum_gb_f - plain_f).abs().max()):.1e}")
print(f"F.relu network: Captum GuidedBackprop vs guided backprop:    max |difference| = "
      f"{float((captum_gb_f - ours_gb_f).abs().max()):.1e} (largest |value|: plain gradient "
      f"{float(plain_f.abs().max()):.1e}, guided backprop {float(ours_gb_f.abs().max()):.1e})")

# %% [markdown]
# Captum again returns the plain gradient. The tests of `course_lib` check ReLU, ReLU6 and
# functional `F.relu`, `F.relu6` and `Tensor.relu_` against a definition computed on a copy
# whose activations are replaced, and `guided_backprop` warns when a model has no ReLU-like
# activation at all.

# %% [markdown]
# **A library that changes your model.** pytorch-grad-cam's constructor calls `model.eval()` on
# the model you pass and never switches it back, and its backward pass fills `.grad` of every
# parameter. On a copy in training mode:

# %%
victim = copy.deepcopy(shapes.model).train()
with GradCAM(victim, [victim.features.layer3]) as c:
    c(xs[:2], [ClassifierOutputTarget(int(t)) for t in ys[:2]])
print(f"after pytorch-grad-cam: training = {victim.training}, parameters with a .grad: "
      f"{sum(p.grad is not None for p in victim.parameters())} of {len(list(victim.parameters()))}")
victim = copy.deepcopy(shapes.model).train()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    cl.grad_cam(victim, xs[:2], ys[:2], layer=layer)
print(f"after course_lib:       training = {victim.training}, parameters with a .grad: "
      f"{sum(p.grad is not None for p in victim.parameters())}; warning: {caught[0].message}")

# %% [markdown]
# A notebook that explains a model in the middle of training, or compares gradients before and
# after, is then working with a different model than it thinks.

# %% [markdown]
# ## Checks against pytorch-grad-cam and Captum
#
# Every map of this chapter must agree with the libraries one would otherwise use. Their
# defaults differ from ours in ways that matter:
#
# - pytorch-grad-cam scales every map to $[0, 1]$ (min-max) and returns numpy arrays; we return
#   the maps in their own units, so we scale ours the same way before comparing.
# - Its Grad-CAM++ adds $10^{-6}$ to the denominator of $\alpha$, which the paper does not.
#   Where the gradients are small, as at `blocks.5.3.bn2` (printed below the table), this
#   changes the map; with the same epsilon added, ours agrees.
# - Its Score-CAM upsamples the masks with `align_corners=True`, which stretches them by up to
#   half a cell; we upsample masks like every other map (pixel centres aligned). With its
#   upsampling, ours agrees. It scores 16 masked images at a time (`batch_size`), we 64; a
#   batch of masked images may hold the masks of two examples, which the table also checks.
# - Captum's `LayerGradCam` returns the layer-resolution map, *without* the ReLU unless
#   `relu_attributions=True`; ours with `upsample=False` is the same map.
#
# The tolerances are those of the tests (`tests/test_cam.py`), for float32 maps scaled to
# $[0, 1]$.

# %%
class GradCAMPlusPlusWithEpsilon(OurGradCAMPlusPlus):
    """Ours with pytorch-grad-cam's 1e-6 in the denominator of alpha."""

    def channel_weights(self, c):
        g, a = c.gradients, c.activations
        alpha = g.pow(2) / (2 * g.pow(2) + a.sum(dim=(2, 3), keepdim=True) * g.pow(3) + 1e-6)
        return (torch.where(g != 0, alpha, 0.0) * g.clamp(min=0)).sum(dim=(2, 3))


class ScoreCAMCornerAligned(OurScoreCAM):
    """Ours with pytorch-grad-cam's mask upsampling (align_corners=True)."""

    def masks(self, activations, size):
        up = F.interpolate(activations[:, None], size=size, mode="bilinear", align_corners=True)[:, 0]
        lo, hi = up.flatten(1).amin(1)[:, None, None], up.flatten(1).amax(1)[:, None, None]
        return (up - lo) / (hi - lo + 1e-8)


mid = "blocks.5.3.bn2"  # a layer where the four gradient variants all differ
t = pred[:1]
six_targets = torch.arange(6)  # six Shapes images, each with another target
rows = [
    ("grad_cam", "GradCAM", "bn2", cl.grad_cam(model, cat, t, layer="bn2"),
     pytorch_grad_cam(GradCAM, model, cat, t, "bn2"), 5e-6),
    ("grad_cam (6 targets)", "GradCAM", "features.layer3", cl.grad_cam(shapes.model, xs[:6], six_targets, layer=layer),
     pytorch_grad_cam(GradCAM, shapes.model, xs[:6], six_targets, layer), 5e-6),
    ("grad_cam", "GradCAM", mid, cl.grad_cam(model, cat, t, layer=mid),
     pytorch_grad_cam(GradCAM, model, cat, t, mid), 5e-6),
    ("hires_cam", "HiResCAM", mid, cl.hires_cam(model, cat, t, layer=mid),
     pytorch_grad_cam(HiResCAM, model, cat, t, mid), 5e-6),
    ("layer_cam", "LayerCAM", mid, cl.layer_cam(model, cat, t, layer=mid),
     pytorch_grad_cam(LayerCAM, model, cat, t, mid), 5e-6),
]
pp_theirs = pytorch_grad_cam(GradCAMPlusPlus, model, cat, t, mid)
rows += [
    ("grad_cam_plus_plus", "GradCAMPlusPlus", mid, cl.grad_cam_plus_plus(model, cat, t, layer=mid), pp_theirs, None),
    ("  + its epsilon", "GradCAMPlusPlus", mid, GradCAMPlusPlusWithEpsilon()(model, cat, t, layer=mid), pp_theirs, 1e-4),
]
sc_theirs = pytorch_grad_cam(ScoreCAM, shapes.model, xs[:2], ys[:2], "features.layer2", batch_size=64)
rows += [
    ("score_cam (Shapes CNN)", "ScoreCAM", "features.layer2", cl.score_cam(shapes.model, xs[:2], ys[:2],
     layer="features.layer2"), sc_theirs, None),
    ("  + its mask upsampling", "ScoreCAM", "features.layer2",
     ScoreCAMCornerAligned()(shapes.model, xs[:2], ys[:2], layer="features.layer2"), sc_theirs, 5e-6),
    ("  3 images, 48 at a time", "ScoreCAM", "features.layer2",
     ScoreCAMCornerAligned(batch_size=48)(shapes.model, xs[:3], ys[:3], layer="features.layer2"),
     pytorch_grad_cam(ScoreCAM, shapes.model, xs[:3], ys[:3], "features.layer2", batch_size=64), 5e-6),
]
print(f"{'course_lib':<25}{'pytorch-grad-cam':<17}{'layer':<17}{'max |difference|':>17}{'tolerance':>11}")
for ours_name, theirs_name, where, ours_map, theirs_map, tol in rows:
    diff = float((minmax(ours_map).float() - theirs_map).abs().max())
    verdict = "-" if tol is None else f"{tol:.0e}" + (" ok" if diff <= tol else " FAIL")
    print(f"{ours_name:<25}{theirs_name:<17}{where:<17}{diff:>17.1e}{verdict:>11}")
c_mid = cl.cam.capture(model, cat, t, cl.get_layer(model, mid))
g_mid = c_mid.gradients[c_mid.gradients != 0]
print(f"{mid}: g^2 < 1e-6 at {float((g_mid.pow(2) < 1e-6).double().mean()):.0%} of the positions with a "
      f"non-zero gradient ({c_mid.activations.shape[1]} channels of {c_mid.activations.shape[-1]} x {c_mid.activations.shape[-1]})")

# %%
captum_gc = LayerGradCam(model, model.bn2).attribute(cat.clone().requires_grad_(True), target=cat_class,
                                                     relu_attributions=True)[:, 0].detach()
ours_gc = cl.grad_cam(model, cat, cat_class, layer="bn2", upsample=False)
print(f"grad_cam vs Captum LayerGradCam (bn2, unscaled): max |difference| "
      f"{float((ours_gc - captum_gc).abs().max()):.1e} (largest value {float(captum_gc.abs().max()):.2f}; "
      f"tolerance 1e-5 of it)")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    captum_gb_shapes = GuidedBackprop(shapes.model).attribute(xs[:8].clone().requires_grad_(True), target=ys[:8])
print(f"guided_backprop vs Captum GuidedBackprop (Shapes CNN, nn.ReLU): max |difference| "
      f"{float((cl.guided_backprop(shapes.model, xs[:8], ys[:8]) - captum_gb_shapes).abs().max()):.1e}")

# %% [markdown]
# Every comparison with a tolerance passes, also for six images with six different targets in
# one batch, and for Score-CAM's masked images scored 48 at a time, so that a batch holds the
# masks of two examples. The two rows without a tolerance are the documented differences:
# pytorch-grad-cam's epsilon changes Grad-CAM++ by up to 0.007 of the map's range here, where
# 18 percent of the non-zero gradients have $g^2 < 10^{-6}$, and its corner-aligned masks change
# Score-CAM by up to 0.32, a measure of how sensitive Score-CAM is to the details of its masks.
# Captum's Grad-CAM is ours to $10^{-7}$, and its Guided Backprop is ours exactly on a network of
# `nn.ReLU` modules (and the plain gradient on EfficientNet-Lite0's ReLU6 and on a network
# calling `F.relu`, above). The tests run the same comparisons on the Shapes CNN,
# EfficientNet-Lite0 and small random networks.
#
# ## Summary
#
# - On a network that ends in global average pooling and a linear layer, the class activation
#   map is the class score spread over positions, exactly; Grad-CAM is the same map divided by
#   the number of positions, and it needs no such head.
# - Grad-CAM is a forward pass, a backward pass to one layer, a mean, a weighted sum, a ReLU and
#   an upsampling. Copy the activations when the layer returns, catch the gradient with a
#   tensor hook, remove every hook in `finally`.
# - Choose the layer with a measurement. On Shapes, Grad-CAM of the last block points at the
#   object in 94 percent of images, `layer1`'s in 56 percent. On the photo network only
#   the last block put each class of the cat and espresso pair on its own half.
# - At the last block the variant barely matters: HiResCAM equals Grad-CAM exactly, Grad-CAM++
#   and LayerCAM are close ($r \ge 0.918$). In early layers it matters as much as the layer:
#   HiResCAM and LayerCAM, which keep the gradient per position, localise far better than
#   Grad-CAM there.
# - Grad-CAM++'s promise for several objects of one class holds only partly: on Shapes it beats
#   Grad-CAM at `layer1` only, where HiResCAM and LayerCAM do better still, and inside
#   EfficientNet-Lite0 its map can be flat, which a balance score mistakes for success. Score-CAM
#   costs one forward pass per channel, and its map is close to the mean of the activation maps,
#   so it depends little on the class here.
# - A map drawn on its own scale (or min-max scaled) hides how much evidence it holds: the
#   lowest-ranked class's map looks as sure as the true class's at about a fiftieth of its size.
# - Guided Backprop gives the same picture for a class the model ranks 500th as for its
#   prediction ($r \ge 0.98$): it reconstructs edges. Guided Grad-CAM borrows its class
#   dependence from Grad-CAM.
# - Libraries differ in ways that change results: pytorch-grad-cam scales maps to $[0, 1]$, adds
#   an epsilon to Grad-CAM++, stretches Score-CAM's masks, records post-ReLU values on a layer
#   followed by an in-place ReLU, and changes your model's mode and `.grad`; Captum's Guided
#   Backprop is the plain gradient on ReLU6 networks and on networks that call `F.relu`.
#
# ## Exercises
#
# The exercises for this chapter are in
# [`exercises/04_class_activation_maps.ipynb`](https://github.com/interpreting-neural-networks/course/blob/main/exercises/04_class_activation_maps.ipynb)
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/interpreting-neural-networks/course/blob/main/exercises/04_class_activation_maps.ipynb):
# write Grad-CAM from a layer's activations and gradients, work out which of CAM's identities
# survive a global max-pooling head, say what a guided-backprop snippet leaves behind and when,
# and read a shortcut model's Grad-CAM measurements layer by layer. The book's "How
# to use" page says how to fill them in and hand them in.
#
# ## References
#
# ```{footbibliography}
# ```
