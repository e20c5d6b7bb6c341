"""NER benchmark on CoNLL-2003 English: entity F1, ablations, baseline and export throughput.

Headline: ``seq-templates train ner --dataset conll2003`` (the preset
``apps/ner/configs/conll2003.yaml``: BiLSTM-CRF over word embeddings learnt from
scratch, a character CNN per word, a casing feature; at most 25 minutes of
training) trained on train, the epoch with the best validation entity F1 kept
(``train.monitor: val_entity_f1``), scored on test with conlleval's entity F1
(target: >= 0.84 within 30 minutes on 2 CPU cores). Ablations, each through the same command at one shorter, equal
training budget (``--ablation-minutes``): CRF vs softmax output, with and
without character features. The most-frequent-tag baseline comes from the
headline run's metrics. Throughput: the headline export's ``serving_default``
(raw sentences in, tokenized in the graph) in sentences per second at batch 1
and batch 64, after a warm-up.

Every training run is a subprocess of the ``seq-templates`` command (optionally
queued behind ``--lock FILE`` with ``flock``); a run directory under
``--work-dir`` that already holds ``metrics.json`` is reused, so an interrupted
benchmark continues where it stopped.

Usage:
    SEQ_TEMPLATES_DATA=../shared/data python benchmarks/ner.py [--ablation-minutes 6] [--lock /tmp/seq_cpu.lock]

Results are written to docs/benchmarks.md (the section between this benchmark's
markers is replaced) and printed.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from seq_templates import apps_loader  # noqa: E402
from seq_templates import config as config_module  # noqa: E402
from seq_templates import export  # noqa: E402
from seq_templates.evaluation import tagging  # noqa: E402
import report  # noqa: E402  (benchmarks/report.py, beside this script)

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
BEGIN_MARKER = "<!-- ner benchmark: begin -->"
END_MARKER = "<!-- ner benchmark: end -->"
ABLATIONS = {
    "CRF + char CNN": [],
    "softmax + char CNN": ["model.output=softmax"],
    "CRF, no char features": ["model.char_features=false"],
    "softmax, no char features": ["model.output=softmax", "model.char_features=false"],
}


def train(output_dir, overrides, lock=None):
    """Runs ``seq-templates train ner --dataset conll2003`` unless ``output_dir`` is complete; returns seconds."""
    timing_path = output_dir.with_name(output_dir.name + ".seconds")
    if (output_dir / "metrics.json").is_file() and timing_path.is_file():
        return float(timing_path.read_text())
    shutil.rmtree(output_dir, ignore_errors=True)
    shutil.rmtree(output_dir.with_name(output_dir.name + ".partial"), ignore_errors=True)
    command = [sys.executable, "-m", "seq_templates.cli", "train", "ner", "--dataset", "conll2003",
               "--output-dir", str(output_dir), *sum((["--set", item] for item in overrides), [])]
    # The clock starts once the lock is held: the wrapper stamps the time, then runs the command.
    stamp_path = output_dir.with_name(output_dir.name + ".started")
    command = ["bash", "-c", 'date +%s.%N > "$0"; exec "$@"', str(stamp_path), *command]
    if lock:
        command = ["flock", lock, *command]
    log_path = output_dir.with_name(output_dir.name + ".log")
    with open(log_path, "w") as log:
        completed = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if completed.returncode != 0:
        raise SystemExit(f"training failed ({completed.returncode}); see {log_path}")
    seconds = time.time() - float(stamp_path.read_text())
    timing_path.write_text(f"{seconds:.1f}\n")
    return seconds


def scores(run_dir, app):
    """Validation and test entity scores of a run's export, its history and its config."""
    config = config_module.load(app.CONFIG_SECTIONS, run_dir / "config.yaml")
    raw = app.load_raw_data(config["data"])
    function, _ = export.load_serving_function(run_dir, "tag_tokens")
    predict = export.batch_predictor(function)
    result = {}
    for split in ("validation", "test"):
        tokens, tags = raw[split]
        result[split] = tagging.entity_metrics(tags, tagging.predict_tags(predict, tokens))
    history = json.loads((run_dir / "history.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return result, history, metrics, raw


def throughput(run_dir, sentences, batch_size, count):
    """Sentences per second of the export's ``serving_default`` at ``batch_size`` (after a warm-up)."""
    function, _ = export.load_serving_function(run_dir)
    texts = [" ".join(tokens) for tokens in sentences][:count]
    batches = [tf.constant(texts[start:start + batch_size]) for start in range(0, len(texts), batch_size)]
    for batch in batches[:3]:
        function(text=batch)
    started = time.perf_counter()
    for batch in batches:
        function(text=batch)
    return len(texts) / (time.perf_counter() - started)


def _f1(value):
    return f"{value:.4f}"


def render(command, headline, ablations, ablation_minutes, speed):
    (scores_by_split, history, metrics, _), seconds = headline
    epochs = len(history.get("loss", []))
    epoch_seconds = history.get("epoch_seconds", [])
    test = scores_by_split["test"]
    lines = [BEGIN_MARKER, "## NER (CoNLL-2003 English)", "",
             f"Command: `{command}` ({datetime.date.today().isoformat()}, {platform.machine()}, "
             f"{os.cpu_count()} CPU cores shared with other jobs, TensorFlow {tf.__version__}; timings "
             "are conservative).", "",
             "Headline: `seq-templates train ner --dataset conll2003` (preset `apps/ner/configs/conll2003.yaml`: "
             "BiLSTM-128-CRF, word embeddings learnt from scratch (no pretrained vectors), char CNN per word, "
             "casing feature, weight EMA, 25 minutes of training; the epoch with the best validation entity F1 "
             "kept), run once as that exact command; the script reuses a complete run directory under "
             "`--work-dir`. Scores below are recomputed from the reloaded export (`tag_tokens`).", "",
             "| | entity F1 (micro) | precision | recall | macro F1 | token accuracy |",
             "|---|---|---|---|---|---|",
             f"| model, validation | {_f1(scores_by_split['validation']['micro']['f1'])} | "
             f"{_f1(scores_by_split['validation']['micro']['precision'])} | "
             f"{_f1(scores_by_split['validation']['micro']['recall'])} | "
             f"{_f1(scores_by_split['validation']['macro']['f1'])} | "
             f"{_f1(scores_by_split['validation']['token_accuracy'])} |",
             f"| **model, test** | **{_f1(test['micro']['f1'])}** | {_f1(test['micro']['precision'])} | "
             f"{_f1(test['micro']['recall'])} | {_f1(test['macro']['f1'])} | {_f1(test['token_accuracy'])} |",
             f"| most-frequent-tag baseline, test | {_f1(metrics['baseline']['micro']['f1'])} | "
             f"{_f1(metrics['baseline']['micro']['precision'])} | {_f1(metrics['baseline']['micro']['recall'])} | "
             f"{_f1(metrics['baseline']['macro']['f1'])} | {_f1(metrics['baseline']['token_accuracy'])} |", "",
             "Per type (test): " + ", ".join(f"{name} {_f1(values['f1'])}" for name, values in
                                            test["per_type"].items()) + ".", "",
             f"Wall clock of the whole command: {seconds / 60:.1f} min (target: 30); {epochs} epochs, "
             f"median {np.median(epoch_seconds) if epoch_seconds else float('nan'):.0f} s per epoch (training + "
             f"validation). Target entity F1 >= 0.84 on test: "
             f"**{'met' if test['micro']['f1'] >= 0.84 and seconds <= 1800 else 'not met'}**. "
             f"Test words unseen in training: {metrics.get('test_oov_rate', float('nan')):.1%}.", ""]
    if ablations:
        lines += [f"Ablations, each `seq-templates train ner --dataset conll2003 --set train.max_minutes="
                  f"{ablation_minutes:g} [--set ...]` (equal {ablation_minutes:g}-minute training budget, "
                  "one seed):", "", "| output | char features | validation F1 | test F1 | epochs | wall clock |",
                  "|---|---|---|---|---|---|"]
        for name, ((split_scores, run_history, _, _), run_seconds) in ablations.items():
            output = "CRF" if name.startswith("CRF") else "softmax"
            characters = "no" if "no char" in name else "char CNN"
            lines.append(f"| {output} | {characters} | {_f1(split_scores['validation']['micro']['f1'])} | "
                         f"{_f1(split_scores['test']['micro']['f1'])} | {len(run_history.get('loss', []))} | "
                         f"{run_seconds / 60:.1f} min |")
        lines.append("")
    if speed:
        lines += ["Export throughput (`serving_default`, raw test sentences tokenized in the graph, "
                  "reloaded SavedModel, one process): " + ", ".join(
                      f"batch {size}: {value:.0f} sentences/s" for size, value in speed.items()) + ".", ""]
    lines.append(END_MARKER)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", default="/tmp/ner_benchmark", help="run directories (reused when complete)")
    parser.add_argument("--ablation-minutes", type=float, default=10.0)
    parser.add_argument("--skip-ablations", action="store_true")
    parser.add_argument("--lock", help="queue each training run behind this file with flock")
    parser.add_argument("--output", default=str(REPOSITORY / "docs" / "benchmarks.md"))
    arguments = parser.parse_args(argv)
    if not os.environ.get("SEQ_TEMPLATES_DATA"):
        print("note: SEQ_TEMPLATES_DATA is unset; conll2003 must be in the cache or downloadable", file=sys.stderr)
    app = apps_loader.load_app("ner")
    work = pathlib.Path(arguments.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    command = "SEQ_TEMPLATES_DATA=../shared/data python benchmarks/ner.py" + (
        " " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    seconds = train(work / "headline", [], arguments.lock)
    headline = (scores(work / "headline", app), seconds)
    sentences = headline[0][3]["test"][0]
    speed = {1: throughput(work / "headline", sentences, 1, 500),
             64: throughput(work / "headline", sentences, 64, len(sentences))}
    ablations = {}
    report.write_section(arguments.output, render(command, headline, ablations, arguments.ablation_minutes, speed),
                         BEGIN_MARKER, END_MARKER)
    if not arguments.skip_ablations:
        for index, (name, overrides) in enumerate(ABLATIONS.items()):
            run_dir = work / f"ablation{index}"
            run_seconds = train(run_dir, [f"train.max_minutes={arguments.ablation_minutes:g}", *overrides],
                                arguments.lock)
            ablations[name] = (scores(run_dir, app), run_seconds)
            # Written after every run, so an interrupted benchmark leaves what it has measured.
            report.write_section(arguments.output,
                                 render(command, headline, ablations, arguments.ablation_minutes, speed),
                                 BEGIN_MARKER, END_MARKER)
    section = render(command, headline, ablations, arguments.ablation_minutes, speed)
    report.write_section(arguments.output, section, BEGIN_MARKER, END_MARKER)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
