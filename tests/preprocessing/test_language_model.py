"""Language-model data: windows, stateful stream order, state reset, tokens."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq_templates import errors
from seq_templates.preprocessing import language_model


def test_windows_are_the_corpus_shifted_by_one():
    ids = np.arange(1, 24)
    inputs, targets = language_model.window_arrays(ids, sequence_length=5, stride=5)
    assert inputs.shape == targets.shape == (4, 5)  # windows of 6 tokens starting at 0, 5, 10, 15
    np.testing.assert_array_equal(inputs[1], [6, 7, 8, 9, 10])
    np.testing.assert_array_equal(targets, inputs + 1)
    overlapping, _ = language_model.window_arrays(ids, sequence_length=5, stride=2)
    assert overlapping[:, 0].tolist() == [1, 3, 5, 7, 9, 11, 13, 15, 17]


def test_stream_chunks_continue_each_row_in_consecutive_batches():
    ids = np.arange(100, 143)  # 43 tokens, 4 streams of (42 // 4) = 10 tokens, chunks of 3 -> 3 chunks
    inputs, targets = language_model.stream_arrays(ids, sequence_length=3, batch_size=4)
    assert inputs.shape == (3, 4, 3)
    for row in range(4):
        stream = np.concatenate([inputs[chunk, row] for chunk in range(3)])
        np.testing.assert_array_equal(stream, ids[row * 10: row * 10 + 9])  # contiguous across batches
    np.testing.assert_array_equal(targets, inputs + 1)
    batches = list(language_model.stream_dataset(ids, 3, 4))
    assert len(batches) == 3
    for chunk, (features, batch_targets) in enumerate(batches):  # in order, never shuffled
        np.testing.assert_array_equal(features["token_ids"].numpy(), inputs[chunk])
        np.testing.assert_array_equal(batch_targets.numpy(), targets[chunk])


def test_too_short_corpora_are_one_line_user_errors():
    with pytest.raises(errors.SeqTemplatesError, match="too short.*data.sequence_length"):
        language_model.window_dataset(np.arange(1, 6), sequence_length=5, batch_size=2)
    with pytest.raises(errors.SeqTemplatesError, match="train.batch_size"):
        language_model.stream_dataset(np.arange(1, 30), sequence_length=5, batch_size=8)


def _stateful_and_plain_models(batch_size):
    def network(stateful):
        inputs = keras.Input(shape=(None,), batch_size=batch_size if stateful else None, dtype="int64")
        embedded = keras.layers.Embedding(20, 4, name="embedding")(inputs)
        outputs = keras.layers.GRU(6, return_sequences=True, stateful=stateful, name="gru")(embedded)
        return keras.Model(inputs, outputs)

    stateful, plain = network(True), network(False)
    plain.set_weights(stateful.get_weights())  # the carried state is not a weight
    return stateful, plain


def test_carried_state_equals_one_long_sequence_and_resets_each_epoch():
    stateful, plain = _stateful_and_plain_models(batch_size=2)
    ids = np.arange(1, 14)
    inputs, _ = language_model.stream_arrays(ids, sequence_length=3, batch_size=2)  # 2 chunks
    first = stateful(inputs[0]).numpy()
    second = stateful(inputs[1]).numpy()
    whole = plain(np.concatenate([inputs[0], inputs[1]], axis=1)).numpy()
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-5)
    # After a reset, chunk 1 is read from the zero state again.
    callback = language_model.ResetStatesEachEpoch()
    callback.set_model(stateful)
    callback.on_epoch_begin(1)
    np.testing.assert_allclose(stateful(inputs[1]).numpy(), plain(inputs[1]).numpy(), atol=1e-5)
    callback.on_test_begin()
    assert np.all(stateful.get_layer("gru").states[0].numpy() == 0)


def test_tokens_by_level():
    chars = language_model.split_tokens(tf.constant(["ab\nc", ""]), "char").to_list()
    assert chars == [[b"a", b"b", b"\n", b"c"], []]
    words = language_model.corpus_tokens("Don't stop.\nGo", "word").tolist()
    assert words == [b"do", b"n't", b"stop", b".", b"go"]
    assert language_model.corpus_tokens("h\u00e9!", "char").tolist() == [b"h", "\u00e9".encode(), b"!"]
    with pytest.raises(errors.SeqTemplatesError, match="data.tokenization"):
        language_model.split_tokens(tf.constant(["x"]), "byte")


def test_overlapping_pieces_score_every_token_after_the_first_once():
    tokens = list("abcdefghij")
    pieces = language_model.overlapping_pieces(tokens, 4, "")
    assert pieces == ["abcd", "defg", "ghij"]  # each piece starts at the last token of the one before
    assert sum(len(piece) - 1 for piece in pieces) == len(tokens) - 1
    assert language_model.overlapping_pieces(["to", "be", "or"], 2, " ") == ["to be", "be or"]
    assert language_model.overlapping_pieces(tokens[:3], 4, "") == []
