"""Tagging metrics: entity precision/recall/F1 as ``conlleval`` counts them, token accuracy, baselines.

An entity is correct when a predicted entity has exactly the gold entity's type,
start and end (conlleval's chunk match); entities are read from tags by
:func:`seq_templates.preprocessing.tag_schemes.entity_spans` with conlleval's
rules, so IOB1, IOB2 and BIOES tags (and predictions that break their scheme)
all score as conlleval scores them. ``micro`` is conlleval's overall line;
``macro`` averages the per-type F1 (seqeval's ``average="macro"``).

The serving side of a tagger is here too: :func:`decode_tags` turns a batch of
features into tag strings inside the exported graph; :func:`padded_tokens` and
:func:`predict_tags` tag pre-tokenized sentences through a ``tag_tokens`` signature,
in training (validation score, evaluation) and on an export alike;
:func:`ragged_sentences` feeds whole splits to tf.data.
"""

import collections

import tensorflow as tf

from seq_templates.layers import crf
from seq_templates.preprocessing import tag_schemes
from seq_templates.preprocessing import text

NO_ENTITY = "O"


def _spans(tag_lists):
    return {(sentence, *span) for sentence, tags in enumerate(tag_lists)
            for span in tag_schemes.entity_spans(tags)}


def _scores(correct, predicted, gold):
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": gold, "predicted": predicted,
            "correct": correct}


def token_accuracy(reference_tags, predicted_tags):
    """Share of tokens whose predicted tag equals the gold tag (conlleval's ``accuracy``)."""
    pairs = [(truth, guess) for truths, guesses in zip(reference_tags, predicted_tags)
             for truth, guess in zip(truths, list(guesses) + [None] * (len(truths) - len(guesses)))]
    return sum(truth == guess for truth, guess in pairs) / len(pairs) if pairs else 0.0


def entity_metrics(reference_tags, predicted_tags):
    """Entity-level scores of predicted tag sentences against gold ones.

    Args:
        reference_tags: Gold tags, one list per sentence.
        predicted_tags: Predicted tags, one list per sentence (aligned; a shorter
            list counts its missing tokens as wrong).

    Returns:
        ``{"micro": {...}, "macro": {...}, "per_type": {type: {...}}, "token_accuracy": float}``;
        each score dict has ``precision``, ``recall``, ``f1``, ``support`` (gold
        entities), ``predicted`` and ``correct`` counts (``macro`` only the first three).
    """
    if len(reference_tags) != len(predicted_tags):
        raise ValueError(f"Expected as many predicted sentences as gold ones ({len(reference_tags)}), "
                         f"received {len(predicted_tags)}.")
    gold, predicted = _spans(reference_tags), _spans(predicted_tags)
    correct = gold & predicted
    types = sorted({span[1] for span in gold | predicted})
    per_type = {entity_type: _scores(sum(span[1] == entity_type for span in correct),
                                     sum(span[1] == entity_type for span in predicted),
                                     sum(span[1] == entity_type for span in gold))
                for entity_type in types}
    macro = {name: (sum(scores[name] for scores in per_type.values()) / len(per_type) if per_type else 0.0)
             for name in ("precision", "recall", "f1")}
    return {"micro": _scores(len(correct), len(predicted), len(gold)), "macro": macro, "per_type": per_type,
            "token_accuracy": token_accuracy(reference_tags, predicted_tags)}


def most_frequent_tag_baseline(train_tokens, train_tags, tokens):
    """Tags each token with its most frequent training tag (unseen tokens: the most frequent tag overall).

    Returns:
        One list of tags per sentence of ``tokens``.
    """
    counts = collections.defaultdict(collections.Counter)
    for sentence_tokens, sentence_tags in zip(train_tokens, train_tags):
        for token, tag in zip(sentence_tokens, sentence_tags):
            counts[token][tag] += 1
    overall = collections.Counter(tag for tags in train_tags for tag in tags).most_common(1)[0][0]
    best = {token: counter.most_common(1)[0][0] for token, counter in counts.items()}
    return [[best.get(token, overall) for token in sentence] for sentence in tokens]


def entity_confusion(reference_tags, predicted_tags):
    """Confusion between entity types over spans, with ``O`` for "no entity with that span".

    A gold entity whose exact span is predicted with another type counts in
    (gold type, predicted type); a missed one in (gold type, ``O``); a predicted
    span with no gold entity in (``O``, predicted type).

    Returns:
        ``(matrix, names)``: rows gold, columns predicted, ``names`` the types then ``O``.
    """
    gold = {(sentence, start, end): entity_type for sentence, entity_type, start, end in _spans(reference_tags)}
    predicted = {(sentence, start, end): entity_type
                 for sentence, entity_type, start, end in _spans(predicted_tags)}
    names = sorted(set(gold.values()) | set(predicted.values())) + [NO_ENTITY]
    index = {name: position for position, name in enumerate(names)}
    matrix = [[0] * len(names) for _ in names]
    for span in set(gold) | set(predicted):
        matrix[index[gold.get(span, NO_ENTITY)]][index[predicted.get(span, NO_ENTITY)]] += 1
    return matrix, names


def ragged_sentences(lists):
    """Lists of tokens (or tags), one per sentence, as a ragged ``(sentences, None)`` string tensor
    (``text.ragged_strings``)."""
    return text.ragged_strings(lists)


def padded_tokens(token_lists):
    """The inputs of a ``tag_tokens(tokens, length)`` signature for pre-tokenized sentences.

    Returns:
        ``{"tokens": lists right-padded with "" to the longest sentence, "length": lengths}``.
    """
    longest = max((len(tokens) for tokens in token_lists), default=0)
    return {"tokens": [list(tokens) + [""] * (longest - len(tokens)) for tokens in token_lists],
            "length": [len(tokens) for tokens in token_lists]}


def predict_tags(predict, token_lists):
    """Tags pre-tokenized sentences through a ``tag_tokens`` predictor.

    Args:
        predict: ``{"tokens", "length"} -> {"tags": (sentences, longest), "length", ...}``
            (``export.batch_predictor`` of a ``tag_tokens`` signature).
        token_lists: One list of tokens per sentence.

    Returns:
        One list of tags per sentence, as long as its tokens.
    """
    return tags_from_outputs(predict(padded_tokens(token_lists)))


def tags_from_outputs(outputs):
    """``tag_tokens`` outputs (``tags`` padded with "", ``length``) -> one list of tags per sentence."""
    return [list(tags[:length]) for tags, length in zip(outputs["tags"], outputs["length"])]


def decode_tags(model, features, length, tag_names, crf_output):
    """Runs a tagger over one batch and reads each token's best tag, as strings (in the graph).

    Args:
        model: ``{feature name: dense ids} -> (batch, steps, scores)``: the packed output of a
            ``layers.crf.CRF`` or per-tag logits.
        features: ``{name: ragged (batch, None[, ...]) ids}``, one row per sentence.
        length: int32 ``(batch,)``: the sentences' lengths.
        tag_names: String ``(num_tags,)`` tensor of the tag lookup's vocabulary (id 0 is
            padding, which never wins).
        crf_output: Viterbi-decode through the CRF (``crf.decode``); false: each step's best.

    Returns:
        A string tensor ``(batch, longest sentence)``, "" past each sentence's end.
    """
    longest = tf.reduce_max(tf.concat([length, [0]], 0))
    width = tf.maximum(longest, 1)  # an empty batch still runs one step
    dense = {}
    for name, feature in features.items():
        feature = feature.to_tensor()
        dense[name] = tf.pad(feature, [[0, 0], [0, width - tf.shape(feature)[1]]]
                             + [[0, 0]] * (len(feature.shape) - 2))
    scores = model(dense, training=False) - tf.one_hot(0, model.output.shape[-1]) * 1e4
    if crf_output:
        tag_ids = crf.decode(scores, tag_names.shape[0])
    else:
        tag_ids = tf.argmax(scores, axis=-1, output_type=tf.int32)
    tags = tf.where(tf.sequence_mask(length, width), tf.gather(tag_names, tag_ids), "")
    return tags[:, :longest]
