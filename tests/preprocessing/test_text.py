"""Text vectorizers, label lookups, saved state and length bucketing."""

import numpy as np
import pytest
import tensorflow as tf

from seq_templates import errors
from seq_templates.preprocessing import bucketing
from seq_templates.preprocessing import labels
from seq_templates.preprocessing import state
from seq_templates.preprocessing import text

TEXTS = ["the plot was good", "the plot was not good", "bad", "a long long long long film indeed"]


def test_word_and_char_vectorizers_are_ragged_and_reserve_padding_and_oov():
    word = text.adapt_text_vectorizer(text.build_text_vectorizer("word", 100), TEXTS)
    ids = text.vectorize(word, tf.constant(["the plot was good", "unseen words"]))
    assert isinstance(ids, tf.RaggedTensor)
    assert ids.row_lengths().numpy().tolist() == [4, 2]
    assert ids[1].numpy().tolist() == [text.OOV_ID, text.OOV_ID]
    assert word.get_vocabulary()[:2] == ["", "[UNK]"]
    char = text.adapt_text_vectorizer(text.build_text_vectorizer("char", 100), TEXTS)
    assert text.vectorize(char, tf.constant(["bad"])).row_lengths().numpy().tolist() == [3]


def test_truncate_and_fill_never_leaves_an_empty_row():
    ragged = tf.ragged.constant([[5, 6, 7, 8], [], [9]], dtype=tf.int64)
    assert text.truncate_and_fill(ragged, max_length=2).to_list() == [[5, 6], [text.OOV_ID], [9]]


def test_bad_level_is_a_user_error():
    with pytest.raises(errors.SeqTemplatesError, match="text level"):
        text.build_text_vectorizer("sentence")


def test_labels_sort_numerically_and_unknown_labels_are_named():
    assert labels.label_vocabulary(["10", "2", "1", "2"]) == ["1", "2", "10"]
    with pytest.raises(errors.SeqTemplatesError, match="at least 2 distinct labels"):
        labels.label_vocabulary(["pos", "pos"])
    with pytest.raises(errors.SeqTemplatesError, match="test split has labels not seen in training: 'neutral'"):
        labels.check_known_labels(["pos", "neutral"], ["neg", "pos"], "test")


def test_saved_state_restores_identical_layers(tmp_path):
    vectorizer = text.adapt_text_vectorizer(text.build_text_vectorizer("word", 100), TEXTS)
    lookup = labels.build_label_lookup(["neg", "pos"])
    state.save({"text_vectorizer": vectorizer, "label_lookup": lookup}, tmp_path / "preprocessing.json")
    restored = state.load(tmp_path / "preprocessing.json")
    probe = tf.constant(["The plot, WAS good!", "zzz", ""])
    assert text.vectorize(restored["text_vectorizer"], probe).to_list() == text.vectorize(vectorizer, probe).to_list()
    assert restored["text_vectorizer"].get_vocabulary() == vectorizer.get_vocabulary()
    assert restored["label_lookup"](tf.constant(["pos", "neg"])).numpy().tolist() == [1, 0]


def test_bucketed_batches_group_similar_lengths_and_pad_right():
    lengths = [1, 2, 3, 10, 11, 12] * 20
    inputs = tf.constant([" ".join(["w"] * length) for length in lengths])
    vectorizer = text.adapt_text_vectorizer(text.build_text_vectorizer("word", 10), ["w x"])
    dataset = bucketing.sequence_dataset(
        (inputs, tf.constant(lengths)), lambda batch: ({"token_ids": text.vectorize(vectorizer, batch[0])},
                                                        batch[1]),
        batch_size=8, boundaries=[5], shuffle=True, seed=3)
    seen = 0
    for features, targets in dataset:
        ids = features["token_ids"]
        targets = targets.numpy()
        assert targets.max() < 5 or targets.min() >= 5  # one bucket per batch
        assert ids.shape[1] == targets.max()  # padded only to the longest in the batch
        assert np.all((ids.numpy() != 0).sum(axis=1) == targets)  # right padding with zeros
        seen += len(targets)
    assert seen == len(lengths)


def test_token_dropout_replaces_tokens_but_never_padding():
    ids = tf.constant([[5, 6, 7, 0, 0]] * 200, dtype=tf.int64)
    dropped = text.token_dropout(ids, 0.5, seed=1).numpy()
    assert np.all(dropped[:, 3:] == 0)
    replaced = dropped[:, :3] == text.OOV_ID
    assert 0.35 < replaced.mean() < 0.65
    assert np.all((dropped[:, :3] == ids.numpy()[:, :3]) | replaced)
    assert text.token_dropout(ids, 0.0) is ids


def test_token_dropout_applies_to_training_batches_only():
    from seq_templates import apps_loader
    from seq_templates import config as config_module

    app = apps_loader.load_app("sentiment")
    config = config_module.resolve(app.CONFIG_SECTIONS, [], ["data.token_dropout_rate=0.9"])
    raw = app.load_raw_data(config["data"])
    preprocessing = app.build_preprocessing(config, raw["train"])
    split = (raw["test"][0][:64], raw["test"][1][:64])
    training_ids = np.concatenate([features["token_ids"].numpy().ravel() for features, _ in
                                   app.make_dataset(split, preprocessing, config, shuffle=True)])
    evaluation_ids = np.concatenate([features["token_ids"].numpy().ravel() for features, _ in
                                     app.make_dataset(split, preprocessing, config)])
    assert np.mean(training_ids == text.OOV_ID) > 0.5
    assert np.mean(evaluation_ids == text.OOV_ID) < 0.05


def test_per_token_targets_come_with_a_padding_mask_as_sample_weights():
    sentences = tf.constant(["a b c", "d", "e f", "g h i j"])
    tags = tf.ragged.constant([["X", "Y", "X"], ["Y"], ["X", "X"], ["Y", "Y", "X", "Y"]])
    tag_lookup = labels.build_tag_lookup(["X", "Y"])
    assert tag_lookup.get_vocabulary() == ["", "X", "Y"]  # padding 0 is never a real tag

    def transform(batch):
        words = tf.strings.split(batch[0])
        tag_ids = tag_lookup(batch[1])
        return {"words": words}, tag_ids, tf.ones_like(tag_ids, dtype=tf.float32)

    dataset = bucketing.sequence_dataset((sentences, tags), transform, batch_size=4, boundaries=[])
    features, tag_ids, weights = next(iter(dataset))
    assert tag_ids.shape == weights.shape == (4, 4)
    np.testing.assert_array_equal(weights.numpy() > 0, tag_ids.numpy() > 0)
    np.testing.assert_array_equal(weights.numpy().sum(axis=1), [3, 1, 2, 4])
    assert set(np.unique(tag_ids.numpy()[weights.numpy() > 0])) == {1, 2}
