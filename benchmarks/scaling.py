"""Scale-out benchmark (issue 20): training larger than memory, local workers, batch scoring.

One function per part of the issue's measurements, each returning a dict of figures:

- (a) :func:`prepared_training_part`: a generated CSV of ``--csv-gb`` GB (5) through ``prepare`` and
  ``train`` (peak RSS of each), and training samples/s streamed from a prepared folder beside the
  in-memory path on a file that fits;
- (b) :func:`workers_part`: 1 vs 2 local workers (``seq-templates launch``), training samples/s;
- (c) :func:`predict_file_part`: ``seq-templates predict RUN --input-file F --output-file G`` on
  ``--sentences`` generated sentences (1 M by default) against a quick sentiment run: sentences/s
  end to end (TensorFlow start-up and export load included) and as ``predict`` reports it (from
  the first batch to the last line), and the peak RSS of the process (its ``ru_maxrss``, from
  ``os.wait4``), with the output's line count checked;
- (d) :func:`beam_part`: ``python -m seq_templates.beam`` (RunInference) on the DirectRunner on the
  same file, the same figures, when apache-beam is installed (else the reason it was skipped);
- (e) :func:`other_templates_part`: ner, translation, text_generation and forecasting through ``prepare``
  and ``train`` on generated files of ``--other-gb`` GB each (CoNLL, source<TAB>target, plain text, an
  hourly CSV): seconds and peak RSS of each step, training samples/s and the test headline; for
  forecasting also samples/s streamed beside in memory on a series that fits (:func:`forecasting_fits_part`).

Usage:
    flock /tmp/seq_cpu.lock python benchmarks/scaling.py [--parts b c d] [--run RUN] [--sentences 1000000]
        [--batch-size 512] [--write]

Without ``--run`` a quick sentiment run is trained first (the contract tests' quick settings). The
figures are printed as JSON and as a Markdown section; ``--write`` puts the section into
docs/benchmarks.md between its markers.
"""

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import platform
import random
import re
import subprocess
import sys
import tempfile
import time

import report  # noqa: E402  (benchmarks/report.py, beside this script)

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
BEGIN_MARKER = "<!-- scaling benchmark: begin -->"
END_MARKER = "<!-- scaling benchmark: end -->"
QUICK_OVERRIDES = ["train.epochs=6", "train.batch_size=32", "data.max_train_samples=3000", "model.units=32",
                   "model.embedding_dim=32", "train.learning_rate=0.003", "train.tensorboard=false", "train.verbose=0"]
ENVIRONMENT = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPOSITORY)}


def train_quick_run(folder):
    """Trains the sentiment template with the contract tests' quick settings; returns the run directory."""
    run = pathlib.Path(folder) / "sentiment"
    command = [sys.executable, "-m", "seq_templates.cli", "train", "sentiment", "--output-dir", str(run)]
    command += sum((["--set", item] for item in QUICK_OVERRIDES), [])
    subprocess.run(command, check=True, cwd=REPOSITORY, env=ENVIRONMENT, stdout=subprocess.DEVNULL)
    return run


def write_sentences(path, count, seed=0):
    """Writes ``count`` generated sentiment sentences (the training data's kind), one a line, streamed."""
    sys.path.insert(0, str(REPOSITORY))
    from seq_templates.data import synthetic

    generator = random.Random(seed)
    with open(path, "w", encoding="utf-8") as handle:
        for start in range(0, count, 10_000):
            handle.write("".join(synthetic.sentiment_example(generator)[0] + "\n"
                                 for _ in range(min(10_000, count - start))))
    return path


def measure(command, stdout_path=None):
    """Runs ``command``; returns ``(seconds, peak RSS in MB, stderr)`` of that process alone.

    ``stdout_path``: a file that gets the command's standard output (else it is dropped).

    Raises:
        RuntimeError: The command failed.
    """
    with tempfile.TemporaryFile(mode="w+") as errors:
        started = time.perf_counter()
        output = open(stdout_path, "w") if stdout_path else subprocess.DEVNULL
        process = subprocess.Popen(command, cwd=REPOSITORY, env=ENVIRONMENT, stdout=output, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, not every child's
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if stdout_path:
            output.close()
        errors.seek(0)
        stderr = errors.read()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} exited {process.returncode}: {stderr[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, stderr


def count_lines(paths):
    return sum(sum(1 for _ in open(path, encoding="utf-8")) for path in paths)


# region (a) data larger than memory: prepare + train from a generated CSV of >= 5 GB
# The same fixed settings for every training here (auto settings off), so the paths differ only in how rows
# arrive: the in-memory path tokenizes once and caches; a prepared split is read and tokenized every epoch.
PREPARED_OVERRIDES = ["train.auto_settings=false", "model.units=32", "model.embedding_dim=32", "train.batch_size=64",
                      "data.max_length=64", "data.max_tokens=20000", "train.bucket_boundaries=[]",
                      "train.early_stopping_patience=0", "train.restore_best_weights=false",
                      "train.tensorboard=false", "train.verbose=2", "train.backup_every_steps=0"]


def write_reviews_csv(path, gigabytes=None, rows=None, seed=0, pool=50_000):
    """A CSV of generated reviews (four generated sentences, three of the review's label), streamed out.

    Stops after ``rows`` rows or once the file holds ``gigabytes``; returns the rows written.
    """
    sys.path.insert(0, str(REPOSITORY))
    from seq_templates.data import synthetic

    generator = random.Random(seed)
    sentences = {"positive": [], "negative": []}
    while min(map(len, sentences.values())) < pool:
        text, label = synthetic.sentiment_example(generator)
        sentences[label].append(text)
    labels, written, size = ("positive", "negative"), 0, 0
    limit = int(gigabytes * 2 ** 30) if gigabytes else None
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("text,label\n")
        while (rows is None or written < rows) and (limit is None or size < limit):
            block = []
            for _ in range(10_000 if rows is None else min(10_000, rows - written)):
                label = labels[generator.getrandbits(1)]
                other = labels[1 - labels.index(label)]
                parts = generator.choices(sentences[label], k=3) + generator.choices(sentences[other], k=1)
                generator.shuffle(parts)
                block.append(f'"{" . ".join(parts)} .",{label}\n')
            text = "".join(block)
            handle.write(text)
            size += len(text.encode("utf-8"))
            written += len(block)
    return written


def epoch_samples_per_second(output, batch_size, skip_first=True):
    """Training samples/s from Keras's epoch lines: the batch over the median time per step."""
    steps = [float(value) / (1000.0 if unit == "ms" else 1.0) for _, value, unit in EPOCH_LINE.findall(output)]
    if skip_first:
        steps = steps[1:]
    if not steps:
        raise RuntimeError(f"no epoch lines in the output: {output[-2000:]}")
    return round(batch_size / sorted(steps)[len(steps) // 2])


def train_command(data, output, overrides):
    return [sys.executable, "-m", "seq_templates.cli", "train", "sentiment", "--data", str(data), "--output-dir",
            str(output), *sum((["--set", item] for item in PREPARED_OVERRIDES + overrides), [])]


def prepare_command(data, output):
    return [sys.executable, "-m", "seq_templates.cli", "prepare", "sentiment", "--data", str(data), "--output",
            str(output), "--set", "data.validation_fraction=0.05", "--set", "data.test_fraction=0.05"]


def prepared_training_part(arguments, work_dir):
    """(a) ``prepare`` + ``train`` on a generated CSV of ``--csv-gb`` GB; streamed vs in memory on one that fits.

    1. The big file: ``prepare`` (seconds, peak RSS), then ``train`` from the folder for
       ``--prepared-minutes`` of training (the first epoch, cut by the budget; samples/s from its
       epoch line; peak RSS of the whole run, evaluation and export included).
    2. A ``--fit-rows`` file of the same kind, three epochs each: ``train --data FILE`` (in memory)
       and ``prepare`` + ``train --data FOLDER`` (streamed); samples/s over the epochs after the first.
    """
    results = {"settings": " ".join(PREPARED_OVERRIDES)}
    if arguments.csv_gb > 0:  # 0: only the file that fits
        results.update(big_file_part(arguments, work_dir))

    small = work_dir / "fits.csv"
    write_reviews_csv(small, rows=arguments.fit_rows, seed=1)
    measure(prepare_command(small, work_dir / "fits-prepared"))
    rates = {}
    for name, data in (("in_memory", small), ("prepared", work_dir / "fits-prepared")):
        finished = subprocess.run(train_command(data, work_dir / f"run-fits-{name}", ["train.epochs=3"]),
                                  cwd=REPOSITORY, env=ENVIRONMENT, capture_output=True, text=True)
        if finished.returncode != 0:
            raise RuntimeError(f"training on {data} exited {finished.returncode}: {finished.stderr[-2000:]}")
        rates[name] = epoch_samples_per_second(finished.stdout, 64)
    results["fits_in_memory"] = {"rows": arguments.fit_rows, "samples_per_second": rates,
                                 "ratio": round(rates["prepared"] / rates["in_memory"], 2)}
    return results


def big_file_part(arguments, work_dir):
    """(a) step 1 of :func:`prepared_training_part`: the ``--csv-gb`` GB file through ``prepare`` and ``train``."""
    results = {}
    big = work_dir / "big.csv"
    started = time.perf_counter()
    rows = write_reviews_csv(big, gigabytes=arguments.csv_gb)
    results["big_file"] = {"rows": rows, "gigabytes": round(big.stat().st_size / 2 ** 30, 2),
                           "generate_seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps({"a": results}), flush=True)
    seconds, peak, _ = measure(prepare_command(big, work_dir / "big-prepared"))
    results["prepare"] = {"seconds": round(seconds, 1), "rows_per_second": round(rows / seconds),
                          "peak_rss_mb": round(peak)}
    big.unlink()  # the shards hold the rows now; the disk is needed for the rest
    print(json.dumps({"a": results}), flush=True)
    command = train_command(work_dir / "big-prepared", work_dir / "big-run",
                            ["train.epochs=1", f"train.max_minutes={arguments.prepared_minutes}"])
    seconds, peak, _ = measure(command, stdout_path=work_dir / "big-run.log")
    output = (work_dir / "big-run.log").read_text()
    metrics = json.loads((work_dir / "big-run" / "metrics.json").read_text())
    results["train_prepared_big"] = {"seconds": round(seconds, 1), "peak_rss_mb": round(peak),
                                     "test_accuracy": round(metrics["model"]["accuracy"], 4),
                                     "test_rows": metrics["num_examples"],
                                     "samples_per_second": epoch_samples_per_second(output, 64, skip_first=False)}
    import shutil
    shutil.rmtree(work_dir / "big-prepared")
    print(json.dumps({"a": results}), flush=True)
    return results
# endregion


# region (e) the other templates through prepare + train, each on a generated file of --other-gb GB
OTHER_OVERRIDES = {  # fixed small settings, auto settings off: the figures are the data path's
    "ner": ["model.units=32", "model.char_features=false", "train.batch_size=64"],
    "translation": ["model.units=32", "model.embedding_dim=32", "model.attention_units=32", "data.level=word",
                    "train.batch_size=64"],
    "text_generation": ["model.units=64", "data.sequence_length=64", "train.batch_size=64"],
    "forecasting": ["model.units=32", "data.input_width=48", "data.horizon=24", "data.season_length=144",
                    "data.test_size=240", "data.validation_size=240", "train.batch_size=64",
                    "data.ets=false"],  # (Holt-Winters with a 144-step season fits for many minutes)
}
PREPARE_SETTINGS = {  # how prepare reads each file; the held-out fractions are carved (a series: steps, at train)
    "forecasting": ["data.time_column=time", "data.covariate_columns=[temperature]"],
}
HEADLINES = {"ner": ("entity F1", lambda metrics: f"{metrics['model']['micro']['f1']:.4g}"),
             "translation": ("BLEU", lambda metrics: f"{metrics['model']['bleu']:.4g}"),
             "text_generation": ("loss (nats/char)", lambda metrics: f"{metrics['model']['loss']:.4g}"),
             "forecasting": ("MAE", lambda metrics: f"{metrics['model']['mae']:.4g} (seasonal naive "
                                                    f"{metrics['baselines']['seasonal_naive']['mae']:.4g})")}
FITS_STEPS = 200_000  # (e) forecasting: the series that fits, trained in memory and prepared


def write_generated(path, task, gigabytes, seed=0, pool=20_000):
    """A file of ``gigabytes`` GB for ``task``: lines drawn from a pool of generated examples; returns its examples."""
    sys.path.insert(0, str(REPOSITORY))
    from seq_templates.data import synthetic

    generator = random.Random(seed)
    if task == "forecasting":
        return write_series(path, gigabytes=gigabytes, seed=seed)
    if task == "ner":
        sentences = [synthetic.ner_sentence(generator) for _ in range(pool)]
        examples = ["".join(f"{token} {tag}\n" for token, tag in zip(*sentence)) + "\n" for sentence in sentences]
    elif task == "translation":
        examples = ["{}\t{}\n".format(*synthetic.date_example(generator)) for _ in range(pool)]
    else:
        examples = [synthetic.play_text(num_speeches=20, seed=index) + "\n" for index in range(pool // 20)]
    limit, size, written = int(gigabytes * 2 ** 30), 0, 0
    with open(path, "w", encoding="utf-8") as handle:
        while size < limit:
            block = "".join(generator.choices(examples, k=10_000))
            handle.write(block)
            size += len(block.encode("utf-8"))
            written += 10_000
    return written


def write_series(path, gigabytes=None, steps=None, seed=0, block=1_000_000):
    """A CSV ``time,load,temperature`` every 10 minutes (1990 on: 0.25 GB reaches the 2150s, within pandas'
    dates) of ``gigabytes`` GB (or ``steps`` rows): a daily and a weekly season, a slow trend, a
    temperature covariate that moves the load, noise; returns its rows."""
    import numpy as np
    import pandas

    generator, written, size = np.random.default_rng(seed), 0, 0
    limit = int(gigabytes * 2 ** 30) if gigabytes else None
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("time,load,temperature\n")
        while (limit and size < limit) or (steps and written < steps):
            count = block if not steps else min(block, steps - written)
            days = np.arange(written, written + count) / 144  # 144 steps a day
            temperature = 12 + 8 * np.sin(2 * np.pi * (days - 0.375)) + generator.normal(0, 2, count)
            load = (100 + 20 * np.sin(2 * np.pi * days) + 10 * (days % 7 < 5) + days * 1e-3
                    + 0.8 * temperature + generator.normal(0, 3, count))
            times = pandas.Timestamp("1990-01-01") + pandas.to_timedelta(np.arange(written, written + count) * 10,
                                                                         unit="min")
            text = pandas.DataFrame({"time": times.strftime("%Y-%m-%d %H:%M"), "load": load.round(2),
                                     "temperature": temperature.round(1)}).to_csv(index=False, header=False)
            handle.write(text)
            size += len(text)
            written += count
    return written


def forecasting_fits_part(work_dir, overrides):
    """(e) forecasting on a series that fits: samples/s in memory and streamed from its prepared folder."""
    source = work_dir / "series-fits.csv"
    write_series(source, steps=FITS_STEPS, seed=1)
    folder = work_dir / "series-fits-prepared"
    measure([sys.executable, "-m", "seq_templates.cli", "prepare", "forecasting", "--data", str(source), "--output",
             str(folder), *sum((["--set", item] for item in PREPARE_SETTINGS["forecasting"]), [])])
    rates = {}
    for name, data, settings in (("in_memory", source, PREPARE_SETTINGS["forecasting"]), ("prepared", folder, [])):
        settings = [*settings, *overrides, "train.epochs=3", "train.max_minutes=30", "train.early_stopping_patience=0"]
        finished = subprocess.run([sys.executable, "-m", "seq_templates.cli", "train", "forecasting", "--data",
                                   str(data), "--output-dir", str(work_dir / f"series-fits-run-{name}"),
                                   *sum((["--set", item] for item in settings), [])],
                                  cwd=REPOSITORY, env=ENVIRONMENT, capture_output=True, text=True)
        if finished.returncode != 0:
            raise RuntimeError(f"training on {data} exited {finished.returncode}: {finished.stderr[-2000:]}")
        rates[name] = epoch_samples_per_second(finished.stdout, 64)
    return {"steps": FITS_STEPS, "samples_per_second": rates, "ratio": round(rates["prepared"] / rates["in_memory"], 2)}


def other_templates_part(arguments, work_dir):
    """(e) ``prepare`` then ``train`` (one epoch cut by ``--prepared-minutes``) for each of ``--other-tasks``."""
    results = {}
    extensions = {"ner": "conll", "translation": "tsv", "text_generation": "txt", "forecasting": "csv"}
    for task in arguments.other_tasks:
        source = work_dir / f"{task}.{extensions[task]}"
        started = time.perf_counter()
        examples = write_generated(source, task, arguments.other_gb)
        result = {"gigabytes": round(source.stat().st_size / 2 ** 30, 2), "examples": examples,
                  "generate_seconds": round(time.perf_counter() - started, 1)}
        folder = work_dir / f"{task}-prepared"
        seconds, peak, _ = measure([sys.executable, "-m", "seq_templates.cli", "prepare", task, "--data", str(source),
                                    "--output", str(folder), "--set", "data.validation_fraction=0.05",
                                    "--set", "data.test_fraction=0.05",
                                    *sum((["--set", item] for item in PREPARE_SETTINGS.get(task, [])), [])])
        manifest = json.loads((folder / "prepared.json").read_text())
        result["prepare"] = {"seconds": round(seconds, 1), "peak_rss_mb": round(peak), "rows": (
            {"steps": manifest["steps"], "records": manifest["records"], "shards": len(manifest["shards"])}
            if task == "forecasting" else {name: split["rows"] for name, split in manifest["splits"].items()})}
        source.unlink()
        run = work_dir / f"{task}-run"
        overrides = ["train.auto_settings=false", "train.epochs=1", f"train.max_minutes={arguments.prepared_minutes}",
                     "train.tensorboard=false", "train.verbose=2", "train.backup_every_steps=0",
                     *OTHER_OVERRIDES[task]]
        seconds, peak, _ = measure([sys.executable, "-m", "seq_templates.cli", "train", task, "--data", str(folder),
                                    "--output-dir", str(run), *sum((["--set", item] for item in overrides), [])],
                                   stdout_path=work_dir / f"{task}-run.log")
        output = (work_dir / f"{task}-run.log").read_text()
        name, headline = HEADLINES[task]
        metrics = json.loads((run / "metrics.json").read_text())
        result["train"] = {"seconds": round(seconds, 1), "peak_rss_mb": round(peak), "settings": " ".join(overrides),
                           "samples_per_second": epoch_samples_per_second(output, 64, skip_first=False),
                           "test": f"{name} {headline(metrics)}"}
        import shutil
        shutil.rmtree(folder)
        shutil.rmtree(run)
        if task == "forecasting":
            print(json.dumps({"e": {task: result}}), flush=True)
            result["fits_in_memory"] = forecasting_fits_part(work_dir, OTHER_OVERRIDES[task] + [
                "train.auto_settings=false", "train.tensorboard=false", "train.verbose=2",
                "train.backup_every_steps=0"])
        results[task] = result
        print(json.dumps({"e": {task: result}}), flush=True)
    return results
# endregion


# region (b) 1 vs 2 local workers: samples/s (on 2 cores this measures overhead, not speed-up)
WORKERS_OVERRIDES = ["data.max_train_samples=4000", "model.units=32", "model.embedding_dim=32", "train.batch_size=64",
                     "train.epochs=4", "train.bucket_boundaries=[]", "train.early_stopping_patience=0",
                     "train.restore_best_weights=false", "train.tensorboard=false", "train.verbose=2"]
EPOCH_LINE = re.compile(r"^(?:\[worker 0\] )?(\d+)/\d+ - \S+ - ([\d.]+)(ms|s)/step", re.MULTILINE)


def workers_part(arguments, work_dir):
    """(b) The sentiment template in one process and as ``launch --workers 2``: training samples/s.

    ``train.batch_size`` is the global batch, so both take the same steps; samples/s is the batch
    over Keras's time per step, the median over the epochs after the first (which traces the graph).
    """
    def samples_per_second(output):
        steps = [float(value) / (1000.0 if unit == "ms" else 1.0) for _, value, unit in EPOCH_LINE.findall(output)]
        if len(steps) < 2:
            raise RuntimeError(f"no epoch lines in the output: {output[-2000:]}")
        return round(64 / sorted(steps[1:])[len(steps[1:]) // 2])

    settings = sum((["--set", item] for item in WORKERS_OVERRIDES), [])
    results = {"settings": " ".join(WORKERS_OVERRIDES)}
    for workers in (1, 2):
        prefix = ["launch", "--workers", str(workers), "--"] if workers > 1 else []
        command = [sys.executable, "-m", "seq_templates.cli", *prefix, "train", "sentiment", "--output-dir",
                   str(work_dir / f"workers-{workers}"), *settings]
        started = time.perf_counter()
        finished = subprocess.run(command, cwd=REPOSITORY, env=ENVIRONMENT, capture_output=True, text=True)
        if finished.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {finished.returncode}: {finished.stderr[-2000:]}")
        results[f"workers_{workers}"] = {"samples_per_second": samples_per_second(finished.stdout),
                                         "wall_seconds": round(time.perf_counter() - started, 1)}
    results["ratio"] = round(results["workers_2"]["samples_per_second"] / results["workers_1"]["samples_per_second"], 2)
    return results
# endregion


def predict_file_part(arguments, work_dir):
    """(c) ``seq-templates predict --input-file F --output-file G`` on the generated sentences.

    The same command on the first 100 sentences gives the peak RSS that does not depend on the
    file (Python, TensorFlow, the export, a batch).
    """
    def command(inputs, output):
        return [sys.executable, "-m", "seq_templates.cli", "predict", str(arguments.run_dir), "--input-file",
                str(inputs), "--output-file", str(output), "--batch-size", str(arguments.batch_size)]

    _, small_rss, _ = measure(command(arguments.small_file, work_dir / "predict-small.jsonl"))
    output = work_dir / "predict.jsonl"
    seconds, peak_rss, stderr = measure(command(arguments.sentences_file, output))
    lines = count_lines([output])
    if lines != arguments.sentences:
        raise RuntimeError(f"predict wrote {lines} lines for {arguments.sentences} sentences")
    summary = re.search(r"predict: ([\d,]+) inputs in (\d+):(\d\d):(\d\d) \(([\d,]+) inputs/s\)", stderr)
    reported = int(summary.group(5).replace(",", "")) if summary else None
    return {"command": " ".join(["seq-templates", *command(arguments.sentences_file, output)[3:]]),
            "sentences": lines, "seconds": round(seconds, 1), "sentences_per_second": round(lines / seconds),
            "reported_sentences_per_second": reported, "peak_rss_mb": round(peak_rss),
            "peak_rss_mb_on_100_sentences": round(small_rss)}


def beam_part(arguments, work_dir):
    """(d) the Beam pipeline (RunInference) on the DirectRunner on the same file."""
    if importlib.util.find_spec("apache_beam") is None:
        return {"skipped": "apache-beam is not installed (pip install '.[beam]')"}

    def command(inputs, output):
        return [sys.executable, "-m", "seq_templates.beam", "--run", str(arguments.run_dir), "--input", str(inputs),
                "--output", str(output), "--batch-size", str(arguments.batch_size), "--runner", "DirectRunner"]

    _, small_rss, _ = measure(command(arguments.small_file, work_dir / "beam-small.jsonl"))
    output = work_dir / "beam.jsonl"
    seconds, peak_rss, _ = measure(command(arguments.sentences_file, output))
    lines = count_lines([output])
    if lines != arguments.sentences:
        raise RuntimeError(f"the pipeline wrote {lines} lines for {arguments.sentences} sentences")
    return {"command": " ".join(["python", *command(arguments.sentences_file, output)[1:]]),
            "apache_beam": importlib.metadata.version("apache-beam"), "sentences": lines, "seconds": round(seconds, 1),
            "sentences_per_second": round(lines / seconds), "peak_rss_mb": round(peak_rss),
            "peak_rss_mb_on_100_sentences": round(small_rss)}


PARTS = {"a": prepared_training_part, "b": workers_part, "c": predict_file_part, "d": beam_part,
         "e": other_templates_part}
TITLES = {"a": "(a) data larger than memory", "b": "(b) 1 vs 2 local workers",
          "c": "(c) `predict --input-file --output-file`", "d": "(d) Beam RunInference, DirectRunner",
          "e": "(e) the other templates through prepare"}


def format_section(command, results, run_description, sentences):
    """The Markdown section of docs/benchmarks.md."""
    lines = [BEGIN_MARKER, "## Scale-out (benchmarks/scaling.py)", "",
             f"`{command}` on {datetime.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} CPUs "
             f"(load average {os.getloadavg()[0]:.1f} at the end; other processes share the cores); "
             f"Python {platform.python_version()}.", ""]
    if "a" in results and "big_file" in results["a"]:
        part = results["a"]
        big, prepare, trained = part["big_file"], part["prepare"], part["train_prepared_big"]
        lines += [f"Data larger than memory, sentiment ({part['settings']}): a generated CSV of "
                  f"{big['gigabytes']} GB ({big['rows']:,} reviews of four sentences):", "",
                  "| step | seconds | peak RSS | figures |", "|---|---|---|---|",
                  f"| `seq-templates prepare` (5 % validation, 5 % test, capped at about 50,000 rows each) | "
                  f"{prepare['seconds']} | {prepare['peak_rss_mb']:,} MB | {prepare['rows_per_second']:,} rows/s |",
                  f"| `train --data PREPARED` (the first epoch, cut by the budget; evaluation, TF-IDF baseline "
                  f"and export included) | {trained['seconds']} | {trained['peak_rss_mb']:,} MB | "
                  f"{trained['samples_per_second']:,} training samples/s; test accuracy {trained['test_accuracy']} "
                  f"on {trained['test_rows']:,} rows |", ""]
    if "a" in results:
        fits = results["a"]["fits_in_memory"]
        lines += [f"Streamed against in memory on a file that fits ({fits['rows']:,} rows of the same kind, 3 "
                  f"epochs each, the median epoch after the first): in memory "
                  f"{fits['samples_per_second']['in_memory']:,} samples/s, prepared and streamed "
                  f"{fits['samples_per_second']['prepared']:,} samples/s: ratio **{fits['ratio']}**.", ""]
    if "e" in results:
        lines += ["The other templates, each on a generated file (one epoch of training, cut by the budget; "
                  "evaluation and export included):", "",
                  "| template | file | prepare: seconds, peak RSS | train: seconds, peak RSS | samples/s | test |",
                  "|---|---|---|---|---|---|"]
        for task, result in results["e"].items():
            lines.append(f"| {task} | {result['gigabytes']} GB, {result['examples']:,} examples | "
                         f"{result['prepare']['seconds']} s, {result['prepare']['peak_rss_mb']:,} MB | "
                         f"{result['train']['seconds']} s, {result['train']['peak_rss_mb']:,} MB | "
                         f"{result['train']['samples_per_second']:,} | {result['train']['test']} |")
        lines.append("")
    if "b" in results:
        workers = results["b"]
        lines += [f"Training, sentiment ({workers['settings']}), `train.batch_size` the global batch:", "",
                  "| layout | training samples/s (median epoch after the first) | wall seconds (start-up included) |",
                  "|---|---|---|",
                  f"| one process | {workers['workers_1']['samples_per_second']:,} | "
                  f"{workers['workers_1']['wall_seconds']} |",
                  f"| `launch --workers 2` | {workers['workers_2']['samples_per_second']:,} | "
                  f"{workers['workers_2']['wall_seconds']} |", "",
                  f"Two workers at {workers['ratio']}x one process's rate. Both workers share the same 2 CPU cores "
                  "and talk over loopback, so this measures the collectives' overhead, not a speed-up: on "
                  "separate machines or GPUs each worker computes half of every batch.", ""]
    scoring = [part for part in ("c", "d") if part in results]
    if scoring:
        lines += [f"Batch scoring: {sentences:,} generated sentences, {run_description}.", "",
                  "| part | sentences/s (end to end) | sentences/s (predict's own, after loading) | seconds "
                  "| peak RSS | peak RSS on 100 sentences |", "|---|---|---|---|---|---|"]
        for part in scoring:
            result = results[part]
            if "skipped" in result:
                lines.append(f"| {TITLES[part]} | skipped: {result['skipped']} | | | | |")
                continue
            reported = result.get("reported_sentences_per_second")
            lines.append(f"| {TITLES[part]} | {result['sentences_per_second']:,} | "
                         f"{f'{reported:,}' if reported else '-'} | {result['seconds']} | "
                         f"{result['peak_rss_mb']:,} MB | {result['peak_rss_mb_on_100_sentences']:,} MB |")
        lines += ["", "End to end includes starting Python, importing TensorFlow and loading the export "
                      "(and, for Beam, building the pipeline)."]
    lines.append(END_MARKER)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=sorted(PARTS), choices=sorted(PARTS),
                        help="the parts to run (default: all there are)")
    parser.add_argument("--run", metavar="RUN", help="a sentiment run directory (default: train a quick one)")
    parser.add_argument("--sentences", type=int, default=1_000_000, help="generated sentences to score")
    parser.add_argument("--batch-size", type=int, default=512, help="inputs per call of the export")
    parser.add_argument("--output", default=str(REPOSITORY / "docs" / "benchmarks.md"))
    parser.add_argument("--write", action="store_true", help="write the section into --output")
    parser.add_argument("--csv-gb", type=float, default=5.0,
                        help="(a) the generated CSV's size in GB (0: only the file that fits)")
    parser.add_argument("--prepared-minutes", type=float, default=4.0,
                        help="(a) training minutes on the prepared big file (the first epoch, cut)")
    parser.add_argument("--fit-rows", type=int, default=100_000, help="(a) rows of the file that fits in memory")
    parser.add_argument("--other-gb", type=float, default=2.0, help="(e) each generated file's size in GB")
    parser.add_argument("--other-tasks", nargs="+", default=["ner", "translation", "text_generation"],
                        choices=["ner", "translation", "text_generation", "forecasting"], help="(e) the templates")
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scaling-benchmark-") as folder:
        work_dir = pathlib.Path(folder)
        results = {}
        if {"c", "d"} & set(arguments.parts):
            arguments.run_dir = pathlib.Path(arguments.run) if arguments.run else train_quick_run(work_dir)
            arguments.sentences_file = write_sentences(work_dir / "sentences.txt", arguments.sentences)
            arguments.small_file = write_sentences(work_dir / "sentences-100.txt", 100)  # the same first 100
        for part in arguments.parts:
            results[part] = PARTS[part](arguments, work_dir)
            print(json.dumps({part: results[part]}), flush=True)
    command = "flock /tmp/seq_cpu.lock python benchmarks/scaling.py " + " ".join(argv or sys.argv[1:])
    run_description = (f"run {arguments.run}" if arguments.run else
                       f"a quick sentiment run trained by the benchmark ({' '.join(QUICK_OVERRIDES)})")
    section = format_section(command.strip(), results, run_description, arguments.sentences)
    print(section)
    if arguments.write:
        report.write_section(arguments.output, section, BEGIN_MARKER, END_MARKER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
