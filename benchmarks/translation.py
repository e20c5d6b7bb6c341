"""Translation benchmark: spa->eng on the Anki/Tatoeba pairs, the offline date task, decoding speed.

Parts (``--parts``; each stores its results in ``--results`` JSON, and the
docs/benchmarks.md section is rendered from everything stored, so parts can run
at different times):

* ``headline``: ``seq-templates train translation --dataset spa_eng`` (applies
  ``apps/translation/configs/spa_eng.yaml``: pairs of at most 15 words, seeded
  90/5/5 split, Bi-GRU-256 + additive attention, training stopped after
  ``train.max_minutes``), timed; then its export scores the test split with
  greedy decoding and with beam search (width 4) through the ``translate``
  signature: sacreBLEU corpus BLEU (lower-cased and cased) and chrF against the
  raw references, beside copying the source. Target: BLEU >= 45 with
  attention + beam. ``--headline-run DIR`` scores an existing run instead of
  training one.
* ``throughput``: sentences per second of the headline export (greedy and beam
  4, batches of 1 and 64), after a warm-up call.
* ``dates``: ``seq-templates train translation`` (the offline default): exact
  match on the generated test split (target >= 0.99).
* ``ablation``: attention none / bahdanau / luong, each trained alone for the
  same shorter budget (``--ablation-minutes``) on spa_eng, scored like the headline.
* ``headline_none``: the headline command with ``--set model.attention=none``
  (same preset, same ``train.max_minutes``), scored like the headline: attention
  against the fixed-length context vector at the headline's budget.

Usage:
    SEQ_TEMPLATES_DATA=../shared/data python benchmarks/translation.py --parts headline throughput dates
    SEQ_TEMPLATES_DATA=../shared/data python benchmarks/translation.py --parts ablation --ablation-minutes 10
    SEQ_TEMPLATES_DATA=../shared/data python benchmarks/translation.py --parts headline_none
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
from seq_templates.evaluation import translation as translation_metrics  # noqa: E402
import report  # noqa: E402  (benchmarks/report.py, beside this script)

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
PRESET = REPOSITORY / "apps" / "translation" / "configs" / "spa_eng.yaml"
BEGIN_MARKER = "<!-- translation benchmark: begin -->"
END_MARKER = "<!-- translation benchmark: end -->"
ATTENTIONS = ("none", "bahdanau", "luong")
LENGTH_BUCKETS = ((1, 5), (6, 10), (11, 15))  # source words: where the fixed-length context vector runs short


def train_command(output_dir, arguments):
    return [sys.executable, "-m", "seq_templates.cli", "train", "translation", "--output-dir", str(output_dir),
            "--set", "train.tensorboard=false", "--set", "train.verbose=2", *arguments]


def train(output_dir, arguments):
    """Runs ``seq-templates train translation ARGUMENTS`` in a subprocess; returns wall seconds."""
    command = train_command(output_dir, arguments)
    print("$", " ".join(command[2:]), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def run_summary(run_dir):
    history = json.loads((pathlib.Path(run_dir) / "history.json").read_text())
    metrics = json.loads((pathlib.Path(run_dir) / "metrics.json").read_text())
    app = apps_loader.load_app("translation")
    config = config_module.load(app.CONFIG_SECTIONS, pathlib.Path(run_dir) / "config.yaml")
    return {"max_minutes": config["train"].max_minutes, "epochs": len(history.get("epoch_seconds", [])),
            "epoch_seconds": history.get("epoch_seconds", []),
            "training_seconds": round(sum(history.get("epoch_seconds", [])), 1),
            "val_loss": history.get("val_loss", []), "val_accuracy": history.get("val_accuracy", []),
            "metrics": metrics}


def score_decodings(run_dir, widths=(1, 4)):
    """BLEU/chrF of the run's export on the test split for each beam width (translate signature)."""
    app = apps_loader.load_app("translation")
    config = config_module.load(app.CONFIG_SECTIONS, pathlib.Path(run_dir) / "config.yaml")
    sources, references = app.load_raw_data(config["data"])["test"]
    predict = export.batch_predictors(export.load_signatures(run_dir))["translate"]  # as `evaluate` calls it
    scores = {}
    for width in widths:
        predict({"source": sources[:8], "beam_width": width, "max_length": 5, "length_penalty": 0.0})  # warm-up
        started = time.perf_counter()
        outputs = predict({"source": sources, "beam_width": width, "max_length": config["data"].max_output_length,
                           "length_penalty": config["model"].length_penalty})["translation"]
        outputs = [str(item) for item in outputs]
        scores[f"beam_{width}"] = {**translation_metrics.translation_metrics(references, outputs),
                                   "seconds": round(time.perf_counter() - started, 1),
                                   "by_source_length": bleu_by_source_length(sources, references, outputs)}
        print(f"beam {width}: {scores[f'beam_{width}']}", flush=True)
    scores["copy_source"] = translation_metrics.copy_source_baseline(sources, references)
    return scores


def bleu_by_source_length(sources, references, outputs):
    """Lower-cased BLEU of the pairs whose source has 1-5, 6-10 and 11-15 words (``LENGTH_BUCKETS``)."""
    scores = {}
    for low, high in LENGTH_BUCKETS:
        chosen = [index for index, source in enumerate(sources) if low <= len(source.split()) <= high]
        if chosen:
            metrics = translation_metrics.translation_metrics([references[index] for index in chosen],
                                                              [outputs[index] for index in chosen])
            scores[f"{low}-{high}"] = {"bleu": metrics["bleu"], "count": len(chosen)}
    return scores


def throughput(run_dir, repeats=3):
    """Sentences per second of the export: greedy and beam 4, batch 1 and 64."""
    app = apps_loader.load_app("translation")
    config = config_module.load(app.CONFIG_SECTIONS, pathlib.Path(run_dir) / "config.yaml")
    sources = app.load_raw_data(config["data"])["test"][0]
    function, _ = export.load_serving_function(run_dir, "translate")
    results = {}
    for width in (1, 4):
        for batch_size in (1, 64):
            calls = 64 if batch_size == 1 else 8
            batches = [tf.constant(sources[index * batch_size:(index + 1) * batch_size]) for index in range(calls)]
            settings = {"beam_width": tf.constant(width), "max_length": tf.constant(config["data"].max_output_length),
                        "length_penalty": tf.constant(config["model"].length_penalty)}
            function(source=batches[0], **settings)  # warm-up
            rates = []
            for _ in range(repeats):
                started = time.perf_counter()
                for batch in batches:
                    function(source=batch, **settings)
                rates.append(calls * batch_size / (time.perf_counter() - started))
            results[f"beam_{width}_batch_{batch_size}"] = round(float(np.median(rates)), 1)
            print(f"beam {width}, batch {batch_size}: {results[f'beam_{width}_batch_{batch_size}']} sentences/s",
                  flush=True)
    return results


def render(results):
    lines = [BEGIN_MARKER, "## Translation (spa→eng Anki pairs; offline dates)", ""]
    load = results.get("machine_note", "2 CPU cores shared with other benchmark and test runs at the same time, "
                                        "so times are conservative")
    lines += [f"Machine: {results.get('machine', platform.platform())}, {load}. BLEU is sacreBLEU corpus BLEU "
              "(13a tokenization) of the detokenized output against the raw references, **lower-cased** "
              "(`bleu`; `cased` beside it); chrF is case-sensitive. Copy-the-source is the baseline.", ""]
    headline = results.get("headline")
    if headline:
        decodings = headline["decodings"]
        lines += ["### spa→eng, the headline run", "",
                  f"Command: `{headline['command']}` (the preset `apps/translation/configs/spa_eng.yaml`), scored by "
                  f"`{results.get('command_headline', 'python benchmarks/translation.py --parts headline')}`.", "",
                  f"Data: pairs of at most 15 words per side, identical pairs dropped, seeded shuffle, 90/5/5 split "
                  f"({headline['metrics']['num_examples']} test pairs). Wall clock of the whole command "
                  f"{headline['wall_seconds'] / 60:.1f} min, of which training "
                  f"{headline['training_seconds'] / 60:.1f} min "
                  f"({headline['epochs']} epochs"
                  + (f", the last cut by `train.max_minutes: {headline['max_minutes']}`"
                     if headline.get("max_minutes") else "") +
                  f"; per-epoch seconds "
                  f"{', '.join(f'{seconds:.0f}' for seconds in headline['epoch_seconds'])}).", "",
                  "| decoding | BLEU (lower-cased) | BLEU (cased) | chrF | exact match | decode test split (s) |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, label in (("beam_1", "greedy"), ("beam_4", "beam search, width 4"),
                            ("copy_source", "copy the source")):
            scores = decodings[name]
            lines.append(f"| {label} | {scores['bleu']:.2f} | {scores['bleu_cased']:.2f} | {scores['chrf']:.2f} | "
                         f"{scores['exact_match']:.3f} | {scores.get('seconds', '')} |")
        target = decodings["beam_4"]["bleu"]
        lines += ["", f"Target BLEU ≥ 45 with attention + beam: **{target:.2f}, "
                      f"{'met' if target >= 45 else 'not met'}**; beam ≥ greedy: "
                      f"{'yes' if target >= decodings['beam_1']['bleu'] else 'no'}.", ""]
        samples = headline["metrics"].get("samples") or []
        if samples:
            lines += ["Sample test translations (serving_default, beam 4):", "", "| source | reference | output |",
                      "|---|---|---|"]
            lines += [f"| {row['source']} | {row['reference']} | {row['output']} |" for row in samples]
            lines.append("")
    sweep = results.get("decoding_sweep")
    if sweep:
        lines += ["Beam width and length penalty chosen on the **validation** split (same model, `translate` "
                  f"signature; `{sweep['command']}`):", "",
                  "| beam width | length penalty | validation BLEU | validation chrF |", "|---:|---:|---:|---:|"]
        for key, scores in sweep["validation"].items():
            width, penalty = key.split("_")
            lines.append(f"| {width} | {penalty} | {scores['bleu']:.2f} | {scores['chrf']:.2f} |")
        width, penalty = sweep["best"].split("_")
        lines += ["", f"Best on validation: beam {width}, length penalty {penalty}: test BLEU "
                      f"**{sweep['test']['bleu']:.2f}** (cased {sweep['test']['bleu_cased']:.2f}, chrF "
                      f"{sweep['test']['chrf']:.2f}), against {headline['decodings']['beam_4']['bleu']:.2f} with the "
                      "preset's beam 4, length penalty 0.6.", ""]
    for note in results.get("notes", []):
        lines += [note, ""]
    speed = results.get("throughput")
    if speed:
        lines += ["### Decoding throughput of the export (sentences/s, spa→eng test sentences)", "",
                  "| decoding | batch 1 | batch 64 |", "|---|---:|---:|",
                  f"| greedy | {speed['beam_1_batch_1']} | {speed['beam_1_batch_64']} |",
                  f"| beam 4 | {speed['beam_4_batch_1']} | {speed['beam_4_batch_64']} |", "",
                  "Median of 3 timed passes after a warm-up call (64 calls of 1 sentence, 8 calls of 64), through "
                  "the reloaded SavedModel's `translate` signature.", ""]
    dates = results.get("dates")
    if dates:
        model = dates["metrics"]["model"]
        lines += ["### Offline dates (human-readable → ISO)", "",
                  f"Command: `{dates['command']}`. Exact match on the generated test split "
                  f"**{model['exact_match']:.4f}** (target ≥ 0.99, "
                  f"{'met' if model['exact_match'] >= 0.99 else 'not met'}), "
                  f"chrF {model['chrf']:.2f}; copy-the-source exact match "
                  f"{dates['metrics']['baseline']['exact_match']:.4f}. "
                  f"{dates['epochs']} epochs, per-epoch seconds "
                  f"{', '.join(f'{seconds:.0f}' for seconds in dates['epoch_seconds'])}; whole command "
                  f"{dates['wall_seconds'] / 60:.1f} min.", ""]
    ablation = results.get("ablation")
    if ablation:
        lines += [f"### Attention: none vs bahdanau vs luong at an equal budget ({ablation['minutes']} min of "
                  "training)", "",
                  f"Command per variant: `{ablation['command']}` ("
                  + ("the three run side by side, sharing the machine alike, so each gets well under the headline's "
                     "share of the CPU" if ablation.get("side_by_side") else
                     "the three run one after another, each with the machine to itself") + ").", "",
                  "| attention | epochs | greedy BLEU | beam 4 BLEU | beam 4 chrF | validation token accuracy "
                  "after each epoch |", "|---|---:|---:|---:|---:|---|"]
        for attention in ATTENTIONS:
            if attention in ablation["runs"]:
                run = ablation["runs"][attention]
                lines.append(f"| {attention} | {run['epochs']} | {run['decodings']['beam_1']['bleu']:.2f} | "
                             f"{run['decodings']['beam_4']['bleu']:.2f} | {run['decodings']['beam_4']['chrf']:.2f} | "
                             f"{', '.join(f'{value:.3f}' for value in run.get('val_accuracy', []))} |")
        lines.append("")
        for note in ablation.get("notes", []):
            lines += [note, ""]
    unattended = results.get("headline_none")
    if unattended and headline:
        lines += [f"### Attention against none at the headline's budget ({unattended['max_minutes']:g} min of "
                  "training)", "",
                  f"Commands: `{headline['command']}` and `{unattended['command']}`, each with the machine to itself; "
                  "the preset otherwise unchanged (weight EMA included).", "",
                  "| attention | epochs | greedy BLEU | beam 4 BLEU | beam 4 chrF | validation token accuracy "
                  "after each epoch |", "|---|---:|---:|---:|---:|---|"]
        for name, run in (("bahdanau (the headline)", headline), ("none", unattended)):
            lines.append(f"| {name} | {run['epochs']} | {run['decodings']['beam_1']['bleu']:.2f} | "
                         f"{run['decodings']['beam_4']['bleu']:.2f} | {run['decodings']['beam_4']['chrf']:.2f} | "
                         f"{', '.join(f'{value:.3f}' for value in run.get('val_accuracy', []))} |")
        lines.append("")
        if all("by_source_length" in run["decodings"]["beam_4"] for run in (headline, unattended)):
            buckets = list(headline["decodings"]["beam_4"]["by_source_length"])
            counts = headline["decodings"]["beam_4"]["by_source_length"]
            lines += ["Beam-4 BLEU by the length of the Spanish source (test pairs per bucket in brackets):", "",
                      "| attention | " + " | ".join(f"{bucket} words ({counts[bucket]['count']})" for bucket in buckets)
                      + " |", "|---|" + "---:|" * len(buckets)]
            for name, run in (("bahdanau (the headline)", headline), ("none", unattended)):
                by_length = run["decodings"]["beam_4"]["by_source_length"]
                lines.append(f"| {name} | " + " | ".join(f"{by_length[bucket]['bleu']:.2f}" for bucket in buckets)
                             + " |")
            lines.append("")
        for note in unattended.get("notes", []):
            lines += [note, ""]
    lines.append(f"_Updated {results.get('updated', '')}._")
    lines.append(END_MARKER)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["headline", "throughput", "dates"],
                        choices=["headline", "throughput", "dates", "ablation", "headline_none", "render"])
    parser.add_argument("--work-dir", default="/tmp/translation_bench", help="run directories go here")
    parser.add_argument("--headline-run", help="score this existing spa_eng run instead of training one")
    parser.add_argument("--headline-wall-seconds", type=float, help="wall clock of --headline-run's command")
    parser.add_argument("--ablation-minutes", type=float, default=10.0)
    parser.add_argument("--results", default="/tmp/translation_bench/results.json",
                        help="results of earlier parts are kept here and rendered with the new ones")
    parser.add_argument("--decoding-sweep", help="a JSON of validation scores per beam width and length penalty "
                        "(and the best one's test scores) to show beside the headline")
    parser.add_argument("--output", default=str(REPOSITORY / "docs" / "benchmarks.md"))
    arguments = parser.parse_args(argv)
    work = pathlib.Path(arguments.work_dir)
    results_path = pathlib.Path(arguments.results)
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    headline_dir = pathlib.Path(arguments.headline_run) if arguments.headline_run else work / "headline"
    if "headline" in arguments.parts:
        wall = arguments.headline_wall_seconds
        if not arguments.headline_run:
            wall = train(headline_dir, ["--dataset", "spa_eng"])
        results["headline"] = {"command": "seq-templates train translation --dataset spa_eng",
                               "wall_seconds": wall or 0.0, **run_summary(headline_dir),
                               "decodings": score_decodings(headline_dir)}
        results["command_headline"] = "python benchmarks/translation.py " + " ".join(argv or sys.argv[1:])
    if arguments.decoding_sweep:
        results["decoding_sweep"] = json.loads(pathlib.Path(arguments.decoding_sweep).read_text())
        arguments.parts.append("decoding_sweep")
    if "throughput" in arguments.parts:
        results["throughput"] = throughput(headline_dir)
    if "dates" in arguments.parts:
        wall = train(work / "dates", [])
        results["dates"] = {"command": "seq-templates train translation", "wall_seconds": wall,
                            **run_summary(work / "dates")}
    if "headline_none" in arguments.parts:
        shutil.rmtree(work / "headline_none", ignore_errors=True)  # this script's own earlier run
        wall = train(work / "headline_none", ["--dataset", "spa_eng", "--set", "model.attention=none"])
        results["headline_none"] = {"command": "seq-templates train translation --dataset spa_eng --set "
                                               "model.attention=none", "wall_seconds": wall,
                                    **run_summary(work / "headline_none"),
                                    "decodings": score_decodings(work / "headline_none")}
    if "ablation" in arguments.parts:
        minutes = arguments.ablation_minutes
        runs = {}
        for attention in ATTENTIONS:  # one after another, each with the machine to itself
            command = train_command(work / f"ablation_{attention}", [
                "--dataset", "spa_eng", "--set", f"model.attention={attention}",
                "--set", f"train.max_minutes={minutes}",
                "--set", "train.ema_momentum=null"])  # an average over a few hundred steps lags too far
            print("$", " ".join(command[2:]), flush=True)
            shutil.rmtree(work / f"ablation_{attention}", ignore_errors=True)  # this script's own earlier run
            with open(work / f"ablation_{attention}.log", "w") as log:
                if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                    raise SystemExit(f"the {attention} run failed; see {work / f'ablation_{attention}.log'}")
        for attention in ATTENTIONS:
            summary = run_summary(work / f"ablation_{attention}")
            # Beam 4 is what the run's own evaluation decoded (serving_default); greedy is scored here.
            runs[attention] = {**summary, "decodings": {**score_decodings(work / f"ablation_{attention}", (1,)),
                                                        "beam_4": summary["metrics"]["model"]}}
        results["ablation"] = {"minutes": minutes, "runs": runs, "side_by_side": False,
                               "command": f"seq-templates train translation --dataset spa_eng --set "
                                          f"model.attention=ATTENTION --set train.max_minutes={minutes} "
                                          "--set train.ema_momentum=null"}
    # Parts may run in several processes at once: merge into what is stored now, not what was read at start.
    computed = {key: value for key, value in results.items()
                if key in arguments.parts or (key == "command_headline" and "headline" in arguments.parts)}
    results = {**(json.loads(results_path.read_text()) if results_path.is_file() else {}), **computed}
    results["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, TensorFlow {tf.__version__}"
    results["updated"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results_path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    section = render(results)
    report.write_section(arguments.output, section, BEGIN_MARKER, END_MARKER)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
