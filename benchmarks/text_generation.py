"""Text-generation benchmark on tiny Shakespeare (char level): quality in a time budget, and generation speed.

Quality: trains the template exactly as ``seq-templates train text_generation --dataset
tiny_shakespeare`` does (which applies ``apps/text_generation/configs/tiny_shakespeare.yaml``:
GRU-512, independent windows, 20 minutes of training), reports the validation loss curve against
wall-clock minutes (target: <= 1.50 nats/char within 20 minutes on the 2-core CPU), the test loss
and bits per character beside the add-k n-gram baseline, and the same budget with
``train.stateful=true`` (truncated BPTT with carried state).

Speed: with the windows run, characters per second of the exported in-graph ``generate``
signature (one prompt, 500 characters, the state carried step to step) against a Python loop that
calls ``model.predict`` on the growing prefix and samples in NumPy, as many tutorials do (target:
>= 50x).

Usage:
    SEQ_TEMPLATES_DATA=../shared/data flock /tmp/seq_cpu.lock python benchmarks/text_generation.py
    python benchmarks/text_generation.py --windows-run RUN --stateful-run RUN   # report finished runs

Results are written to docs/benchmarks.md (the section between this benchmark's markers is
replaced), the curve to docs/text_generation_curves.png, and printed.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from seq_templates import apps_loader  # noqa: E402
from seq_templates import config as config_module  # noqa: E402
from seq_templates import export  # noqa: E402
from seq_templates.preprocessing import state  # noqa: E402
import report  # noqa: E402  (benchmarks/report.py, beside this script)

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
BEGIN_MARKER = "<!-- text_generation benchmark: begin -->"
END_MARKER = "<!-- text_generation benchmark: end -->"
TARGET_LOSS = 1.50
COMMAND = "seq-templates train text_generation --dataset tiny_shakespeare"


def train(output_dir, extra_sets, log_path):
    """Runs the training command in a subprocess (the preset applies), logging to ``log_path``."""
    command = [sys.executable, "-m", "seq_templates.cli", "train", "text_generation", "--dataset",
               "tiny_shakespeare", "--output-dir", str(output_dir), "--set", "train.verbose=2",
               *sum((["--set", item] for item in extra_sets), [])]
    with open(log_path, "w", encoding="utf-8") as log:
        status = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
    if status != 0:
        raise SystemExit(f"training failed with status {status}; see {log_path}")


def summarize(run):
    """Curve and metrics of a finished run."""
    history = json.loads((run / "history.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    minutes = np.cumsum(history["epoch_seconds"]) / 60.0
    reached = [float(minute) for minute, loss in zip(minutes, history["val_loss"]) if loss <= TARGET_LOSS]
    return {"run": str(run), "minutes": minutes.tolist(), "val_loss": history["val_loss"],
            "epoch_seconds": history["epoch_seconds"], "best_val_loss": min(history["val_loss"]),
            "final_val_loss": history["val_loss"][-1], "minutes_to_target": reached[0] if reached else None,
            "train_minutes": float(minutes[-1]), "test": metrics["model"], "baseline": metrics["baseline"],
            "sample": metrics["samples"].get("temperature_0.8") or metrics["samples"].get("serving_default"),
            "test_long_context": metrics.get("model_long_context")}


def speed(run, num_characters=500, repeats=3, prompt="ROMEO:\n"):
    """Characters per second: the export's in-graph ``generate`` vs. ``model.predict`` on the growing prefix."""
    app = apps_loader.load_app("text_generation")
    config = config_module.load(app.CONFIG_SECTIONS, run / "config.yaml")
    preprocessing = state.load(run / "preprocessing.json")
    generate, _ = export.load_serving_function(run, "generate")
    inputs = {"prompt": tf.constant([prompt]), "max_length": tf.constant(num_characters),
              "temperature": tf.constant(0.8), "top_k": tf.constant(0), "top_p": tf.constant(1.0)}
    generate(seed=tf.constant(0, tf.int64), **inputs)  # warm-up
    in_graph = []
    for repeat in range(repeats):
        started = time.perf_counter()
        text = generate(seed=tf.constant(repeat, tf.int64), **inputs)["continuation"].numpy()[0].decode()
        in_graph.append(time.perf_counter() - started)
    assert len(text) == num_characters
    saved = keras.saving.load_model(run / "model.keras")
    model = app.build_network(config, preprocessing["token_lookup"].vocabulary_size())
    model.set_weights(saved.get_weights())
    ids = list(app.featurize(preprocessing, config, tf.constant([prompt]))["token_ids"][0].numpy())
    generator = np.random.default_rng(0)
    model.predict({"token_ids": np.array([ids])}, verbose=0)  # warm-up
    started = time.perf_counter()
    for _ in range(num_characters):
        logits = model.predict({"token_ids": np.array([ids])}, verbose=0)[0, -1].astype(np.float64) / 0.8
        logits[:2] = -np.inf
        probabilities = np.exp(logits - logits.max())
        ids.append(int(generator.choice(len(probabilities), p=probabilities / probabilities.sum())))
    loop_seconds = time.perf_counter() - started
    in_graph_seconds = float(np.median(in_graph))
    return {"characters": num_characters, "in_graph_seconds": in_graph_seconds,
            "in_graph_chars_per_second": num_characters / in_graph_seconds,
            "predict_loop_seconds": loop_seconds, "predict_loop_chars_per_second": num_characters / loop_seconds,
            "speedup": loop_seconds / in_graph_seconds, "repeats": repeats}


def plot(runs, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axis = pyplot.subplots(figsize=(6.4, 4.0), dpi=90)
    for name, summary in runs.items():
        axis.plot(summary["minutes"], summary["val_loss"], marker="o", markersize=3, label=f"{name} (validation)")
    baseline = next(iter(runs.values()))["baseline"]
    axis.axhline(baseline["validation_loss"], color="grey", linestyle=":",
                 label=f"{baseline['name']} k={baseline['k']} (validation)")
    axis.axhline(TARGET_LOSS, color="red", linestyle="--", label="target 1.50")
    axis.set_xlabel("training minutes (2-core CPU, shared)")
    axis.set_ylabel("loss, nats per character")
    axis.set_ylim(1.2, 2.2)
    axis.legend()
    axis.set_title("tiny Shakespeare, char level, GRU-512")
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def render(runs, speed_result, budget_note):
    common = min(summary["train_minutes"] for summary in runs.values())
    lines = [BEGIN_MARKER, "## Text generation (tiny Shakespeare, char level)", "",
             f"Command: `SEQ_TEMPLATES_DATA=../shared/data {COMMAND}` (applies "
             "`apps/text_generation/configs/tiny_shakespeare.yaml`: GRU-512, embedding 64, windows of 100 "
             "characters, batch 64, dropout 0.1, Adam 2e-3 with a cosine decay over 22 epochs, gradient clipping 1.0, "
             "early stopping after 3 epochs without improvement (best weights restored), `train.max_minutes: 20`). "
             "Split by position: the last 5% of the text is test, the 5% before it validation.",
             "Benchmark: `SEQ_TEMPLATES_DATA=../shared/data flock /tmp/seq_cpu.lock "
             "python benchmarks/text_generation.py`; "
             f"{datetime.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} CPUs shared with other "
             "jobs (the timings are conservative). One seed per mode. The runs can also be trained separately "
             "with the command (plus `--set train.stateful=true`) and reported with "
             "`--windows-run RUN --stateful-run RUN`.", "",
             f"| training | validation loss ≤ 1.50 after | best validation loss within {common:.1f} min "
             "(the shortest run) | best validation loss | minutes trained | test loss (nats/char) | "
             "test bits/char | test perplexity | test loss, pieces of 1001 characters | seconds/epoch (median) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, summary in runs.items():
        within = min(loss for minute, loss in zip(summary["minutes"], summary["val_loss"]) if minute <= common + 1e-9)
        reached = (f"{summary['minutes_to_target']:.1f} min" if summary["minutes_to_target"] is not None
                   else f"not reached in {summary['train_minutes']:.1f} min")
        test = summary["test"]
        lines.append(f"| {name} | {reached} | {within:.4f} | {summary['best_val_loss']:.4f} | "
                     f"{summary['train_minutes']:.1f} | {test['loss']:.4f} | "
                     f"{test['bits_per_char']:.3f} | {test['perplexity']:.3f} | "
                     f"{(summary.get('test_long_context') or {}).get('loss', float('nan')):.4f} | "
                     f"{np.median(summary['epoch_seconds']):.0f} |")
    baseline = next(iter(runs.values()))["baseline"]
    lines += [f"| n-gram baseline: {baseline['name']}, add-k with k = {baseline['k']} (order and k chosen on "
              f"validation) | — | — | {baseline['validation_loss']:.4f} | — | {baseline['loss']:.4f} | "
              f"{baseline['bits_per_char']:.3f} | {baseline['perplexity']:.3f} | — | — |", ""]
    if budget_note:
        lines += [budget_note, ""]
    lines += ["Validation loss per epoch against training minutes (the last epoch may be cut short by the "
              "budget): ![curves](text_generation_curves.png)", ""]
    for name, summary in runs.items():
        curve = ", ".join(f"{epoch} ({minute:.1f} min): {loss:.3f}" for epoch, (minute, loss)
                          in enumerate(zip(summary["minutes"], summary["val_loss"]), start=1))
        lines.append(f"- {name}, epoch (minutes): validation loss — {curve}")
    lines.append("")
    if speed_result:
        lines += ["Generation speed, same model (the windows run), one prompt, "
                  f"{speed_result['characters']} characters at temperature 0.8: the exported `generate` "
                  "signature (prompt read once, then one step per character with the carried state, inside a "
                  "`tf.while_loop`) against a Python loop calling `model.predict` on the growing prefix.", "",
                  "| method | seconds | characters/second |", "|---|---|---|",
                  f"| exported in-graph `generate` (median of {speed_result['repeats']}) | "
                  f"{speed_result['in_graph_seconds']:.2f} | {speed_result['in_graph_chars_per_second']:.0f} |",
                  f"| `model.predict` on the growing prefix | {speed_result['predict_loop_seconds']:.1f} | "
                  f"{speed_result['predict_loop_chars_per_second']:.1f} |", "",
                  f"Speed-up: **{speed_result['speedup']:.0f}×** (target ≥ 50×).", ""]
    sample = next(iter(runs.values()))["sample"]
    if sample:
        lines += ["A sample at temperature 0.8 (windows run, prompt: the first 20 test characters):", "", "```",
                  sample[:500], "```", ""]
    lines.append(END_MARKER)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows-run", type=pathlib.Path, help="a finished run of the command (else trains one)")
    parser.add_argument("--stateful-run", type=pathlib.Path, help="a finished run with train.stateful=true")
    parser.add_argument("--runs-folder", type=pathlib.Path, default=REPOSITORY / "runs" / "benchmark_text_generation")
    parser.add_argument("--skip-stateful", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--budget-note", default="", help="a sentence added under the table")
    parser.add_argument("--output", default=str(REPOSITORY / "docs" / "benchmarks.md"))
    parser.add_argument("--results", type=pathlib.Path, help="render a results-*.json of an earlier run again")
    arguments = parser.parse_args(argv)
    if arguments.results:
        results = json.loads(arguments.results.read_text())
        results["runs"] = {name: summarize(pathlib.Path(summary["run"])) for name, summary in results["runs"].items()}
        plot(results["runs"], pathlib.Path(arguments.output).parent / "text_generation_curves.png")
        section = render(results["runs"], results["speed"], arguments.budget_note)
        report.write_section(arguments.output, section, BEGIN_MARKER, END_MARKER)
        print(section)
        return 0
    arguments.runs_folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    windows_run = arguments.windows_run
    if windows_run is None:
        windows_run = arguments.runs_folder / f"windows-{stamp}"
        train(windows_run, [], arguments.runs_folder / f"windows-{stamp}.log")
    runs = {"independent windows (preset)": summarize(windows_run)}
    if not arguments.skip_stateful:
        stateful_run = arguments.stateful_run
        if stateful_run is None:
            stateful_run = arguments.runs_folder / f"stateful-{stamp}"
            train(stateful_run, ["train.stateful=true"], arguments.runs_folder / f"stateful-{stamp}.log")
        runs["stateful truncated BPTT (train.stateful=true)"] = summarize(stateful_run)
    speed_result = None if arguments.skip_speed else speed(windows_run)
    plot(runs, pathlib.Path(arguments.output).parent / "text_generation_curves.png")
    section = render(runs, speed_result, arguments.budget_note)
    report.write_section(arguments.output, section, BEGIN_MARKER, END_MARKER)
    (arguments.runs_folder / f"results-{stamp}.json").write_text(json.dumps(
        {"runs": runs, "speed": speed_result}, indent=2))
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
