"""Character features per word: the CNN and BiLSTM encoders, character ids and casing classes."""

import keras
import numpy as np
import tensorflow as tf

from seq_templates.layers import characters


def _model(max_word_chars=4, filters=5):
    char_ids = keras.Input((None, max_word_chars), dtype="int64")
    features = characters.char_word_encoder(char_ids, vocabulary_size=10, max_word_chars=max_word_chars,
                                            embedding_dim=3, filters=filters, kernel_size=2)
    return keras.Model(char_ids, features)


def test_one_vector_per_word_for_any_number_of_words():
    model = _model()
    for words in (1, 7):
        char_ids = np.random.default_rng(0).integers(0, 10, size=(2, words, 4))
        assert model.predict(char_ids, verbose=0).shape == (2, words, 5)


def test_each_word_is_encoded_from_its_own_characters_only():
    model = _model()
    sentence = np.array([[[2, 3, 0, 0], [4, 5, 6, 0], [7, 0, 0, 0]]])
    changed = sentence.copy()
    changed[0, 1] = [8, 9, 9, 8]
    before, after = model.predict(sentence, verbose=0), model.predict(changed, verbose=0)
    np.testing.assert_allclose(before[0, [0, 2]], after[0, [0, 2]], atol=1e-6)
    assert not np.allclose(before[0, 1], after[0, 1])


def test_saved_model_reloads_with_no_custom_objects(tmp_path):
    model = _model()
    char_ids = np.random.default_rng(1).integers(0, 10, size=(3, 2, 4))
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(model.predict(char_ids, verbose=0), reloaded.predict(char_ids, verbose=0),
                               atol=1e-6)


def test_casing_ids_follow_the_first_matching_pattern():
    words = tf.constant(["1996", "the", "EU", "Paris", "McDonald", "4th", "--", ""])
    expected = [1, 2, 3, 4, 5, 6, 7, 7]  # numeric, lower, upper, initial, mixed, has digit, other
    assert characters.casing_ids(words).numpy().tolist() == expected
    assert characters.NUM_CASING_IDS == len(characters.CASING_PATTERNS) + 2


def test_word_char_ids_cut_and_pad_each_word():
    lookup = keras.layers.StringLookup(vocabulary=list("abc"), mask_token="")
    ids = characters.word_char_ids(lookup, tf.constant(["abcab", "c", ""]), 3).numpy().tolist()
    assert ids == [[2, 3, 4], [4, 0, 0], [0, 0, 0]]


def test_char_rnn_word_encoder_gives_one_vector_per_word_and_zeros_for_padding():
    char_ids = keras.Input((None, 4), dtype="int64")
    model = keras.Model(char_ids, characters.char_rnn_word_encoder(char_ids, 10, 3, units=2))
    assert [layer.name for layer in model.layers[1:]] == ["char_embedding", "char_bilstm"]
    encoded = model.predict(np.array([[[2, 3, 0, 0], [0, 0, 0, 0]]]), verbose=0)
    assert encoded.shape == (1, 2, 4) and encoded[0, 0].any() and not encoded[0, 1].any()
