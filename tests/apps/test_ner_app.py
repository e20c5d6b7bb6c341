"""NER-specific behaviour: CoNLL files as found in the wild, tag schemes, serving, bad input."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq_templates import apps_loader
from seq_templates import cli
from seq_templates import config as config_module
from seq_templates import errors
from seq_templates import export
from seq_templates import lifecycle
from seq_templates.data import readers
from seq_templates.evaluation import tagging
from seq_templates.layers import crf
from tests.conftest import interrupt_training

app = apps_loader.load_app("ner")

# The original CoNLL-2003 layout: IOB1 tags, tab-separated here, an extra column, -DOCSTART-, a
# whitespace-only separator line, trailing spaces, CRLF line ends on one line and no final newline.
MESSY_IOB1 = (
    "-DOCSTART-\t-X-\t-X-\tO\tx\n"
    "\n"
    "EU\tNNP\tI-NP\tI-ORG\tx\n"
    "rejects\tVBZ\tI-VP\tO\tx\n"
    "German\tJJ\tI-NP\tI-MISC\tx\r\n"
    "call\tNN\tI-NP\tO\tx\n"
    ".\t.\tO\tO\tx  \n"
    "   \t \n"
    "Peter\tNNP\tI-NP\tI-PER\tx\n"
    "Blackburn\tNNP\tI-NP\tI-PER\tx\n"
    "\n\n"
    "-DOCSTART-\t-X-\t-X-\tO\tx\n"
    "In\tIN\tI-PP\tO\tx\n"
    "Paris\tNNP\tI-NP\tI-LOC\tx\n"
    "Berlin\tNNP\tI-NP\tB-LOC\tx\n"
    "Jordan\tNNP\tI-NP\tI-PER\tx"
)


def quick_config(*overrides):
    return config_module.resolve(app.CONFIG_SECTIONS, [], ["train.verbose=0", "train.tensorboard=false",
                                                           *overrides])


def test_reader_handles_a_messy_original_style_file(tmp_path):
    path = tmp_path / "eng.train"
    path.write_bytes(MESSY_IOB1.encode())
    tokens, tags, lines = readers.read_conll(path, token_column=0, tag_column=3, separator="\t",
                                             return_line_numbers=True)
    assert tokens == [["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"],
                      ["In", "Paris", "Berlin", "Jordan"]]
    assert tags[2] == ["O", "I-LOC", "B-LOC", "I-PER"]
    assert lines == [[3, 4, 5, 6, 7], [9, 10], [14, 15, 16, 17]]
    same = [f"data.validation_path={path}", f"data.test_path={path}"]
    config = quick_config(f"data.path={path}", "data.tag_column=3", 'data.separator="\\t"', "data.tag_scheme=iob1",
                          *same)
    assert config["data"].separator == "\t"
    splits = app.load_raw_data(config["data"])
    assert splits["train"][1] == [["B-ORG", "O", "B-MISC", "O", "O"], ["B-PER", "I-PER"],
                                  ["O", "B-LOC", "B-LOC", "B-PER"]]
    bioes = app.load_raw_data(quick_config(*[f"data.{key}={value}" for key, value in (
        ("path", path), ("tag_column", 3), ("tag_scheme", "iob1"), ("output_scheme", "bioes"))], *same)["data"])
    assert bioes["train"][1][1] == ["B-PER", "E-PER"]


def _assert_one_line_error(capsys, arguments, *fragments):
    assert cli.main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("error: "), error
    for fragment in fragments:
        assert fragment in error, error


def test_bad_input_is_one_line_exit_2_and_leaves_nothing(tmp_path, capsys):
    good = "EU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn I-PER\n"
    cases = [
        ("ragged.txt", good + "\nBonn B-LOC extra\n", [], ["ragged.txt:7", "expected 2 columns"]),
        ("broken.txt", good + "\nthe O\nU.N. I-ORG\n", [], ["broken.txt:8", "'I-ORG' follows 'O'",
                                                         "data.repair_tags=true"]),
        ("iob1.txt", good, ["--set", "data.tag_scheme=iob1"], ["iob1.txt:1", "IOB1 uses B- only"]),
        ("scheme.txt", good, ["--set", "data.tag_scheme=iob3"], ["data.tag_scheme", "iob2"]),
        ("empty.txt", "", [], ["empty.txt", "no sentences found"]),
        ("blank.txt", "-DOCSTART- O\n\n  \n\t\n", [], ["blank.txt", "no sentences found"]),
        ("bad_tag.txt", good + "\nBonn LOC\n", [], ["bad_tag.txt:7", "'LOC' is not a IOB2 tag"]),
        ("no_token.tsv", "EU\tB-ORG\n\tO\n", ["--set", 'data.separator="\\t"'],
         ["no_token.tsv:2", "the token column is empty"]),
    ]
    for index, (name, content, extra, fragments) in enumerate(cases):
        (tmp_path / name).write_text(content)
        output_dir = tmp_path / f"run{index}"
        _assert_one_line_error(capsys, ["train", "ner", "--data", str(tmp_path / name), "--output-dir",
                                        str(output_dir), *extra], *fragments)
        assert not output_dir.exists() and not output_dir.with_name(output_dir.name + ".partial").exists()


def test_repair_tags_reads_a_broken_tag_as_conlleval_does(tmp_path):
    path = tmp_path / "broken.txt"
    path.write_text("the O\nU.N. I-ORG\nsaid O\n")
    config = quick_config(f"data.path={path}", "data.repair_tags=true", f"data.validation_path={path}",
                          f"data.test_path={path}")
    assert app.load_raw_data(config["data"])["train"][1] == [["O", "B-ORG", "O"]]


@pytest.fixture(scope="module")
def small_model():
    config = quick_config("data.max_train_samples=300", "model.units=16", "model.embedding_dim=16")
    raw = app.load_raw_data(config["data"])
    preprocessing = app.build_preprocessing(config, raw["train"])
    model = app.build_model(config, preprocessing)
    return config, raw, preprocessing, model


def test_tf_data_path_equals_the_serving_path(small_model):
    config, raw, preprocessing, model = small_model
    tokens, tags = raw["test"][0][:8], raw["test"][1][:8]
    config_no_shuffle = {**config, "train": config_module.resolve(app.CONFIG_SECTIONS, [], [
        "train.bucket_boundaries=[]", "train.batch_size=8"])["train"]}
    features, tag_ids, weights = next(iter(app.make_dataset((tokens, tags), preprocessing, config_no_shuffle)))
    assert set(features) == {"token_ids", "casing_ids", "char_ids"}
    lengths = [len(sentence) for sentence in tokens]
    np.testing.assert_array_equal(weights.numpy().sum(axis=1), lengths)
    names = preprocessing["tag_lookup"].get_vocabulary()
    assert [[names[i] for i in row[:length]] for row, length in zip(tag_ids.numpy(), lengths)] == tags
    _, endpoints, assets = app.build_serving(model, preprocessing, config)
    assert assets == {"tags.txt": "\n".join(preprocessing["tag_lookup"].get_vocabulary()[1:]) + "\n"}
    served = endpoints["tag_tokens"](**{name: tf.constant(value) for name, value in
                                        tagging.padded_tokens(tokens).items()})
    num_tags = len(names)
    direct = crf.decode(model(features, training=False) - tf.one_hot(0, model.output.shape[-1]) * 1e4, num_tags)
    served_tags = served["tags"].numpy().astype(str)
    for row, length in enumerate(lengths):
        assert list(served_tags[row, :length]) == [names[i] for i in direct.numpy()[row, :length]]


def test_serving_splits_raw_text_ptb_style_and_never_truncates(small_model):
    config, raw, preprocessing, model = small_model
    _, endpoints, _ = app.build_serving(model, preprocessing, config)
    longest = max(len(tokens) for tokens in raw["train"][0])
    long_sentence = " ".join(["Paris"] * (longest * 3))
    outputs = endpoints["serving_default"](tf.constant(["The U.S. don't like it.", "", long_sentence]))
    assert outputs["length"].numpy().tolist() == [7, 0, longest * 3]
    tokens = outputs["tokens"].numpy().astype(str)
    assert tokens[0, :7].tolist() == ["The", "U.S.", "do", "n't", "like", "it", "."]
    tags = outputs["tags"].numpy().astype(str)
    assert tags.shape == (3, longest * 3) and (tags[2] != "").all() and (tags[1] == "").all()
    pre_tokenized = endpoints["tag_tokens"](tokens=tf.constant([["Peter", "Blackburn", ""], ["", "", ""]]),
                                            length=tf.constant([2, 0]))
    assert pre_tokenized["tags"].shape == (2, 2) and pre_tokenized["length"].numpy().tolist() == [2, 0]


@pytest.mark.parametrize("overrides", [
    ["model.output=softmax", "model.cell=gru", "model.num_layers=2"],
    ["model.char_features=false", "model.casing_features=false", "model.bidirectional=false",
     "data.output_scheme=bioes"],
    ["model.char_encoder=bilstm", "model.char_units=6"],
])
def test_model_options_build_serve_and_reload(overrides, tmp_path):
    config = quick_config("data.max_train_samples=100", "model.units=8", *overrides)
    raw = app.load_raw_data(config["data"])
    preprocessing = app.build_preprocessing(config, raw["train"])
    model = app.build_model(config, preprocessing)
    _, endpoints, _ = app.build_serving(model, preprocessing, config)
    outputs = endpoints["serving_default"](tf.constant(["Anna Smith flew to Paris .", ""]))
    assert outputs["tags"].shape == (2, 6)
    assert set(outputs["tags"].numpy().astype(str)[0]) <= set(preprocessing["tag_lookup"].get_vocabulary()[1:])
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    features = {name: value.to_tensor() for name, value in app.featurize(
        preprocessing, config, tf.ragged.constant([["Anna", "Smith"], ["in", "Paris", "today"]])).items()}
    np.testing.assert_allclose(reloaded(features).numpy(), model(features).numpy(), atol=1e-6)


def test_pretrained_embeddings_initialise_known_words(tmp_path, capsys):
    vectors = tmp_path / "glove.txt"
    vectors.write_text("paris 0.5 0.5 0.5\nParis 9 9 9\nsmith -1 0 1\nunrelated 1 1 1\n")
    config = quick_config("data.max_train_samples=100", "model.units=8", f"data.embeddings_path={vectors}")
    raw = app.load_raw_data(config["data"])
    preprocessing = app.build_preprocessing(config, raw["train"])
    model = app.build_model(config, preprocessing)
    vocabulary = preprocessing["word_lookup"].get_vocabulary()
    matrix = model.get_layer("word_embedding").get_weights()[0]
    assert matrix.shape[1] == 3
    np.testing.assert_allclose(matrix[vocabulary.index("paris")], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(matrix[vocabulary.index("smith")], [-1, 0, 1])
    assert "2 of" in capsys.readouterr().out
    vectors.write_text("paris 0.5 0.5 0.5\nsmith -1 0\n")
    with pytest.raises(errors.SeqTemplatesError, match="glove.txt:2: expected a word and 3 numbers"):
        app.build_model(config, preprocessing)


def test_train_on_a_messy_file_and_predict_entities(tmp_path, capsys):
    path = tmp_path / "eng.train"
    path.write_text("\n\n".join([MESSY_IOB1] * 20))
    run = tmp_path / "run"
    assert cli.main(["train", "ner", "--data", str(path), "--output-dir", str(run), "--set", "data.tag_column=3",
                     "--set", "data.tag_scheme=iob1", "--set", "train.epochs=1", "--set", "model.units=8",
                     "--set", "train.verbose=0", "--set", "train.tensorboard=false"]) == 0
    capsys.readouterr()
    assert cli.main(["predict", str(run), "EU rejects German call to boycott British lamb ."]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["tokens"][:3] == ["EU", "rejects", "German"] and record["length"] == 9
    assert all(set(entity) == {"text", "type", "start", "end"} for entity in record["entities"])
    assert (run / "plots" / "entity_confusion.png").is_file()
    # Both signatures answer the same in a process without seq_templates (TF only).
    script = (
        "import json, sys\n"
        "import tensorflow as tf\n"
        "loaded = tf.saved_model.load(sys.argv[1])\n"
        "raw = loaded.signatures['serving_default'](text=tf.constant(['EU rejects German call .', '']))\n"
        "pre = loaded.signatures['tag_tokens'](tokens=tf.constant([['EU', 'rejects', 'German', 'call', '.'], "
        "['', '', '', '', '']]), length=tf.constant([5, 0], tf.int32))\n"
        "assert 'seq_templates' not in sys.modules\n"
        "print(json.dumps([[tag.decode() for tag in row] for name in ('tags',) for out in (raw, pre) "
        "for row in out[name].numpy().tolist()]))\n")
    completed = subprocess.run([sys.executable, "-c", script, str(run / "export" / "1")], capture_output=True,
                               text=True, timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert completed.returncode == 0, completed.stderr[-2000:]
    raw_tags, raw_empty, pre_tags, pre_empty = json.loads(completed.stdout.strip().splitlines()[-1])
    assert raw_tags == pre_tags and len(raw_tags) == 5 and raw_empty == pre_empty == [""] * 5
    assert len(json.loads((run / "history.json").read_text())["val_entity_f1"]) == 1  # train.monitor
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"micro", "macro", "per_type", "token_accuracy"} <= set(metrics["model"])


def test_describe_prediction_gives_spans():
    record = {"input": "EU rejects German call", "tokens": ["EU", "rejects", "German", "call"],
              "tags": ["B-ORG", "O", "B-MISC", "O"], "length": 4}
    described = app.describe_prediction(record, None)
    assert described["entities"] == [{"text": "EU", "type": "ORG", "start": 0, "end": 1},
                                     {"text": "German", "type": "MISC", "start": 2, "end": 3}]


def _validation_f1(signatures_path, raw):
    """Entity F1 of an export (or ``export/N``) on the validation split, through ``tag_tokens``."""
    predict = export.batch_predictors(export.load_signatures(signatures_path))["tag_tokens"]
    tokens, tags = raw["validation"]
    return tagging.entity_metrics(tags, tagging.predict_tags(predict, tokens))["micro"]["f1"]


def _raw_data(run):
    return app.load_raw_data(config_module.load(app.CONFIG_SECTIONS, run / "config.yaml")["data"])


def test_resume_ends_on_the_best_validation_f1_epoch_from_before_the_interruption(tmp_path, cli_in_process):
    """The best-F1 weights live in the shared checkpoint: a resume that trains no more epochs still ends on them."""
    run, partial = tmp_path / "run", tmp_path / "run.partial"
    returncode, stderr = interrupt_training(
        ["train", "ner", "--output-dir", run, "--set", "train.epochs=40", "--set", "train.early_stopping_patience=0",
         "--set", "model.units=32", "--set", "data.max_train_samples=1500", "--set", "train.tensorboard=false",
         "--set", "train.verbose=0"], partial)
    assert returncode == 130, stderr[-2000:]
    state = json.loads((partial / "checkpoints" / "state.json").read_text())
    scores, early_stopping = state["history"]["val_entity_f1"], state["early_stopping"]
    assert early_stopping["best"] == max(scores) > 0 and scores[early_stopping["best_epoch"]] == max(scores)
    assert (partial / "checkpoints" / "best_weights.npz").is_file()

    resumed = cli_in_process("train", "ner", "--output-dir", run, "--resume", "--set",
                             f"train.epochs={state['epochs_completed']}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not (run / "checkpoints").exists()
    assert json.loads((run / "history.json").read_text())["val_entity_f1"] == scores
    assert _validation_f1(run / "export" / "1", _raw_data(run)) == early_stopping["best"]


# Settings under which, with the fixed seed and op determinism, the best validation entity F1 is
# neither the last epoch's nor the lowest validation loss's (checked below, so the case stays built).
def test_model_keras_and_the_export_hold_the_best_f1_epoch_not_the_last_nor_the_loss_best(trained_app_runs):
    """The contract's quick NER run is the case: entity F1 on the offline data peaks in an early epoch
    (later epochs tie it, and a tie is no improvement), while the validation loss keeps falling to the
    last epoch. The kept weights must be the best-F1 epoch's: their validation loss is that epoch's."""
    _, run = trained_app_runs("ner")
    history = json.loads((run / "history.json").read_text())
    scores, losses = history["val_entity_f1"], history["val_loss"]
    best = scores.index(max(scores))
    assert best != len(scores) - 1 and best != losses.index(min(losses)), (scores, losses)
    assert abs(losses[best] - min(losses)) > 1e-3, losses  # the two epochs are told apart by their loss

    trained_run = lifecycle.load_trained(app, run)
    raw = app.load_raw_data(trained_run.config["data"])
    validation = app.make_dataset(raw["validation"], trained_run.preprocessing, trained_run.config)
    kept = trained_run.model.evaluate(validation, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(kept, losses[best], rtol=1e-4)
    assert _validation_f1(run / "export" / "1", raw) == max(scores)  # export/2: the contract's re-export test
