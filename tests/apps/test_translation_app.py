"""Translation-specific behaviour: data handling, teacher forcing, shared layers, serving robustness,
evaluation through the predictors, CLI."""

import datetime
import json
import random
import shutil

import numpy as np
import pytest
import tensorflow as tf

from seq_templates import apps_loader
from seq_templates import cli
from seq_templates import config as config_module
from seq_templates import errors
from seq_templates.data import readers
from seq_templates.data import synthetic
from seq_templates.layers import beam_search

app = apps_loader.load_app("translation")

WORD_PAIRS = [("el gato come", "the cat eats"), ("el perro come", "the dog eats"),
              ("¿dónde está el gato?", "where is the cat?"), ("no sé", "I don't know"),
              ("la biblioteca está cerca", "the library is near"), ("tom come", "Tom eats")] * 20


def quick_config(*overrides):
    return config_module.resolve(app.CONFIG_SECTIONS, [], ["train.verbose=0", "train.tensorboard=false",
                                                           *overrides])


def write_pairs(path, pairs, extra_column=False):
    path.write_text("".join(f"{source}\t{target}" + ("\tCC-BY 2.0 (France) Attribution: tatoeba.org #1"
                                                      if extra_column else "") + "\n"
                            for source, target in pairs), encoding="utf-8")
    return path


def word_setup(tmp_path, *overrides):
    path = write_pairs(tmp_path / "pairs.tsv", WORD_PAIRS, extra_column=True)
    # The same file for every split: the repeated pairs would otherwise go to one split each.
    config = quick_config(f"data.path={path}", f"data.validation_path={path}", f"data.test_path={path}",
                          "data.dataset=null", "data.level=word", "data.deduplicate=false",
                          "data.source_standardize=tokenize_and_lower", "data.target_standardize=tokenize",
                          "model.units=16", "model.embedding_dim=8", "model.attention_units=8", *overrides)
    raw = app.load_raw_data(config["data"])
    preprocessing = app.build_preprocessing(config, raw["train"])
    return config, raw, preprocessing, app.build_model(config, preprocessing)


def test_dates_are_seeded_and_correct():
    first = synthetic.date_splits(num_train=300, num_validation=0, num_test=0, seed=5)["train"]
    assert first == synthetic.date_splits(num_train=300, num_validation=0, num_test=0, seed=5)["train"]
    generator = random.Random(0)
    for _ in range(500):
        text, iso = synthetic.date_example(generator)
        date = datetime.date.fromisoformat(iso)
        assert str(date.year) in text
        assert str(date.day) in text or text.lower().count(f"{date.day:02d}")
    texts = {synthetic.date_example(generator)[0] for _ in range(2000)}
    assert len({text.lower().replace(" ", "")[:1].isdigit() for text in texts}) == 2  # words and digits first
    assert synthetic.ordinal(1) == "1st" and synthetic.ordinal(12) == "12th" and synthetic.ordinal(23) == "23rd"


def test_pairs_are_length_filtered_deduplicated_and_split_without_overlap(tmp_path):
    pairs = [(f"uno dos {index}", f"one two {index}") for index in range(200)] + [("a b c d e f", "x")] * 5
    path = write_pairs(tmp_path / "pairs.tsv", pairs + pairs[:50], extra_column=True)  # 50 repeats
    config = quick_config(f"data.path={path}", "data.dataset=null", "data.max_words=5")
    raw = app.load_raw_data(config["data"])
    everything = [pair for split in raw.values() for pair in zip(*split)]
    assert len(everything) == 200 == len(set(everything))
    assert len(raw["test"][0]) == 20 and len(raw["validation"][0]) == 18
    reversed_config = quick_config(f"data.path={path}", "data.dataset=null", "data.reverse_direction=true")
    assert app.load_raw_data(reversed_config["data"])["train"][0][0].startswith("one two")
    assert readers.clean_pairs(["a", "a", "b c"], ["x", "x", "y"], max_words=1) == (["a"], ["x"])
    too_long = quick_config(f"data.path={path}", "data.dataset=null", "data.max_words=1")
    with pytest.raises(errors.SeqTemplatesError, match=r"No training pairs of at most 1 words are left"):
        app.load_raw_data(too_long["data"])  # not "The test split is empty"


def test_a_file_of_one_repeated_pair_says_cleaning_left_one_pair(tmp_path, cli_in_process):
    path = write_pairs(tmp_path / "repeats.tsv", [("hola amigo", "hello friend")] * 50)
    message = ("Only 1 of the 50 training rows read is left after cleaning (pairs over data.max_words=15 words "
               "dropped, and repeats with data.deduplicate), too few to carve the other splits from: the test "
               "split is empty; give data.test_path or a larger data.test_fraction.")
    with pytest.raises(errors.SeqTemplatesError) as raised:
        app.load_raw_data(quick_config(f"data.path={path}", "data.dataset=null")["data"])
    assert str(raised.value) == message  # not only "The test split is empty"
    output_dir = tmp_path / "run"
    completed = cli_in_process("train", "translation", "--data", path, "--output-dir", output_dir)
    assert completed.returncode == 2 and completed.stderr.strip().splitlines() == [f"error: {message}"]
    assert not output_dir.exists() and not output_dir.with_name("run.partial").exists()
    # Too few pairs to begin with, nothing cleaned away: the split's own message is the whole story.
    few = write_pairs(tmp_path / "few.tsv", [(f"hola {index}", f"hello {index}") for index in range(3)])
    with pytest.raises(errors.SeqTemplatesError, match=r"^The test split is empty; give data.test_path"):
        app.load_raw_data(quick_config(f"data.path={few}", "data.dataset=null")["data"])


@pytest.mark.parametrize("content, message", [
    (b"hola\thello\nadios goodbye\n", r"pairs\.tsv:2: expected at least 2 tab-separated fields"),
    (b"hola\thello\n\t goodbye\n", r"pairs\.tsv:2:1: empty source"),
    (b"hola\thello\nadi\xf3s\tgoodbye\n", r"pairs\.tsv:2:4: byte 0xf3 is not valid utf-8"),
])
def test_bad_pairs_file_is_one_line_exit_2_and_nothing_written(tmp_path, content, message, cli_in_process):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(content)
    with pytest.raises(errors.SeqTemplatesError, match=message):
        app.load_raw_data(quick_config(f"data.path={path}", "data.dataset=null")["data"])
    output_dir = tmp_path / "run"
    completed = cli_in_process("train", "translation", "--data", path, "--output-dir", output_dir)
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert len(completed.stderr.strip().splitlines()) == 1 and "pairs.tsv:2" in completed.stderr
    assert not output_dir.exists() and not output_dir.with_name("run.partial").exists()


def test_teacher_forcing_targets_are_shifted_and_padding_weighs_nothing(tmp_path):
    config, raw, preprocessing, _ = word_setup(tmp_path, "train.bucket_boundaries=[]", "train.batch_size=8")
    features, targets, weights = next(iter(app.make_dataset(raw["train"], preprocessing, config)))
    vocabulary = preprocessing["target_lookup"].get_vocabulary()
    inputs = features["target_input_ids"].numpy()
    np.testing.assert_array_equal(inputs[:, 0], vocabulary.index(app.START))
    following = targets.numpy()[:, :-1]  # the input at t + 1 is the target at t, up to the end token
    words_only = (following != 0) & (following != vocabulary.index(app.END))
    np.testing.assert_array_equal(inputs[:, 1:] * words_only, following * words_only)
    assert ((inputs[:, 1:] != 0) == words_only).all()
    np.testing.assert_array_equal(weights.numpy(), (targets.numpy() != 0).astype(np.float32))
    lengths = (targets.numpy() != 0).sum(axis=1)
    assert len(set(lengths)) > 1  # the batch really has padding
    assert all(vocabulary[row[length - 1]] == app.END for row, length in zip(targets.numpy(), lengths))


@pytest.mark.parametrize("overrides", [
    ["model.attention=bahdanau"],
    ["model.attention=luong", "model.cell=lstm", "model.output_units=12"],
    ["model.attention=none", "model.bidirectional=false", "model.num_layers=2"],
])
def test_serving_translates_empty_unknown_and_long_sources(tmp_path, overrides):
    config, raw, preprocessing, model = word_setup(tmp_path, *overrides, "model.beam_width=3",
                                                   "data.max_output_length=9")
    _, endpoints, assets = app.build_serving(model, preprocessing, config)
    assert assets == {"serving.json": {"defaults": {"translate": {"beam_width": 3, "max_length": 9,
                                                                  "length_penalty": 0.6}}}}
    sources = tf.constant(["", "xyzzy plugh", "el gato " * 60, "¿Dónde está la biblioteca?"])
    translated = endpoints["serving_default"](sources)
    assert translated["translation"].shape == (4,) and translated["length"].numpy().max() <= 9
    same = endpoints["translate"](sources, tf.constant(3), tf.constant(9), tf.constant(0.6))
    np.testing.assert_array_equal(same["translation"].numpy(), translated["translation"].numpy())
    for beam_width in (1, 3):
        answer = endpoints["translate"](sources, tf.constant(beam_width), tf.constant(7), tf.constant(0.6))
        assert answer["translation"].shape == (4,) and (answer["length"].numpy() <= 7).all()
    assert ("attention" in endpoints) == (config["model"].attention != "none")
    if "attention" in endpoints:
        attended = endpoints["attention"](sources)
        weights = attended["attention_weights"].numpy()
        assert weights.shape[0] == 4 and weights.shape[2] == attended["source_tokens"].shape[1]
        assert attended["source_tokens"].numpy()[3, :3].tolist() == [b"\xc2\xbf", "dónde".encode(), "está".encode()]
        source_length = attended["source_length"].numpy()
        assert source_length.tolist()[:2] == [1, 2] and source_length[2] == 120
        np.testing.assert_allclose(weights.sum(axis=2), 1.0, atol=1e-4)  # masked: no weight on padding
        assert np.abs(weights[0, :, 1:]).max() < 1e-6


@pytest.mark.slow  # tests/layers/test_attention_decoder.py checks the stepped decoder in the default suite
def test_step_decoder_shares_the_training_model_layers(tmp_path):
    """Greedy outputs fed back with teacher forcing give the same argmax: one set of named layers."""
    config, raw, preprocessing, model = word_setup(tmp_path, "model.beam_width=1")
    model.fit(app.make_dataset(raw["train"], preprocessing, config, shuffle=True), epochs=2, verbose=0)
    _, endpoints, _ = app.build_serving(model, preprocessing, config)
    sources = raw["test"][0][:6] + ["el perro"]
    attended = endpoints["attention"](tf.constant(sources))
    vocabulary = preprocessing["target_lookup"].get_vocabulary()
    output_ids = preprocessing["target_lookup"](attended["output_tokens"]).numpy()
    start = vocabulary.index(app.START)
    features = app.featurize(preprocessing, config, tf.constant(sources))
    logits = model({"source_ids": features["source_ids"].to_tensor(),
                    "target_input_ids": tf.constant(np.concatenate([np.full((len(sources), 1), start),
                                                                    output_ids[:, :-1]], 1))},
                   training=False).numpy()
    logits[:, :, [0, 1, start]] = -np.inf  # what decoding never emits
    for row, length in enumerate(attended["output_length"].numpy()):
        np.testing.assert_array_equal(logits[row, :length + 1].argmax(-1), output_ids[row, :length + 1])


def test_word_level_output_is_detokenized(tmp_path):
    """What serving does with decoded ids: the tokens before [end], joined, DETOKENIZE_RULES applied."""
    _, _, preprocessing, _ = word_setup(tmp_path)
    vocabulary = preprocessing["target_lookup"].get_vocabulary()
    tokens = tf.constant([["I", "do", "n't", "know", "?", app.END], ["where", "is", "the", "cat", app.END, ""]])
    ids = tf.cast(preprocessing["target_lookup"](tokens), tf.int32)
    assert vocabulary.index("[UNK]") not in ids.numpy()
    text, lengths = beam_search.ids_to_text(ids, tf.constant(vocabulary), vocabulary.index(app.END), " ",
                                            app.DETOKENIZE_RULES)
    assert [value.decode() for value in text.numpy()] == ["I don't know?", "where is the cat"]
    assert lengths.numpy().tolist() == [5, 4]
    joined = tf.strings.reduce_join(tf.constant([["Tom", "'s", "cat", "(", "really", ")", ",", "\"", "hi", "\"",
                                                  "!"]]), axis=1, separator=" ")
    for pattern, rewrite in app.DETOKENIZE_RULES:
        joined = tf.strings.regex_replace(joined, pattern, rewrite)
    assert joined.numpy()[0].decode() == "Tom's cat (really), \"hi\"!"


def fake_predictors(with_attention):
    """Predictors that answer without a model: serving_default copies the source (so the model scores
    exactly the copy-source baseline); attention gives uniform weights."""
    predictors = {"serving_default": lambda inputs: {"translation": np.array(inputs["source"], dtype=object)}}
    if with_attention:
        def attention(inputs):
            count = len(inputs["source"])
            return {"translation": np.array(inputs["source"], dtype=object), "output_length": np.full(count, 2),
                    "output_tokens": np.array([["x", "y", app.END]] * count, dtype=object),
                    "source_length": np.full(count, 2), "source_tokens": np.array([["a", "b"]] * count, dtype=object),
                    "attention_weights": np.full((count, 3, 2), 0.5)}
        predictors["attention"] = attention
    return predictors


@pytest.mark.parametrize("with_attention", [True, False])
def test_evaluate_scores_serving_default_and_draws_heatmaps_through_the_attention_predictor(tmp_path,
                                                                                            with_attention):
    raw = {"test": (["el gato come", "no sé", "tom come", "hola", "adiós"],
                    ["the cat eats", "I don't know", "Tom eats", "hello", "goodbye"])}
    metrics = app.evaluate(fake_predictors(with_attention), raw, quick_config(), tmp_path)
    baseline = dict(metrics["baseline"])
    assert baseline.pop("name") == "copy_source" and metrics["model"] == baseline
    assert metrics["num_examples"] == 5 and metrics["decoding"] == {"beam_width": 4, "length_penalty": 0.6}
    assert metrics["samples"][1] == {"source": "no sé", "reference": "I don't know", "output": "no sé"}
    assert (tmp_path / "samples.md").read_text().count("\n") == 7
    heatmaps = sorted(path.name for path in (tmp_path / "plots").glob("attention_*.png"))
    assert heatmaps == ([f"attention_{index}.png" for index in range(4)] if with_attention else [])


@pytest.fixture(scope="module")
def tiny_run(trained_app_runs):
    """The contract tests' quick translation run (trained once per session; copy what you change)."""
    return trained_app_runs("translation")[1]


def test_run_has_samples_heatmaps_and_serving_defaults(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert {"bleu", "bleu_cased", "chrf", "exact_match"} <= set(metrics["model"])
    assert metrics["baseline"]["name"] == "copy_source"
    assert (tiny_run / "samples.md").read_text().startswith("| source | reference | output |")
    assert len(list((tiny_run / "plots").glob("attention_*.png"))) == 4
    serving = json.loads((tiny_run / "export" / "1" / "assets.extra" / "serving.json").read_text())
    assert serving["defaults"]["translate"] == {"beam_width": 4, "max_length": 40, "length_penalty": 0.6}


def test_evaluate_verb_redraws_the_heatmaps_from_the_export(tiny_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    shutil.rmtree(copy / "plots")
    (copy / "samples.md").unlink()
    assert cli.main(["evaluate", str(copy)]) == 0
    assert len(list((copy / "plots").glob("attention_*.png"))) == 4
    assert (copy / "samples.md").read_text() == (tiny_run / "samples.md").read_text()
    written = json.loads((tiny_run / "metrics.json").read_text())
    assert json.loads((copy / "metrics.json").read_text())["model"] == written["model"]


def test_predict_prints_translations_with_a_beam_width(tiny_run, cli_in_process):
    completed = cli_in_process("predict", tiny_run, "3rd of March 2021", "", "--signature", "translate",
                               "--param", "beam_width=2")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.count("translation") == 2


def test_spa_eng_loads_from_the_shared_folder_with_a_shuffled_split(shared_data):
    if not (shared_data / "spa_eng").is_dir():
        pytest.skip("spa_eng is not in SEQ_TEMPLATES_DATA")
    config = config_module.resolve(app.CONFIG_SECTIONS, [app_configs() / "spa_eng.yaml"], [])
    raw = app.load_raw_data(config["data"])
    sizes = {name: len(split[0]) for name, split in raw.items()}
    total = sum(sizes.values())
    assert 117000 < total < 118000  # at most 15 words per side (118,964 pairs before)
    assert abs(sizes["test"] / total - 0.05) < 0.001 and abs(sizes["validation"] / total - 0.05) < 0.001
    assert "¿" in "".join(raw["train"][0][:200])  # Spanish is the source
    mean_words = {name: np.mean([len(source.split()) for source in split[0]]) for name, split in raw.items()}
    assert abs(mean_words["test"] - mean_words["train"]) < 0.2  # not cut by position from a sorted file


def app_configs():
    return apps_loader.app_path("translation").parent / "configs"
