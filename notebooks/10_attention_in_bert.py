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
# # 10. Attention in BERT
#
# A transformer {footcite}`vaswani2017attention` builds the representation of every token by
# mixing the representations of all tokens, with weights it computes on the fly: the
# *attention*. Those weights are a probability distribution per token and per head, they are
# easy to extract and easy to draw, and so they are the first thing people look at when they
# want to know what a language model "looks at". This chapter computes them from scratch,
# draws them in the usual ways, measures what the heads of a BERT model do over a corpus, and
# then tests the tempting reading that a heavily attended word is an important one. It opens
# Part V; chapter 11 attributes text predictions with gradients, chapter 12 turns to Vision
# Transformers.
#
# **After this chapter you can**
# - compute one head's attention from queries and keys and check it against the model's own,
#   with the shapes at every step;
# - extract the attention of every layer and head for a batch of sentences (padding cut away,
#   special tokens and word pieces marked), and draw one head, all heads, averages, and
#   bertviz's interactive head and model views;
# - say what a head does from statistics over many sentences (attention to [CLS], [SEP], the
#   previous and next token, the same word, entropy), not from one example;
# - explain, with measurements, why attention weights are not an explanation of a prediction;
# - recognise the pitfalls: special-token sinks, words split into pieces, averages over heads,
#   padding without a mask, and models that never form the attention matrix.

# %% [markdown]
# ## Setup
#
# The encoder is all-MiniLM-L6-v2: a BERT {footcite}`devlin2019bert` with 6 layers of 12 heads,
# distilled from a larger model {footcite}`wang2020minilm` and tuned to produce sentence
# embeddings {footcite}`reimers2019sentence`. It is loaded with *eager* attention, the
# implementation that forms the attention matrix (the last pitfall shows what happens
# otherwise). On Colab, `"bert_base_uncased"` (12 layers x 12 heads) runs the same code; the
# statements below marked *MiniLM* are measurements on this model and may not hold for BERT-base.

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
import inspect

import matplotlib.pyplot as plt
import numpy as np
import torch
from bertviz import head_view, model_view
from bertviz.util import format_attention
from scipy.stats import kendalltau

import course_lib as cl
from course_lib import viz

cl.set_deterministic(seed=0, threads=2)
viz.use_style()

encoder = cl.load_model("minilm")  # on Colab, try "bert_base_uncased"
model, tokenizer = encoder.model, encoder.tokenizer
config = model.config
n_layers, n_heads = config.num_hidden_layers, config.num_attention_heads
d_model, d_head = config.hidden_size, config.hidden_size // config.num_attention_heads
print(f"{encoder.name}: {n_layers} layers x {n_heads} heads, hidden size {d_model}, "
      f"head size {d_head}, attention {config._attn_implementation!r}")

# %% [markdown]
# ## Self-attention, from queries and keys to a T x T matrix
#
# A layer receives one vector per token, the rows of $H \in \mathbb{R}^{T \times d}$ ($T$
# tokens, $d = 384$ here). Each head $h$ projects them three ways, with its own weights,
# into *queries*, *keys* and *values* of size $d_h = d / 12 = 32$:
#
# $$ Q^h = H W_Q^h, \qquad K^h = H W_K^h, \qquad V^h = H W_V^h \qquad (T \times d_h \text{ each, plus biases}). $$
#
# Token $i$ scores every token $j$ by the dot product of its query with $j$'s key, and a
# softmax over $j$ turns each row of scores into a probability distribution:
#
# $$ A^h = \operatorname{softmax}_{\text{rows}}\!\left( \frac{Q^h {K^h}^\top}{\sqrt{d_h}} + M \right)
#    \in \mathbb{R}^{T \times T}, \qquad \sum_j A^h_{ij} = 1 . $$
#
# $M$ is 0 for real tokens and a very large negative number for padding, so padding gets no
# weight. Row $i$ of $A^h$ is what token $i$ (the *query*) attends to; column $j$ is how much
# each token attends to $j$ (the *key*). The head's output for token $i$ is
# $\sum_j A^h_{ij} V^h_j$; the 12 heads' outputs are concatenated, projected by $W_O$, added to
# the layer's input (the residual connection) and normalised.
#
# To check that this is all there is, we capture the input of one layer's attention module
# with a forward hook, recompute $Q$, $K$, $V$ and $A$ by hand for the sentence "The film was
# not good.", and compare with what the model returns when asked for `output_attentions=True`.

# %%
sentence = "The film was not good."
inputs = tokenizer(sentence, return_tensors="pt")
tokens = tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
layer = 2
attention_module = model.encoder.layer[layer].attention.self  # BERT's naming, as in bert-base


def capture(module, args, output):
    captured.update(h=args[0], out=output[0])  # the layer's input and the mixed values


captured = {}
with cl.Hooks() as hooks:  # the hook is removed on leaving the block
    hooks.forward(attention_module, capture)
    with torch.no_grad():
        output = model(**inputs, output_attentions=True)

with torch.no_grad():
    h = captured["h"][0]  # T x d: the layer's input, one row per token
    T = h.shape[0]

    def split_heads(x):  # T x d -> heads x T x d_head
        return x.view(T, n_heads, d_head).transpose(0, 1)

    q = split_heads(attention_module.query(h))
    k = split_heads(attention_module.key(h))
    v = split_heads(attention_module.value(h))
    scores = q @ k.transpose(1, 2) / d_head**0.5  # heads x T x T; no padding, so M = 0
    weights = scores.softmax(dim=-1)
    mixed = (weights @ v).transpose(0, 1).reshape(T, d_model)  # heads' outputs side by side

print("tokens:", tokens)
for name, x in [("H (the layer's input)", h), ("Q", q), ("K", k), ("V", v),
                ("scores = Q K^T / sqrt(d_head)", scores), ("A = softmax(scores)", weights),
                ("A V, heads concatenated", mixed)]:
    print(f"{name:<32} {tuple(x.shape)}")
checks = {
    "rows of A: max |sum - 1|": weights.sum(-1) - 1,
    f"A - the model's attentions[{layer}]: max": weights - output.attentions[layer][0],
    "A V - the module's output: max": mixed - captured["out"][0],
}
for name, difference in checks.items():
    print(f"{name:<40} {float(difference.abs().max()):.1e}")

# %% [markdown]
# The tokenizer added `[CLS]` at the start and `[SEP]` at the end, so the five words and the
# full stop make $T = 8$ tokens. Our $A$ equals the model's attention, and $AV$ the module's
# output, to float32 rounding (about $10^{-7}$): the weights the model reports are exactly the
# ones it uses to mix the values.
#
# ### Every layer and head, for a batch
#
# `cl.attention_maps(model, texts, tokenizer)` does this for a batch of sentences and every
# layer at once. It asks the model for its attentions, refuses clearly when there are none,
# stacks them into one layers x heads x T x T tensor per example, and cuts each example's
# padding away (rows *and* columns), so that a short sentence in a batch with a long one gets a
# map of its own size. It also keeps the tokens, which are special (`[CLS]`, `[SEP]`), and
# which word each piece belongs to. The core:

# %%
print(inspect.getsource(cl.attention.maps._attentions))

# %% [markdown]
# What a user would otherwise write is one unpadded sentence at a time through the model and
# bertviz's `format_attention`, which stacks the layers. For three sentences of different
# lengths, in one padded batch, the two agree:

# %%
sentences = ["The film was not good.", "The acting was good, but the ending was awful.", "Never boring."]
ours = cl.attention_maps(model, sentences, tokenizer)
for i, s in enumerate(sentences):
    alone = tokenizer(s, return_tensors="pt")
    with torch.no_grad():
        reference = format_attention(model(**alone, output_attentions=True).attentions)
    difference = float((ours.maps[i] - reference).abs().max())
    print(f"{s!r:<50} {str(tuple(ours.maps[i].shape)):<16} max |diff| {difference:.1e}")
print("tokens of the second:", ours.tokens[1])
print("special:", ours.special[1].int().tolist())

# %% [markdown]
# The longest sentence, which needed no padding, agrees exactly; the padded two differ below
# $10^{-6}$, float32 rounding from computing in a longer batch (padding adds exact zeros to the
# softmax). The course's tests (`tests/test_attention.py`) hold the same comparison to
# $10^{-12}$ in float64 on four architectures (BERT, DistilBERT, RoBERTa, ELECTRA).

# %% [markdown]
# ## One head, all heads, averages
#
# Heads differ. To pick two worth drawing, we ask each head of each layer how much weight it
# puts on the previous and on the next token in our sentence (the head statistics are defined
# properly below), and draw the most extreme head of each kind. Every map below has queries
# (the tokens attending) as rows and keys (the tokens attended to) as columns, on the same
# scale from 0 (black) to 1 (yellow).

# %% mystnb={"image": {"alt": "A heatmap of one attention head for the sentence 'The film was not good.': query tokens on the rows, key tokens on the columns, weights from 0 (dark) to 1 (bright) with a colour bar; most rows put their weight on the token just before them."}}
negation = cl.attention_maps(model, "The film was not good.", tokenizer)
neg_maps, neg_tokens = negation.maps[0], negation.tokens[0]
one = cl.head_statistics(negation)


def strongest(values):
    """(layer, head) of the largest value of a layers x heads tensor."""
    return tuple(int(i) for i in np.unravel_index(int(values.argmax()), tuple(values.shape)))


prev_layer, prev_head = strongest(one["previous"][0])
next_layer, next_head = strongest(one["next"][0])
print(f"head {prev_layer}.{prev_head}: weight on the previous token "
      f"{float(one['previous'][0, prev_layer, prev_head]):.2f}")
print(f"head {next_layer}.{next_head}: weight on the next token "
      f"{float(one['next'][0, next_layer, next_head]):.2f}")

fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
for ax, (lay, hd) in zip(axes, [(prev_layer, prev_head), (next_layer, next_head)]):
    cl.show_attention(ax, neg_maps[lay, hd], neg_tokens, title=f"layer {lay}, head {hd}")
fig.tight_layout()
plt.show()

# %% [markdown]
# Head 0.2 (layer 0, head 2) is a pure *previous-token* head: every token puts all its weight
# on the token before it (`[CLS]`, having none, attends to itself). Head 1.8 mostly looks one
# token ahead, but not everywhere: `film` and `good` split their weight with `[CLS]`, and
# `[CLS]` and `[SEP]` attend to `[CLS]`. One sentence cannot say whether these are habits of the
# heads or accidents of this sentence; the corpus statistics below can.
#
# All twelve heads of a layer, on one shared scale:

# %% mystnb={"image": {"alt": "A grid of the twelve attention heads of one layer for 'The film was not good.', each a query-by-key heatmap on one 0 to 1 colour scale; several heads put a bright first column on [CLS], others follow the diagonal or its neighbour."}}
fig = cl.attention_grid(neg_maps[prev_layer], neg_tokens, ncols=4, cell=1.8,
                        suptitle=f"all {n_heads} heads of layer {prev_layer}")
plt.show()
grid = neg_maps[prev_layer]  # heads x T x T
print(f"layer {prev_layer}, mean over the {grid.shape[-1]} rows of each head")
print(f"{'head':>4} {'on [CLS]':>9} {'on itself':>10}")
for hd in range(n_heads):
    print(f"{hd:>4} {float(grid[hd, :, 0].mean()):>9.2f} {float(torch.diagonal(grid[hd]).mean()):>10.2f}")

# %% [markdown]
# Apart from head 2, the heads of the first layer spread their weight more broadly. Seven of
# them (heads 1, 6, 7, 8, 9, 10 and 11) send 0.35 to 0.45 of their weight to `[CLS]` (the
# bright first column), on average over the rows, and head 3 almost none (0.04); none keeps
# more than 0.27 on the token itself (head 8). Reading a function into each of these from one
# sentence would be guesswork. Averaging is the usual way to summarise so many
# maps:

# %% mystnb={"image": {"alt": "Two query-by-key heatmaps for the same sentence: the mean over the heads of one layer and the mean over all layers and heads, on a 0 to 1 colour scale; the averages are dominated by the first column, [CLS], and no longer show the previous-token pattern of the single head."}}
averages = {
    f"head {prev_layer}.{prev_head}": neg_maps[prev_layer, prev_head],
    f"mean over the heads of layer {prev_layer}": cl.average_attention(neg_maps, layers=prev_layer),
    "mean over all layers and heads": cl.average_attention(neg_maps),
}
fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
for ax, (title, a) in zip(axes, list(averages.items())[1:]):  # the head itself is drawn above
    cl.show_attention(ax, a, neg_tokens, title=title)
fig.tight_layout()
plt.show()
print(f"{'':<32} {'previous token':>15} {'[CLS]':>6}")
for title, a in averages.items():
    prev_share = float(torch.diagonal(a, offset=-1).mean())
    print(f"{title:<32} {prev_share:>15.2f} {float(a[:, 0].mean()):>6.2f}")

# %% [markdown]
# The averages are still distributions (rows sum to 1), and they are smooth, but they describe
# no head. The previous-token pattern, exact in head 0.2 (weight 1.00), is down to 0.22 in the
# layer's average and 0.15 over all layers. The share on `[CLS]` is 0.31 in the layer's
# average, which lies, as any mean must, between its heads' shares (0.04 to 0.45, printed under
# the grid); it rises to 0.59 only in the average over all layers, because many heads of the
# later layers send most of their weight there. An average over heads answers
# "where does attention go overall?", not "what does the model do?"

# %% [markdown]
# ## bertviz: the head view and the model view
#
# bertviz {footcite}`vig2019multiscale` draws attention as lines between the tokens, which is
# easier to read than a matrix when sentences get longer, and it is interactive. In the **head
# view** below (our negation sentence, layer 0), each colour is a head; hover over a token to
# see only its lines, click a colour square to show or hide a head, double-click to show only
# that head, and pick another layer at the top. It opens on layer 0 with head 2, the
# previous-token head, selected; choose layer 1 and double-click the ninth colour (head 8) for
# the next-token head.
#
# The views embed every weight in the page, so we round them to 3 decimals, which keeps the
# page small and changes nothing visible. In Jupyter and Colab the views fetch three scripts
# (require.js, d3 and jQuery) from a CDN; the published book serves its own copies, so they
# also draw without the internet.

# %%
def for_bertviz(maps):
    """One 1 x heads x T x T tensor per layer, as bertviz expects, rounded to 3 decimals."""
    return [m[None].double().round(decimals=3) for m in maps]


head_view(for_bertviz(neg_maps), neg_tokens, layer=prev_layer, heads=[prev_head])

# %% [markdown]
# The **model view** shows every head of every layer as a thumbnail (rows are layers, columns
# heads; click one to enlarge it), here for a sentence with a contrast, "The acting was good,
# but the ending was awful." Scan it for patterns: the diagonal lines of the previous- and
# next-token heads in the first two layers, and from layer 1 on, the many heads whose lines
# converge on `[CLS]`.

# %%
contrast = cl.attention_maps(model, "The acting was good, but the ending was awful.", tokenizer)
model_view(for_bertviz(contrast.maps[0]), contrast.tokens[0], display_mode="light")

# %% [markdown]
# ## What the heads do, measured over a corpus
#
# Clark et al. {footcite}`clark2019does` characterised BERT's heads by statistics over many
# sentences. `cl.head_statistics` computes them per sentence and per head:
#
# | statistic | definition (a mean over the query tokens $i$ of one sentence) |
# |---|---|
# | `cls`, `sep` | $\sum_{j \in \text{[CLS]}} A_{ij}$ and $\sum_{j \in \text{[SEP]}} A_{ij}$ |
# | `previous`, `next`, `self` | $A_{i,i-1}$, $A_{i,i+1}$, $A_{ii}$ (over the $i$ that have that neighbour) |
# | `same_word` | for the pieces $i$ of a split word, the weight on the word's *other* pieces |
# | `entropy` | $-\sum_j A_{ij} \ln A_{ij}$: 0 when a row puts all its weight on one token, $\ln T$ when it is uniform |
#
# Here they are over 200 sentences of the course's sentiment corpus (the test split).

# %%
print(inspect.getsource(cl.head_statistics))

# %%
corpus = cl.load_dataset("sentiment")
texts = corpus.texts("test")[:200]
corpus_maps = cl.attention_maps(model, texts, tokenizer)
stats = cl.head_statistics(corpus_maps)  # each: sentences x layers x heads
table = cl.heads_table(stats)  # mean and sd over the sentences, one row per head
n_split = int((~stats["same_word"][:, 0, 0].isnan()).sum())
print(f"{len(texts)} sentences, {sum(len(t) for t in corpus_maps.tokens)} tokens; "
      f"{n_split} sentences contain a word split into pieces")

# %% mystnb={"image": {"alt": "Six layer-by-head heatmaps (6 layers by 12 heads) of head statistics over the corpus: the mean attention share on [CLS], on [SEP], on the previous token, on the next token, on pieces of the same word, and the mean row entropy in nats, each with its colour bar."}}
panels = {"cls": "on [CLS]", "sep": "on [SEP]", "previous": "on the previous token",
          "next": "on the next token", "same_word": f"on the same word ({n_split} sentences)",
          "entropy": "row entropy"}
fig, axes = plt.subplots(3, 2, figsize=(8, 6.6))
for ax, (name, title) in zip(axes.flat, panels.items()):
    values = torch.tensor(table[name].to_numpy()).view(n_layers, n_heads)
    if name == "entropy":
        cl.show_head_statistic(ax, values, title=title, vmax=None, label="nats", annotate=False)
    else:
        cl.show_head_statistic(ax, values, title=title, vmax=1.0, label="share", annotate=False)
fig.suptitle(f"mean over {len(texts)} sentences, per head", y=1.0)
fig.tight_layout()
plt.show()

# %% [markdown]
# Each cell is one head (layer down, head across), coloured by the statistic's mean over the
# sentences. How consistent is each habit from sentence to sentence? For every statistic, the
# table below counts the heads whose mean exceeds 0.5, and describes the strongest head by its
# spread over the sentences: standard deviation, 5th to 95th percentile, and the share of
# sentences in which it exceeds 0.5.

# %%
print(f"{'':<10} {'heads':>6} | {'strongest head, over the sentences:':<42}")
print(f"{'statistic':<10} {'> 0.5':>6} | {'head':>5} {'mean':>5} {'sd':>5} {'5-95th pct':>11} {'> 0.5 in':>9}")
for name in ["cls", "sep", "previous", "next", "self", "same_word"]:
    means = table[name]
    best = means.idxmax()
    values = stats[name][:, best[0], best[1]]
    values = values[~values.isnan()]
    lo, hi = np.percentile(values.numpy(), [5, 95])
    above = float((values > 0.5).double().mean())
    print(f"{name:<10} {int((means > 0.5).sum()):>6} | {f'{best[0]}.{best[1]}':>5} {means[best]:>5.2f} "
          f"{table[name + '_sd'][best]:>5.2f} {f'{lo:.2f}-{hi:.2f}':>11} {above:>9.0%}")
ln_t = np.log([len(t) for t in corpus_maps.tokens])
relative = (stats["entropy"] / torch.tensor(ln_t)[:, None, None]).mean(0)  # layers x heads
print("row entropy / ln T (1 = uniform, 0 = one token), mean over the sentences, per layer over its heads:")
for lay in range(n_layers):
    values = relative[lay]
    print(f"  layer {lay}: min {float(values.min()):.2f} (head {int(values.argmin())}), "
          f"median {float(values.median()):.2f}, max {float(values.max()):.2f}")

# %% [markdown]
# What the corpus says, for *MiniLM*:
#
# - **[CLS] is the sink.** 39 of the 72 heads put more than half of their attention on
#   `[CLS]`, on average, and the strongest (head 2.7) puts 0.84 to 0.95 there in 90 percent of
#   the sentences. No head does so for `[SEP]` (the most, head 0.0, puts 0.19 there). Clark et al. found
#   the opposite in BERT-base: there `[SEP]` collects most of the attention of the middle
#   layers. Which special token serves as the sink is a property of the model and its training,
#   so measure it on yours (on Colab, swap in `"bert_base_uncased"` and re-run this section).
# - **Positional heads exist and are reliable.** Head 0.2 is a previous-token head in every
#   sentence (weight 1.00, sd 0.00), head 1.8 a next-token head in 97 percent of them (mean
#   0.60). Only one head of each kind passes 0.5; the others spread their weight.
# - **Word pieces.** Only 16 of the 200 sentences contain a split word, so this statistic rests
#   on few examples. Head 0.2 scores highest, 0.55, simply because the previous token of a piece
#   is often a piece of the same word: a statistic does not say *why* a head attends somewhere.
# - **Broad and sharp heads.** Measured against a uniform row (entropy / ln T: 1 when uniform,
#   0 when all weight is on one token), the heads of layer 0 are broad (median 0.81, up to
#   0.89), except head 0.2 (0.00); layers 1 and 2 are the sharpest (medians 0.37 and 0.39,
#   down to 0.22 and 0.15), and layers 3 to 5 lie between (medians 0.60, 0.47 and 0.54).

# %% [markdown]
# ## Attention is not explanation
#
# A heavily attended word *looks* important. Is it? Jain and Wallace
# {footcite}`jain2019attention` tested this reading on text classifiers and found that
# attention weights often disagree with measures of a token's effect on the prediction, and
# that very different attention weights can give the same prediction. Wiegreffe and Pinter
# {footcite}`wiegreffe2019attention` answered that whether attention "is" an explanation depends
# on what is asked of it, and that the tests must be fair: compare against baselines, and
# check first whether the model needs its attention at all. We run both kinds of test on the
# course's sentiment classifier: the MiniLM encoder, the mean of its last layer's token
# vectors, and a linear head (its last layer's attention was trained with the head, so that it
# handles negation and contrast).

# %%
sentiment = cl.load_model("minilm_sentiment")
classifier = sentiment.model
reviews = corpus.test[:200]
review_texts = [r.text for r in reviews]
labels = torch.tensor([r.label for r in reviews])
kinds = np.array([r.kind for r in reviews])
batch = sentiment.preprocess(review_texts)
with torch.no_grad():
    base = classifier(**batch, output_attentions=True)
base_prob = base.logits.softmax(-1)
pred = base_prob.argmax(-1)
for kind in ["plain", "negation", "contrast"]:
    sel = kinds == kind
    accuracy = float((pred == labels)[sel].double().mean())
    print(f"{kind:<9} {int(sel.sum()):>4} sentences, accuracy {accuracy:.2f}")

# %% [markdown]
# The classifier is right on 99, 100 and 93 percent of these sentences: it works, so asking
# how it works is meaningful.
#
# ### Does attention rank the words like their effect?
#
# An attention map is T x T per head and layer; to compare it with a per-word importance we
# need one number per word. In this classifier the prediction reads the *mean* of the last
# layer's token vectors, and each of those mixes the value vectors with the last layer's
# attention; so the weight a word receives in the last layer, averaged over the queries and
# the heads, is how much weight the mixture gives it (how much it *contributes* also depends on
# the size of its value vector, as the sink pitfall below shows). That is our **attention score**.
#
# Its rival is **leave-one-out**: remove one word (mask it out of the attention and of the mean)
# and measure how much the predicted class's margin (the difference of the two logits) drops.
# Attention has no sign, while the effect does (a word can argue against the prediction), so
# we compare attention with the effect's magnitude, with Kendall's $\tau$ per sentence over its
# words, as Jain and Wallace did, and report the spread over 100 sentences.

# %%
def leave_one_out(model, batch, n):
    """Drop of the predicted class's margin (logit difference) when one word at a time is
    masked out (not attended to, not pooled): n tensors, one value per word ([CLS], [SEP] kept)."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    rows, owners = [], []
    for i in range(n):
        length = int(mask[i].sum())
        for j in range(1, length - 1):
            m = mask[i].clone()
            m[j] = 0
            rows.append(m)
            owners.append(i)
    masks, index = torch.stack(rows), torch.tensor(owners)
    with torch.no_grad():
        full = model(input_ids=ids[:n], attention_mask=mask[:n])
        margin = full[:, 1] - full[:, 0]
        dropped = torch.cat([model(input_ids=ids[index[s]], attention_mask=masks[s])
                             for s in cl.core.batches(len(rows), 256)])  # 256 variants a pass
    sign = torch.where(margin > 0, 1.0, -1.0)  # margin of the predicted class
    drop = sign[index] * (margin[index] - (dropped[:, 1] - dropped[:, 0]))
    return [drop[index == i] for i in range(n)]


n_loo = 100
effects = leave_one_out(classifier, batch, n_loo)
last = base.attentions[-1]  # N x heads x T x T: the layer whose outputs are averaged
received = []
for i in range(n_loo):
    length = int(batch["attention_mask"][i].sum())
    a = last[i, :, :length, :length].mean(0)  # mean over the heads
    received.append(a[:, 1 : length - 1].mean(0))  # weight each word receives, mean over the queries

pairs = list(zip(received, effects))
taus = np.array([kendalltau(r.numpy(), e.abs().numpy()).statistic for r, e in pairs])
top_same = np.array([int(r.argmax()) == int(e.abs().argmax()) for r, e in pairs])
chance = np.array([1 / len(r) for r in received])
q1, median, q3 = np.percentile(taus, [25, 50, 75])
print(f"Kendall tau(attention, |effect|) over {n_loo} sentences: median {median:.2f}, "
      f"quartiles {q1:.2f} to {q3:.2f}, below 0 in {np.mean(taus < 0):.0%}")
print(f"most attended word = word with the largest |effect|: {top_same.mean():.0%} of the "
      f"sentences (chance {chance.mean():.0%})")

# %% [markdown]
# Attention is far from random here: the rank correlation is negative in only 3 percent of the
# sentences (median 0.44), and the most attended word is the most effective one in 70 percent,
# against 12 percent by chance. In this model, the last layer's attention tends to sit on the
# words that matter. It is also far from a faithful ranking: a quarter of the sentences have
# $\tau$ below 0.23. Two sentences show how it goes wrong:

# %%
for i in [1, 2]:
    ids = batch["input_ids"][i][1 : len(received[i]) + 1]
    print(f"{review_texts[i]!r}: predicted {sentiment.labels[int(pred[i])]}")
    print(f"  {'word':<12} {'attention':>9} {'effect':>7}")
    for word, r, e in zip(sentiment.tokenizer.convert_ids_to_tokens(ids), received[i], effects[i]):
        print(f"  {word:<12} {float(r):>9.2f} {float(e):>+7.2f}")

# %% [markdown]
# "The plot was delightful, even though the film was clumsy." is (correctly) positive. The last
# layer attends most to `clumsy` (0.29), a *negative* word; removing it moves the positive
# margin by only 0.24. The words that decide are `though` (removing it drops the margin by
# 4.31) and the full stop (2.10), which get 0.06 and 0.02 of the attention, and removing
# `even` or the second `was` *raises* the margin (effects -1.03 and -1.82), which no attention
# weight can express. In "What a poor film." attention and effect agree on `poor` (0.39 and
# 4.87), but `film`, with an effect of 3.36, gets 0.04.
#
# ### Would other attention give the same prediction?
#
# The second test changes the attention and watches the prediction. Jain and Wallace permuted
# the weights; Wiegreffe and Pinter asked for a uniform baseline. We do both, in the last layer
# only, with `cl.attention_replaced`, which makes the chosen layers mix their values with
# weights of our choosing (a forward hook; the model's code is untouched):
#
# - **permuted**: each head's weights go to a random permutation of the sentence's tokens (one
#   permutation per head, the same for all its queries), so the head is as sharp as before but
#   looks elsewhere;
# - **uniform**: every token attends equally to every token.
#
# How much the map changed is measured by the total variation distance between the old and
# new rows ($\frac12 \sum_j |A_{ij} - A'_{ij}|$, from 0 to 1), averaged over rows and heads; how
# much the prediction changed, by $|\Delta p(\text{positive})|$. Because a sentence either keeps
# its prediction or flips it, we report shares rather than means: the share whose probability
# moved by less than 0.05, the share that flipped, and the accuracy.

# %%
lengths = batch["attention_mask"].sum(1)


def permute_keys(weights, generator):
    """Each head's weights moved to a random permutation of the sentence's tokens (the same for
    all its queries); padding stays where it is. weights: N x heads x T x T."""
    out = weights.clone()
    for n in range(weights.shape[0]):
        t = int(lengths[n])
        for hd in range(weights.shape[1]):
            order = torch.randperm(t, generator=generator)
            out[n, hd, :t, :t] = weights[n, hd, :t, :t][:, order]
    return out


def uniform(weights):
    """Every token attends equally to every real token of its sentence."""
    mask = batch["attention_mask"][:, None, None, :].to(weights.dtype)
    return (mask / mask.sum(-1, keepdim=True)).expand_as(weights).clone()


real_rows = batch["attention_mask"][:, None, :].double()  # N x 1 x T: the rows that are tokens
positive_label = labels == 1


def run_edit(edit):
    with torch.no_grad(), cl.attention_replaced(classifier, edit, layers=n_layers - 1):
        out = classifier(**batch, output_attentions=True)
    prob = out.logits.softmax(-1)
    row_change = 0.5 * (out.attentions[-1] - base.attentions[-1]).abs().sum(-1)  # N x heads x T
    return dict(
        map=(row_change * real_rows).sum((1, 2)) / (real_rows.sum((1, 2)) * n_heads),
        out=(prob[:, 1] - base_prob[:, 1]).abs(),
        flip=prob.argmax(-1) != pred,
        positive=prob.argmax(-1) == 1,
        acc=prob.argmax(-1) == labels,
    )


n_permutations = 5  # one random permutation per head and sentence in each run
runs = {"permuted": [run_edit(lambda w, g=torch.Generator().manual_seed(seed): permute_keys(w, g))
                     for seed in range(n_permutations)],
        "uniform": [run_edit(uniform)]}  # uniform attention is one fixed edit


def share(flags):
    return float(flags.double().mean())


def spread(values):  # median over the runs, with min-max when there are several
    values = np.array(values)
    if len(values) == 1:
        return f"{values[0]:.0%}"
    return f"{np.median(values):.0%} ({values.min():.0%}-{values.max():.0%})"


groups = {kind: torch.tensor(kinds == kind) for kind in ["plain", "negation", "contrast"]}
print(f"{'':<10} {'kind':<9} {'labels':>9} {'map change':>10} {'|dp| < 0.05':>11} {'flipped':>8} "
      f"{'predicted':>10} {'accuracy':>9}")
print(f"{'':<10} {'':<9} {'positive':>9} {'(median)':>10} {'':>11} {'':>8} {'positive':>10}")
for kind, sel in groups.items():
    print(f"{'none':<10} {kind:<9} {share(positive_label[sel]):>9.0%} {'':>10} {'':>11} {'':>8} "
          f"{share(pred[sel] == 1):>10.0%} {share((pred == labels)[sel]):>9.0%}")
for name, rs in runs.items():
    for kind, sel in groups.items():
        m = np.median([float(r["map"][sel].median()) for r in rs])
        cols = [np.median([share(r[key][sel] if key != "out" else r["out"][sel] < 0.05) for r in rs])
                for key in ["out", "flip", "positive", "acc"]]
        print(f"{name:<10} {kind:<9} {share(positive_label[sel]):>9.0%} {m:>10.2f} {cols[0]:>11.0%} "
              f"{cols[1]:>8.0%} {cols[2]:>10.0%} {cols[3]:>9.0%}")
print(f"(permuted: median over {n_permutations} random permutations)")
print()
print("by the class predicted with the model's own attention; permuted: median (min-max) "
      f"over {n_permutations} permutations")
for name, rs in runs.items():
    print(f"{name}: predicted positive after the edit {spread([share(r['positive']) for r in rs])} "
          f"of all {len(review_texts)} sentences")
    for cls_, label in [(1, "positive"), (0, "negative")]:
        sel = pred == cls_
        print(f"  predicted {label} ({int(sel.sum())}): |dp| < 0.05 {spread([share(r['out'][sel] < 0.05) for r in rs])}, "
              f"kept the prediction {spread([share(~r['flip'][sel]) for r in rs])}")
results = {name: rs[0] for name, rs in runs.items()}  # the first permutation, drawn below

# %% [markdown]
# Both edits move most of the attention mass (median map change 0.62 to 0.72), and what the
# model does then depends on the class it predicted with its own attention, more than on the
# kind of sentence:
#
# - **Without its learned last-layer attention the model falls back to "positive".** With
#   uniform attention it predicts positive for 98 percent of the 200 sentences; after a
#   permutation, for 82 percent (median over 5 permutations; 78 to 82). So the accuracies under
#   uniform attention (57, 42 and 41 percent) mostly reflect how many sentences of each kind
#   are positive (56, 48 and 41 percent), the accuracy of always answering "positive". Of the sentences
#   predicted negative, uniform attention keeps the prediction of 1 percent and a permutation of
#   25 percent (23 to 28). The model needs this attention (Wiegreffe and Pinter's test), and
#   what it needs it for is the negative evidence ("not", "awful", the clause after "but").
# - **Very different attention often gives the same answer, for positive predictions** (Jain
#   and Wallace's test). Of the sentences predicted positive, a permutation keeps the
#   prediction of 89 percent (83 to 93) and the probability within 0.05 for 44 percent (43 to
#   52); uniform attention keeps 96 and 59 percent. For those sentences the attention we would
#   draw is one of many that lead to the same prediction, so it cannot be *the* reason for it.
#   But this reading holds only for the positive class, and for a reason: positive is where
#   the model ends up once its learned attention is gone, so an edit that destroys the
#   attention's work leaves a positive prediction standing. For the negative predictions it
#   fails: only 5 percent (3 to 8) keep their probability within 0.05 under a permutation, and
#   none under uniform attention.
#
# The size of the change to the map hardly predicts the change to the prediction:

# %% mystnb={"image": {"alt": "A scatter plot, one point per test sentence: horizontal, how much the last layer's attention changed under a random permutation; vertical, how much the predicted probability of positive changed; circles for sentences predicted positive cluster near zero change, squares for sentences predicted negative spread up to a change near 1."}}
fig, ax = plt.subplots(figsize=(6.4, 4.2))
r = results["permuted"]
for cls_, label, marker in [(1, "positive", "o"), (0, "negative", "s")]:
    sel = (pred == cls_).numpy()
    ax.scatter(r["map"][sel], r["out"][sel], s=14, marker=marker, alpha=0.7, label=label)
ax.set_xlabel("change of the last layer's attention\n(total variation, mean over rows and heads)")
ax.set_ylabel("|change of p(positive)|")
ax.set_ylim(-0.02, 1.02)
ax.legend(title="predicted\n(own attention)", loc="upper left", bbox_to_anchor=(1.01, 1))
ax.set_title("permuted last-layer attention (first permutation), one point per sentence")
plt.show()
lo, hi = np.percentile(r["map"].numpy(), [5, 95])
print(f"map change, 5th to 95th percentile over the {len(review_texts)} sentences: {lo:.2f} to {hi:.2f}")
for cls_, label in [(1, "positive"), (0, "negative")]:
    sel = pred == cls_
    print(f"predicted {label}: median |dp| {float(r['out'][sel].median()):.2f}")

# %% [markdown]
# What separates small from large changes of the prediction is the predicted class, not the
# size of the change to the map: at the same map change, the negative predictions mostly move
# a lot (median $|\Delta p|$ 0.75) and the positive ones mostly little (median 0.07), with
# points of both classes over much of the height. The map changes themselves lie in a narrow
# range (5th to 95th percentile 0.59 to 0.81), too narrow for a correlation between the two
# changes to say much, so we compute none. How much an attention map changes is not a
# measure of how much its change matters: the values it mixes, the residual connection that
# carries every token's own vector past the attention, and the layers after it all stand
# between the weights and the output.
#
# Both readings hold at once, and that is the lesson: *the model uses its attention, and the
# attention weights are not an explanation of its prediction.* They say where information is
# moved from, in one layer; they carry no sign; they ignore the size of what is moved (the
# next section measures that); and for many sentences (here, those predicted positive) the
# prediction does not depend on their particular values. Chapter 11 asks the question directly: how much does each word contribute to the
# prediction, with a sign and with contributions that add up, by Integrated Gradients on the
# embeddings, and compares the answer with attention.

# %% [markdown]
# ## Pitfalls
#
# **The sink: a large weight that moves almost nothing.** Over the corpus, most heads of
# *MiniLM* put most of their weight on `[CLS]`. Kobayashi et al. {footcite}`kobayashi2020attention`
# pointed out that what a head adds to token $i$ is $\sum_j A_{ij} f(x_j)$ with
# $f(x_j) = x_j W_V^h W_O^h$, so a weight matters only as much as the vector it multiplies.
# Measured in the layer with the heaviest `[CLS]` attention, over 100 sentences:

# %%
layer_sink = int(table["cls"].groupby(level="layer").mean().idxmax())
sink_module = model.encoder.layer[layer_sink].attention
sink_batch = encoder.preprocess(texts[:100])
with torch.no_grad():
    out = model(**sink_batch, output_attentions=True, output_hidden_states=True)
    h = out.hidden_states[layer_sink]  # the input of layer_sink: N x T x d
    N, T = h.shape[:2]
    v = sink_module.self.value(h).view(N, T, n_heads, d_head).transpose(1, 2)  # N x heads x T x d_h
    w_o = sink_module.output.dense.weight.view(d_model, n_heads, d_head)  # each head's part of W_O
    f = torch.einsum("nhtk,dhk->nhtd", v, w_o)  # f(x_j): what token j adds per unit of weight
    a = out.attentions[layer_sink]  # N x heads x T x T
    contribution = a * f.norm(dim=-1)[:, :, None, :]  # ||A_ij f(x_j)||
mask = sink_batch["attention_mask"].double()
rows = mask[:, None, :]  # the query rows that are tokens


def mean_over_rows(x):  # N x heads x T -> heads
    return (x * rows).sum((0, 2)) / rows.sum((0, 2))


weight_on_cls = mean_over_rows(a[..., 0])
norm_on_cls = mean_over_rows(contribution[..., 0] / contribution.sum(-1))
norms = f.norm(dim=-1)  # N x heads x T
print(f"layer {layer_sink}, mean over {N} sentences")
print(f"{'head':>4} {'weight on [CLS]':>16} {'share of ||A f(x)|| on [CLS]':>29}")
for hd in range(n_heads):
    print(f"{hd:>4} {float(weight_on_cls[hd]):>16.2f} {float(norm_on_cls[hd]):>29.2f}")
cls_norm = float(norms[:, :, 0].mean())
other_norm = float((norms[:, :, 1:] * mask[:, None, 1:]).sum() / (mask[:, 1:].sum() * n_heads))
print(f"||f(x)||, mean over heads: [CLS] {cls_norm:.2f}, the other tokens {other_norm:.2f}")

# %% [markdown]
# In layer 2, heads send 0.45 to 0.90 of their weight to `[CLS]`, but the vector `[CLS]`
# contributes is about 27 times shorter than the other tokens' (0.15 against 4.06), so its
# share of what the heads actually add is 0.08 to 0.22, except in head 9 (0.61). Weight on a
# sink is mostly a way of doing nothing (Clark et al. called it a "no-op"); read a bright
# `[CLS]` or `[SEP]` column as "this head is idle here", not "this token matters".
#
# **Words split into pieces.** WordPiece splits rare words: "unforgettable" becomes four
# tokens, and its attention is spread over them. Clark et al. convert to words by *summing*
# the weights a word's pieces receive and *averaging* the rows of the pieces that attend, so
# that rows still sum to 1 (`cl.word_level_attention`). Below, a head that attends to the other
# pieces of the same word (the strongest by `same_word` among the heads that are not simply
# previous- or next-token heads):

# %% mystnb={"image": {"alt": "Two heatmaps for 'The soundtrack was unforgettable.': the attention of one head between word pieces (the word unforgettable split into pieces) and the same attention summed over pieces into words, on 0 to 1 colour scales."}}
split = cl.attention_maps(model, "The soundtrack was unforgettable.", tokenizer)
words_map, words = cl.word_level_attention(split.maps[0], split.tokens[0], split.word_ids[0])
positional = (table["previous"] > 0.3) | (table["next"] > 0.3)
piece_layer, piece_head = table["same_word"][~positional].idxmax()
print("pieces:", split.tokens[0])
print("words: ", words)
u = words.index("unforgettable")
row = table.loc[(piece_layer, piece_head)]
print(f"head {piece_layer}.{piece_head} over the corpus: same word {row['same_word']:.2f}, "
      f"previous token {row['previous']:.2f}, next token {row['next']:.2f}")
print(f"here, 'unforgettable' attends to itself with "
      f"{float(words_map[piece_layer, piece_head, u, u]):.2f} (its 4 pieces' mean weight on all 4)")
fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
cl.show_attention(axes[0], split.maps[0][piece_layer, piece_head], split.tokens[0],
                  title=f"word pieces, layer {piece_layer}, head {piece_head}")
cl.show_attention(axes[1], words_map[piece_layer, piece_head], words, title="the same head, words")
fig.tight_layout()
plt.show()

# %% [markdown]
# At the piece level the pieces look at each other: `##for` puts almost all its weight on
# `un`, `##get` about half on `##table`. At the word level the four rows become one and the
# four columns one cell: the word attends to itself with 0.57. Which level you read changes
# the story; say which one a figure shows.
#
# **Averaging over heads.** Shown above: averaging the heads of layer 0 turned a perfect
# previous-token head (1.00) into a weak diagonal (0.22). An average over heads cannot exceed
# its largest head: layer 0's average put 0.31 on `[CLS]`, within its heads' 0.04 to 0.45; the
# rise to 0.59 came from averaging over all layers, where the later layers' `[CLS]` heads
# dominate, and it says nothing about layer 0. Average only heads you have checked do the same
# thing, and state which layers and heads an average covers in its caption.
#
# **Padding without its mask.** In a batch, short sentences are padded. Without the
# `attention_mask`, the model attends to the padding and every map of the short sentence
# changes:

# %%
short, long = "Not good.", "The acting was good, but the ending was awful."
padded = tokenizer([short, long], padding=True, return_tensors="pt")
with torch.no_grad():
    alone = model(**tokenizer(short, return_tensors="pt"), output_attentions=True).attentions
    with_mask = model(**padded, output_attentions=True).attentions
    without = model(input_ids=padded["input_ids"], output_attentions=True).attentions
t_short = alone[0].shape[-1]
print("max |difference| from the sentence alone, over all layers and heads:")
for name, att in [("padded, with attention_mask", with_mask), ("padded, without it", without)]:
    diff = max(float((a[0, :, :t_short, :t_short] - b[0]).abs().max()) for a, b in zip(att, alone))
    print(f"  {name:<28} {diff:.2e}")

# %% [markdown]
# With the mask, the padded sentence's attention equals the unpadded one to float32 rounding;
# without it, some weights change by 0.85. `cl.attention_maps` always passes the mask and
# cuts the padding away.
#
# **A model that never forms the matrix.** In the transformers version the course pins
# (printed below; other versions may differ), models compute attention by default with
# PyTorch's fused *SDPA* kernel, which never materialises $A$: asked for attentions, the model
# logs a warning and returns no weights. `cl.attention_maps` turns
# that into an error that says what to do:

# %%
import transformers

print("transformers", transformers.__version__)
fused = copy.deepcopy(model)
fused.set_attn_implementation("sdpa")
try:
    cl.attention_maps(fused, "Not good.", tokenizer)
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# ## Summary
#
# - Self-attention turns queries and keys into one T x T matrix per head, whose rows are
#   probability distributions; the weights the model reports are exactly the ones it uses to
#   mix the values (checked to $10^{-7}$).
# - `cl.attention_maps` extracts them for a batch, with padding cut away and special tokens
#   and word pieces marked, and agrees with bertviz's `format_attention` on unpadded inputs.
# - Single heads can be sharp and interpretable (a previous-token head, a next-token head);
#   averages over heads describe no head. bertviz's head and model views make the patterns
#   easy to browse, and the book serves their scripts so they work offline.
# - Claims about heads need statistics over a corpus with their spread: in MiniLM, 39 of 72
#   heads put most of their weight on `[CLS]` (BERT-base uses `[SEP]`), one head looks at the
#   previous token in every sentence, one at the next.
# - Attention is not explanation: on the sentiment classifier its ranking of words agrees only
#   moderately with their leave-one-out effect (median $\tau$ 0.44), it carries no sign, the
#   weight on the `[CLS]` sink multiplies a vector 27 times shorter than the others, and
#   permuting it leaves most *positive* predictions unchanged, even though the model needs its
#   attention: without it, it predicts positive for almost every sentence, so the negative
#   predictions flip.
#
# ## Exercises
#
# The exercises for this chapter are in
# [`exercises/10_attention_in_bert.ipynb`](https://github.com/interpreting-neural-networks/course/blob/main/exercises/10_attention_in_bert.ipynb)
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/interpreting-neural-networks/course/blob/main/exercises/10_attention_in_bert.ipynb):
# compute one head's attention from its queries and keys, find a head from its statistics,
# predict what an average over heads shows, and reason about a bug, a causal model and a
# permuted sink. The book's "How to use" page says how to fill them in and hand them in.
#
# ## References
#
# ```{footbibliography}
# ```
