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
# gradients, work out which of CAM's identities survive when a network ends in global *max*
# pooling instead of average pooling, find the leaks in a guided-backprop snippet, and read a
# table of Grad-CAM maps of a model that learned a shortcut. Four items, 15 points:
#
# | item | what you do | points |
# |---|---|---|
# | 1 `grad_cam_map` | write Grad-CAM from captured activations and gradients | 5 |
# | 2 `max_pool_head` | predict CAM, Grad-CAM and HiResCAM on a max-pooling head, then verify | 3 |
# | 3 `find_the_leak` | say what a guided-backprop snippet leaves behind, and when, and what it misses | 4 |
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
# ## 1. Grad-CAM from activations and gradients (5 points)
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
    raise NotImplementedError


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
# ## 2. A global max-pooling head (3 points)
#
# Predict, then verify. The chapter's identities rest on global *average* pooling: CAM's map
# averages to the score, Grad-CAM's weight is $w_{ck}/(hw)$, HiResCAM equals Grad-CAM at the
# last block. Some networks end in global *max* pooling instead: the block's $K$ channels of
# 14 x 14 positions feed $S_c = \sum_k w_{ck} \max_{ij} A_{kij} + b_c$. Take "CAM's map" to be
# the same formula as before, $M_c = \sum_k w_{ck} A_k$ (computed by hand: `cl.cam` refuses
# such a network). Ignore ties (each channel reaches its maximum at one position).
#
# - `answer_gmp_ratio`: CAM's map divided by Grad-CAM's map (both before their ReLU), at a
#   position where Grad-CAM is not 0. (A number.)
# - `answer_gmp_score`: which of these, plus the bias $b_c$, equals the score $S_c$? (A letter.)
#   - A. The mean over positions of CAM's map $M_c$: exchanging the sum over channels with the
#     pooling is what made CAM exact, and pooling over positions, mean or max, still happens
#     after the channels are weighted.
#   - B. The largest value of CAM's map $M_c$: max pooling keeps each channel's largest
#     activation, so the score is read where the weighted channels are largest, which is the
#     peak of their weighted sum.
#   - C. The sum over positions of HiResCAM's map $\sum_k \frac{\partial S_c}{\partial A_k}
#     \odot A_k$: the score is linear in the values that the pooling selects, and the gradient
#     picks out exactly those values.
#   - D. None of them: with max pooling the score depends on one position per channel, so a
#     map spread over all positions can be drawn, but no sum or mean of one adds up to the score.
# - `answer_gmp_hires`: HiResCAM's map at that block, compared with Grad-CAM's. (A letter.)
#   - A. The same map, as on a GAP network: Grad-CAM's weight is the gradient's mean over the
#     positions, HiResCAM multiplies gradient and activation position by position, and summed
#     over the channels the two orders of operations agree when the head is linear after pooling.
#   - B. Zero everywhere except at the positions where some channel reaches its maximum: at
#     most $K$ non-zero positions, whatever the image, where Grad-CAM's map is non-zero almost
#     everywhere.
#   - C. Grad-CAM's map times $hw = 196$: HiResCAM keeps the full gradient at every position
#     where Grad-CAM keeps its mean, which is $hw$ times smaller, and both sum the same channels.
#   - D. Grad-CAM's map with its sign flipped wherever a channel's maximum is not: the gradient
#     of a max is negative for the values it does not select.

# %% tags=["answer"]
# YOUR ANSWER
answer_gmp_ratio = None
answer_gmp_score = None
answer_gmp_hires = None

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("04", "max_pool_head")

# %% tags=["skip-grading"]
# Try it: a tiny CNN whose last block (14 x 14 on 28-pixel inputs) feeds global max pooling.
torch.manual_seed(0)
gmp_net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(4, 5, 3, padding=1, stride=2), torch.nn.ReLU(),
                              torch.nn.AdaptiveMaxPool2d(1), torch.nn.Flatten(), torch.nn.Linear(5, 3)).eval()
xg = torch.rand(2, 3, 28, 28)
c = cl.cam.capture(gmp_net, xg, 1, gmp_net[3])
w, b = gmp_net[6].weight.detach()[1], gmp_net[6].bias.detach()[1]
cam_map = torch.einsum("k,nkhw->nhw", w, c.activations)  # CAM's formula, by hand
grad = cl.grad_cam(gmp_net, xg, 1, layer="3", upsample=False, relu=False)
hires = cl.hires_cam(gmp_net, xg, 1, layer="3", upsample=False, relu=False)
with torch.no_grad():
    score = gmp_net(xg)[:, 1]
print("grid", tuple(cam_map.shape[-2:]), " CAM / Grad-CAM where Grad-CAM is not 0:",
      float((cam_map / grad)[grad != 0].median()))
print("score - bias:", (score - b).tolist())
print("  mean of CAM's map:   ", cam_map.mean(dim=(1, 2)).tolist())
print("  largest of CAM's map:", cam_map.flatten(1).amax(dim=1).tolist())
print("  sum of HiResCAM's map:", hires.sum(dim=(1, 2)).tolist())
print("non-zero positions: HiResCAM", (hires != 0).sum(dim=(1, 2)).tolist(), " Grad-CAM",
      (grad != 0).sum(dim=(1, 2)).tolist(), "of", 14 * 14)

# %% [markdown]
# ## 3. Find the leak (4 points)
#
# A colleague read the chapter's pitfalls and now keeps the hooks' handles:
#
# ```python
# def clip_negative(module, inputs, out):
#     out.register_hook(lambda g: g.clamp(min=0))  # on the way back, only positive signal passes
#
#
# def guided_saliency(model, x, target):
#     handles = [m.register_forward_hook(clip_negative)                       # line A
#                for m in model.modules() if isinstance(m, torch.nn.ReLU)]
#     x = x.clone().requires_grad_(True)                                      # line B
#     score = model(x)[:, target].sum()                                       # line C
#     score.backward()                                                        # line D
#     for h in handles:                                                       # line E
#         h.remove()
#     return x.grad
# ```
#
# - `answer_after_success`: one call on the Shapes CNN returns normally. Afterwards
#   `cl.vanilla_gradient(model, x)` on the same model returns (a letter):
#   - A. the plain gradient: line E removed every hook it registered, and a `.grad` left on the
#     parameters does not enter a gradient taken with respect to the input;
#   - B. guided backprop: the tensor hooks that `clip_negative` registered on the activations
#     are not removed by line E, and they keep clipping every later backward pass;
#   - C. the plain gradient plus the guided one: line D accumulated its gradients into `.grad`,
#     and the next backward pass through the same model adds to what is there;
#   - D. an error: line E removed the hooks while the graph built at line C still referred to
#     them, and the next backward pass through the model finds them missing.
# - `answer_after_error`: a call with `target=6` on the six-class Shapes CNN raises an
#   `IndexError` at line C. Afterwards `cl.vanilla_gradient(model, x)` returns (a letter):
#   - A. the plain gradient: the exception unwinds the function and frees its local list
#     `handles`, and a hook whose handle is freed is removed with it;
#   - B. guided backprop: lines D and E never run, so the forward hooks registered at line A stay
#     on the ReLU modules and clip every later backward pass;
#   - C. an error: the model was left in the middle of a forward pass, and refuses another one
#     until it is put back in eval mode;
#   - D. guided backprop for one more call only: a forward hook whose handle is gone fires once
#     more and is then dropped by PyTorch.
# - `answer_grad_line`: which line leaves a `.grad` on every parameter of the model? (A letter,
#   A to E.)
# - `answer_functional`: the same function, called on a network whose `forward` applies
#   `F.relu` (it has no `nn.ReLU` module), returns (a letter):
#   - A. guided backprop: the hooks act on the ReLUs' outputs, and `F.relu` produces the same
#     outputs as the module would;
#   - B. the plain gradient: line A finds no `nn.ReLU` module, registers nothing, and the
#     backward pass at line D runs through the network unchanged;
#   - C. an error: `handles` is empty, and line E, a loop that expects at least one handle,
#     raises on an empty list;
#   - D. the deconvnet rule: the hooks, placed on the convolutions' outputs instead, clip the
#     negative signal without knowing which units were on.

# %% tags=["answer"]
# YOUR ANSWER
answer_after_success = None
answer_after_error = None
answer_grad_line = None
answer_functional = None

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("04", "find_the_leak")

# %% tags=["skip-grading"]
# Try it: the snippet on copies, so the models you use elsewhere stay clean.
def clip_negative(module, inputs, out):
    out.register_hook(lambda g: g.clamp(min=0))


def guided_saliency(model, x, target):
    handles = [m.register_forward_hook(clip_negative)
               for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    x = x.clone().requires_grad_(True)
    score = model(x)[:, target].sum()
    score.backward()
    for h in handles:
        h.remove()
    return x.grad


def hooks_on(model):
    return sum(len(m._forward_hooks) for m in model.modules())


plain, guided = cl.vanilla_gradient(shapes.model, x, 0), cl.guided_backprop(shapes.model, x, 0)
ok = copy.deepcopy(shapes.model)
guided_saliency(ok, x, 0)
later = cl.vanilla_gradient(ok, x, 0)
print("after a call that returned: hooks left", hooks_on(ok), " parameters with .grad",
      sum(p.grad is not None for p in ok.parameters()),
      " later gradient vs plain", float((later - plain).abs().max()), " vs guided", float((later - guided).abs().max()))
failed = copy.deepcopy(shapes.model)
try:
    guided_saliency(failed, x, 6)
except IndexError as error:
    print("IndexError:", error)
later = cl.vanilla_gradient(failed, x, 0)
print("after a call that raised:   hooks left", hooks_on(failed),
      " later gradient vs plain", float((later - plain).abs().max()), " vs guided", float((later - guided).abs().max()))


class FunctionalNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Linear(4, 2)

    def forward(self, inputs):
        return self.fc(torch.nn.functional.relu(self.conv(inputs)).mean(dim=(2, 3)))


functional_net = FunctionalNet().eval()
print("on a network calling F.relu, snippet vs plain gradient:",
      float((guided_saliency(copy.deepcopy(functional_net), x, 0) - cl.vanilla_gradient(functional_net, x, 0)).abs().max()))

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
#   - A. `features.stem`, circle: 0.44 of the map lies on objects that cover about a sixth of the
#     image, the same share as for the true class, so when the model says circle it looks at the
#     object as it does for the right answer.
#   - B. `features.layer3`, circle: the peak is never on the object, and 0.15 of the map lies
#     near the tag, five times the 0.03 a map spread evenly would put there, while for the true
#     class the same layer puts nothing there.
#   - C. `features.layer2`, circle: the peak is never near the tag, and layer2 puts the most mass
#     on the object for the true class (0.45), so it is the layer that sees best; if the tag
#     mattered, this layer would show it.
#   - D. `features.layer1`, true: the peak is near the tag in 69 percent of the images, far
#     above the 0.03 the region covers, so the tag drives the model's answer for every class,
#     circle included.
# - `answer_stem_peak`: for the true class, the stem's peak is near the tag in half of the
#   images. Why? (A letter.)
#   - A. The stem's channels respond to local colour and brightness, and the white tag is the
#     most extreme patch of every tagged image: the peak goes there whatever class is asked
#     for (0.57 for circle), while the last block, which decides, puts none of the true class's
#     map near the tag.
#   - B. The model uses the tag as evidence for every class, not only for circle: the stem is
#     the layer closest to the pixels, so it shows this evidence most sharply, and deeper
#     layers average it away over their larger receptive fields.
#   - C. Grad-CAM's bilinear upsampling of the stem's 32 x 32 map piles mass into the corners
#     of the image, and the tag sits in a corner: any map upsampled from a coarse grid peaks
#     near the borders.
#   - D. The stem's map is nearly flat, with 32 x 32 cells of about equal value, so its maximum
#     falls anywhere, and near the tag in about as many images as anywhere else of that size.

# %% tags=["answer"]
# YOUR ANSWER
answer_object_layer = None
answer_shortcut_evidence = None
answer_stem_peak = None

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
# The stem's peak for a third class (neither the true class nor circle), and without the tag.
other = torch.tensor([next(c for c in range(6) if c not in (int(t), circle)) for t in yt])
plain = cl.load_dataset("shapes", n=200, seed=900_000).batch
plain = plain[plain.labels != circle]  # the same images, untagged
for name, inputs, target in [("a third class", xt, other), ("true, no tag", shortcut.preprocess(plain.images), yt)]:
    peak = cl.grad_cam(shortcut.model, inputs, target, layer="features.stem").flatten(1).argmax(dim=1)
    print(f"stem, {name}: peak near the tag {float(near_tag.flatten()[peak].double().mean()):.2f}")
viz.use_style()
fig = viz.method_grid(tagged.images[:3], {f"{layer}, circle": cl.grad_cam(
    shortcut.model, xt[:3], circle, layer=layer) for layer in ["features.stem", "features.layer3"]},
    overlay=True, label="Grad-CAM")
