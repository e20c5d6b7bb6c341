"""The attention decoder: serving's one-step decoder reads the training model's own layers, so
decoding step by step gives the teacher-forced logits; masked attention puts no weight on padding."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq_templates.layers import attention_decoder
from seq_templates.layers import recurrent

VOCABULARY = ["", "[UNK]", "[start]", "[end]", "a", "b", "c"]
SOURCE_SIZE = 9


def tiny_model(attention, cell="gru", bidirectional=True):
    """A teacher-forcing encoder-decoder named as ``attention_decoder`` expects (random weights)."""
    keras.utils.set_random_seed(3)
    source_ids = keras.Input(shape=(None,), dtype="int64", name="source_ids")
    target_input_ids = keras.Input(shape=(None,), dtype="int64", name="target_input_ids")
    source = keras.layers.Embedding(SOURCE_SIZE, 6, mask_zero=True)(source_ids)
    encoder_outputs, states = recurrent.recurrent_stack(source, cell, 5, 1, bidirectional, 0.0,
                                                        return_sequences=True, return_state=True,
                                                        name="encoder")
    states = [keras.layers.Identity(name=f"initial_state_{index}")(state) for index, state in enumerate(states)]
    width = 10 if bidirectional else 5
    layers, encoder_outputs, keys = attention_decoder.head_layers(encoder_outputs, attention, len(VOCABULARY),
                                                                  width, 4, 7, 0.0)
    target = keras.layers.Embedding(len(VOCABULARY), 6, mask_zero=True, name="target_embedding")(target_input_ids)
    decoder = recurrent.recurrent_layer(cell, width, return_sequences=True, return_state=True, name="decoder")
    logits = attention_decoder.head(layers, decoder(target, initial_state=states)[0], encoder_outputs, keys)
    return keras.Model({"source_ids": source_ids, "target_input_ids": target_input_ids}, logits)


@pytest.mark.parametrize("attention, cell, bidirectional", [
    ("bahdanau", "gru", True), ("luong", "lstm", True), ("none", "gru", False), ("bahdanau", "lstm", False)])
def test_step_by_step_logits_are_the_teacher_forced_logits(attention, cell, bidirectional):
    model = tiny_model(attention, cell, bidirectional)
    network = attention_decoder.SteppedDecoder(model, VOCABULARY, "[start]", "[end]")
    assert network.attention == (attention != "none")
    source_ids = tf.constant([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]], tf.int64)
    target_ids = tf.constant([[2, 4, 5, 6], [2, 6, 6, 4]], tf.int64)  # [start] then three tokens
    expected = model({"source_ids": source_ids, "target_input_ids": target_ids}, training=False).numpy()
    state = network.encode(source_ids)
    for position in range(target_ids.shape[1]):
        logits, state = network.step(tf.cast(target_ids[:, position], tf.int32), state)
        allowed = expected[:, position].copy()
        allowed[:, [0, 1, 2]] = -1e9  # padding, [UNK] and [start] are never emitted
        np.testing.assert_allclose(logits.numpy(), allowed, atol=1e-5)


def test_decode_text_and_attention_weights():
    model = tiny_model("bahdanau")
    network = attention_decoder.SteppedDecoder(model, VOCABULARY, "[start]", "[end]")
    source_ids = tf.constant([[1, 2, 0, 0], [4, 5, 6, 7]], tf.int64)
    token_ids = network.decode(source_ids, 3, 6, 0.6)
    assert token_ids.shape[0] == 2 and token_ids.shape[1] <= 6
    assert not np.isin(token_ids.numpy(), [1, 2]).any()
    text, lengths = network.text(token_ids)
    expected = [" ".join(VOCABULARY[token] for token in row[:length]) for row, length in
                zip(token_ids.numpy(), lengths.numpy())]
    assert [value.decode() for value in text.numpy()] == expected
    assert network.tokens(token_ids).numpy()[0, 0].decode() == VOCABULARY[token_ids.numpy()[0, 0]]
    weights = network.attention_weights(source_ids, token_ids).numpy()
    assert weights.shape == (2, token_ids.shape[1], 4)
    np.testing.assert_allclose(weights.sum(axis=2), 1.0, atol=1e-5)
    assert np.abs(weights[0, :, 2:]).max() < 1e-6  # none on the source padding
    # Row t is the step that chose output t: the teacher-forced weights of the same ids.
    inputs = tf.concat([tf.fill([2, 1], 2), token_ids[:, :-1]], axis=1)
    scored = network.encode(source_ids)
    outputs = network.decoder(network.embedding(tf.cast(inputs, tf.int64)), initial_state=scored["decoder_states"])[0]
    _, teacher_forced = attention_decoder.head(network.layers, outputs, scored["outputs"], scored["keys"],
                                               scored["source_mask"], return_attention_scores=True)
    np.testing.assert_allclose(weights, teacher_forced.numpy(), atol=1e-6)
