"""Tagging metrics equal conlleval's on a hand-checked fixture and seqeval's on random data; tagging helpers."""

import random

import keras
import numpy as np
import pytest
import tensorflow as tf
from seqeval import metrics as seqeval_metrics

from seq_templates.evaluation import tagging
from seq_templates.layers import crf

# conlleval input: token, gold tag, guessed tag; blank lines between sentences.
CONLLEVAL_INPUT = """\
EU B-ORG B-ORG
rejects O O
German B-MISC B-MISC
call O O
to O O
boycott O O
British B-MISC B-LOC
lamb O O
. O O

Peter B-PER B-PER
Blackburn I-PER O
visited O O
New B-LOC B-LOC
York I-LOC I-LOC

BRUSSELS B-LOC B-LOC
1996-08-22 O O

The O O
United B-ORG I-ORG
Nations I-ORG I-ORG
said O B-PER
"""
# What `perl conlleval < CONLLEVAL_INPUT` prints (worked out by hand from its chunk rules: the guessed
# "I-ORG" after "O" opens an ORG entity; "Peter" alone is not "Peter Blackburn").
CONLLEVAL_OUTPUT = """\
processed 20 tokens with 7 phrases; found: 8 phrases; correct: 5.
accuracy:  80.00%; precision:  62.50%; recall:  71.43%; FB1:  66.67
              LOC: precision:  66.67%; recall: 100.00%; FB1:  80.00  3
             MISC: precision: 100.00%; recall:  50.00%; FB1:  66.67  1
              ORG: precision: 100.00%; recall: 100.00%; FB1: 100.00  2
              PER: precision:   0.00%; recall:   0.00%; FB1:   0.00  2
"""


def _read_fixture():
    gold, guessed = [[]], [[]]
    for line in CONLLEVAL_INPUT.splitlines():
        if not line.strip():
            gold.append([])
            guessed.append([])
            continue
        _, truth, guess = line.split()
        gold[-1].append(truth)
        guessed[-1].append(guess)
    return gold, guessed


def _conlleval_report(gold, guessed):
    """Formats :func:`tagging.entity_metrics` the way conlleval prints its report."""
    scores = tagging.entity_metrics(gold, guessed)
    micro = scores["micro"]
    lines = [f"processed {sum(map(len, gold))} tokens with {micro['support']} phrases; found: "
             f"{micro['predicted']} phrases; correct: {micro['correct']}.",
             f"accuracy: {100 * scores['token_accuracy']:6.2f}%; precision: {100 * micro['precision']:6.2f}%; "
             f"recall: {100 * micro['recall']:6.2f}%; FB1: {100 * micro['f1']:6.2f}"]
    for name, values in scores["per_type"].items():
        lines.append(f"{name:>17}: precision: {100 * values['precision']:6.2f}%; recall: "
                     f"{100 * values['recall']:6.2f}%; FB1: {100 * values['f1']:6.2f}  {values['predicted']}")
    return "\n".join(lines) + "\n"


def test_report_equals_conlleval_output_on_the_fixture():
    gold, guessed = _read_fixture()
    assert _conlleval_report(gold, guessed) == CONLLEVAL_OUTPUT
    macro = tagging.entity_metrics(gold, guessed)["macro"]
    assert macro["f1"] == pytest.approx((0.8 + 2 / 3 + 1.0 + 0.0) / 4)


def test_scores_equal_seqeval_default_mode_on_random_sequences():
    generator = random.Random(11)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG", "B-MISC"]
    for _ in range(50):
        gold = [[generator.choice(tags) for _ in range(generator.randint(1, 15))] for _ in range(20)]
        guessed = [[tag if generator.random() < 0.7 else generator.choice(tags) for tag in sentence]
                   for sentence in gold]
        scores = tagging.entity_metrics(gold, guessed)
        assert scores["micro"]["f1"] == pytest.approx(seqeval_metrics.f1_score(gold, guessed))
        assert scores["micro"]["precision"] == pytest.approx(seqeval_metrics.precision_score(gold, guessed))
        assert scores["micro"]["recall"] == pytest.approx(seqeval_metrics.recall_score(gold, guessed))
        assert scores["macro"]["f1"] == pytest.approx(seqeval_metrics.f1_score(gold, guessed, average="macro",
                                                                               zero_division=0))
        assert scores["token_accuracy"] == pytest.approx(seqeval_metrics.accuracy_score(gold, guessed))


def test_most_frequent_tag_baseline():
    train_tokens = [["Paris", "is", "big"], ["Paris", "Hilton", "smiled"], ["in", "Paris"]]
    train_tags = [["B-LOC", "O", "O"], ["B-PER", "I-PER", "O"], ["O", "B-LOC"]]
    assert tagging.most_frequent_tag_baseline(train_tokens, train_tags, [["Paris", "Hilton", "Rome"]]) == [
        ["B-LOC", "I-PER", "O"]]


def test_entity_confusion_counts_types_misses_and_spurious_spans():
    gold, guessed = _read_fixture()
    matrix, names = tagging.entity_confusion(gold, guessed)
    assert names == ["LOC", "MISC", "ORG", "PER", "O"]
    cell = {(row, column): matrix[names.index(row)][names.index(column)] for row in names for column in names}
    assert cell["MISC", "LOC"] == 1  # "British"
    assert cell["LOC", "LOC"] == 2 and cell["ORG", "ORG"] == 2 and cell["MISC", "MISC"] == 1
    assert cell["PER", "O"] == 1 and cell["O", "PER"] == 2  # "Peter Blackburn" missed; "Peter", "said" spurious
    assert sum(map(sum, matrix)) == 9


def test_mismatched_sentence_counts_are_rejected():
    with pytest.raises(ValueError, match="as many predicted sentences"):
        tagging.entity_metrics([["O"]], [])


def test_tag_tokens_inputs_and_predictions_round_trip():
    sentences = [["EU", "rejects"], [], ["Peter"]]
    assert tagging.padded_tokens(sentences) == {"tokens": [["EU", "rejects"], ["", ""], ["Peter", ""]],
                                                "length": [2, 0, 1]}
    ragged = tagging.ragged_sentences(sentences)
    assert ragged.to_list() == [[b"EU", b"rejects"], [], [b"Peter"]]

    def predict(inputs):  # a tag_tokens predictor that tags every token B-ORG, padded with ""
        tags = [["B-ORG" if token else "" for token in tokens] for tokens in inputs["tokens"]]
        return {"tags": np.array(tags, dtype=object), "length": np.array(inputs["length"])}

    assert tagging.predict_tags(predict, sentences) == [["B-ORG", "B-ORG"], [], ["B-ORG"]]


@pytest.mark.parametrize("crf_output", [False, True])
def test_decode_tags_never_predicts_padding_and_blanks_past_the_end(crf_output):
    num_tags = 3  # "", "B-X", "O"
    token_ids = keras.Input((None,), dtype="int64", name="token_ids")
    embedded = keras.layers.Embedding(5, num_tags, mask_zero=True,
                                      embeddings_initializer=keras.initializers.Constant(
                                          np.array([[0, 0, 0], [9, 1, 0], [9, 0, 1], [0, 0, 0], [0, 0, 0]])))(token_ids)
    model = keras.Model({"token_ids": token_ids}, crf.CRF(num_tags)(embedded) if crf_output else embedded)
    features = {"token_ids": tf.ragged.constant([[1, 2, 1], [2], []], dtype=tf.int64)}
    tags = tagging.decode_tags(model, features, tf.constant([3, 1, 0]), tf.constant(["", "B-X", "O"]), crf_output)
    assert tags.numpy().astype(str).tolist() == [["B-X", "O", "B-X"], ["O", "", ""], ["", "", ""]]
    empty = tagging.decode_tags(model, {"token_ids": tf.ragged.constant([[]], dtype=tf.int64)}, tf.constant([0]),
                                tf.constant(["", "B-X", "O"]), crf_output)
    assert empty.shape == (1, 0)
