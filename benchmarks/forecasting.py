"""Forecasting benchmark: RNN variants beside naive, seasonal-naive, moving-average and ETS forecasts.

Each run trains the forecasting template exactly as ``seq-templates train forecasting --dataset NAME``
does (the dataset's preset in ``apps/forecasting/configs/NAME.yaml``, plus the variant's ``--set``
overrides), scores a rolling-origin backtest on the held-out end of the series, and times training
(windows per second over the epochs run, validation included) and inference through the exported
SavedModel (windows per second, batches of 512). Quality figures are medians over seeds; the
baselines are deterministic.

Targets (issue 9):
- airline_passengers, last 24 months held out, horizon 12: the RNN's MASE below seasonal naive, and
  within reach of ETS.
- daily_min_temperatures, last year held out, horizons 1 and 7: MAE at horizon 1 >= 10 % below
  persistence (the naive forecast).
- beijing_pm25 with weather covariates, horizon 24: MAE >= 10 % below the better of persistence and
  the 24-hour seasonal naive.

Usage:
    SEQ_TEMPLATES_DATA=../shared/data python benchmarks/forecasting.py [--datasets airline_passengers ...]

Results of every run are kept in ``--results`` (JSON), so datasets can be run one at a time; the
section of docs/benchmarks.md between this benchmark's markers is rewritten from all of them.
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
import report  # noqa: E402  (benchmarks/report.py, beside this script)

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
BEGIN_MARKER = "<!-- forecasting benchmark: begin -->"
END_MARKER = "<!-- forecasting benchmark: end -->"
QUIET = ["train.verbose=0", "train.tensorboard=false"]

# Per dataset: (variant label, --set overrides on top of the preset). The first is the preset itself.
VARIANTS = {
    "airline_passengers": [
        ("GRU-32 direct, residual to seasonal naive (preset)", []),
        ("LSTM-32 direct, residual to seasonal naive", ["model.cell=lstm"]),
        ("GRU-32 autoregressive, residual to seasonal naive, 100 epochs",
         ["model.architecture=autoregressive", "train.epochs=100"]),
        ("LSTM-32 encoder-decoder, residual to seasonal naive", ["model.architecture=encoder_decoder",
                                                                 "model.cell=lstm"]),
    ],
    "daily_min_temperatures": [
        ("LSTM-32 direct, horizon 7 (preset)", []),
        ("GRU-32 autoregressive, horizon 7", ["model.architecture=autoregressive", "model.cell=gru"]),
        ("LSTM-32 single-step, horizon 1", ["model.architecture=single_step", "data.horizon=1"]),
    ],
    "beijing_pm25": [
        ("GRU-64 direct + covariates (preset)", []),
        ("LSTM-64 encoder-decoder + covariates", ["model.architecture=encoder_decoder", "model.cell=lstm"]),
    ],
}
TARGETS = {
    "airline_passengers": "MASE below seasonal naive and within reach of ETS",
    "daily_min_temperatures": "MAE at horizon 1 at least 10 % below persistence (naive)",
    "beijing_pm25": "MAE at least 10 % below the better of persistence (naive) and 24-hour seasonal naive",
}


def run_once(app, dataset, overrides, seed, work_dir, with_ets):
    """Trains one run; returns its record (metrics, timings, throughputs)."""
    output_dir = pathlib.Path(tempfile.mkdtemp(dir=work_dir)) / "run"
    sets = [*QUIET, f"train.seed={seed}", *overrides] + ([] if with_ets else ["data.ets=false"])
    started = time.perf_counter()
    status = app.main(["--dataset", dataset, "--output-dir", str(output_dir),
                       *sum((["--set", item] for item in sets), [])])
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{dataset} {overrides} seed {seed}: training failed with status {status}")
    metrics = json.loads((output_dir / "metrics.json").read_text())
    history = json.loads((output_dir / "history.json").read_text())
    config = config_module.load(app.CONFIG_SECTIONS, output_dir / "config.yaml")
    raw = app.load_raw_data(config["data"])
    train_windows = len(raw["train"])  # a windows.WindowSplit counts its windows
    epoch_seconds = history.get("epoch_seconds", [])
    function, _ = export.load_serving_function(output_dir)
    predict = export.batch_predictor(function)
    inputs = {name: np.concatenate([values] * max(1, 4096 // len(values)))
              for name, values in raw["test"].inputs.items()}
    predict({name: values[:512] for name, values in inputs.items()})  # warm-up
    inference_started = time.perf_counter()
    predict(inputs)
    inference_seconds = time.perf_counter() - inference_started
    return {"dataset": dataset, "overrides": overrides, "seed": seed, "seconds": seconds,
            "epochs": len(epoch_seconds), "epoch_seconds": epoch_seconds, "train_windows": train_windows,
            "train_windows_per_second": train_windows * len(epoch_seconds) / max(sum(epoch_seconds), 1e-9),
            "inference_windows_per_second": len(next(iter(inputs.values()))) / inference_seconds,
            "metrics": metrics}


def median(values):
    return statistics.median(values) if values else float("nan")


def dataset_section(dataset, records):
    """One table: each variant (medians over seeds) beside every baseline."""
    lines = [f"### {dataset}", ""]
    first = records[0]["metrics"]
    horizon = first["horizon"]
    lines += [f"Test backtest: {first['num_origins']} rolling origins, horizon {horizon}, season "
              f"{first['season_length']}, frequency {first['frequency']}; missing values: "
              f"{first['missing_values']['filled_values'] or 'none'} filled ({first['missing_values']['policy']}), "
              f"{first['missing_values']['rows_added_for_gaps']} rows added for gaps. Target: {TARGETS[dataset]}.", ""]
    lines += ["| forecaster | seeds | MAE | RMSE | MASE | sMAPE % | MAE h=1 | MAE h=last | epochs | s/epoch "
              "| train windows/s | inference windows/s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, overrides in VARIANTS[dataset]:
        runs = [record for record in records if record["overrides"] == overrides]
        if not runs:
            continue
        model = [run["metrics"]["model"] for run in runs]
        cell = lambda key: median([item[key] for item in model])  # noqa: E731
        lines.append(
            f"| {label} | {len(runs)} | {cell('mae'):.3f} | {cell('rmse'):.3f} | {cell('mase'):.3f} | "
            f"{cell('smape'):.2f} | {median([item['mae_by_horizon'][0] for item in model]):.3f} | "
            f"{median([item['mae_by_horizon'][-1] for item in model]):.3f} | "
            f"{median([run['epochs'] for run in runs]):.0f} | "
            f"{median([median(run['epoch_seconds']) for run in runs]):.2f} | "
            f"{median([run['train_windows_per_second'] for run in runs]):.0f} | "
            f"{median([run['inference_windows_per_second'] for run in runs]):.0f} |")
    for horizon_records in _baseline_sources(records):
        baselines = horizon_records["metrics"]["baselines"]
        record_horizon = horizon_records["metrics"]["horizon"]
        suffix = f" (horizon {record_horizon})" if record_horizon != horizon else ""
        for name, values in baselines.items():
            lines.append(f"| baseline: {name.replace('_', ' ')}{suffix} | - | {values['mae']:.3f} | "
                         f"{values['rmse']:.3f} | "
                         f"{values['mase']:.3f} | {values['smape']:.2f} | {values['mae_by_horizon'][0]:.3f} | "
                         f"{values['mae_by_horizon'][-1]:.3f} | - | - | - | - |")
    lines += ["", *verdicts(dataset, records), ""]
    return lines


def _baseline_sources(records):
    """One record per horizon that carries the ETS baseline (the first run of each horizon)."""
    chosen = {}
    for record in records:
        key = record["metrics"]["horizon"]
        if key not in chosen or ("ets" in record["metrics"]["baselines"]
                                 and "ets" not in chosen[key]["metrics"]["baselines"]):
            chosen[key] = record
    return [chosen[key] for key in sorted(chosen, reverse=True)]


def verdicts(dataset, records):
    """Says, per variant, whether the issue's target is met (medians over seeds)."""
    lines = []
    for label, overrides in VARIANTS[dataset]:
        runs = [record for record in records if record["overrides"] == overrides]
        if not runs:
            continue
        baselines = runs[0]["metrics"]["baselines"]
        model = [run["metrics"]["model"] for run in runs]
        if dataset == "airline_passengers":
            mase = median([item["mase"] for item in model])
            ets = next((record["metrics"]["baselines"]["ets"]["mase"] for record in records
                        if "ets" in record["metrics"]["baselines"]), float("nan"))
            ets_first = next((record["metrics"]["baselines"]["ets"]["mae_by_horizon"][0] for record in records
                              if "ets" in record["metrics"]["baselines"]), float("nan"))
            first = median([item["mae_by_horizon"][0] for item in model])
            met = mase < baselines["seasonal_naive"]["mase"]
            lines.append(f"- {label}: MASE {mase:.3f} (seeds {min(item['mase'] for item in model):.3f} to "
                         f"{max(item['mase'] for item in model):.3f}) vs seasonal naive "
                         f"{baselines['seasonal_naive']['mase']:.3f} ({'met' if met else 'NOT met'}); ETS {ets:.3f} "
                         f"({'ETS is better' if ets < mase else 'the RNN is better'} overall, ratio {mase / ets:.2f}); "
                         f"at h=1 {'ETS wins' if ets_first < first else 'the RNN wins'} (MAE {ets_first:.1f} vs "
                         f"{first:.1f}). Only 13 origins: read differences between forecasters as rough.")
        elif dataset == "daily_min_temperatures":
            mae = median([item["mae_by_horizon"][0] for item in model])
            naive = baselines["naive"]["mae_by_horizon"][0]
            lines.append(f"- {label}: MAE at h=1 {mae:.3f} vs persistence {naive:.3f}: "
                         f"{100 * (1 - mae / naive):.1f} % lower ({'met' if mae <= 0.9 * naive else 'NOT met'}).")
        else:
            mae = median([item["mae"] for item in model])
            best = min(baselines["naive"]["mae"], baselines["seasonal_naive"]["mae"])
            lines.append(f"- {label}: MAE {mae:.3f} vs the better of persistence and seasonal naive {best:.3f}: "
                         f"{100 * (1 - mae / best):.1f} % lower ({'met' if mae <= 0.9 * best else 'NOT met'}).")
    return lines


def section(records, command):
    commands = list(dict.fromkeys(record.get("command", command) for record in records))
    lines = [BEGIN_MARKER, "## Forecasting", ""]
    lines += ["Commands (each adds its runs to the results file; the tables use all of them):", ""]
    lines += [f"    {item}" for item in commands] + ["", f"Date: {datetime.date.today().isoformat()}; machine: "
              f"{os.cpu_count()} CPU cores shared with other jobs, {platform.machine()}, Python "
              f"{platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}. Timings were "
              "taken while other benchmarks and tests ran on the same cores: read them as conservative.", "",
              "Every forecaster is scored on the same rolling origins of the held-out end of the series "
              "(MASE is scaled by the in-sample seasonal-naive MAE of the training part; sMAPE in %). Model rows "
              "are medians over seeds; train windows/s counts training windows over the epochs run "
              "(validation included); inference windows/s runs the exported SavedModel on raw windows.", ""]
    for dataset in VARIANTS:
        dataset_records = [record for record in records if record["dataset"] == dataset]
        if dataset_records:
            lines += dataset_section(dataset, dataset_records)
    lines.append(END_MARKER)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 2024])
    parser.add_argument("--variants", type=int, nargs="+", help="indexes into each dataset's variants (0: preset)")
    parser.add_argument("--results", default=str(pathlib.Path(tempfile.gettempdir()) / "forecasting_benchmark.json"))
    parser.add_argument("--output", default=str(REPOSITORY / "docs" / "benchmarks.md"))
    parser.add_argument("--report-only", action="store_true", help="rewrite the section from --results")
    arguments = parser.parse_args(argv)
    if not os.environ.get("SEQ_TEMPLATES_DATA"):
        raise SystemExit("Set SEQ_TEMPLATES_DATA to the folder of the shared datasets (e.g. ../shared/data).")
    results_path = pathlib.Path(arguments.results)
    records = json.loads(results_path.read_text()) if results_path.is_file() else []
    app = apps_loader.load_app("forecasting")
    command = "SEQ_TEMPLATES_DATA=../shared/data python benchmarks/forecasting.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    if not arguments.report_only:
        with tempfile.TemporaryDirectory() as work_dir:
            for dataset in arguments.datasets:
                for index, (label, overrides) in enumerate(VARIANTS[dataset]):
                    if arguments.variants is not None and index not in arguments.variants:
                        continue
                    for position, seed in enumerate(arguments.seeds):
                        print(f"== {dataset} | {label} | seed {seed}", flush=True)
                        record = run_once(app, dataset, overrides, seed, work_dir, with_ets=position == 0)
                        record["command"] = command
                        records = [item for item in records if (item["dataset"], item["overrides"], item["seed"])
                                   != (dataset, overrides, seed)] + [record]
                        results_path.write_text(json.dumps(records, indent=1))
                        model = record["metrics"]["model"]
                        print(f"   MAE {model['mae']:.3f} (h=1 {model['mae_by_horizon'][0]:.3f}) MASE "
                              f"{model['mase']:.3f} in {record['seconds']:.0f} s", flush=True)
    text = section(records, command.strip())
    report.write_section(arguments.output, text, BEGIN_MARKER, END_MARKER)
    print(text)


if __name__ == "__main__":
    main()
