"""Windows, the time grid and the missing-value policy (seq_templates.preprocessing.windows)."""

import numpy as np
import pandas
import pytest

from seq_templates import errors
from seq_templates.preprocessing import windows


def frame_at(times, **columns):
    return pandas.DataFrame(columns, index=pandas.DatetimeIndex(pandas.to_datetime(times), name="time"))


def test_frequency_is_inferred_even_across_a_gap_and_a_given_one_is_checked():
    monthly = pandas.date_range("2000-01-01", periods=24, freq="MS")
    assert windows.infer_frequency(monthly) == "MS"
    hourly = pandas.date_range("2020-01-01", periods=100, freq="h").delete([40, 41, 77])
    assert windows.infer_frequency(hourly) == "h"
    assert windows.infer_frequency(hourly, "2h") == "2h"
    with pytest.raises(errors.SeqTemplatesError, match="data.frequency"):
        windows.infer_frequency(hourly, "every hour")
    assert windows.season_length_for("h") == 24 and windows.season_length_for("MS") == 12


def test_gaps_become_missing_rows_and_off_grid_times_are_refused():
    frame = frame_at(["2020-01-01 00:00", "2020-01-01 01:00", "2020-01-01 04:00"], value=[1.0, 2.0, 5.0])
    regular, added = windows.regularize(frame, "h")
    assert len(regular) == 5 and added.tolist() == [False, False, True, True, False]
    assert regular["value"].isna().tolist() == [False, False, True, True, False]
    with pytest.raises(errors.SeqTemplatesError, match="data row 2 .*not a step of the frequency '2h'"):
        windows.regularize(frame, "2h", source="x.csv")


def test_error_policy_names_the_gap_or_the_cell_and_the_fix():
    frame = frame_at(["2020-01-01 00:00", "2020-01-01 01:00", "2020-01-01 03:00"], value=[1.0, 2.0, 4.0])
    regular, added = windows.regularize(frame, "h")
    with pytest.raises(errors.SeqTemplatesError,
                       match=r"x.csv: no row for time 2020-01-01 02:00:00 .*missing_policy=interpolate"):
        windows.fill_missing(regular, "error", added, source="x.csv")
    holes = frame_at(pandas.date_range("2020-01-01", periods=4, freq="D"), a=[1.0, 2.0, 3.0, 4.0],
                     b=[1.0, 2.0, np.nan, 4.0])
    with pytest.raises(errors.SeqTemplatesError, match=r"x.csv: data row 3 \(time 2020-01-03.*column 'b'"):
        windows.fill_missing(holes, "error", source="x.csv")


def test_interpolate_and_ffill_fill_every_value_and_report_it():
    frame = frame_at(pandas.date_range("2020-01-01", periods=5, freq="D"), value=[np.nan, 2.0, np.nan, 4.0, np.nan],
                     wind=np.array(["NE", None, "SE", None, "SE"], dtype=object))
    interpolated, report = windows.fill_missing(frame, "interpolate")
    assert interpolated["value"].tolist() == [2.0, 2.0, 3.0, 4.0, 4.0]
    assert interpolated["wind"].tolist() == ["NE", "NE", "SE", "SE", "SE"]
    assert report == {"policy": "interpolate", "rows_added_for_gaps": 0, "filled_values": {"value": 3, "wind": 2}}
    filled, _ = windows.fill_missing(frame, "ffill")
    assert filled["value"].tolist() == [2.0, 2.0, 2.0, 4.0, 4.0]
    untouched, report = windows.fill_missing(frame.fillna({"value": 0.0, "wind": "NE"}), "error")
    assert report["filled_values"] == {} and not untouched.isna().any().any()


def test_training_windows_stay_in_their_block_and_no_target_leaks_into_inputs():
    positions = np.arange(100, dtype=float)
    bounds = windows.block_bounds(100, test_size=20, validation_size=10)
    assert bounds == {"train": (0, 70), "validation": (70, 80), "test": (80, 100)}
    width, horizon = 8, 4
    train = windows.window_origins(0, 70, width, horizon, inputs_from=0)
    past, future = windows.gather_windows(positions, train, width, horizon)
    assert past.min() >= 0 and future.max() < 70  # no validation or test value in any training window
    assert np.all(past.max(axis=1) < future.min(axis=1))  # inputs strictly before targets
    np.testing.assert_array_equal(future[:, 0], train)
    np.testing.assert_array_equal(past[:, -1] + 1, future[:, 0])
    assert len(train) == 70 - width - horizon + 1
    for name in ("validation", "test"):
        start, stop = bounds[name]
        origins = windows.window_origins(start, stop, width, horizon)
        past, future = windows.gather_windows(positions, origins, width, horizon)
        assert future.min() >= start and future.max() < stop  # targets wholly inside the block
        assert np.all(past.max(axis=1) < future.min(axis=1))
    validation_block = windows.window_origins(70, 80, width, horizon, inputs_from=70)
    assert len(validation_block) == 0  # 10 steps cannot hold 8 inputs + 4 targets inside the block


def test_origins_stride_back_from_the_last_one_and_can_be_limited():
    origins = windows.window_origins(80, 100, 8, 4, stride=5)
    assert origins.tolist() == [81, 86, 91, 96]
    assert windows.window_origins(80, 100, 8, 4, max_origins=3).tolist() == [94, 95, 96]
    with pytest.raises(errors.SeqTemplatesError, match="validation_size"):
        windows.block_bounds(30, test_size=20, validation_size=10)


def test_series_frame_joins_files_checks_columns_and_groups_them():
    first = frame_at(["2021-01-01", "2021-01-02"], load=[1.0, 2.0], wind=["N", "S"], temp=[5.0, 6.0])
    second = frame_at(["2021-01-03", "2021-01-04"], load=[3.0, 4.0], wind=["N", "N"], temp=[7.0, 8.0])
    frame, report, frequency = windows.series_frame([first, second], [], ["wind", "temp"], source="f.csv")
    assert frame.columns.tolist() == ["load", "wind", "temp"] and frequency == "D" and len(frame) == 4
    assert windows.column_groups(frame, []) == {"targets": ["load"], "covariates": ["temp"], "categories": ["wind"]}
    assert windows.describe_report(report, "D") == ("frequency D; missing values (error): none, rows added for "
                                                    "gaps: 0")
    with pytest.raises(errors.SeqTemplatesError, match="f.csv: data.validation_path .* in time order"):
        windows.series_frame([second, first], [], [], source="f.csv")
    with pytest.raises(errors.SeqTemplatesError, match="column 'wind' of .* is not numeric"):
        windows.select_columns(first, ["wind"], [], source="f.csv")
    with pytest.raises(errors.SeqTemplatesError, match="column 'rain' .* does not exist; the columns are 'load'"):
        windows.select_columns(first, [], ["rain"], source="f.csv")


def test_split_windows_cuts_every_block_and_keeps_training_windows_inside_theirs():
    frame = frame_at(pandas.date_range("2020-01-01", periods=100, freq="h"), value=np.arange(100.0),
                     wind=np.array(["a", "b"] * 50, dtype=object))
    groups = windows.column_groups(frame, ["value"])
    bounds = windows.block_bounds(100, test_size=20, validation_size=10)
    splits = windows.split_windows(frame, groups, bounds, 8, 2, strides={"train": 3}, max_origins={"test": 5},
                                   frequency="h", season_length=24, report={"policy": "error"})
    train, validation, test = splits["train"], splits["validation"], splits["test"]
    assert len(test) == 5 and test.origins.tolist() == [94, 95, 96, 97, 98]
    assert len(validation) == 9 and validation.inputs["targets"].min() < 70  # looks back before its block
    assert train.future.max() < 70 and train.inputs["targets"].min() >= 0 and np.all(np.diff(train.origins) == 3)
    assert test.future.dtype == np.float32 and test.future.shape == (5, 2, 1)
    assert test.inputs["categories"].shape == (5, 8, 1) and test.inputs["categories"].dtype == object
    assert test.series.shape == (100, 1) and test.train_size == 70 and test.block.index[0] == frame.index[80]
    with pytest.raises(errors.SeqTemplatesError, match="fewer than data.input_width"):
        windows.split_windows(frame, groups, bounds, 68, 4)
    with pytest.raises(errors.SeqTemplatesError, match="the validation block .* raise data.validation_size"):
        windows.split_windows(frame, groups, bounds, 8, 12)


def test_last_window_and_forecast_rows_put_a_forecast_on_the_time_grid():
    frame = frame_at(pandas.date_range("2020-01-01", periods=5, freq="MS"), value=np.arange(5.0))
    inputs, times = windows.last_window(frame, windows.column_groups(frame, []), 3, 2, "MS")
    assert inputs == {"targets": [[2.0], [3.0], [4.0]]}
    assert times == ["2020-06-01 00:00:00", "2020-07-01 00:00:00"]
    with pytest.raises(errors.SeqTemplatesError, match="x.csv: 5 time steps, .* data.input_width=6"):
        windows.last_window(frame, windows.column_groups(frame, []), 6, 2, "MS", source="x.csv")
    rows = windows.forecast_rows(times, ["value"], [[1.23456789], [2.0]], [[[1.0, 1.5]], [[2.0, 2.5]]], [0.1, 0.9])
    assert rows == [{"time": times[0], "value": 1.234568, "value_q0.1": 1.0, "value_q0.9": 1.5},
                    {"time": times[1], "value": 2.0, "value_q0.1": 2.0, "value_q0.9": 2.5}]
