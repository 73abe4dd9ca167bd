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
# # Exercises 04: Class activation maps and Guided Backprop
#
# These exercises go with chapter 04. You write Grad-CAM from a layer's activations and
# gradients, predict what CAM, Grad-CAM and Grad-CAM++ give on a network that ends in global
# average pooling, find the leaks in a guided-backprop snippet, and read a table of Grad-CAM
# maps of a model that learned a shortcut. Four items, 17 points:
#
# | item | what you do | points |
# |---|---|---|
# | 1 `grad_cam_map` | write Grad-CAM from captured activations and gradients | 7 |
# | 2 `gap_algebra` | predict CAM, Grad-CAM and Grad-CAM++ numbers on a GAP network, then verify | 3 |
# | 3 `find_the_leak` | find what a guided-backprop snippet leaves behind, and what it misses | 4 |
# | 4 `shortcut_layers` | choose a layer and read a shortcut from a table of Grad-CAM measurements | 3 |
#
# **How you are graded.** Fill in the cells marked `# YOUR ANSWER`: replace each
# `raise NotImplementedError` by your code and each `None` by your answer, and keep the names.
# The grader runs every code cell of your notebook from the top, then checks each item, with a
# time limit per item. It skips the *try it* cells (tagged `skip-grading`). Under each item, a
# *check* cell runs that item's public checks here and prints what passes and why not; when you
# hand in, the grader adds hidden checks (for the answers to questions, the check cell only
# tells you whether your answer has the right form). Hand in the notebook, or the `.py` that
# File > Download gives: both are graded the same way.
#
# Item 1 asks you to write what `course_lib` and pytorch-grad-cam already have: calling their
# Grad-CAM (or its weights) in it scores zero for the item.

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

import torch

import course_lib as cl
from course_lib.grading import public_checks

cl.set_deterministic(seed=0, threads=2)  # the numbers of the try-it cells as in the tables

# %% [markdown]
# ## 1. Grad-CAM from activations and gradients (7 points)
#
# Write `grad_cam_map(activations, gradients, relu=True)`:
#
# - `activations`: a layer's output for a batch, N x K x h x w (float); `gradients`: the
#   gradient of each example's target score with respect to those activations, same shape;
# - each channel's weight is the **mean** of its gradient over the h x w positions, for each
#   example separately;
# - the map is the weighted sum of the channels, N x h x w, followed by a ReLU when `relu` is
#   true (no ReLU when it is false);
# - no upsampling, no normalisation; do not change the tensors you are given.

# %% tags=["answer"]
def grad_cam_map(activations, gradients, relu=True):
    """Grad-CAM at the layer's resolution: N x K x h x w activations and gradients -> N x h x w."""
    # YOUR ANSWER
    ### BEGIN SOLUTION
    weights = gradients.mean(dim=(2, 3), keepdim=True)  # N x K x 1 x 1: per example, per channel
    maps = (weights * activations).sum(dim=1)
    return maps.clamp(min=0) if relu else maps
    ### END SOLUTION


# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("04", "grad_cam_map")

# %% tags=["skip-grading"]
# Try it: capture the last block of the Shapes CNN for four test images, then compare your map
# with course_lib's Grad-CAM (upsample=False keeps the layer's 8 x 8).
shapes = cl.load_model("shapes_cnn")
test = cl.load_dataset("shapes", n=4, seed=900_000).batch
x, y = shapes.preprocess(test.images), test.labels
captured = cl.cam.capture(shapes.model, x, y, cl.get_layer(shapes.model, "features.layer3"))
mine = grad_cam_map(captured.activations, captured.gradients)
theirs = cl.grad_cam(shapes.model, x, y, layer="features.layer3", upsample=False)
print("shape", tuple(mine.shape), " max |difference|", float((mine - theirs).abs().max()))

# %% [markdown]
# ## 2. CAM, Grad-CAM and Grad-CAM++ on a GAP network (3 points)
#
# Predict, then verify. A network ends in global average pooling and one linear layer, like
# the chapter's two models. The block that feeds the pooling has channels of 14 x 14
# positions (a ResNet on 448-pixel images, say).
#
# - `answer_cam_ratio`: CAM divided by Grad-CAM of that block (both before their ReLU), at a
#   position where Grad-CAM is not 0. (A number.)
# - `answer_gradcam_weight`: the classifier's weight from channel k to the target class is
#   w = 0.49. What is Grad-CAM's weight for channel k? (A number.)
# - `answer_gcpp_weight`: the activations of channel k average 5 over the positions. What is
#   its Grad-CAM++ weight, without the positive factor $e^{S}$ that `course_lib` drops? (A
#   number.)
#
# Work them out from the definitions first. The try-it cell verifies the same kind of
# prediction on the Shapes CNN fed 96-pixel images: predict its ratio before you run it.

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
answer_cam_ratio = 196  # dS/dA = w / (hw) everywhere, so Grad-CAM's weight is w / (hw): CAM = hw x Grad-CAM
answer_gradcam_weight = 0.49 / 196
answer_gcpp_weight = 0.49 / (2 + 0.49 * 5)  # relu(w) / (2 + s), s = w x mean activation: the channel's share of the score
### END SOLUTION

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("04", "gap_algebra")

# %% tags=["skip-grading"]
# Try it: the Shapes CNN on 96 x 96 inputs (its last block is then 12 x 12). Predict the ratio first.
big = torch.nn.functional.interpolate(x, size=96, mode="bilinear", align_corners=False)
cam = cl.cam(shapes.model, big, y, layer="features.layer3", upsample=False, relu=False)
grad = cl.grad_cam(shapes.model, big, y, layer="features.layer3", upsample=False, relu=False)
print("grid", tuple(cam.shape[-2:]), " CAM / Grad-CAM:", float((cam / grad).median()))
c = cl.cam.capture(shapes.model, big[:1], y[:1], cl.get_layer(shapes.model, "features.layer3"))
w = shapes.model.classifier.weight.detach()[y[0]]
predicted = w.clamp(min=0) / (2 + w * c.activations.mean(dim=(2, 3))[0])
print("Grad-CAM++ weights vs relu(w) / (2 + w x mean activation): max |difference|",
      float((cl.cam.GradCAMPlusPlus().channel_weights(c)[0] - predicted).abs().max()))

# %% [markdown]
# ## 3. Find the leak (4 points)
#
# A colleague's guided backprop, from a tutorial:
#
# ```python
# def clip_negative(module, inputs, out):
#     out.register_hook(lambda g: g.clamp(min=0))  # on the way back, only positive signal passes
#
#
# def guided_saliency(model, x, target):
#     for m in model.modules():                                                # line A
#         if isinstance(m, torch.nn.ReLU):
#             m.register_forward_hook(clip_negative)                           # line B
#     x = x.clone().requires_grad_(True)                                       # line C
#     model(x)[:, target].sum().backward()                                     # line D
#     return x.grad                                                            # line E
# ```
#
# - `answer_leak_line`: which line leaves something on the model that changes every result
#   computed on it afterwards? (A letter, A to E.)
# - `answer_later_gradient`: after one call on the Shapes CNN, `cl.vanilla_gradient(model, x)`
#   on the same model returns (a letter):
#   - A. the plain gradient, as before the call;
#   - B. guided backprop;
#   - C. zeros everywhere;
#   - D. an error.
# - `answer_grad_line`: which line leaves a `.grad` on every parameter of the model? (A letter,
#   A to E.)
# - `answer_relu6`: the same function called on a fresh EfficientNet-Lite0 returns (a letter):
#   - A. guided backprop;
#   - B. the plain gradient;
#   - C. zeros everywhere;
#   - D. an error.

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
answer_leak_line = "B"  # the hooks' handles are never kept, so they are never removed
answer_later_gradient = "B"  # the hooks still clip every gradient at the ReLUs
answer_grad_line = "D"  # .backward() accumulates into every parameter's .grad
answer_relu6 = "B"  # nn.ReLU6 is a Hardtanh, not an nn.ReLU: no hook is registered
### END SOLUTION

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("04", "find_the_leak")

# %% tags=["skip-grading"]
# Try it: the snippet on copies, so the models you use elsewhere stay clean.
def clip_negative(module, inputs, out):
    out.register_hook(lambda g: g.clamp(min=0))


def guided_saliency(model, x, target):
    for m in model.modules():
        if isinstance(m, torch.nn.ReLU):
            m.register_forward_hook(clip_negative)
    x = x.clone().requires_grad_(True)
    model(x)[:, target].sum().backward()
    return x.grad


leaky = copy.deepcopy(shapes.model)
guided_saliency(leaky, x, 0)
print("forward hooks left:", sum(len(m._forward_hooks) for m in leaky.modules()),
      " parameters with .grad:", sum(p.grad is not None for p in leaky.parameters()))
later = cl.vanilla_gradient(leaky, x, 0)
print("later gradient vs guided backprop:", float((later - cl.guided_backprop(shapes.model, x, 0)).abs().max()),
      " vs the plain gradient:", float((later - cl.vanilla_gradient(shapes.model, x, 0)).abs().max()))
relu6_net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU6(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
print("on a ReLU6 network, snippet vs plain gradient:",
      float((guided_saliency(copy.deepcopy(relu6_net), x, 0) - cl.vanilla_gradient(relu6_net, x, 0)).abs().max()))

# %% [markdown]
# ## 4. Layers and a shortcut (3 points)
#
# `shapes_cnn_shortcut` is the Shapes CNN trained with a white tag in the top-left corner of
# 95 percent of its *circle* images and of no other image. On 166 test images of the other five
# classes, each with the tag stamped on, it answers "circle" for 69 percent. Grad-CAM of four
# layers, for the image's true class and for "circle", measured against the object's true mask
# and against the region within 4 pixels of the tag, which covers 0.03 of an image (means over
# the 166 images; "peak": how often the map's maximum lies there):
#
# | layer | target | on object | near tag | peak on object | peak near tag |
# |---|---|---|---|---|---|
# | features.stem | true | 0.44 | 0.05 | 0.43 | 0.50 |
# | features.stem | circle | 0.44 | 0.03 | 0.36 | 0.57 |
# | features.layer1 | true | 0.38 | 0.09 | 0.22 | 0.69 |
# | features.layer1 | circle | 0.01 | 0.08 | 0.00 | 0.41 |
# | features.layer2 | true | 0.45 | 0.02 | 0.72 | 0.00 |
# | features.layer2 | circle | 0.09 | 0.04 | 0.02 | 0.00 |
# | features.layer3 | true | 0.40 | 0.00 | 0.89 | 0.00 |
# | features.layer3 | circle | 0.14 | 0.15 | 0.00 | 0.31 |
#
# - `answer_object_layer`: you want a map whose peak shows a user where the object is, for the
#   class the image really shows. Which layer? (A letter: A `features.stem`, B
#   `features.layer1`, C `features.layer2`, D `features.layer3`.)
# - `answer_shortcut_evidence`: which row is the best evidence that the tag, not the object,
#   makes the model say "circle"? (A letter.)
#   - A. `features.stem`, circle: 0.44 of the map is on the object, so the model looks at the
#     object when it says circle.
#   - B. `features.layer3`, circle: the peak is never on the object, and 0.15 of the map lies
#     near the tag, five times the 0.03 a map spread evenly would put there, while for the true
#     class the same layer puts nothing there.
#   - C. `features.layer2`, circle: the peak is never near the tag, so the tag plays no role.
#   - D. `features.layer1`, true: the peak is near the tag in 69 percent of the images, so the
#     tag drives the true class too.
# - `answer_stem_peak`: for the true class, the stem's peak is near the tag in half of the
#   images. Why? (A letter.)
#   - A. The stem's channels respond to the bright white patch whatever the class: its map says
#     where a colour is, not what the class's evidence is.
#   - B. The model uses the tag for every class, not only for circle.
#   - C. The tag is part of the object's mask.
#   - D. Grad-CAM's upsampling moves every peak towards the corners.

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
answer_object_layer = "D"  # peak on the object in 0.89 of the images; layer2's share is higher but its peak misses
answer_shortcut_evidence = "B"
answer_stem_peak = "A"
### END SOLUTION

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("04", "shortcut_layers")

# %% tags=["skip-grading"]
# Try it: recompute the table (a few seconds), and look at a few maps.
import torch.nn.functional as F

from course_lib import viz

shortcut = cl.load_model("shapes_cnn_shortcut")
circle = shortcut.labels.index("circle")
tagged = cl.load_dataset("shapes", n=200, seed=900_000, shortcut_class=circle, shortcut_rate=0.0,
                         tag_other_rate=1.0).batch
tagged = tagged[tagged.labels != circle]  # tagged images of the other five classes
xt, yt = shortcut.preprocess(tagged.images), tagged.labels
near_tag = F.max_pool2d(shortcut.info["tag_mask"][None, None].double(), 9, stride=1, padding=4)[0, 0] > 0
with torch.no_grad():
    called_circle = (shortcut.model(xt).argmax(dim=1) == circle).double().mean()
print(f"{len(yt)} tagged images; called circle: {float(called_circle):.2f}; within 4 px of the tag: "
      f"{float(near_tag.double().mean()):.3f} of an image")
print(f"{'layer':<17}{'target':<8}{'on object':>10}{'near tag':>10}{'peak on object':>16}{'peak near tag':>15}")
for layer in ["features.stem", "features.layer1", "features.layer2", "features.layer3"]:
    for name, target in [("true", yt), ("circle", torch.full_like(yt, circle))]:
        m = cl.grad_cam(shortcut.model, xt, target, layer=layer).double()
        total = m.sum(dim=(1, 2)).clamp(min=1e-30)
        peak = m.flatten(1).argmax(dim=1)
        print(f"{layer:<17}{name:<8}{float(((m * tagged.masks).sum(dim=(1, 2)) / total).mean()):>10.2f}"
              f"{float(((m * near_tag).sum(dim=(1, 2)) / total).mean()):>10.2f}"
              f"{float(tagged.masks.flatten(1)[torch.arange(len(peak)), peak].double().mean()):>16.2f}"
              f"{float(near_tag.flatten()[peak].double().mean()):>15.2f}")
viz.use_style()
fig = viz.method_grid(tagged.images[:3], {f"{layer}, circle": cl.grad_cam(
    shortcut.model, xt[:3], circle, layer=layer) for layer in ["features.stem", "features.layer3"]},
    overlay=True, label="Grad-CAM")
