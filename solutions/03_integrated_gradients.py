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
# # Exercises 03: Integrated Gradients, baselines, DeepLift and Shapley values
#
# These exercises go with chapter 03. You write Integrated Gradients with the trapezoid rule,
# predict what a baseline makes invisible, work out what "zero" means for another model's
# normalisation, compute Shapley values by hand, choose the number of steps from the
# completeness gap, and find out why Integrated Gradients and Shapley values split an
# interaction differently. Six items, 23 points:
#
# | item | what you do | points |
# |---|---|---|
# | 1 `ig_trapezoid` | write Integrated Gradients with the trapezoid rule from gradients | 8 |
# | 2 `baseline_blind_spot` | predict what a baseline cannot credit | 3 |
# | 3 `zero_under_imagenet` | say which image the zero baseline is for a torchvision model | 2 |
# | 4 `shapley_by_hand` | compute three Shapley values by hand | 3 |
# | 5 `choose_n_steps` | measure the number of steps for a gap below 1 percent | 2 |
# | 6 `ig_vs_shapley` | predict both splits of an interaction, and say why they differ | 5 |
#
# The *try it* cells check your reasoning on a different case from the one graded, so that
# they confirm the method without printing the answer.
#
# **How you are graded.** Fill in the cells marked `# YOUR ANSWER`: replace each
# `raise NotImplementedError` by your code and each `None` by your answer, and keep the names.
# The grader runs every code cell of your notebook from the top, then checks each item, with a
# time limit per item. It skips the *try it* cells (tagged `skip-grading`): your answers must
# not depend on them, and they are the place for experiments. Under each item, a *check* cell
# runs that item's public checks here and prints what passes and why not; when you hand in,
# the grader adds hidden checks (for the answers to questions, the check cell only tells you
# whether your answer has the right form). Hand in the notebook, or the `.py` that
# File > Download gives: both are graded the same way.
#
# Item 1 asks you to write a function that `course_lib` already has: calling
# `course_lib.integrated_gradients` or Captum's `IntegratedGradients` in it scores zero for
# the item. `course_lib.vanilla_gradient` is allowed.

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

# %% tags=["skip-grading"]
# For the try-it cells (the grader skips this cell: no answer may depend on it).
shapes = cl.load_model("shapes_cnn")
norm = cl.Normalization(0.5, 0.5)  # the Shapes CNN's preprocessing, as chapter 03's model

# %% [markdown]
# ## 1. Integrated Gradients with the trapezoid rule (8 points)
#
# Write `ig_trapezoid(model, inputs, target, baseline, n_steps)`:
#
# - `inputs`: a batch, N x C x H x W float; `model(batch)` returns N x K logits; `target`: a
#   list of N class indices (example i explains `target[i]`); `baseline`: a tensor shaped like
#   `inputs` (example i is compared with `baseline[i]`); `n_steps` >= 2;
# - the points on the path are $\alpha_k = k / (n - 1)$ for $k = 0, \ldots, n - 1$ (both ends
#   included), with weights $w_k = 1 / (n - 1)$, except the two ends, which get half of that;
# - returns $(x - b) \odot \sum_k w_k\, \nabla f_{\text{target}}\big(b + \alpha_k (x - b)\big)$,
#   shaped like `inputs`;
# - leaves the model and the tensors passed in as they were (no `.grad` on the parameters).
#
# `cl.vanilla_gradient(model, batch, target)` gives the gradients of a batch of 4-D inputs.

# %% tags=["answer"]
def ig_trapezoid(model, inputs, target, baseline, n_steps):
    """Integrated Gradients with the trapezoid rule: N x ... -> N x ... attributions."""
    # YOUR ANSWER
    ### BEGIN SOLUTION
    x, b = inputs.detach(), baseline.detach()
    weights = [1.0 / (n_steps - 1)] * n_steps
    weights[0] /= 2
    weights[-1] /= 2  # the weights add up to 1: a linear model gets (x - b) * w exactly
    total = torch.zeros_like(x)
    for k, w in enumerate(weights):
        alpha = k / (n_steps - 1)
        total += w * cl.vanilla_gradient(model, b + alpha * (x - b), target)
    return total * (x - b)
    ### END SOLUTION


# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("03", "ig_trapezoid")

# %% tags=["skip-grading"]
# Try it: your function against course_lib's on two Shapes test images, black baseline, and the
# completeness of both (the sum of the attributions against f(x) - f(b)).
batch = cl.load_dataset("shapes", n=2, seed=900_000).batch
x = shapes.preprocess(batch.images)
black = cl.pixel_baseline("black", x, norm)
target = batch.labels.tolist()
mine = ig_trapezoid(shapes.model, x, target, black, 17)
theirs, delta = cl.integrated_gradients(shapes.model, x, target, baseline=black, n_steps=17,
                                        method="riemann_trapezoid", return_delta=True)
print("largest |difference| from course_lib:", float((mine - theirs).abs().max()))
print("course_lib's completeness gaps:", delta.tolist())

# %% [markdown]
# ## 2. What a baseline cannot credit (3 points)
#
# A model whose preprocessing maps a pixel value $p \in [0, 1]$ to $(p - 0.5) / 0.5$, as
# chapter 03's does. Predict:
#
# - `answer_black_pixel`: the Integrated Gradients attribution, summed over its three
#   channels, of a pixel whose colour is exactly black, (0, 0, 0), against the black baseline.
#   (A number.)
# - `answer_light_factor`: for a light grey pixel, (0.8, 0.8, 0.8), against the black
#   baseline, the factor $x_i - b_i$ of each channel, in the model's input units. (A number.)
# - `answer_zero_tensor`: against `baseline=torch.zeros_like(x)`, which pixels get an
#   attribution of exactly zero, whatever the model? (A letter.)
#   - A. the black pixels, (0, 0, 0)
#   - B. the mid-grey pixels, (0.5, 0.5, 0.5)
#   - C. the white pixels, (1, 1, 1)
#   - D. none: zero means "no image", not a pixel
#
# The try-it cell checks the same ideas on other colours: a white square against the white
# baseline, and the factor of a white pixel against black.

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
answer_black_pixel = 0.0  # x - b = 0 on every channel
answer_light_factor = 1.6  # (0.8 - 0.5) / 0.5 - (0 - 0.5) / 0.5 = 0.6 - (-1)
answer_zero_tensor = "B"  # the normalisation sends p = 0.5 to 0: zero is mid-grey here
### END SOLUTION

# %% tags=["public-checks"]
public_checks("03", "baseline_blind_spot")

# %% tags=["skip-grading"]
# Try it: paint a white square on a Shapes image and look at its attribution against white.
painted = batch.images[:1].clone()
painted[:, :, 2:8, 56:62] = 1.0  # white
xp = shapes.preprocess(painted)
attr = cl.integrated_gradients(shapes.model, xp, target[:1], baseline=cl.pixel_baseline("white", xp, norm))
print(f"white baseline: |attribution| on the white square {float(attr[0, :, 2:8, 56:62].abs().sum()):.4f}")
print("a white pixel's channels against black, in model units:",
      (xp[0, :, 2, 56] - cl.pixel_baseline("black", xp, norm)[0, :, 2, 56]).tolist())

# %% [markdown]
# ## 3. What zero means for another model (2 points)
#
# A torchvision ResNet preprocesses a pixel value $p \in [0, 1]$ of channel $c$ as
# $(p - m_c) / s_c$, with the ImageNet statistics $m = (0.485, 0.456, 0.406)$ and
# $s = (0.229, 0.224, 0.225)$ (`cl.IMAGENET_MEAN`). Captum's and `course_lib`'s default
# baseline is the all-zero input, `torch.zeros_like(x)`.
#
# - `answer_zero_colour`: for this model, which image is the all-zero input? (A letter.)
#   - A. black, (0, 0, 0) in every pixel
#   - B. mid-grey, (0.5, 0.5, 0.5) in every pixel
#   - C. the mean colour, (0.485, 0.456, 0.406)
#   - D. no image: its pixels fall outside [0, 1]
# - `answer_black_red`: the red channel of a black pixel, in this model's input units: the
#   value a correct black baseline holds there. (A number, to two decimals.)

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
answer_zero_colour = "C"  # (p - m) / s = 0 at p = m: the mean colour
answer_black_red = (0 - 0.485) / 0.229  # -2.12
### END SOLUTION

# %% tags=["public-checks"]
public_checks("03", "zero_under_imagenet")

# %% tags=["skip-grading"]
# Try it: the same two questions for a made-up normalisation (mean (0.3, 0.6, 0.2), std
# (0.2, 0.3, 0.1)): predict both lines before you run it.
other = cl.Normalization(mean=(0.3, 0.6, 0.2), std=(0.2, 0.3, 0.1))
print("the all-zero input, in pixels:", [round(v, 3) for v in other.pixels(torch.zeros(1, 3, 1, 1)).flatten().tolist()])
print("a black pixel, in model units:", [round(v, 3) for v in other.normalize(torch.zeros(1, 3, 1, 1)).flatten().tolist()])

# %% [markdown]
# ## 4. Shapley values by hand (3 points)
#
# Three features and the score $f(x) = \max(x_1, x_2, x_3)$, at $x = (1, 2, 4)$ against the
# baseline $(0, 0, 0)$: a coalition $S$ is worth the max of the input that keeps the features
# in $S$ and has 0 elsewhere. Compute the Shapley values `answer_phi_1`, `answer_phi_2` and
# `answer_phi_3` by hand (fractions are fine, e.g. `7 / 6`). To check your method first, work
# out by hand the values at $x = (2, 3, 5)$ and compare with the try-it cell.

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
# Over the 6 orders: x1 adds 1 only when it comes first (2 orders of 6); x2 adds 2 when first
# (2 orders) and 1 when second after x1 (1 order); x3 gets the rest.
answer_phi_1 = 1 / 3
answer_phi_2 = (2 * 2 + 1 * 1) / 6
answer_phi_3 = 4 - 1 / 3 - 5 / 6
### END SOLUTION

# %% tags=["public-checks"]
public_checks("03", "shapley_by_hand")

# %% tags=["skip-grading"]
# Try it: every coalition's worth at x = (2, 3, 5), and the formula applied to them.
point = torch.tensor([2.0, 3.0, 5.0])
coalitions = cl.all_coalitions(3)
worth = torch.where(coalitions, point, torch.zeros(3)).amax(dim=1)
print("Shapley values:", cl.shapley_from_values(worth).tolist())

# %% [markdown]
# ## 5. How many steps? (2 points)
#
# Take the sixth Shapes test image, `cl.load_dataset("shapes", n=6, seed=900_000)`, index 5,
# its predicted class, and the black baseline. Run `cl.integrated_gradients(...,
# return_delta=True)` with `n_steps` in (2, 4, 8, 16, 32, 64), once with
# `method="gausslegendre"` and once with `method="riemann_right"`, and compare each gap with
# $f(x) - f(b)$. The try-it cell makes this measurement for another image, index 3: read it,
# then measure index 5 for your answers.
#
# - `answer_n_steps`: the smallest `n_steps` in that list for which Gauss-Legendre's gap is
#   below 1 percent of $|f(x) - f(b)|$. (A number.)
# - `answer_faster_rule`: which rule reaches a gap below 1 percent with fewer steps on this
#   image? (A letter.)
#   - A. Gauss-Legendre
#   - B. the right Riemann sum
#   - C. they need the same number

# %% tags=["skip-grading"]
# Try it: the measurement for image 3 (the answer cell below must not depend on this cell).
data = cl.load_dataset("shapes", n=6, seed=900_000)
image = shapes.preprocess(data.batch.images[3:4])
with torch.no_grad():
    predicted = shapes.model(image).argmax(dim=1)
base = cl.pixel_baseline("black", image, norm)
with torch.no_grad():
    change = float(shapes.model(image)[0, predicted] - shapes.model(base)[0, predicted])
for method in ("gausslegendre", "riemann_right"):
    gaps = []
    for n in (2, 4, 8, 16, 32, 64):
        _, d = cl.integrated_gradients(shapes.model, image, predicted, baseline=base, n_steps=n,
                                       method=method, return_delta=True)
        gaps.append(f"{n}: {abs(float(d)) / abs(change):.2%}")
    print(f"{method:>14}: " + "  ".join(gaps))

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
answer_n_steps = 32  # 1.43% at 16 steps, 0.04% at 32
answer_faster_rule = "A"  # the right Riemann sum is still at 2% with 64 steps
### END SOLUTION

# %% tags=["public-checks"]
public_checks("03", "choose_n_steps")

# %% [markdown]
# ## 6. Integrated Gradients against Shapley values (5 points)
#
# Two features and the score $f(x) = \min(x_1, x_2)$, at $x = (1, 3)$ against the baseline
# $(0, 0)$. Predict, without running anything:
#
# - `answer_ig_x1`, `answer_ig_x2`: the Integrated Gradients attributions of $x_1$ and $x_2$;
# - `answer_shapley_x1`, `answer_shapley_x2`: their Shapley values (a coalition keeps the
#   features in it and has 0 elsewhere);
# - `answer_why`: why do the two splits differ? (A letter.)
#   - A. IG is not complete for the min, so it loses part of the change on the way.
#   - B. IG only sees inputs on the line from $b$ to $x$, where $x_1$ is always the smaller.
#   - C. Shapley values give every player an equal share, whatever the function is.
#   - D. The min is not differentiable, so IG only approximates the Shapley value here.
#
# The try-it cell computes both splits at another point, $x = (2, 5)$: predict them there
# too, then compare.

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
answer_ig_x1 = 1.0  # on (alpha, 3 alpha) the min is x1: the gradient is (1, 0) all the way
answer_ig_x2 = 0.0
answer_shapley_x1 = 0.5  # v({x1}) = v({x2}) = 0, v({x1, x2}) = 1: symmetric players
answer_shapley_x2 = 0.5
answer_why = "B"
### END SOLUTION

# %% tags=["public-checks"]
public_checks("03", "ig_vs_shapley")

# %% tags=["skip-grading"]
# Try it: both splits with course_lib, at x = (2, 5).
class Min(torch.nn.Module):
    def forward(self, v):  # N x 2 -> N x 1
        return v.amin(dim=1, keepdim=True)


pair = torch.tensor([[2.0, 5.0]])
print("Integrated Gradients:", cl.integrated_gradients(Min().eval(), pair, 0, n_steps=64)[0].tolist())
worth = Min()(torch.where(cl.all_coalitions(2), pair, torch.zeros(1, 2)))[:, 0]
print("Shapley values:", cl.shapley_from_values(worth).tolist())
