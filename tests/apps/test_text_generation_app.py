"""Text-generation behaviour: split by position, in-graph generation, sampling settings, bad input."""

import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq_templates import apps_loader
from seq_templates import cli
from seq_templates import config as config_module
from seq_templates import export
from seq_templates.data import readers
from seq_templates.data import synthetic
from seq_templates.preprocessing import state

app = apps_loader.load_app("text_generation")
QUICK = ["train.epochs=2", "model.units=48", "model.embedding_dim=16", "data.sequence_length=40",
         "train.batch_size=16", "train.tensorboard=false", "train.verbose=0", "model.max_length=40"]
GUTENBERG_HEADER = ("\ufeffThe Project Gutenberg eBook of A Small Play\r\n\r\nThis eBook is for the use of anyone "
                    "anywhere at no cost.\r\n\r\n*** START OF THE PROJECT GUTENBERG EBOOK A SMALL PLAY ***\r\n\r\n")
GUTENBERG_FOOTER = "\r\n*** END OF THE PROJECT GUTENBERG EBOOK A SMALL PLAY ***\r\n\r\nUpdated editions ...\r\n"


def _sets(*overrides):
    return sum((["--set", item] for item in overrides), [])


@pytest.fixture(scope="module")
def gutenberg_file(tmp_path_factory):
    """A Project Gutenberg-style book (BOM, CRLF, header and footer) around the generated play."""
    path = tmp_path_factory.mktemp("books") / "small_play.txt"
    body = synthetic.play_text(num_speeches=500, seed=5).replace("\n", "\r\n")
    path.write_bytes((GUTENBERG_HEADER + body + GUTENBERG_FOOTER).encode("utf-8"))
    return path


@pytest.fixture(scope="module")
def stateful_run(gutenberg_file, tmp_path_factory):
    """A tiny run trained with truncated BPTT on the Gutenberg-style file."""
    output_dir = tmp_path_factory.mktemp("text_generation") / "run"
    assert app.main(["--data", str(gutenberg_file), "--output-dir", str(output_dir),
                     *_sets(*QUICK, "train.stateful=true")]) == 0
    return output_dir


def _serving(run):
    config = config_module.load(app.CONFIG_SECTIONS, run / "config.yaml")
    model = keras.saving.load_model(run / "model.keras")
    preprocessing = state.load(run / "preprocessing.json")
    return config, model, preprocessing, app.build_serving(model, preprocessing, config)[1]


def test_a_gutenberg_header_and_footer_are_left_out_unless_kept(gutenberg_file, capsys):
    config = config_module.resolve(app.CONFIG_SECTIONS, [], [f"data.path={gutenberg_file}"])
    splits = app.load_raw_data(config["data"])
    body = synthetic.play_text(num_speeches=500, seed=5).strip("\n") + "\n"
    assert splits["train"] + splits["validation"] + splits["test"] == body
    assert "Project Gutenberg header (6 lines) and footer (4 lines)" in capsys.readouterr().out
    kept = config_module.resolve(app.CONFIG_SECTIONS, [], [f"data.path={gutenberg_file}",
                                                           "data.keep_boilerplate=true"])
    kept_splits = app.load_raw_data(kept["data"])
    assert kept_splits["train"].startswith("The Project Gutenberg eBook of A Small Play")
    assert kept_splits["test"].endswith("Updated editions ...\n") and "Gutenberg" not in capsys.readouterr().out


@pytest.mark.parametrize("text, body", [
    ("no markers here\nEnd of the Project Gutenberg talk\n", "no markers here\nEnd of the Project Gutenberg talk\n"),
    ("Title\n*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\nBody.\n\n"
     "End of the Project Gutenberg EBook of Title\n\n*** END OF THIS PROJECT GUTENBERG EBOOK TITLE ***\nlicense",
     "Body."),
    ("header\n  *** START OF THE PROJECT GUTENBERG EBOOK X ***\n \n\n    A poem\nline two", "    A poem\nline two"),
    ("Body only\n\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n", "Body only"),
])
def test_gutenberg_body_finds_the_markers_of_every_era(text, body):
    start, end = readers.gutenberg_body(text)
    assert text[start:end] == body


def test_split_by_position_is_contiguous_blocks(gutenberg_file):
    config = config_module.resolve(app.CONFIG_SECTIONS, [], [f"data.path={gutenberg_file}",
                                                             "data.test_fraction=0.2", "data.keep_boilerplate=true"])
    splits = app.load_raw_data(config["data"])
    text = gutenberg_file.read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
    assert splits["train"] + splits["validation"] + splits["test"] == text  # nothing shared, nothing lost
    assert splits["test"] == text[-len(splits["test"]):] and len(splits["test"]) == round(0.2 * len(text))
    assert splits["train"].startswith("The Project Gutenberg eBook") and "\r" not in splits["train"]
    capped = config_module.resolve(app.CONFIG_SECTIONS, [], [f"data.path={gutenberg_file}",
                                                             "data.test_fraction=0.2", "data.keep_boilerplate=true",
                                                             "data.max_train_samples=5000"])
    capped_splits = app.load_raw_data(capped["data"])
    assert capped_splits["train"] == splits["train"][:5000]  # the first characters of train
    assert capped_splits["test"] == splits["test"]


def test_stateful_run_on_a_text_file_is_complete(stateful_run):
    metrics = json.loads((stateful_run / "metrics.json").read_text())
    assert metrics["model"]["perplexity"] < 20 and metrics["baseline"]["name"].startswith("add_k_")
    assert metrics["model"]["bits_per_char"] == pytest.approx(metrics["model"]["loss"] / np.log(2))
    assert set(metrics["samples"]) >= {"temperature_0.0", "temperature_1.0"}
    assert "temperature_0.5" in (stateful_run / "samples.txt").read_text()
    history = json.loads((stateful_run / "history.json").read_text())
    assert len(history["val_loss"]) == 2 and history["val_loss"][1] < history["val_loss"][0]
    serving = json.loads((stateful_run / "export" / "1" / "assets.extra" / "serving.json").read_text())
    assert serving["defaults"]["generate"] == {"max_length": 40, "temperature": 0.8, "top_k": 0, "top_p": 1.0,
                                               "seed": 0}


def test_in_graph_greedy_equals_a_loop_over_the_growing_prefix(stateful_run):
    config, model, preprocessing, endpoints = _serving(stateful_run)
    prompt = "KING:\nThe "
    generated = endpoints["generate"](prompt=tf.constant([prompt]), max_length=tf.constant(15),
                                      temperature=tf.constant(0.0), top_k=tf.constant(0),
                                      top_p=tf.constant(1.0), seed=tf.constant(0, tf.int64))
    network = app.build_network(config, preprocessing["token_lookup"].vocabulary_size())
    network.set_weights(model.get_weights())
    vocabulary = preprocessing["token_lookup"].get_vocabulary()
    ids = list(app.featurize(preprocessing, config, tf.constant([prompt]))["token_ids"][0].numpy())
    for _ in range(15):
        logits = network.predict({"token_ids": np.array([ids])}, verbose=0)[0, -1]
        logits[:2] = -np.inf  # padding and [UNK] are never drawn
        ids.append(int(np.argmax(logits)))
    expected = "".join(vocabulary[index] for index in ids[-15:])
    assert generated["continuation"].numpy()[0].decode() == expected
    assert generated["text"].numpy()[0].decode() == prompt + expected


def test_unseen_and_empty_prompts_generate_and_seeds_repeat(stateful_run):
    _, _, _, endpoints = _serving(stateful_run)
    prompts = tf.constant(["\u4e2d\u6587 zq\u00e9", "", "KING:"])
    settings = {"max_length": tf.constant(25), "temperature": tf.constant(1.0), "top_k": tf.constant(0),
                "top_p": tf.constant(0.95)}
    first = endpoints["generate"](prompt=prompts, seed=tf.constant(3, tf.int64), **settings)
    again = endpoints["generate"](prompt=prompts, seed=tf.constant(3, tf.int64), **settings)
    other = endpoints["generate"](prompt=prompts, seed=tf.constant(4, tf.int64), **settings)
    texts = first["continuation"].numpy().astype(str)
    assert all(len(text) == 25 for text in texts) and first["num_generated"].numpy().tolist() == [25] * 3
    assert "[UNK]" not in "".join(texts)
    assert texts.tolist() == again["continuation"].numpy().astype(str).tolist()
    assert texts.tolist() != other["continuation"].numpy().astype(str).tolist()


@pytest.mark.parametrize("setting, value, message", [
    ("max_length", tf.constant(0), "max_length"), ("temperature", tf.constant(-0.5), "temperature"),
    ("top_p", tf.constant(0.0), "top_p"), ("top_p", tf.constant(1.5), "top_p")])
def test_the_export_rejects_sampling_settings_out_of_range(stateful_run, setting, value, message):
    version = tf.saved_model.load(str(export.find_version(stateful_run)))
    inputs = {"prompt": tf.constant(["KING"]), "max_length": tf.constant(5), "temperature": tf.constant(1.0),
              "top_k": tf.constant(0), "top_p": tf.constant(1.0), "seed": tf.constant(0, tf.int64)}
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        version.signatures["generate"](**{**inputs, setting: value})


def test_predict_takes_sampling_settings_and_the_recorded_defaults(stateful_run, cli_in_process):
    completed = cli_in_process("predict", stateful_run, "KING:", "", "--signature", "generate",
                               "--param", "temperature=0.5", "--param", "top_k=3")
    assert completed.returncode == 0, completed.stderr[-3000:]
    records = [json.loads(line) for line in completed.stdout.strip().splitlines()]
    assert [record["input"] for record in records] == ["KING:", ""]
    # max_length, top_p and seed come from assets.extra/serving.json (model.max_length=40 in QUICK).
    assert all(len(record["continuation"]) == 40 and record["num_generated"] == 40 for record in records)
    assert records[0]["text"] == "KING:" + records[0]["continuation"]
    _, _, _, endpoints = _serving(stateful_run)
    expected = endpoints["generate"](prompt=tf.constant(["KING:", ""]), max_length=tf.constant(40),
                                     temperature=tf.constant(0.5), top_k=tf.constant(3), top_p=tf.constant(1.0),
                                     seed=tf.constant(0, tf.int64))["continuation"].numpy().astype(str)
    assert [record["continuation"] for record in records] == expected.tolist()


def test_cli_evaluate_scores_the_export_as_training_did(stateful_run, tmp_path, cli_in_process):
    trained = json.loads((stateful_run / "metrics.json").read_text())
    completed = cli_in_process("evaluate", stateful_run)
    assert completed.returncode == 0, completed.stderr[-3000:]
    evaluated = json.loads((stateful_run / "metrics.json").read_text())
    assert evaluated["model"] == pytest.approx(trained["model"]) and evaluated["baseline"] == trained["baseline"]
    assert evaluated["samples"] == trained["samples"]


def test_summary_prints_the_loss_beside_the_baseline_then_every_sample(stateful_run):
    metrics = json.loads((stateful_run / "metrics.json").read_text())
    lines = app.summary(metrics).splitlines()
    assert lines[0].startswith(f"Test loss {metrics['model']['loss']:.4f} nats/token")
    assert f"{metrics['baseline']['name']} (k={metrics['baseline']['k']})" in lines[0]
    for name, sample in metrics["samples"].items():
        assert f"--- sample, {name} ---\n{sample}" in app.summary(metrics)


def test_stateful_training_resets_the_carried_state_each_epoch():
    stateful = config_module.resolve(app.CONFIG_SECTIONS, [], ["train.stateful=true"])
    windows = config_module.resolve(app.CONFIG_SECTIONS, [], [])
    callbacks = app.training_callbacks({}, stateful, {})
    assert [type(callback).__name__ for callback in callbacks] == ["ResetStatesEachEpoch"]
    assert app.training_callbacks({}, windows, {}) == []


def test_time_budget_stops_training_after_a_batch(tmp_path):
    output_dir = tmp_path / "run"
    assert app.main(["--output-dir", str(output_dir),
                     *_sets(*QUICK, "train.epochs=5", "train.max_minutes=0.0001")]) == 0
    history = json.loads((output_dir / "history.json").read_text())
    assert len(history["val_loss"]) == 1  # the first epoch was cut short, validated and recorded


def test_word_level_model_generates_words():
    config = config_module.resolve(app.CONFIG_SECTIONS, [], [*QUICK, "data.tokenization=word",
                                                             "data.sequence_length=8"])
    raw = app.load_raw_data(config["data"])
    preprocessing = app.build_preprocessing(config, raw["train"])
    assert "king" in preprocessing["token_lookup"].get_vocabulary()  # the tokenizer lower-cases
    model = app.build_model(config, preprocessing)
    features, targets = next(iter(app.make_dataset(raw["validation"], preprocessing, config)))
    assert features["token_ids"].shape[1] == 8 and targets.shape[1] == 8
    _, endpoints, _ = app.build_serving(model, preprocessing, config)
    outputs = endpoints["serving_default"](prompt=tf.constant(["The King doth", "Zyzzyva!"]))
    words = outputs["continuation"].numpy()[0].decode().split(" ")
    assert len(words) == 40 and outputs["text"].numpy()[0].decode().startswith("The King doth ")


def _bad_input_cases(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n", encoding="utf-8")
    short = tmp_path / "short.txt"
    short.write_text("To be or not to be.\n" * 3, encoding="utf-8")
    latin = tmp_path / "latin1.txt"
    latin.write_bytes(("caf\u00e9 " * 200).encode("latin-1"))
    good = str(tmp_path / "good.txt")
    pathlib.Path(good).write_text(synthetic.play_text(num_speeches=50), encoding="utf-8")
    return [
        (["--data", str(empty)], ["empty"]),
        (["--data", str(short)], ["too short", "data.sequence_length"]),
        (["--data", str(latin)], ["latin1.txt"]),
        (["--data", good, "--set", "model.max_length=0"], ["model.max_length"]),
        (["--data", good, "--set", "model.top_p=1.5"], ["model.top_p", "(0, 1]"]),
        (["--data", good, "--set", "model.top_p=0"], ["model.top_p"]),
        (["--data", good, "--set", "model.temperature=-1"], ["model.temperature"]),
        (["--data", good, "--set", "train.stateful=true", "--set", "train.batch_size=4096"], ["train.batch_size"]),
        (["--dataset", "synthetic_sentiment"], ["synthetic_sentiment", "holds sentiment data (format tsv)",
                                                "seq-templates train sentiment --dataset synthetic_sentiment"]),
    ]


def test_bad_inputs_give_one_line_exit_2_and_leave_nothing(tmp_path, capsys):
    for index, (arguments, fragments) in enumerate(_bad_input_cases(tmp_path)):
        output_dir = tmp_path / "runs" / f"bad{index}"
        capsys.readouterr()
        status = cli.main(["train", "text_generation", *arguments, "--output-dir", str(output_dir), *_sets(*QUICK)])
        error = capsys.readouterr().err.strip()
        assert status == 2, (arguments, error)
        assert len(error.splitlines()) == 1 and error.startswith("error:"), error
        for fragment in fragments:
            assert fragment in error, (fragment, error)
        assert not output_dir.exists() and not output_dir.with_name(output_dir.name + ".partial").exists()


def test_tiny_shakespeare_preset_and_split(shared_data):
    config = config_module.resolve(app.CONFIG_SECTIONS, [app.__file__.replace("text_generation_app.py", "")
                                                         + "configs/tiny_shakespeare.yaml"], [])
    splits = app.load_raw_data(config["data"])
    assert sum(len(split) for split in splits.values()) == 1115394
    assert splits["test"].endswith("Whiles thou art waking.\n") and len(splits["test"]) == round(0.05 * 1115394)
