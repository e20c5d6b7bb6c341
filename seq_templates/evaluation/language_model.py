"""Language-model metrics and the n-gram baseline, on plain Python token lists.

Loss is in nats per token; perplexity is ``exp(loss)``; bits per token (per
character at char level, per word at word level) is ``loss / ln 2``.
"""

import collections
import math

import numpy as np

K_CHOICES = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)


def summary(total_negative_log_likelihood, num_tokens):
    """``{"loss", "perplexity", "bits_per_token", "num_tokens"}`` from a summed negative log-likelihood (nats)."""
    loss = total_negative_log_likelihood / max(num_tokens, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "bits_per_token": loss / math.log(2),
            "num_tokens": int(num_tokens)}


def score_summary(scores):
    """:func:`summary` of a scoring signature's answer: ``{"log_probability", "num_scored"}``
    arrays (natural log, summed per text, and the number of tokens scored in each)."""
    return summary(-float(np.sum(scores["log_probability"])), int(np.sum(scores["num_scored"])))

class AddKNgramModel:
    """An n-gram model with add-k smoothing: ``P(w | c) = (count(c, w) + k) / (count(c) + k V)``.

    The context ``c`` is the previous ``order - 1`` tokens (fewer at the start of a text).

    Args:
        order: n (1 = unigram).
        k: The added count.
        vocabulary_size: ``V``: the number of distinct tokens that can be predicted.
    """

    def __init__(self, order, k, vocabulary_size):
        self.order = order
        self.k = k
        self.vocabulary_size = vocabulary_size
        self.counts = collections.Counter()
        self.context_counts = collections.Counter()

    def fit(self, tokens):
        """Counts the n-grams of one token sequence; returns self."""
        tokens = list(tokens)
        for position, token in enumerate(tokens):
            context = tuple(tokens[max(0, position - self.order + 1):position])
            self.counts[context + (token,)] += 1
            self.context_counts[context] += 1
        return self

    def negative_log_likelihood(self, tokens, skip_first=0):
        """Summed ``-log P`` (nats) of ``tokens[skip_first:]``, each given the tokens before it."""
        tokens = list(tokens)
        total = 0.0
        smoothing = self.k * self.vocabulary_size
        for position in range(skip_first, len(tokens)):
            context = tuple(tokens[max(0, position - self.order + 1):position])
            numerator = self.counts.get(context + (tokens[position],), 0) + self.k
            total -= math.log(numerator / (self.context_counts.get(context, 0) + smoothing))
        return total


def fit_ngram_baseline(train_tokens, validation_tokens, vocabulary_size, orders=(1, 2, 3, 4, 5),
                       k_choices=K_CHOICES):
    """Fits add-k n-gram models on train; picks the order and ``k`` with the lowest validation loss.

    Args:
        train_tokens: The training split's tokens.
        validation_tokens: The validation split's tokens (used only to choose).
        vocabulary_size: Distinct tokens that can be predicted (unknown ones mapped to one token).
        orders: Values of n to try.
        k_choices: Values of k to try.

    Returns:
        ``(model, choice)``: the chosen :class:`AddKNgramModel` and
        ``{"order", "k", "validation_loss"}``.
    """
    best = None
    for order in orders:
        model = AddKNgramModel(order, k_choices[0], vocabulary_size).fit(train_tokens)
        for k in k_choices:
            model.k = k
            loss = model.negative_log_likelihood(validation_tokens) / max(len(validation_tokens), 1)
            if best is None or loss < best[0]:
                best = (loss, order, k)
    loss, order, k = best
    chosen = AddKNgramModel(order, k, vocabulary_size).fit(train_tokens)
    return chosen, {"order": order, "k": k, "validation_loss": loss}


def map_unknown(tokens_by_split, num_known, unknown="[UNK]"):
    """Maps tokens outside the training split's ``num_known`` most frequent ones to ``unknown``.

    The vocabulary a token lookup adapted on train keeps (its padding and unknown ids
    aside), so a baseline on the mapped tokens predicts the same set of tokens as the model.

    Args:
        tokens_by_split: ``{split name: list of tokens}`` with a ``train`` split.
        num_known: How many of the most frequent training tokens stay.
        unknown: What every other token becomes.

    Returns:
        ``{split name: list of tokens}``.
    """
    counts = collections.Counter(tokens_by_split["train"])
    known = {token for token, _ in counts.most_common(num_known)}
    return {name: [token if token in known else unknown for token in tokens]
            for name, tokens in tokens_by_split.items()}


def ngram_baseline(tokens_by_split, num_known):
    """A language model's add-k n-gram baseline: fitted on train, chosen on validation, tested.

    Tokens outside train's ``num_known`` most frequent ones count as one unknown token
    (:func:`map_unknown`, as for a token lookup adapted on train); the test split's first
    token is not scored (it has no history), the rest each given the tokens before it.

    Args:
        tokens_by_split: ``{"train"|"validation"|"test": list of tokens}``.
        num_known: How many of the most frequent training tokens stay themselves.

    Returns:
        ``(metrics, choice)``: :func:`summary` on the test split, and
        ``{"order", "k", "validation_loss"}`` from :func:`fit_ngram_baseline`.
    """
    known = map_unknown(tokens_by_split, num_known)
    model, choice = fit_ngram_baseline(known["train"], known["validation"],
                                       len(set(known["train"])) + 1)
    test = known["test"]
    return summary(model.negative_log_likelihood(test, skip_first=1), len(test) - 1), choice


def write_samples(samples, path):
    """Writes ``{name: generated text}`` as ``=== name ===`` sections (``samples.txt``)."""
    import pathlib

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text("".join(f"=== {name} ===\n{sample}\n\n" for name, sample in samples.items()),
                         encoding="utf-8")
    temporary.replace(path)
