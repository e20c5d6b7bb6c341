"""A word embedding's vocabulary (keys, counts, unseen words) and its start from a vectors file."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq_templates import errors
from seq_templates.preprocessing import embeddings

SENTENCES = [["Paris", "in", "1996"], ["paris", "IN", "2024", "Rome"]]


def test_word_keys_lower_case_and_zero_digits():
    words = tf.constant(["Paris", "1996", "B52"])
    assert embeddings.word_keys(words).numpy().tolist() == [b"paris", b"0000", b"b00"]
    assert embeddings.word_keys(words, replace_digits=False).numpy().tolist() == [b"paris", b"1996", b"b52"]


def test_word_vocabulary_counts_keys_most_frequent_first():
    assert embeddings.word_vocabulary(SENTENCES) == ["0000", "in", "paris", "rome"]
    assert embeddings.word_vocabulary(SENTENCES, min_count=2) == ["0000", "in", "paris"]
    assert embeddings.word_vocabulary(SENTENCES, replace_digits=False) == ["in", "paris", "1996", "2024", "rome"]


def test_unseen_rate_counts_tokens_whose_key_training_lacks():
    assert embeddings.unseen_rate(SENTENCES, [["PARIS", "1789", "Oslo", "in"]]) == 0.25
    assert embeddings.unseen_rate(SENTENCES, [["1789"]], replace_digits=False) == 1.0
    assert embeddings.unseen_rate(SENTENCES, []) == 0.0


def test_embed_words_starts_from_the_file_and_takes_its_width(tmp_path, capsys):
    vectors = tmp_path / "glove.txt"
    vectors.write_text("paris 0.5 0.5 0.5\nParis 9 9 9\nrome -1 0 1\n")
    vocabulary = ["", "[UNK]", "paris", "in", "rome"]
    token_ids = keras.Input((None,), dtype="int64")
    model = keras.Model(token_ids, embeddings.embed_words(token_ids, vocabulary, 8, str(vectors)))
    matrix = model.get_layer("word_embedding").get_weights()[0]
    assert matrix.shape == (5, 3)
    np.testing.assert_allclose(matrix[[2, 4]], [[0.5, 0.5, 0.5], [-1, 0, 1]])
    assert "2 of 3 training words found" in capsys.readouterr().out
    random_start = keras.Model(token_ids, embeddings.embed_words(token_ids, vocabulary, 8, name="other"))
    assert random_start.get_layer("other").get_weights()[0].shape == (5, 8)
    vectors.write_text("paris 0.5 0.5\nrome 1\n")
    with pytest.raises(errors.SeqTemplatesError, match="glove.txt:2: expected a word and 2 numbers"):
        embeddings.embed_words(token_ids, vocabulary, 8, str(vectors))
