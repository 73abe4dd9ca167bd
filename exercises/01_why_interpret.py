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
# # Exercises 01: Why interpret a network
#
# These exercises go with chapter 01. You choose a method for a question, write the
# localisation score the course uses to check maps against the Shapes masks, work out what that
# score gives by chance, and reason about the planted shortcut. Four items, 14 points:
#
# | item | what you do | points |
# |---|---|---|
# | 1 `choose_method` | pick the method that can answer each of four questions | 4 |
# | 2 `mass_on_mask` | write the localisation score | 5 |
# | 3 `chance_level` | predict, then measure, what a map that ignores the image scores | 2 |
# | 4 `shortcut` | read the shortcut model's table and reason beyond it | 3 |
#
# **How you are graded.** Fill in the cells marked `# YOUR ANSWER`: replace each
# `raise NotImplementedError` by your code and each `None` by your answer, and keep the names.
# The grader runs every code cell of your notebook from the top, then checks each item, with a
# time limit per item. It skips the *try it* cells (tagged `skip-grading`). Under each item, a
# *check* cell runs that item's public checks here and prints what passes and why not; when you
# hand in, the grader adds hidden checks (for the answers to questions, the check cell only
# tells you whether your answer has the right form). Hand in the notebook, or the `.py` that
# File > Download gives: both are graded the same way.

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
import torch

import course_lib as cl
from course_lib.grading import public_checks
from course_lib.zoo import shapes

# %% [markdown]
# ## 1. Which method answers the question? (4 points)
#
# The methods:
#
# - A. the vanilla gradient (chapter 02)
# - B. Grad-CAM (chapter 04)
# - C. KernelSHAP (chapter 05)
# - D. TCAV (chapter 07)
# - E. the attention weights of a transformer (chapter 10)
#
# For each question, the method of the list that answers it best (a letter). More than one
# method could say *something* in each case; one consideration decides.
#
# - `answer_credit`: you have a credit-scoring network's weights and can run it. For one
#   applicant, you want a contribution for each of the 12 input fields such that the
#   contributions add up exactly to the difference between this applicant's score and the
#   average applicant's score.
# - `answer_markings`: does a dermatology CNN's "melanoma" output rise with surgical skin
#   markings across its whole test set? The markings sit at a different place in every image.
# - `answer_where`: for each of 10,000 photos, a map of where the evidence for "dog" lies, at
#   the resolution of the CNN's last feature maps (7 x 7), within an hour on a laptop CPU.
# - `answer_sensitive`: which single input value of one image would change the "dog" logit the
#   most if it changed by a thousandth of a grey level?

# %% tags=["answer"]
# YOUR ANSWER
answer_credit = None
answer_markings = None
answer_where = None
answer_sensitive = None

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("01", "choose_method")

# %% [markdown]
# ## 2. A localisation score (5 points)
#
# Shapes records the object's pixels, so a saliency map can be scored by how much of its mass
# falls on the object. Write `mass_on_mask(maps, masks)`:
#
# - `maps`: N x H x W saliency maps (float, possibly signed); `masks`: N x H x W booleans, True
#   on the object;
# - returns a tensor of N numbers: for each example, the sum of |map| over the mask's pixels
#   divided by the sum of |map| over all pixels;
# - a map that is zero everywhere scores 0;
# - maps and masks of different shapes raise a `ValueError`;
# - the tensors passed in are left unchanged.

# %% tags=["answer"]
def mass_on_mask(maps, masks):
    """Share of each map's |value| mass on its mask: N x H x W maps, N x H x W masks -> N."""
    # YOUR ANSWER
    raise NotImplementedError


# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("01", "mass_on_mask")

# %% tags=["skip-grading"]
# Try it: score the vanilla gradient of the Shapes CNN on 16 test images.
model = cl.load_model("shapes_cnn")
batch = shapes.make_shapes(16, seed=900000)
grad = cl.vanilla_gradient(model.model, model.preprocess(batch.images), reduce="max_abs")
print("vanilla gradient, share of mass on the object:", mass_on_mask(grad, batch.masks).numpy().round(2))

# %% [markdown]
# ## 3. What does a map score by chance? (2 points)
#
# A score means little without its chance level. Take a "saliency map" of random noise that
# does not depend on the image at all, and score it with `mass_on_mask` on many Shapes images.
#
# `answer_chance`: before measuring, predict its average score. (A letter.)
#
# - A. 0.5: a random map is as likely to be on the object as off it.
# - B. About the fraction of the image's pixels that the object covers.
# - C. About 0: random noise has no reason to fall on the object.
# - D. About 1/6: there are six classes.
#
# `answer_random_score`: now verify. Score random maps (`torch.rand`, one per image, values in
# [0, 1]) with your `mass_on_mask` on the 500 images of `shapes.make_shapes(500, seed=0)` and
# give their mean score, to three decimals. Does it agree with your prediction?

# %% tags=["answer"]
# YOUR ANSWER
answer_chance = None
batch = None
noise = None
answer_random_score = None

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("01", "chance_level")

# %% [markdown]
# ## 4. The shortcut (3 points)
#
# Chapter 01's table shows the shortcut model, trained with the tag on 95 percent of circles
# and on no other image.
#
# `answer_called_circle`: you stamp the tag on 200 test images of triangles, crosses and
# squares. Using the table, about how many of them does the shortcut model call "circle"? (A
# number.)
#
# `answer_balanced_tag`: suppose instead the training set had the tag on half of the images
# of *every* class, circles included. (A letter.)
#
# - A. The model would learn the tag as evidence for "circle" more strongly than at 95 percent.
# - B. The model would learn it, but more weakly.
# - C. The tag would carry no information about the class, so a model has no reason to use it
#   as evidence for any class.
# - D. A CNN would learn it, a vision transformer would not.
#
# `answer_reveals`: the shortcut model scores 99.3 percent on a test set drawn like its training
# set. Which test shows its flaw? (A letter.)
#
# - A. A larger test set drawn the same way, for a tighter confidence interval.
# - B. Test images on which the tag no longer goes with the class: untagged circles, tagged
#   other classes.
# - C. The same test set at a higher resolution.
# - D. Retraining the model with another seed and comparing the accuracies.

# %% tags=["answer"]
# YOUR ANSWER
answer_called_circle = None
answer_balanced_tag = None
answer_reveals = None

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("01", "shortcut")
