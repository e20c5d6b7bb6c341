"""Sentiment-specific behaviour: tf.data path equals the direct call, options, labels."""

from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq_templates import apps_loader
from seq_templates import config as config_module
from seq_templates import errors
from seq_templates.data import splits
from seq_templates.serving import limits

app = apps_loader.load_app("sentiment")


def quick_config(*overrides):
    return config_module.resolve(app.CONFIG_SECTIONS, [], ["train.verbose=0", *overrides])


@pytest.mark.parametrize("char_features", [False, True])
def test_tf_data_path_equals_direct_call_on_raw_strings(char_features):
    config = quick_config("train.bucket_boundaries=[]", "train.batch_size=16",
                          f"data.char_features={str(char_features).lower()}")
    raw = app.load_raw_data(config["data"])
    preprocessing = app.build_preprocessing(config, raw["train"])
    model = app.build_model(config, preprocessing)
    texts, labels = raw["test"][0][:16], raw["test"][1][:16]
    features, label_ids = next(iter(app.make_dataset((texts, labels), preprocessing, config)))
    assert set(features) == ({"token_ids", "char_ids"} if char_features else {"token_ids"})
    _, endpoints, _ = app.build_serving(model, preprocessing, config)
    served = endpoints["serving_default"](text=tf.constant(texts))
    np.testing.assert_allclose(tf.nn.softmax(model(features, training=False)).numpy(),
                               served["probabilities"].numpy(), atol=1e-6)
    names = preprocessing["label_lookup"].get_vocabulary()
    assert [names[i] for i in label_ids.numpy()] == labels


@pytest.mark.parametrize("overrides", [
    ["model.cell=simple_rnn", "model.pooling=last", "model.bidirectional=false"],
    ["model.cell=gru", "model.pooling=mean", "model.num_layers=2", "model.residual=true"],
    ["model.cell=lstm", "model.pooling=attention", "data.level=char"],
    ["model.pooling=mean", "data.char_features=true", "data.max_word_chars=4", "data.max_length=3"],
    ["model.pooling=mean_and_last", "data.char_features=true", "model.cell=gru"],
    ["model.pooling=max", "model.num_layers=2", "data.char_features=true"],
])
def test_model_options_build_and_answer_every_input(overrides):
    config = quick_config(*overrides, "data.max_train_samples=200")
    raw = app.load_raw_data(config["data"])
    preprocessing = app.build_preprocessing(config, raw["train"])
    model = app.build_model(config, preprocessing)
    _, endpoints, _ = app.build_serving(model, preprocessing, config)
    outputs = endpoints["serving_default"](tf.constant(["the plot was good", "", "?!", "word " * 400]))
    probabilities = outputs["probabilities"].numpy()
    assert probabilities.shape == (4, 2) and np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert set(outputs["label"].numpy().astype(str)) <= {"negative", "positive"}
    alone = endpoints["serving_default"](tf.constant(["the plot was good"]))["probabilities"].numpy()
    np.testing.assert_allclose(alone[0], probabilities[0], atol=1e-5)  # the padding of its batch is not read
    model_config = config["model"]
    recurrent_layers = [layer for layer in model.layers if layer.name.startswith("recurrent_")
                        and not layer.name.endswith(("_dropout", "_residual")) and "_state_" not in layer.name]
    assert len(recurrent_layers) == model_config.num_layers
    for layer in recurrent_layers:
        assert isinstance(layer, keras.layers.Bidirectional) == model_config.bidirectional
        cell_layer = layer.forward_layer if model_config.bidirectional else layer
        assert type(cell_layer).__name__ == {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}[
            model_config.cell]
    assert any(operation.name.startswith(model_config.pooling) for operation in model.operations) == (
        model_config.pooling != "last")


def test_multi_class_labels(tmp_path):
    rows = [("good", "positive"), ("bad", "negative"), ("okay", "neutral")] * 30
    path = tmp_path / "three.csv"
    path.write_text("text,label\n" + "\n".join(f"{text},{label}" for text, label in rows) + "\n")
    config = quick_config(f"data.path={path}", "data.dataset=null")
    raw = app.load_raw_data(config["data"])
    preprocessing = app.build_preprocessing(config, raw["train"])
    assert preprocessing["label_lookup"].get_vocabulary() == ["negative", "neutral", "positive"]
    model = app.build_model(config, preprocessing)
    assert model.output_shape == (None, 3)


def test_unknown_test_label_is_a_user_error(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("text\tlabel\n" + "good\tpos\nbad\tneg\n" * 10)
    test = tmp_path / "test.tsv"
    test.write_text("text\tlabel\nokay\tneutral\n")
    config = quick_config(f"data.path={train}", f"data.test_path={test}", "data.dataset=null")
    with pytest.raises(errors.SeqTemplatesError, match="test split has labels not seen in training"):
        app.load_raw_data(config["data"])


def test_sst2_loads_from_the_shared_folder(shared_data):
    if not (shared_data / "sst2").is_dir():
        pytest.skip("sst2 is not in SEQ_TEMPLATES_DATA")
    config = quick_config("data.dataset=sst2")
    raw = app.load_raw_data(config["data"])
    assert len(raw["test"][0]) == 872
    # A phrase corpus: the carved validation split holds whole sentences only, their phrases in neither split
    validation_texts = raw["validation"][0]
    assert 800 < len(validation_texts) < 1000 and len(raw["train"][0]) > 60000
    assert len(raw["train"][0]) + len(validation_texts) < 67349
    assert splits.rows_inside(validation_texts, splits.related_groups(validation_texts)) == set()
    assert set(raw["test"][1]) == {"negative", "positive"}


def test_char_features_line_up_with_words_and_survive_save_and_restore(tmp_path):
    from seq_templates.preprocessing import state

    config = quick_config("data.char_features=true", "data.max_word_chars=4", "data.max_length=3",
                          "data.max_train_samples=200")
    raw = app.load_raw_data(config["data"])
    preprocessing = app.build_preprocessing(config, raw["train"])
    probe = tf.constant(["The plot, was GOOD!", "", "a b c d e"])
    features = app.featurize(preprocessing, config, probe, config["data"].max_length)
    word_ids, char_ids = features["token_ids"], features["char_ids"]
    assert word_ids.row_lengths().numpy().tolist() == [3, 1, 3]
    assert char_ids.row_lengths().numpy().tolist() == [3, 1, 3]
    assert char_ids.shape[-1] == 4
    assert char_ids[1].numpy().tolist() == [[0, 0, 0, 0]]  # the filler word of an empty text
    state.save(preprocessing, tmp_path / "preprocessing.json")
    restored = state.load(tmp_path / "preprocessing.json")
    again = app.featurize(restored, config, probe, config["data"].max_length)
    assert again["char_ids"].to_list() == char_ids.to_list() and again["token_ids"].to_list() == word_ids.to_list()
    with pytest.raises(errors.SeqTemplatesError, match="char_features needs data.level=word"):
        app.build_preprocessing(quick_config("data.char_features=true", "data.level=char"), raw["train"])


@pytest.mark.parametrize("serving_max_length", [None, 256])
def test_the_export_reads_a_long_review_in_full_unless_told_to_truncate(tmp_path, serving_max_length):
    """Training batches are cut at data.max_length; serving reads all 3,000 words unless told otherwise."""
    config = quick_config("data.max_train_samples=200", "data.max_length=32",
                          f"data.serving_max_length={serving_max_length or 'null'}")
    raw = app.load_raw_data(config["data"])
    preprocessing = app.build_preprocessing(config, raw["train"])
    model = app.build_model(config, preprocessing)
    _, endpoints, assets = app.build_serving(model, preprocessing, config)
    recorded = limits.export_defaults(assets)  # what the export records for the server's bounds
    assert recorded == (None if serving_max_length is None else {
        "request_limits": {"max_input_bytes": limits.BYTES_PER_READ_TOKEN * serving_max_length},
        "reasons": {"max_input_bytes": mock.ANY}})
    prefix = " ".join(["the plot was good but the acting was dull"] * 333)  # 2,997 words
    outputs = endpoints["serving_default"](tf.constant([prefix + " awful .", prefix + " superb !"]))
    probabilities = outputs["probabilities"].numpy()
    if serving_max_length is None:  # the last words decide the difference: they were read
        assert not np.array_equal(probabilities[0], probabilities[1])
    else:
        np.testing.assert_array_equal(probabilities[0], probabilities[1])


def test_raw_and_pretokenized_text_meet_the_same_token_ids():
    config = quick_config("data.max_train_samples=200")
    raw = app.load_raw_data(config["data"])
    preprocessing = app.build_preprocessing(config, raw["train"])
    written = app.featurize(preprocessing, config, tf.constant(["It isn't good. The plot, (sadly) wasn't!"]), None)
    tokenized = app.featurize(preprocessing, config,
                              tf.constant(["it is n't good . the plot , -lrb- sadly -rrb- was n't !"]), None)
    assert written["token_ids"].to_list() == tokenized["token_ids"].to_list()
    assert len(written["token_ids"][0]) == 14  # it is n't good . the plot , ( sadly ) was n't !
