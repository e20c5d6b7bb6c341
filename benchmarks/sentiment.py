"""Sentiment benchmark on SST-2: quality of the template and training speed.

Quality: trains the sentiment template as ``seq-templates train sentiment --dataset sst2
--config benchmarks/sst2_reference.yaml`` does (the template's preset until stop 36; BiLSTM-128 + per-word character
CNN from scratch, no pretrained embeddings, weight EMA restarted every epoch) and
reports the accuracy on the labelled GLUE dev split beside the TF-IDF +
logistic-regression baseline, with the wall-clock time
(target: >= 0.85 within 15 minutes on a 2-core CPU), as the median over seeds.

Raw text: SST-2 is lower-cased and tokenized (``it 's``, ``is n't``, ``good .``),
people write ``It's``, ``isn't``, ``good.``. The benchmark also scores each run's
exported SavedModel on a detokenized copy of the dev set (``detokenize.py``:
clitics and punctuation re-attached, brackets restored, first letter
capitalised) beside the tokenized one (target: within 0.01). With
``--reference-standardize lower`` it trains one more run with the old
standardizer (lower-casing only) to show the gap the tokenizer closes.

Speed: trains the same 2 x BiLSTM-64 two ways in this one process, on the same
examples: (a) the template's pipeline (right padding + mask, ragged
TextVectorization, tf.data bucket_by_sequence_length) and (b) the way the Keras
IMDB example does it (every sentence pre-padded to 200 tokens, numpy arrays,
no mask). Each repeat times one epoch of each, alternating, after a warm-up
epoch; the report quotes medians and their ratio (target: >= 5x).

Usage:
    SEQ_TEMPLATES_DATA=../shared/data python benchmarks/sentiment.py

Results are written to docs/benchmarks.md (the section between this benchmark's
markers is replaced) and printed.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from seq_templates import apps_loader  # noqa: E402
from seq_templates import config as config_module  # noqa: E402
from seq_templates import export  # noqa: E402
from seq_templates.evaluation import baselines  # noqa: E402
from seq_templates.preprocessing import text  # noqa: E402

import detokenize  # noqa: E402  (benchmarks/detokenize.py, beside this script)
import report  # noqa: E402  (benchmarks/report.py, beside this script)

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
SST2_CONFIG = REPOSITORY / "benchmarks" / "sst2_reference.yaml"  # the template's SST-2 preset until stop 36
BEGIN_MARKER = "<!-- sentiment benchmark: begin -->"
END_MARKER = "<!-- sentiment benchmark: end -->"


def run_quality(app, output_dir, seed, dev_copies, extra_overrides=()):
    """Runs the app's main() on SST-2 with one seed; returns (metrics, seconds, per-epoch seconds).

    ``metrics`` gains ``copies``: the export's dev accuracy on each copy of the dev set.
    """
    started = time.perf_counter()
    overrides = sum((["--set", item] for item in extra_overrides), [])
    status = app.main(["--dataset", "sst2", "--config", str(SST2_CONFIG), "--output-dir", str(output_dir),
                       "--set", "train.tensorboard=false", "--set", f"train.seed={seed}", *overrides])
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"training failed with status {status}")
    metrics = json.loads((output_dir / "metrics.json").read_text())
    function, _ = export.load_serving_function(output_dir)
    predict = export.batch_predictor(function)
    metrics["copies"] = {name: float(np.mean(predict({"text": texts})["label"] == np.array(labels)))
                         for name, (texts, labels) in dev_copies.items()}
    epoch_seconds = json.loads((output_dir / "history.json").read_text())["epoch_seconds"]
    return metrics, seconds, epoch_seconds


def imdb_example_model(vocabulary_size, model_config, num_classes):
    """The same recurrent model as the template, fed pre-padded ids with no mask (Keras IMDB example)."""
    token_ids = keras.Input(shape=(None,), dtype="int64")
    hidden = keras.layers.Embedding(vocabulary_size, model_config.embedding_dim)(token_ids)
    hidden = keras.layers.Dropout(model_config.dropout_rate)(hidden)
    for index in range(model_config.num_layers):
        last = index == model_config.num_layers - 1
        hidden = keras.layers.Bidirectional(keras.layers.LSTM(model_config.units,
                                                              return_sequences=not last))(hidden)
        hidden = keras.layers.Dropout(model_config.dropout_rate)(hidden)
    probabilities = keras.layers.Dense(num_classes, activation="softmax")(hidden)
    model = keras.Model(token_ids, probabilities)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def timed_epoch(model, *fit_arguments, **fit_keywords):
    started = time.perf_counter()
    model.fit(*fit_arguments, epochs=1, verbose=0, **fit_keywords)
    return time.perf_counter() - started


def run_speed(app, num_examples, repeats):
    """Returns a dict with per-repeat samples/s of both pipelines and the ratio of medians."""
    config = config_module.resolve(app.CONFIG_SECTIONS, [SST2_CONFIG],
                                   ["model.pooling=last", "model.num_layers=2", "model.units=64",
                                    "data.char_features=false",
                                    "train.ema_momentum=null", "train.verbose=0",
                                    "train.tensorboard=false"])
    raw = app.load_raw_data(config["data"])
    texts, labels = raw["train"][0][:num_examples], raw["train"][1][:num_examples]
    preprocessing = app.build_preprocessing(config, raw["train"])
    template_model = app.build_model(config, preprocessing)
    template_dataset = app.make_dataset((texts, labels), preprocessing, config, shuffle=True)

    vectorizer, lookup = preprocessing["text_vectorizer"], preprocessing["label_lookup"]
    id_lists = text.vectorize(vectorizer, tf.constant(texts), config["data"].standardize).to_list()
    padded = keras.utils.pad_sequences(id_lists, maxlen=200)  # pre-padding and pre-truncation
    label_ids = lookup(tf.constant(labels)).numpy()
    baseline_model = imdb_example_model(vectorizer.vocabulary_size(), config["model"],
                                        lookup.vocabulary_size())
    batch_size = config["train"].batch_size

    timed_epoch(template_model, template_dataset)  # warm-up: tracing, caching
    timed_epoch(baseline_model, padded, label_ids, batch_size=batch_size)
    template_rates, baseline_rates = [], []
    for _ in range(repeats):
        template_rates.append(num_examples / timed_epoch(template_model, template_dataset))
        baseline_rates.append(num_examples / timed_epoch(baseline_model, padded, label_ids,
                                                         batch_size=batch_size))
    template_median = statistics.median(template_rates)
    baseline_median = statistics.median(baseline_rates)
    return {
        "num_examples": num_examples, "repeats": repeats, "batch_size": batch_size,
        "template_samples_per_second": template_rates, "baseline_samples_per_second": baseline_rates,
        "template_median": template_median, "baseline_median": baseline_median,
        "ratio": template_median / baseline_median,
        "mean_tokens": float(np.mean([len(ids) for ids in id_lists])),
    }


def render(command, runs, speed, baseline_copies=None, reference=None, examples=None):
    lines = [BEGIN_MARKER, "## Sentiment (SST-2)", ""]
    lines += [f"Command: `{command}`  ", f"Date: {datetime.date.today().isoformat()}; machine: "
              f"{os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}, "
              f"TensorFlow {tf.__version__}, Keras {keras.__version__}.", ""]
    if runs:
        accuracies = [quality["model"]["accuracy"] for _, quality, _, _ in runs]
        model_accuracy = statistics.median(accuracies)
        quality = sorted(runs, key=lambda run: run[1]["model"]["accuracy"])[len(runs) // 2][1]
        seconds = max(run_seconds for _, _, run_seconds, _ in runs)
        tokenized = statistics.median(run[1]["copies"]["tokenized"] for run in runs)
        written = statistics.median(run[1]["copies"]["detokenized"] for run in runs)
        lines += [
            "### Quality: SST-2 dev accuracy, BiLSTM-128 + character CNN per word, weight EMA restarted "
            "each epoch, from scratch (target >= 0.85 within 15 min)",
            "",
            "| model | accuracy | macro-F1 |",
            "|---|---:|---:|",
            f"| template (`--dataset sst2 --config benchmarks/sst2_reference.yaml`), median of {len(runs)} seeds | "
            f"{model_accuracy:.4f} | {quality['model']['macro_f1']:.4f} |",
            f"| TF-IDF word 1-2-grams + logistic regression | {quality['baseline']['accuracy']:.4f} | "
            f"{quality['baseline']['macro_f1']:.4f} |",
            f"| majority class | {quality['majority_class_accuracy']:.4f} | |",
            "",
            "Per seed: " + ", ".join(f"seed {seed}: {quality['model']['accuracy']:.4f} "
                                     f"({run_seconds / 60:.1f} min in all; {len(epoch_seconds)} epochs of "
                                     f"{statistics.median(epoch_seconds):.0f} s median, "
                                     f"{max(epoch_seconds):.0f} s longest, training + validation)"
                                     for seed, quality, run_seconds, epoch_seconds in runs) + ".",
            "",
            f"Training + evaluation + export wall-clock (slowest seed): {seconds / 60:.1f} min. "
            f"Target met: {'yes' if model_accuracy >= 0.85 and seconds <= 900 else 'no'}.",
            "",
            "### Raw text: the same dev sentences as distributed and as people write them "
            "(target: within 0.01, tokenized still >= 0.85)",
            "",
            "The detokenized copy re-attaches clitics and punctuation, restores brackets and quotes and "
            "capitalises the first letter (`benchmarks/detokenize.py`), for example:",
            "",
        ]
        lines += [f"- `{tokenized_text.strip()}` → `{written_text}`" for tokenized_text, written_text in
                  (examples or detokenize.EXAMPLES[:4])]
        lines += [
            "",
            "| model | dev as distributed (tokenized) | dev as written (detokenized) | difference |",
            "|---|---:|---:|---:|",
            f"| template export, median of {len(runs)} seeds | {tokenized:.4f} | {written:.4f} | "
            f"{written - tokenized:+.4f} |",
            f"| TF-IDF + logistic regression | {baseline_copies['tokenized']:.4f} | "
            f"{baseline_copies['detokenized']:.4f} | "
            f"{baseline_copies['detokenized'] - baseline_copies['tokenized']:+.4f} |",
        ]
        for label, (reference_quality, _, _) in (reference or {}).items():
            copies = reference_quality["copies"]
            lines.append(f"| {label} (seed {runs[0][0]}) | {copies['tokenized']:.4f} | "
                         f"{copies['detokenized']:.4f} | {copies['detokenized'] - copies['tokenized']:+.4f} |")
        lines += [
            "",
            "Per seed (tokenized / detokenized): " + ", ".join(
                f"seed {seed}: {quality['copies']['tokenized']:.4f} / {quality['copies']['detokenized']:.4f}"
                for seed, quality, _, _ in runs) + ".",
            "",
            f"Target met: {'yes' if abs(written - tokenized) <= 0.01 and tokenized >= 0.85 else 'no'}.",
            "",
        ]
    if speed is not None:
        lines += [
            "### Speed: training samples/s, same 2 x BiLSTM-64 (target >= 5x)",
            "",
            f"{speed['num_examples']} SST-2 training examples (mean {speed['mean_tokens']:.1f} tokens), "
            f"batch size {speed['batch_size']}, one epoch per measurement after a warm-up epoch, "
            f"{speed['repeats']} alternating repeats in one process.",
            "",
            "| pipeline | median samples/s | all repeats |",
            "|---|---:|---|",
            f"| template: right padding + mask, ragged vectorizer, bucketed tf.data | "
            f"{speed['template_median']:.0f} | "
            f"{', '.join(f'{rate:.0f}' for rate in speed['template_samples_per_second'])} |",
            f"| Keras IMDB example: pre-padded to 200 tokens, numpy arrays | "
            f"{speed['baseline_median']:.0f} | "
            f"{', '.join(f'{rate:.0f}' for rate in speed['baseline_samples_per_second'])} |",
            "",
            f"Ratio of medians: **{speed['ratio']:.1f}x**. "
            f"Target met: {'yes' if speed['ratio'] >= 5 else 'no'}.",
            "",
        ]
    lines.append(END_MARKER)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 2024],
                        help="one quality run per seed; the report quotes the median")
    parser.add_argument("--speed-examples", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--reference-standardize", metavar="MODE",
                        help="also train one run (first seed) with this data.standardize, e.g. lower")
    parser.add_argument("--output", default=str(REPOSITORY / "docs" / "benchmarks.md"))
    arguments = parser.parse_args(argv)
    if not os.environ.get("SEQ_TEMPLATES_DATA"):
        print("note: SEQ_TEMPLATES_DATA is unset; sst2 must be in the cache or downloadable",
              file=sys.stderr)
    app = apps_loader.load_app("sentiment")
    runs, speed, baseline_copies, reference, examples = [], None, None, {}, None
    if not arguments.skip_quality:
        config = config_module.resolve(app.CONFIG_SECTIONS, [SST2_CONFIG], [])
        raw = app.load_raw_data(config["data"])
        dev_texts, dev_labels = raw["test"]
        dev_copies = {"tokenized": (dev_texts, dev_labels),
                      "detokenized": ([detokenize.detokenize(sentence) for sentence in dev_texts], dev_labels)}
        examples = [(tokenized_text, written_text) for tokenized_text, written_text
                    in zip(dev_texts, dev_copies["detokenized"][0])
                    if any(mark in tokenized_text for mark in (" n't", " 's", " ( ", "``"))][:4]
        baseline = baselines.tfidf_logistic_regression(*raw["train"], seed=config["train"].seed)
        baseline_copies = {name: float(np.mean(baseline.predict(texts) == np.array(labels)))
                           for name, (texts, labels) in dev_copies.items()}
        for seed in arguments.seeds:
            with tempfile.TemporaryDirectory() as folder:
                runs.append((seed, *run_quality(app, pathlib.Path(folder) / "run", seed, dev_copies)))
        if arguments.reference_standardize:
            with tempfile.TemporaryDirectory() as folder:
                reference[f"same preset, `data.standardize={arguments.reference_standardize}` (before)"] = \
                    run_quality(app, pathlib.Path(folder) / "run", arguments.seeds[0], dev_copies,
                                [f"data.standardize={arguments.reference_standardize}"])
    if not arguments.skip_speed:
        keras.utils.set_random_seed(0)
        speed = run_speed(app, arguments.speed_examples, arguments.repeats)
    command = "SEQ_TEMPLATES_DATA=../shared/data python benchmarks/sentiment.py" + (
        " " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    section = render(command, runs, speed, baseline_copies, reference, examples)
    report.write_section(arguments.output, section, BEGIN_MARKER, END_MARKER)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
