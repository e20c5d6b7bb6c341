"""``seq-templates prepare forecasting``: a series larger than memory, read a chunk at a time.

The streamed reader and the chunked grid and missing-value policy against the whole-series ones,
the forecasting app's splits from a prepared folder against its splits from the file, and the
CLI (prepare, train from the folder, predict with the settings the source was read with).
"""

import dataclasses
import json

import numpy as np
import pandas
import pytest

from seq_templates import apps_loader
from seq_templates.data import prepared_series
from seq_templates.data import readers


def write_series(path, steps=1500, gaps=(), missing=(), seed=0, line_end="\r\n", bom=True):
    """An hourly CSV (``time,load,temp,day``): a daily season, a numeric and a text covariate.

    ``gaps``: rows left out (data rows, 0-based); ``missing``: ``(row, column)`` cells left blank.
    """
    generator = np.random.default_rng(seed)
    times = pandas.date_range("2021-01-01", periods=steps, freq="h")
    load = 10 + 5 * np.sin(2 * np.pi * np.arange(steps) / 24) + generator.normal(0, 1, steps)
    frame = pandas.DataFrame({"time": times.strftime("%Y-%m-%d %H:%M"), "load": load.round(3),
                              "temp": (20 + generator.normal(0, 3, steps)).round(2),
                              "day": times.day_name()}).astype(object)
    for row, column in missing:
        frame.loc[row, column] = ""
    frame = frame.drop(index=list(gaps))
    text = frame.to_csv(index=False, lineterminator=line_end)
    path.write_text(("\ufeff" if bom else "") + text, encoding="utf-8", newline="")
    return path


OPTIONS = {"time_column": "time"}


@pytest.mark.parametrize("chunk_rows", [1, 7, 100, 5000])
def test_streamed_chunks_are_the_file_read_whole(tmp_path, chunk_rows):
    path = write_series(tmp_path / "series.csv", steps=300, gaps=[5, 6, 40], missing=[(10, "load"), (99, "day")])
    whole = readers.read_timeseries(path, **OPTIONS)
    chunks = list(readers.stream_timeseries(path, chunk_rows=chunk_rows, **OPTIONS))
    assert len(chunks) == -(-len(whole) // chunk_rows)
    streamed = pandas.concat(chunks)
    pandas.testing.assert_frame_equal(streamed, whole)


@pytest.mark.parametrize("chunk_rows", [3, 50, 1000])
@pytest.mark.parametrize("fault, expected", [
    (lambda lines: lines.__setitem__(120, lines[120].replace(",", ",x", 1)), "holds 'x"),  # a text value
    (lambda lines: lines.__setitem__(150, lines[100]), "comes before"),  # time order, across chunks too
    (lambda lines: lines.__setitem__(130, lines[130] + ",extra"), "expected 4 fields"),
])
def test_streamed_errors_name_the_line_the_whole_reader_names(tmp_path, chunk_rows, fault, expected):
    path = write_series(tmp_path / "series.csv", steps=300, bom=False, line_end="\n")
    lines = path.read_text().split("\n")
    fault(lines)
    path.write_text("\n".join(lines))
    with pytest.raises(Exception) as whole:
        readers.read_timeseries(path, **OPTIONS)
    with pytest.raises(Exception) as streamed:
        list(readers.stream_timeseries(path, chunk_rows=chunk_rows, **OPTIONS))
    assert expected in str(whole.value)
    assert str(streamed.value) == str(whole.value)


def data_config(path, **settings):
    app = apps_loader.load_app("forecasting")
    settings = {"covariate_columns": ["temp", "day"], **settings}
    return dataclasses.replace(app.DataConfig(), path=str(path), dataset=None, time_column="time", **settings)


def records(folder):
    """The prepared steps, rebuilt from the records: ``(numbers, categories)`` by step."""
    import tensorflow as tf

    manifest = json.loads((folder / "prepared.json").read_text())
    groups = manifest["groups"]
    width = len(groups["targets"]) + len(groups["covariates"])
    numbers = np.full((manifest["steps"], width), np.nan, np.float32)
    categories = np.empty((manifest["steps"], len(groups["categories"])), object)
    features = {"start": tf.io.FixedLenFeature([], tf.int64), "numbers": tf.io.VarLenFeature(tf.float32),
                "categories": tf.io.VarLenFeature(tf.string)}
    starts = []
    for shard in manifest["shards"]:
        for serialized in tf.data.TFRecordDataset(str(folder / shard)):
            record = tf.io.parse_single_example(serialized, features)
            start = int(record["start"])
            values = tf.sparse.to_dense(record["numbers"]).numpy().reshape(-1, width)
            numbers[start:start + len(values)] = values
            categories[start:start + len(values)] = np.array(
                [value.decode() for value in tf.sparse.to_dense(record["categories"], "").numpy()]).reshape(
                    len(values), -1)
            starts.append(start)
    return manifest, numbers, categories, sorted(starts)


@pytest.mark.parametrize("policy", ["interpolate", "ffill"])
@pytest.mark.parametrize("chunk_rows", [9, 97, 100_000])
def test_prepared_steps_are_the_whole_series_filled(tmp_path, monkeypatch, policy, chunk_rows):
    monkeypatch.setattr(prepared_series, "CHUNK_ROWS", chunk_rows)
    # gaps and blanks at the start, across chunk boundaries and at the end
    path = write_series(tmp_path / "series.csv", steps=700, gaps=[96, 97, 98, 193, 400, 698],
                        missing=[(0, "load"), (1, "temp"), (8, "load"), (9, "load"), (10, "load"), (500, "day"),
                                 (699, "load")])
    config = data_config(path, missing_policy=policy)
    app = apps_loader.load_app("forecasting")
    frame, report, frequency, _ = app.read_series(config)  # the whole series, in memory
    folder = tmp_path / "prepared"
    prepared_series.prepare(folder, config, "forecasting", sample_rows=50, max_heldout_rows=120, chunk_steps=64,
                            source_bytes=path.stat().st_size, shard_megabytes=0.005)
    manifest, numbers, categories, starts = records(folder)
    assert manifest["steps"] == len(frame) and manifest["frequency"] == frequency and manifest["report"] == report
    assert len(manifest["shards"]) > 1 and starts == list(range(0, len(frame), 64))
    np.testing.assert_array_equal(numbers, frame[["load", "temp"]].to_numpy("float32"))
    assert (categories[:, 0] == frame["day"].to_numpy()).all()
    tail = pandas.read_csv(folder / "tail.csv", index_col="time", parse_dates=True)
    assert list(tail.index) == list(frame.index[-120:])
    sample = pandas.read_csv(folder / "sample.csv", index_col="step")
    assert len(sample) == 50 and sample.index.is_unique
    np.testing.assert_allclose(sample["load"], frame["load"].to_numpy()[sample.index])


@pytest.mark.parametrize("chunk_rows", [11, 100_000])
def test_prepare_refuses_what_the_whole_reader_refuses_and_keeps_nothing(tmp_path, monkeypatch, chunk_rows):
    monkeypatch.setattr(prepared_series, "CHUNK_ROWS", chunk_rows)
    path = write_series(tmp_path / "series.csv", steps=200, gaps=[77], missing=[(150, "temp")])
    config = data_config(path)  # missing_policy=error
    app = apps_loader.load_app("forecasting")
    with pytest.raises(Exception) as whole:
        app.read_series(config)
    folder = tmp_path / "prepared"
    with pytest.raises(Exception) as streamed:
        prepared_series.prepare(folder, config, "forecasting")
    assert "no row for time 2021-01-04 05:00:00" in str(whole.value)
    assert str(streamed.value) == str(whole.value)
    assert not folder.exists()
    path = write_series(tmp_path / "series.csv", steps=200, missing=[(150, "temp")])
    with pytest.raises(Exception) as whole:
        app.read_series(config)
    with pytest.raises(Exception) as streamed:
        prepared_series.prepare(folder, config, "forecasting")
    assert "data row 151" in str(whole.value) and str(streamed.value) == str(whole.value)


def all_windows(dataset):
    """Every window of a dataset of ``({"targets", "covariates", "categories"}, future)`` batches, sorted."""
    rows = []
    for inputs, future in dataset:
        flat = np.concatenate([inputs["targets"].numpy().reshape(len(future), -1),
                               inputs["covariates"].numpy().reshape(len(future), -1),
                               future.numpy().reshape(len(future), -1)], axis=1)
        rows += [tuple(row) + tuple(categories) for row, categories in zip(
            flat, inputs["categories"].numpy().reshape(len(future), -1).astype(str))]
    return sorted(rows)


@pytest.mark.parametrize("stride, max_train_samples", [(1, None), (3, 500)])
def test_prepared_splits_are_the_file_splits_with_training_streamed(tmp_path, monkeypatch, stride, max_train_samples):
    monkeypatch.setattr(prepared_series, "CHUNK_ROWS", 101)
    path = write_series(tmp_path / "series.csv", steps=1500, gaps=[300, 301], missing=[(700, "load")])
    settings = {"missing_policy": "interpolate", "input_width": 30, "horizon": 12, "test_size": 48,
                "validation_size": 36, "stride": stride, "max_train_samples": max_train_samples}
    app = apps_loader.load_app("forecasting")
    in_memory = app.load_raw_data(data_config(path, **settings))
    folder = tmp_path / "prepared"
    prepared_series.prepare(folder, data_config(path, **settings), "forecasting", sample_rows=400,
                            max_heldout_rows=200, chunk_steps=64, source_bytes=path.stat().st_size,
                            shard_megabytes=0.01)
    streamed = app.load_raw_data(data_config(folder, **settings))
    for name in ("validation", "test"):  # the held-out blocks: the same windows, from the tail
        for group, values in in_memory[name].inputs.items():
            np.testing.assert_array_equal(streamed[name].inputs[group], values)
        np.testing.assert_array_equal(streamed[name].future, in_memory[name].future)
        assert list(streamed[name].index[-len(streamed[name].index):]) == list(in_memory[name].index[-len(
            streamed[name].index):])
    train = streamed["train"]
    assert isinstance(train, prepared_series.StreamedWindows) and len(train) == len(in_memory["train"])
    assert len(train.block) < 400 and list(train.block.columns) == ["load", "temp", "day"]

    def identity(raw, future):
        return raw, future

    from seq_templates.layers import forecasting as forecasting_layers

    expected = all_windows(forecasting_layers.window_dataset(in_memory["train"], identity, 256))
    assert all_windows(forecasting_layers.window_dataset(train, identity, 256)) == expected
    assert all_windows(forecasting_layers.window_dataset(train, identity, 256, shuffle=True, seed=3)) == expected
    first = next(iter(forecasting_layers.window_dataset(train, identity, 256, shuffle=True, seed=3)))[1].numpy()
    ordered = next(iter(forecasting_layers.window_dataset(train, identity, 256)))[1].numpy()
    assert not np.array_equal(first, ordered)  # shuffled across records


def test_prepared_settings_that_cannot_apply_are_refused(tmp_path, cli_in_process):
    path = write_series(tmp_path / "series.csv", steps=1200)
    folder = tmp_path / "prepared"
    result = cli_in_process("prepare", "forecasting", "--data", path, "--output", folder, "--set",
                            "data.time_column=time", "--set", "data.covariate_columns=[temp,day]",
                            "--max-heldout-rows", "100")
    assert result.returncode == 0, result.stderr
    app = apps_loader.load_app("forecasting")  # the covariates in another order are the same columns
    assert app.read_series(data_config(folder, covariate_columns=["day", "temp"]))[0].columns[0] == "load"
    for setting, expected in (("data.target_columns=[temp]", "differs from the columns prepared"),
                              (f"data.test_path={path}", "cannot be added to the prepared series"),
                              ("data.test_size=80", "--max-heldout-rows")):
        result = cli_in_process("train", "forecasting", "--data", folder, "--output-dir", tmp_path / "run",
                                "--set", setting, "--set", "train.epochs=1")
        assert result.returncode == 2 and expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = cli_in_process("prepare", "forecasting", "--data", path, "--output", folder, "--set",
                            "data.time_column=time")
    assert result.returncode == 2 and "already holds files" in result.stderr


@pytest.mark.slow
def test_prepare_train_predict_through_the_cli(tmp_path, cli_in_process):
    path = write_series(tmp_path / "series.csv", steps=2000, gaps=[1000], missing=[(1500, "temp")])
    folder = tmp_path / "prepared"
    result = cli_in_process("prepare", "forecasting", "--data", path, "--output", folder, "--set",
                            "data.time_column=time", "--set", "data.covariate_columns=[temp,day]", "--set",
                            "data.missing_policy=interpolate", "--shard-mb", "0.02")
    assert result.returncode == 0, result.stderr
    run = tmp_path / "run"
    result = cli_in_process("train", "forecasting", "--data", folder, "--output-dir", run, "--set",
                            "train.max_minutes=0.3", "--set", "train.epochs=2", "--set", "model.units=16")
    assert result.returncode == 0, result.stderr
    assert "the prepared series" in result.stdout and "training windows streamed" in result.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["missing_values"]["rows_added_for_gaps"] == 1 and np.isfinite(metrics["model"]["mae"])
    window = tmp_path / "window.csv"  # the run's data settings are the folder's: the source's are used
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    window.write_text("\n".join(lines[:1] + lines[-200:]) + "\n")
    result = cli_in_process("predict", run, "--input-file", window)
    assert result.returncode == 0, result.stderr
    forecast = json.loads(result.stdout.strip().splitlines()[-1])["forecast"]
    assert len(forecast) == metrics["horizon"] and forecast[0]["time"] == "2021-03-25 08:00:00"


@pytest.mark.parametrize("chunk_rows", [3, 8, 9, 1000])
def test_streamed_chunks_read_day_first_dates_and_late_numbers_as_the_whole_file(tmp_path, chunk_rows):
    times = pandas.date_range("2000-07-30", periods=60, freq="D")
    rows = [f"{time:%d/%m/%Y},{'' if index < 20 else index * 1.5},{index}" for index, time in enumerate(times)]
    path = tmp_path / "daily.csv"
    path.write_text("day,rain,load\n" + "\n".join(rows) + "\n")  # 07/08/2000 alone would read as July 8
    whole = readers.read_timeseries(path, time_column="day")
    streamed = pandas.concat(readers.stream_timeseries(path, time_column="day", chunk_rows=chunk_rows))
    pandas.testing.assert_frame_equal(streamed, whole)
    assert streamed.index[8] == pandas.Timestamp("2000-08-07") and streamed["rain"].dtype.kind == "f"


def test_category_codes_that_look_like_numbers_stay_text(tmp_path, monkeypatch):
    monkeypatch.setattr(prepared_series, "CHUNK_ROWS", 50)
    path = write_series(tmp_path / "series.csv", steps=400)
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    codes = [f"{line.rsplit(',', 1)[0]},{'AB'[index % 2] if index < 250 else f'0{index % 3}'}"  # text, then codes
             for index, line in enumerate(lines[1:])]
    path.write_text("\n".join(lines[:1] + codes) + "\n")
    settings = {"input_width": 24, "horizon": 12, "test_size": 24, "validation_size": 24}
    app = apps_loader.load_app("forecasting")
    in_memory = app.load_raw_data(data_config(path, **settings))
    folder = tmp_path / "prepared"
    prepared_series.prepare(folder, data_config(path, **settings), "forecasting", max_heldout_rows=150, chunk_steps=64)
    streamed = app.load_raw_data(data_config(folder, **settings))
    assert set(in_memory["test"].inputs["categories"].ravel()) == {"00", "01", "02"}  # the tail holds only codes
    np.testing.assert_array_equal(streamed["test"].inputs["categories"], in_memory["test"].inputs["categories"])
    assert set(streamed["train"].block["day"]) == {"A", "B", "00", "01", "02"}


def test_shuffled_batches_mix_distant_times_and_shards_hold_stretches_of_time(tmp_path, monkeypatch):
    monkeypatch.setattr(prepared_series, "SHUFFLE_WINDOWS", 128)  # only the record shuffle can mix
    path = tmp_path / "ramp.csv"
    times = pandas.date_range("2020-01-01", periods=3000, freq="h")
    path.write_text("time,load\n" + "".join(f"{time:%Y-%m-%d %H:%M},{index}\n" for index, time in enumerate(times)))
    config = dataclasses.replace(data_config(path), covariate_columns=[], input_width=8, horizon=4,
                                 test_size=40, validation_size=40)
    folder = tmp_path / "prepared"
    prepared_series.prepare(folder, config, "forecasting", chunk_steps=64, source_rows=3001, shard_megabytes=0.01,
                            source_bytes=path.stat().st_size)
    manifest, _, _, _ = records(folder)
    import tensorflow as tf

    for index, shard in enumerate(manifest["shards"]):  # each shard: one stretch of time
        starts = [int(tf.io.parse_single_example(record, {"start": tf.io.FixedLenFeature([], tf.int64)})["start"])
                  for record in tf.data.TFRecordDataset(str(folder / shard))]
        assert starts and all(index * 3000 // len(manifest["shards"]) <= start + 64 for start in starts)
        assert all(start < (index + 1) * 3001 // len(manifest["shards"]) for start in starts)
    app = apps_loader.load_app("forecasting")
    train = app.load_raw_data(dataclasses.replace(config, path=str(folder)))["train"]
    from seq_templates.layers import forecasting as forecasting_layers

    batch = next(iter(forecasting_layers.window_dataset(train, lambda raw, future: (raw, future), 64, True, 5)))
    positions = batch[1].numpy()[:, 0, 0]  # each window's first future value is its origin
    assert positions.max() - positions.min() > 1000, positions


def test_interpolation_waits_a_bounded_number_of_rows_for_a_value(tmp_path, monkeypatch):
    monkeypatch.setattr(prepared_series, "CHUNK_ROWS", 20)
    monkeypatch.setattr(prepared_series, "MAX_HELD_ROWS", 50)
    path = write_series(tmp_path / "series.csv", steps=400, missing=[(row, "temp") for row in range(100, 200)])
    folder = tmp_path / "prepared"
    with pytest.raises(Exception, match="column 'temp' has no value for .* rows from 2021-01-05 04:00:00 on"):
        prepared_series.prepare(folder, data_config(path, missing_policy="interpolate"), "forecasting")
    assert not folder.exists()
    prepared_series.prepare(folder, data_config(path, missing_policy="ffill"), "forecasting")  # needs no later value
    _, numbers, _, _ = records(folder)
    assert (numbers[100:200, 1] == numbers[99, 1]).all()
