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
# # Exercises 10: Attention in BERT
#
# These exercises go with chapter 10. You compute attention weights from queries and keys,
# find a head from its statistics, predict what an average over heads shows, and reason about
# attention in settings the chapter did not cover. Four items, 15 points:
#
# | item | what you do | points |
# |---|---|---|
# | 1 `head_attention` | write the attention weights of every head, with padding | 5 |
# | 2 `find_heads` | find a head from statistics over 100 sentences, and say what a mean hides | 3 |
# | 3 `averaging` | predict what the average of 12 hand-made heads shows, then verify | 3 |
# | 4 `beyond_the_chapter` | a bug, a causal model, a permuted sink | 4 |
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

# %% [markdown]
# ## 1. One head's attention, from queries and keys (5 points)
#
# Write `head_attention(q, k, mask=None)`:
#
# - `q`, `k`: the queries and keys of every head, N x heads x T x d_head (float);
# - `mask`: N x T, 1 for a real token and 0 for padding, or None (no padding);
# - returns the attention weights, N x heads x T x T: row $i$ of each map is
#   $\operatorname{softmax}_j\big(q_i \cdot k_j / \sqrt{d_\text{head}}\big)$, a probability
#   distribution over the keys $j$, and padded keys get exactly 0;
# - `q`, `k` and `mask` are left unchanged.

# %% tags=["answer"]
def head_attention(q, k, mask=None):
    """Attention weights: q, k N x heads x T x d_head, mask N x T (1 = token, 0 = padding) or
    None -> N x heads x T x T, each row a distribution over the keys."""
    # YOUR ANSWER
    raise NotImplementedError


# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("10", "head_attention")

# %% tags=["skip-grading"]
# Try it: your function on the real MiniLM, layer 2, against the attention the model reports.
encoder = cl.load_model("minilm")
model, tokenizer = encoder.model, encoder.tokenizer
batch = tokenizer(["The film was not good.", "Never boring."], padding=True, return_tensors="pt")
attention = model.encoder.layer[2].attention.self
captured = {}
with cl.Hooks() as hooks:
    hooks.forward(attention, lambda module, args, output: captured.update(h=args[0]))
    with torch.no_grad():
        reported = model(**batch, output_attentions=True).attentions[2]
with torch.no_grad():
    n, t, _ = captured["h"].shape
    heads, d_head = model.config.num_attention_heads, attention.attention_head_size

    def split(x):  # N x T x d -> N x heads x T x d_head
        return x.view(n, t, heads, d_head).transpose(1, 2)

    mine = head_attention(split(attention.query(captured["h"])), split(attention.key(captured["h"])),
                          batch["attention_mask"])
print("max |difference| from the model's attentions[2]:", float((mine - reported).abs().max()))

# %% [markdown]
# ## 2. Find a head from its statistics (3 points)
#
# The cell below computes the chapter's head statistics for MiniLM over the first 100
# sentences of the sentiment corpus's *training* split (the chapter used the test split), and
# prints every head's mean weight on the previous token, as a grid of layers (rows) by heads
# (columns).
#
# - `answer_prev_layer`, `answer_prev_head`: head 0.2 (layer 0, head 2) is the obvious
#   previous-token head. Which head comes next, the one with the second largest mean weight
#   on the previous token? (Two integers, counted from 0.)
# - `answer_consistent`: to decide whether that head is a previous-token head in the sense
#   that head 0.2 is, what do you need besides its mean? (A letter.)
#   - A. Its mean share on `[CLS]`: the weight it does not put on `[CLS]` is free for the
#     previous token.
#   - B. The mean of the same statistic over all the heads of its layer.
#   - C. How the statistic is spread over the sentences, e.g. in how many of them it exceeds
#     0.5, or its percentiles.
#   - D. Its mean entropy: a low entropy means it always looks at the same token.

# %% tags=["skip-grading"]
# Try it: the statistics (about 10 seconds).
corpus = cl.load_dataset("sentiment")
maps = cl.attention_maps(model, corpus.texts("train")[:100], tokenizer)
table = cl.heads_table(cl.head_statistics(maps))
grid = table["previous"].unstack("head")  # layers x heads, in the model's order
print("mean weight on the previous token (rows: layers, columns: heads)")
print(grid.round(3).to_string())

# %% tags=["answer"]
# YOUR ANSWER
answer_prev_layer = None
answer_prev_head = None
answer_consistent = None

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("10", "find_heads")

# %% [markdown]
# ## 3. What does the average over heads show? (3 points)
#
# A layer has 12 heads and a sentence has $T = 8$ tokens, `[CLS]` first. Head 0 is a perfect
# previous-token head: every token $i \ge 1$ puts all its weight on token $i - 1$, and `[CLS]`
# (which has no previous token) on itself. Each of the other 11 heads puts all the weight of
# every row on `[CLS]`. You average the 12 maps, as `cl.average_attention` does, and measure
# the average map the way `cl.head_statistics` does.
#
# Predict first. The try-it cell below builds the same kind of layer for a *shorter* sentence
# ($T = 6$) with fewer idle heads (9); use it to check your reasoning there, then apply it to
# $T = 8$ and 11 idle heads.
#
# - `answer_avg_previous`: the average map's mean weight on the previous token (over the
#   rows that have one, 1 to 7). (A number; 3 decimals are enough.)
# - `answer_avg_cls`: the average map's mean share on `[CLS]` (over all 8 rows). (A number.)
# - `answer_average_reading`: someone shows you only the average map. (A letter.)
#   - A. It shows that every head of the layer looks a little at the previous token.
#   - B. From the average alone you cannot tell one sharp previous-token head among idle
#     heads from many heads that each look a little at the previous token.
#   - C. It shows that the layer's previous-token attention is too weak to matter.
#   - D. It shows that `[CLS]` is the most important token for this layer's output.

# %% tags=["answer"]
# YOUR ANSWER
answer_avg_previous = None
answer_avg_cls = None
answer_average_reading = None

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("10", "averaging")

# %% tags=["skip-grading"]
# Try it: the same construction for T = 6 tokens and 1 + 9 heads (not the graded case).
T = 6
previous_head = torch.zeros(T, T)
previous_head[0, 0] = 1.0
previous_head[torch.arange(1, T), torch.arange(T - 1)] = 1.0
cls_head = torch.zeros(T, T)
cls_head[:, 0] = 1.0
layer = torch.stack([previous_head] + [cls_head] * 9)[None]  # 1 layer x 10 heads x T x T
average = cl.average_attention(layer)
tokens = ["[CLS]", "not", "a", "good", "film", "[SEP]"]
made_up = cl.AttentionMaps(
    maps=[average[None, None]], tokens=[tokens], word_ids=[[None, 0, 1, 2, 3, None]],
    special=[torch.tensor([t in ("[CLS]", "[SEP]") for t in tokens])],
    cls=[torch.tensor([t == "[CLS]" for t in tokens])], sep=[torch.tensor([t == "[SEP]" for t in tokens])],
)
stats = cl.head_statistics(made_up)
print("T = 6, 10 heads, average: previous", round(float(stats["previous"][0, 0, 0]), 4),
      " [CLS]", round(float(stats["cls"][0, 0, 0]), 4))

# %% [markdown]
# ## 4. Beyond the chapter (4 points)
#
# `answer_bug`: a classmate writes
# `weights = (q @ k.transpose(-1, -2) / d_head**0.5).softmax(dim=-2)`. What do they see when
# they inspect the weights of one head? (A letter.)
#
# - A. The rows sum to 1, but every weight is slightly off the model's own.
# - B. Every weight equals $1/T$.
# - C. A shape error: the matrix is not square.
# - D. The columns of the map sum to 1 and the rows do not.
#
# The chapter's model is an *encoder*: every token attends to every token. GPT-style
# *decoders* use a **causal mask**: token $i$ may attend only to tokens $j \le i$ (the others
# get a score of $-\infty$ before the softmax), so that the model cannot look ahead at the
# words it must predict.
#
# - `answer_causal_next`: in a causal model, what is the `next` statistic of `cl.head_statistics`
#   for any head and any sentence? (A number.)
# - `answer_causal_first`: what weight does the first token put on itself, in any head of a
#   causal model? (A number.)
#
# `answer_sink_permuted`: a head puts 0.9 of every row on `[CLS]`. As in the chapter's pitfall,
# the vector it adds per unit of weight, $f(x_j) = x_j W_V W_O$, has norm 0.15 for `[CLS]` and
# about 4 for the words. You permute the head's weights so that the 0.9 falls on a word
# instead. What happens to what this head adds to each token's representation? (A letter.)
#
# - A. It grows several-fold: the same weight of 0.9 now multiplies a vector about 27 times
#   longer.
# - B. Little changes: the map is as sharp as before and its rows still sum to 1.
# - C. Nothing: a head's output does not depend on the order of its weights.
# - D. It becomes zero, because `[CLS]` no longer receives weight.

# %% tags=["answer"]
# YOUR ANSWER
answer_bug = None
answer_causal_next = None
answer_causal_first = None
answer_sink_permuted = None

# %% tags=["public-checks"]
# Check your work: which public checks pass, and why not (hidden checks run when you hand in).
public_checks("10", "beyond_the_chapter")
