"""Forecasting-specific behaviour: windows and normalization from the training block only, the
autoregressive rollout, forecasts in original units, covariates, bad input and `predict --input-file`."""

import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq_templates import apps_loader
from seq_templates import cli
from seq_templates import config as config_module
from seq_templates import errors

app = apps_loader.load_app("forecasting")
QUIET = ["train.verbose=0", "train.tensorboard=false", "data.ets=false"]


def quick_config(*overrides):
    return config_module.resolve(app.CONFIG_SECTIONS, [], [*QUIET, *overrides])


def write_series(path, values, start="2021-03-01 00:00", freq="h", extra=None):
    import pandas

    times = pandas.date_range(start, periods=len(values), freq=freq)
    columns = {"when": times.strftime("%Y-%m-%d %H:%M"), "load": values, **(extra or {})}
    pandas.DataFrame(columns).to_csv(path, index=False)
    return path


def file_config(path, *overrides):
    return quick_config("data.dataset=null", f"data.path={path}", "data.time_column=when", "data.input_width=12",
                        "data.horizon=3", "data.test_size=40", "data.validation_size=40", *overrides)


def test_normalization_and_training_windows_use_the_training_block_only(tmp_path):
    values = np.concatenate([np.random.default_rng(0).normal(0.0, 1.0, 220), np.full(80, 1000.0)])
    config = file_config(write_series(tmp_path / "jump.csv", values))
    raw = app.load_raw_data(config["data"])
    assert raw["train"].future.max() < 100 and raw["train"].inputs["targets"].max() < 100
    assert raw["test"].future.min() == 1000.0  # test targets lie wholly in the test block
    preprocessing = app.build_preprocessing(config, raw["train"])
    normalizer = preprocessing["target_normalizer"]
    assert float(np.ravel(normalizer.mean)[0]) == pytest.approx(values[:220].mean(), abs=1e-4)
    assert float(np.ravel(normalizer.variance)[0]) == pytest.approx(values[:220].var(), rel=1e-3)


def test_autoregressive_rollout_equals_step_by_step_calls():
    config = quick_config("model.architecture=autoregressive", "data.horizon=5", "data.input_width=16",
                          "model.units=8", "model.cell=gru")
    raw = app.load_raw_data(config["data"])
    preprocessing = app.build_preprocessing(config, raw["train"])
    model = app.build_model(config, preprocessing)
    targets = raw["test"].inputs["targets"][:6]
    rolled = model({"targets": targets}).numpy()
    one_step = model.get_layer("one_step")
    window = preprocessing["target_normalizer"](targets).numpy()
    steps = []
    for _ in range(5):
        step = one_step([window]).numpy()  # (batch, 1, targets)
        steps.append(step)
        window = np.concatenate([window[:, 1:], step], axis=1)
    np.testing.assert_allclose(rolled, np.concatenate(steps, axis=1), atol=1e-5)


def test_export_takes_raw_windows_and_answers_in_original_units():
    config = quick_config("model.units=8", "model.residual_to=last_value")
    raw = app.load_raw_data(config["data"])
    preprocessing = app.build_preprocessing(config, raw["train"])
    model = app.build_model(config, preprocessing)
    head = model.get_layer("forecast")
    head.set_weights([np.zeros_like(weight) for weight in head.get_weights()])  # forecast = the last value
    _, endpoints, assets = app.build_serving(model, preprocessing, config)
    targets = raw["test"].inputs["targets"][:8]
    forecast = endpoints["serving_default"](targets=tf.constant(targets))["forecast"].numpy()
    assert forecast.shape == (8, 12, 1)
    np.testing.assert_allclose(forecast, np.repeat(targets[:, -1:, :], 12, axis=1), rtol=1e-5, atol=1e-4)


def test_quantiles_covariates_and_categories_through_tf_data_and_serving(tmp_path):
    rng = np.random.default_rng(1)
    values = 50 + 10 * np.sin(np.arange(400) / 4) + rng.normal(0, 1, 400)
    extra = {"temp": rng.normal(10, 3, 400), "wind": rng.choice(["NE", "NW", "cv"], 400)}
    config = file_config(write_series(tmp_path / "multi.csv", values, extra=extra), "data.target_columns=[load]",
                         "data.covariate_columns=[temp, wind]", "model.quantiles=[0.1, 0.5, 0.9]",
                         "model.architecture=encoder_decoder", "model.bidirectional=true", "model.units=8")
    raw = app.load_raw_data(config["data"])
    assert set(raw["test"].inputs) == {"targets", "covariates", "categories"}
    preprocessing = app.build_preprocessing(config, raw["train"])
    model = app.build_model(config, preprocessing)
    features, future = next(iter(app.make_dataset(raw["test"], preprocessing, config)))
    _, endpoints, assets = app.build_serving(model, preprocessing, config)
    assert assets["serving.json"] == {"columns": {"targets": ["load"], "covariates": ["temp"], "categories": ["wind"]},
                                      "frequency": "h", "horizon": 3, "quantiles": [0.1, 0.5, 0.9]}
    count = len(future)
    served = endpoints["serving_default"](**{name: tf.constant(values[:count].astype(str) if values.dtype == object
                                                               else values[:count])
                                             for name, values in raw["test"].inputs.items()})
    assert served["quantiles"].shape == (count, 3, 1, 3)
    np.testing.assert_allclose(served["forecast"].numpy(), served["quantiles"].numpy()[..., 1])
    normalizer = preprocessing["target_normalizer"]
    scale = np.sqrt(np.ravel(normalizer.variance)[0])
    np.testing.assert_allclose(model(features).numpy()[..., 1] * scale + np.ravel(normalizer.mean)[0],
                               served["forecast"].numpy(), rtol=1e-4, atol=1e-3)  # tf.data path == serving
    assert isinstance(model.get_layer("encoder_1"), keras.layers.Bidirectional)


def test_evaluate_scores_what_the_serving_default_predictor_answers(tmp_path):
    config = quick_config("data.horizon=4", "data.input_width=24", "data.backtest_origins=20")
    raw = app.load_raw_data(config["data"])
    seen = []

    def naive(inputs):  # forecasts the last value of each window, as the naive baseline does
        seen.append(sorted(inputs))
        return {"forecast": np.repeat(np.asarray(inputs["targets"])[:, -1:, :], 4, axis=1)}

    metrics = app.evaluate({"serving_default": naive}, raw, config, tmp_path)
    assert seen == [["targets"]] and metrics["num_origins"] == len(raw["test"]) == 20
    assert metrics["model"]["mae"] == pytest.approx(metrics["baselines"]["naive"]["mae"], rel=1e-5)
    assert set(metrics["baselines"]) == {"naive", "seasonal_naive", "moving_average"}  # data.ets=false
    assert metrics["baseline"]["mae"] == min(values["mae"] for values in metrics["baselines"].values())
    assert (tmp_path / "plots" / "forecast.png").stat().st_size > 1000
    assert app.summary(metrics).startswith(f"Test MAE {metrics['model']['mae']:.4f}")


def test_quantile_metrics_and_the_forecast_by_timestamp(tmp_path):
    config = quick_config("data.horizon=2", "data.input_width=24", "model.quantiles=[0.1, 0.5, 0.9]",
                          "data.backtest_origins=10")
    raw = app.load_raw_data(config["data"])

    def interval(inputs):
        last = np.repeat(np.asarray(inputs["targets"])[:, -1:, :], 2, axis=1)
        return {"forecast": last, "lower": last - 1e6, "upper": last + 1e6,
                "quantiles": np.stack([last - 1e6, last, last + 1e6], axis=-1)}

    model = app.evaluate({"serving_default": interval}, raw, config, tmp_path)["model"]
    assert model["coverage"] == 1.0 and model["interval"] == [0.1, 0.9] and model["nominal"] == pytest.approx(0.8)
    record = {"input": {"targets": [[1.0]], "_context": {"input": {"file": "x.csv"}, "targets": ["load"],
                                                           "times": ["t1", "t2"]}},
              "forecast": [[1.5], [2.5]], "quantiles": [[[1.0, 1.5, 2.0]], [[2.0, 2.5, 3.0]]]}
    assert app.describe_prediction(record, config) == {"input": {"file": "x.csv"}, "forecast": [
        {"time": "t1", "load": 1.5, "load_q0.1": 1.0, "load_q0.5": 1.5, "load_q0.9": 2.0},
        {"time": "t2", "load": 2.5, "load_q0.1": 2.0, "load_q0.5": 2.5, "load_q0.9": 3.0}]}
    assert app.describe_prediction({"input": {"targets": [[1.0]]}, "forecast": []}, config)["forecast"] == []


@pytest.mark.parametrize("overrides, fragment", [
    (["model.architecture=single_step"], "set data.horizon=1"),
    (["model.architecture=autoregressive", "model.quantiles=[0.1, 0.9]"], "feeds back one value"),
    (["model.quantiles=[0.9, 0.1]"], "increasing levels in (0, 1)"),
    (["model.residual_to=seasonal"], "needs data.season_length"),
])
def test_settings_that_do_not_go_together_stop_before_any_data_is_read(overrides, fragment, tmp_path, capsys):
    status, captured = _train(["--data", str(tmp_path / "missing.csv"), "--output-dir", str(tmp_path / "run"),
                               *sum((["--set", item] for item in overrides), [])], capsys)
    assert status == 2 and fragment in captured.err and "missing.csv" not in captured.err
    assert not (tmp_path / "run").exists()


def test_serving_json_comes_back_from_preprocessing_json(tmp_path):
    from seq_templates.preprocessing import state

    config = quick_config("model.units=4", "data.covariate_columns=[temperature]")
    raw = app.load_raw_data(config["data"])
    preprocessing = app.build_preprocessing(config, raw["train"])
    state.save(preprocessing, tmp_path / "preprocessing.json")
    restored = state.load(tmp_path / "preprocessing.json")
    model = app.build_model(config, restored)
    _, _, assets = app.build_serving(model, restored, config)
    assert assets == {"serving.json": {"columns": {"targets": ["value"], "covariates": ["temperature"],
                                                   "categories": []},
                                       "frequency": "h", "horizon": 12, "quantiles": []}}


def _train(arguments, capsys):
    status = cli.main(["train", "forecasting", *arguments])
    captured = capsys.readouterr()
    return status, captured


GOOD = "when,load\n" + "".join(f"2021-03-01 {hour:02d}:00,{hour * 1.5}\n" for hour in range(24))
BAD_FILES = {
    "unsorted": (GOOD.replace("2021-03-01 05:00", "2021-03-01 23:30"), "sort the file"),
    "duplicate": (GOOD.replace("2021-03-01 05:00", "2021-03-01 04:00"), "remove or merge the duplicate"),
    "non_numeric": (GOOD.replace(",7.5\n", ",seven\n"), "'seven', not a number"),
    "too_short": ("\n".join(GOOD.splitlines()[:13]) + "\n", "fewer than data.input_width + data.horizon"),
    "missing_value": (GOOD.replace(",7.5\n", ",\n"), "missing_policy=interpolate"),
    "gap": (GOOD.replace("2021-03-01 05:00,7.5\n", ""), "no row for time 2021-03-01 05:00"),
    "misnamed_column": (GOOD.replace("when,load", "when,lode"), "no column 'load' for data.target_columns"),
    # Numbers a float32 model cannot take (trained to loss nan before):
    "infinite": (GOOD.replace(",7.5\n", ",inf\n"), "column 'load' at 2021-03-01 05:00:00 is inf, not a finite"),
    "beyond_float32": (GOOD.replace(",7.5\n", ",1e39\n"), "is 1e+39, not a finite number"),
    # A season longer than the training block (an IndexError in evaluation before):
    "long_season": (GOOD + "#season", "season_length=100000 is longer than the training block"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_input_is_one_line_exit_2_and_nothing_written(case, tmp_path, capsys):
    text, fragment = BAD_FILES[case]
    path = tmp_path / f"{case}.csv"
    season = ["--set", "data.season_length=100000"] if text.endswith("#season") else []
    path.write_text(text.removesuffix("#season"))
    output_dir = tmp_path / "run"
    status, captured = _train(["--data", str(path), "--output-dir", str(output_dir), *season,
                               "--set", "data.time_column=when",
                               "--set", "data.target_columns=[load]", "--set", "data.input_width=4",
                               "--set", "data.horizon=2", "--set", "data.test_size=4", "--set",
                               "data.validation_size=4", "--set", "data.missing_policy=error"], capsys)
    # (missing_policy given: the auto settings would otherwise interpolate gaps and say so)
    assert status == 2
    message = captured.err.strip()
    assert len(message.splitlines()) == 1 and str(path.name) in message and fragment in message, message
    assert not output_dir.exists() and not output_dir.with_name("run.partial").exists()


def messy_csv(path, hours, start_hour=0, gap_at=None):
    """A ';'-separated, quoted CSV with a byte-order mark, CRLF line ends and a missing hour."""
    lines = ['"Zeit";"Last (kW)"']
    for hour in range(start_hour, start_hour + hours):
        if hour == gap_at:
            continue
        day, clock = divmod(hour, 24)
        value = 20 + 5 * np.sin(2 * np.pi * hour / 24) + 0.01 * hour
        lines.append(f'"2022-01-{day + 1:02d} {clock:02d}:00";"{value:.3f}"')
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    return path


def test_predict_from_the_tail_of_a_messy_csv_prints_timestamps(tmp_path, capsys):
    data = messy_csv(tmp_path / "meter.csv", 24 * 12, gap_at=100)
    run = tmp_path / "run"
    status, captured = _train(["--data", str(data), "--output-dir", str(run), "--set", "data.time_column=Zeit",
                               "--set", "data.missing_policy=interpolate", "--set", "data.input_width=24",
                               "--set", "data.horizon=6", "--set", "train.epochs=2", "--set", "model.units=8",
                               *sum((["--set", item] for item in QUIET), [])], capsys)
    assert status == 0, captured.err
    assert "'Last (kW)': 1" in captured.out and "rows added for gaps: 1" in captured.out
    assert "frequency h" in captured.out
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"test {metrics['num_origins']}" in captured.out  # the data line counts windows
    assert metrics["missing_values"] == {"policy": "interpolate", "rows_added_for_gaps": 1,
                                         "filled_values": {"Last (kW)": 1}}
    assert (run / "plots" / "forecast.png").stat().st_size > 1000
    recent = messy_csv(tmp_path / "recent.csv", 30, start_hour=24 * 12)
    assert cli.main(["predict", str(run), "--input-file", str(recent)]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(printed) == 1
    assert printed[0]["input"]["last_time"] == "2022-01-14 05:00:00"
    assert [row["time"] for row in printed[0]["forecast"]][:2] == ["2022-01-14 06:00:00", "2022-01-14 07:00:00"]
    assert len(printed[0]["forecast"]) == 6 and all(15 < row["Last (kW)"] < 30 for row in printed[0]["forecast"])
    short = messy_csv(tmp_path / "short.csv", 10, start_hour=24 * 12)
    assert cli.main(["predict", str(run), "--input-file", str(short)]) == 2
    error = capsys.readouterr().err.strip()
    assert "short.csv" in error and "data.input_width=24" in error and len(error.splitlines()) == 1


CO2 = pathlib.Path(np.__file__).parents[1] / "statsmodels" / "datasets" / "co2" / "co2.csv"


@pytest.mark.skipif(not CO2.is_file(), reason="statsmodels' co2.csv (weekly Mauna Loa CO2) is not installed")
def test_a_real_weekly_csv_with_blank_cells_reports_what_it_filled():
    config = quick_config("data.dataset=null", f"data.path={CO2}", "data.time_column=date",
                          "data.time_format=%Y%m%d", "data.missing_policy=interpolate", "data.horizon=4",
                          "data.input_width=52")
    raw = app.load_raw_data(config["data"])
    assert raw["train"].frequency.startswith("W")
    assert raw["train"].report["filled_values"]["co2"] >= 59  # the blank cells
    assert not np.isnan(raw["test"].series).any()
    with pytest.raises(errors.SeqTemplatesError, match=r"co2.csv: data row \d+ \(time 1958-05-10.*'co2'"):
        app.load_raw_data(quick_config("data.dataset=null", f"data.path={CO2}", "data.time_column=date",
                                       "data.time_format=%Y%m%d")["data"])


def test_jena_climate_fails_fast_offline_with_one_clear_line(tmp_path, capsys, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(*arguments, **keywords):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv("SEQ_TEMPLATES_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SEQ_TEMPLATES_DATA", raising=False)
    status, captured = _train(["--dataset", "jena_climate", "--output-dir", str(tmp_path / "run")], capsys)
    assert status == 2
    message = captured.err.strip()
    assert len(message.splitlines()) == 1 and "jena_climate" in message and "no network" in message
    assert "jena_climate_2009_2016.csv" in message and "--data PATH" in message
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


def test_parquet_reads_like_csv(tmp_path):
    pytest.importorskip("pyarrow")
    import pandas

    csv_path = write_series(tmp_path / "series.csv", np.arange(200, dtype=float) % 17)
    parquet_path = tmp_path / "series.parquet"
    pandas.read_csv(csv_path).to_parquet(parquet_path)
    from_csv = app.load_raw_data(file_config(csv_path)["data"])
    from_parquet = app.load_raw_data(file_config(parquet_path)["data"])
    np.testing.assert_array_equal(from_csv["test"].future, from_parquet["test"].future)
    np.testing.assert_array_equal(from_csv["train"].inputs["targets"], from_parquet["train"].inputs["targets"])
