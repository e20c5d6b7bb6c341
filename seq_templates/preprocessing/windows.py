"""Time series to windows: a regular time grid, the missing-value policy, chronological blocks, windows.

A forecasting series goes through four steps, each a function here:

1. :func:`infer_frequency`: the step between rows (``MS``, ``D``, ``h``, ...),
   given or inferred from the timestamps.
2. :func:`regularize` and :func:`fill_missing`: every step of the grid gets a
   row (a gap becomes a row of missing values), then the policy decides:
   ``error`` (the default: name the first missing value and stop),
   ``interpolate`` (linear in time for numbers, the previous value for
   categories) or ``ffill`` (the previous value). Values before the first
   observation take the first one. The returned report says what was filled.
3. :func:`block_bounds`: train, validation and test as contiguous blocks in
   time order (test at the end).
4. :func:`window_origins` and :func:`gather_windows`: windows of
   ``input_width`` past steps and ``horizon`` future steps. An *origin* is the
   position of the first future step. Training windows lie wholly inside the
   training block; an evaluation window's future lies wholly inside its block
   while its past may reach back into earlier blocks (that history is known at
   forecast time), so no target value of one block is ever a target or an input
   of an earlier block's windows. :func:`split_windows` does step 4 for every
   block and returns one :class:`WindowSplit` per block.

Before step 1, :func:`concatenate` joins files that continue a series and
:func:`select_columns` keeps (and checks) the target and covariate columns;
:func:`column_groups` sorts them into the named inputs ``targets``,
``covariates`` (numbers) and ``categories`` (text). :func:`series_frame` runs
these and steps 1 and 2. After forecasting, :func:`future_times` and
:func:`forecast_rows` put a forecast on the time grid.
"""

import dataclasses

import numpy as np
import pandas

from seq_templates import errors

MISSING_POLICIES = ("error", "interpolate", "ffill")
# Typical season lengths by pandas frequency (the base of the offset alias).
SEASON_BY_FREQUENCY = {"h": 24, "H": 24, "D": 7, "B": 5, "W": 52, "MS": 12, "M": 12, "ME": 12,
                       "QS": 4, "Q": 4, "QE": 4, "min": 60, "T": 60, "s": 60, "S": 60}


def infer_frequency(index, frequency=None, source="data", setting="data.frequency"):
    """Returns the pandas frequency alias of a time index.

    Args:
        index: A ``pandas.DatetimeIndex`` in time order.
        frequency: A given alias (``"h"``, ``"D"``, ``"MS"``); checked and returned.
        source: The file or dataset named in errors.
        setting: The setting named in errors.

    Returns:
        A frequency alias string.

    Raises:
        SeqTemplatesError: The alias is invalid, or none can be inferred.
    """
    if frequency:
        try:
            pandas.tseries.frequencies.to_offset(frequency)
        except ValueError:
            raise errors.SeqTemplatesError(
                f"{setting} expects a pandas frequency such as h, D, W, MS; received {frequency!r}.") from None
        return frequency
    if len(index) >= 3:
        inferred = pandas.infer_freq(index)
        if inferred:
            return inferred
        # Gaps defeat infer_freq: take the most common frequency over short runs of rows.
        found = [pandas.infer_freq(index[start:start + 8]) for start in range(0, len(index) - 7, 8)]
        found = [item for item in found if item]
        if found:
            return max(set(found), key=found.count)
    raise errors.SeqTemplatesError(
        f"{source}: cannot infer the time step from the timestamps; set {setting} (e.g. h, D, MS).")


def season_length_for(frequency):
    """A typical season length for a frequency alias (``h`` → 24, ``MS`` → 12), or 1."""
    offset = pandas.tseries.frequencies.to_offset(frequency)
    return SEASON_BY_FREQUENCY.get(offset.name.split("-")[0], 1) if offset.n == 1 else 1


def regularize(frame, frequency, source="data", setting="data.frequency", first_row=1):
    """Reindexes a time-indexed frame onto its full grid; gaps become rows of missing values.

    Args:
        frame: A ``pandas.DataFrame`` with a strictly increasing ``DatetimeIndex``.
        frequency: The grid's frequency alias.
        source: The file or dataset named in errors.
        setting: The frequency setting named in errors.
        first_row: The data row of the frame's first row (a piece of a longer series).

    Returns:
        ``(frame, added)``: the regular frame and a boolean array marking the added rows.

    Raises:
        SeqTemplatesError: A timestamp is not on the grid (the frequency is wrong).
    """
    grid = pandas.date_range(frame.index[0], frame.index[-1], freq=frequency, name=frame.index.name)
    off_grid = ~frame.index.isin(grid)
    if off_grid.any():
        row = int(off_grid.nonzero()[0][0])
        raise errors.SeqTemplatesError(
            f"{source}: data row {row + first_row} has time {frame.index[row]}, which is not a step of the "
            f"frequency '{frequency}' counted from {frame.index[0]}; set {setting} to the data's time step.")
    added = ~grid.isin(frame.index)
    return frame.reindex(grid), added


def fill_missing(frame, policy, added=None, source="data", setting_prefix="data.", first_row=1):
    """Applies the missing-value policy; returns ``(filled frame, report)``.

    Args:
        frame: A regular time-indexed frame (numeric columns float, categorical object).
        policy: ``error``, ``interpolate`` or ``ffill``.
        added: Boolean array of rows :func:`regularize` added (gaps), or None.
        source: The file or dataset named in errors.
        setting_prefix: Prefix of the settings named in errors.
        first_row: The data row of the frame's first row that is not a gap (a piece of a longer series).

    Returns:
        The filled frame and a report: ``{"policy", "rows_added_for_gaps", "filled_values": {column: count}}``.

    Raises:
        SeqTemplatesError: Under ``error``, naming the first gap or missing value and the fix.
    """
    if policy not in MISSING_POLICIES:
        raise errors.SeqTemplatesError(
            f"{setting_prefix}missing_policy expects one of {', '.join(MISSING_POLICIES)}, received {policy!r}.")
    added = np.zeros(len(frame), dtype=bool) if added is None else np.asarray(added)
    missing = frame.isna()
    report = {"policy": policy, "rows_added_for_gaps": int(added.sum()),
              "filled_values": {name: int(count) for name, count in missing.sum().items() if count}}
    if not missing.to_numpy().any():
        return frame, report
    if policy == "error":
        fix = (f"set {setting_prefix}missing_policy=interpolate or ffill to fill it")
        if added.any():
            row = int(added.nonzero()[0][0])
            raise errors.SeqTemplatesError(
                f"{source}: no row for time {frame.index[row]} (a gap after {frame.index[row - 1]}); add the "
                f"row, or {fix}.")
        row, column = map(int, np.argwhere(missing.to_numpy())[0])
        data_row = int((~added[:row]).sum()) + first_row
        raise errors.SeqTemplatesError(
            f"{source}: data row {data_row} (time {frame.index[row]}) has no value in column "
            f"'{frame.columns[column]}'; fill it in the file, or {fix}.")
    filled = frame.copy()
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind == "f" and policy == "interpolate":
            filled[name] = column.interpolate(method="time", limit_direction="both")
        else:
            filled[name] = column.ffill().bfill()
    return filled, report


def describe_report(report, frequency=None):
    """One line for :func:`fill_missing`'s report (the policy, what it filled, the rows added),
    after the frequency when given."""
    line = (f"missing values ({report['policy']}): {report['filled_values'] or 'none'}, rows added "
            f"for gaps: {report['rows_added_for_gaps']}")
    return f"frequency {frequency}; {line}" if frequency else line


def block_bounds(num_steps, test_size, validation_size, source="data", setting_prefix="data."):
    """Cuts ``num_steps`` into contiguous train, validation and test blocks (test last).

    Returns:
        ``{"train": (0, a), "validation": (a, b), "test": (b, num_steps)}`` (stop exclusive).

    Raises:
        SeqTemplatesError: The training block would be empty.
    """
    test_start = num_steps - test_size
    validation_start = test_start - validation_size
    if validation_start <= 0 or test_size < 0 or validation_size < 0:
        raise errors.SeqTemplatesError(
            f"{source}: {num_steps} steps cannot hold a validation block of {validation_size} and a test "
            f"block of {test_size} before some training data; lower {setting_prefix}validation_size and "
            f"{setting_prefix}test_size (or the fractions).")
    return {"train": (0, validation_start), "validation": (validation_start, test_start),
            "test": (test_start, num_steps)}


def window_origins(start, stop, input_width, horizon, stride=1, inputs_from=0, max_origins=None):
    """Positions of the first future step of every window whose future lies in ``[start, stop)``.

    Args:
        start: First position of the block whose values are the targets.
        stop: End of that block (exclusive).
        input_width: Past steps per window.
        horizon: Future steps per window.
        stride: Steps between consecutive origins, counted back from the last one.
        inputs_from: The earliest position inputs may use (``start`` for training
            windows, 0 for evaluation windows that may look back before their block).
        max_origins: Keep only the last this many origins (None keeps all).

    Returns:
        An increasing int array of origins (may be empty).
    """
    first = max(start, inputs_from + input_width)
    last = stop - horizon
    if last < first:
        return np.zeros(0, dtype=np.int64)
    origins = np.arange(last, first - 1, -stride, dtype=np.int64)[::-1]
    return origins[-max_origins:] if max_origins else origins


def gather_windows(values, origins, input_width, horizon):
    """Returns ``(past, future)``: ``values[t - input_width:t]`` and ``values[t:t + horizon]`` per origin ``t``.

    Args:
        values: An array shaped ``(steps, ...)``.
        origins: Positions from :func:`window_origins`.
        input_width: Past steps per window.
        horizon: Future steps per window (0 returns an empty future).
    """
    origins = np.asarray(origins, dtype=np.int64)
    past = values[origins[:, None] + np.arange(-input_width, 0)[None, :]]
    future = values[origins[:, None] + np.arange(horizon)[None, :]]
    return past, future


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_finite(frame, source="data"):
    """Refuses infinite values and values beyond float32 (the model's numbers), naming the first.

    Raises:
        SeqTemplatesError: ``source: column 'x' at TIME is inf ...``.
    """
    for column in frame.columns:
        if not pandas.api.types.is_numeric_dtype(frame[column]):
            continue
        values = frame[column].to_numpy(dtype="float64")
        bad = np.flatnonzero(np.isinf(values) | (np.abs(np.nan_to_num(values)) > FLOAT32_MAX))
        if bad.size:
            raise errors.SeqTemplatesError(
                f"{source}: column '{column}' at {frame.index[bad[0]]} is {values[bad[0]]:g}, not a finite number "
                f"a model can take (|x| <= {FLOAT32_MAX:.3g}; {bad.size} such values); fix them in the file, or "
                "leave them blank for the missing-value policy.")


def prepare_series(frame, frequency=None, policy="error", source="data", setting_prefix="data."):
    """Steps 1 and 2 together: the frequency, the regular grid and the missing-value policy.

    Infinite or float32-overflowing values are refused first (:func:`check_finite`).

    Returns:
        ``(frame, report, frequency)``: the regular, filled frame, what was filled
        (:func:`fill_missing`) and the frequency alias.
    """
    check_finite(frame, source)
    frequency = infer_frequency(frame.index, frequency, source, f"{setting_prefix}frequency")
    frame, added = regularize(frame, frequency, source, f"{setting_prefix}frequency")
    frame, report = fill_missing(frame, policy, added, source, setting_prefix)
    return frame, report, frequency


def series_frame(frames, target_columns, covariate_columns, frequency=None, policy="error",
                 source="data", setting_prefix="data."):
    """Frames continuing one series -> the regular, filled frame of its targets and covariates.

    :func:`concatenate`, :func:`select_columns` and :func:`prepare_series` in turn.

    Returns:
        ``(frame, report, frequency)`` as :func:`prepare_series`.
    """
    frame = select_columns(concatenate(frames, source, setting_prefix), target_columns,
                           covariate_columns, source, setting_prefix)
    return prepare_series(frame, frequency, policy, source, setting_prefix)


def future_times(last_time, frequency, horizon):
    """The ``horizon`` timestamps after ``last_time`` on the grid of ``frequency``, as strings."""
    offset = pandas.tseries.frequencies.to_offset(frequency)
    return [str(pandas.Timestamp(last_time) + offset * step) for step in range(1, horizon + 1)]


def last_window(frame, groups, input_width, horizon, frequency, source="data",
                setting_prefix="data."):
    """The last ``input_width`` steps of a frame as one named input, and the times after it.

    Args:
        frame: The regular, filled frame (:func:`series_frame`).
        groups: :func:`column_groups` of the frame.
        input_width: Steps per window.
        horizon: Forecast steps.
        frequency: The frame's frequency alias.
        source: The file or dataset named in errors.
        setting_prefix: Prefix of the settings named in errors.

    Returns:
        ``(inputs, times)``: ``{group: (input_width, columns) list}`` and the ``horizon``
        timestamps after the frame's last (:func:`future_times`).

    Raises:
        SeqTemplatesError: The frame is shorter than a window.
    """
    if len(frame) < input_width:
        raise errors.SeqTemplatesError(
            f"{source}: {len(frame)} time steps, but the model reads the last {setting_prefix}"
            f"input_width={input_width}; give a file with at least {input_width} rows.")
    inputs = {name: values[0].tolist()
              for name, values in window_inputs(frame, groups, [len(frame)], input_width).items()}
    return inputs, future_times(frame.index[-1], frequency, horizon)


def prediction_record(frame, report, frequency, source, target_columns, input_width, horizon):
    """``predict --input-file``'s record: :func:`last_window` and a ``_context`` (not a model
    input) with the target names, the forecast's timestamps and where the window came from.

    Args:
        frame, report, frequency: :func:`series_frame`'s frame, missing-value report and frequency.
        source: The file named in errors and in the context.
        target_columns: ``data.target_columns`` ([]: the first value column).
        input_width: Steps per window.
        horizon: Forecast steps.
    """
    groups = column_groups(frame, target_columns)
    record, times = last_window(frame, groups, input_width, horizon, frequency, source)
    record["_context"] = {"targets": groups["targets"], "times": times, "input": {
        "file": source, "last_time": str(frame.index[-1]), "filled": report}}
    return record


def forecast_rows(times, target_names, forecast, quantile_values=None, quantile_levels=()):
    """One row per forecast step: ``{"time", target: value[, f"{target}_q{level}": value]}``.

    Args:
        times: The steps' timestamps (:func:`future_times`).
        target_names: The target columns, in the order of the forecast's last axis.
        forecast: ``(horizon, targets)`` values.
        quantile_values: ``(horizon, targets, levels)`` values, or None.
        quantile_levels: The quantile levels of ``quantile_values``.
    """
    rows = []
    for step, time in enumerate(times):
        row = {"time": time}
        for index, name in enumerate(target_names):
            row[name] = round(float(forecast[step][index]), 6)
            levels = quantile_values[step][index] if quantile_values is not None else []
            for level, value in zip(quantile_levels, levels):
                row[f"{name}_q{level:g}"] = round(float(value), 6)
        rows.append(row)
    return rows


def describe_forecast(record, quantile_levels=()):
    """A ``predict`` record with the ``_context`` that :func:`last_window`'s caller put in its input.

    Returns:
        ``{"input": where the window came from, "forecast": forecast_rows(...)}``; the record
        unchanged when its input has no context (an input given on the command line).
    """
    context = record["input"].get("_context") if isinstance(record.get("input"), dict) else None
    if context is None:
        return record
    return {"input": context["input"], "forecast": forecast_rows(
        context["times"], context["targets"], record["forecast"], record.get("quantiles"), quantile_levels)}


def concatenate(frames, source="data", setting_prefix="data."):
    """Joins time-indexed frames that continue one series (train, then validation, then test files).

    Raises:
        SeqTemplatesError: The frames overlap or are out of time order.
    """
    frame = pandas.concat(list(frames))
    if not frame.index.is_monotonic_increasing or frame.index.has_duplicates:
        raise errors.SeqTemplatesError(
            f"{source}: {setting_prefix}validation_path and {setting_prefix}test_path must continue the "
            "series in time order, without overlap.")
    return frame


def select_columns(frame, target_columns, covariate_columns, source="data", setting_prefix="data."):
    """The target columns (``[]``: the first column), then the covariates, checked.

    Args:
        frame: The time-indexed frame read from the data.
        target_columns: Names of the columns to forecast; empty takes the first that is not a covariate.
        covariate_columns: Names of input-only columns (numbers or text).
        source: The file or dataset named in errors.
        setting_prefix: Prefix of the settings named in errors.

    Returns:
        The frame with just those columns, targets first.

    Raises:
        SeqTemplatesError: A column does not exist, or a target is not numeric.
    """
    covariates = [str(name) for name in covariate_columns]
    targets = list(target_columns) or [name for name in frame.columns if name not in covariates][:1]
    if not targets:
        raise errors.SeqTemplatesError(
            f"{source}: every column is a covariate ({setting_prefix}covariate_columns); leave one to forecast, or "
            f"name it in {setting_prefix}target_columns.")
    for name in targets + list(covariate_columns):
        if name not in frame.columns or (name in targets and frame[name].dtype.kind != "f"):
            problem = "is not numeric" if name in frame.columns else "does not exist"
            raise errors.SeqTemplatesError(
                f"{source}: column '{name}' of {setting_prefix}target_columns/{setting_prefix}"
                f"covariate_columns {problem}; the columns are {', '.join(map(repr, frame.columns))}.")
    return frame[targets + list(covariate_columns)]


def column_groups(frame, target_columns):
    """``{"targets": names, "covariates": numeric names, "categories": text names}`` of a frame.

    Args:
        frame: A frame from :func:`select_columns` (or with the same columns).
        target_columns: The target names; empty: the first column.
    """
    targets = list(target_columns) or [frame.columns[0]]
    others = [name for name in frame.columns if name not in targets]
    numeric = [name for name in others if frame[name].dtype.kind == "f"]
    return {"targets": targets, "covariates": numeric,
            "categories": [name for name in others if name not in numeric]}


def window_inputs(frame, groups, origins, input_width):
    """The raw named inputs of the windows ending just before ``origins``.

    Args:
        frame: The regular, filled frame.
        groups: :func:`column_groups`; a group without columns is left out.
        origins: Positions just after each window.
        input_width: Steps per window.

    Returns:
        ``{group: (windows, input_width, columns)}``: float32 numbers, object strings for categories.
    """
    return {name: gather_windows(frame[columns].to_numpy(dtype=object if name == "categories" else "float32"),
                                 origins, input_width, 0)[0]
            for name, columns in groups.items() if columns}


@dataclasses.dataclass
class WindowSplit:
    """One chronological block's windows and what evaluation needs around them (``len``: windows).

    Attributes:
        inputs: Raw named windows (:func:`window_inputs`).
        future: The targets after each window, float32 ``(windows, horizon, targets)``.
        origins: Position of each window's first future step.
        series: The targets up to the block's end, float64 ``(steps, targets)``.
        index: The times up to the block's end.
        block: The block's rows of the frame.
        train_size: Steps of the training block.
        frequency: The pandas frequency alias of the series.
        season_length: Steps per season (seasonal naive, MASE, ETS).
        report: What the missing-value policy filled (:func:`fill_missing`).
    """

    inputs: dict
    future: np.ndarray
    origins: np.ndarray
    series: np.ndarray
    index: pandas.Index
    block: pandas.DataFrame
    train_size: int
    frequency: str
    season_length: int
    report: dict = dataclasses.field(default_factory=dict)

    def __len__(self):
        return len(self.origins)


def split_windows(frame, groups, bounds, input_width, horizon, strides=None, max_origins=None,
                  frequency=None, season_length=1, report=None, source="data", setting_prefix="data."):
    """Cuts the windows of every block (step 4): ``{block name: WindowSplit}``.

    Training windows stay inside the training block; the windows of later blocks may look
    back before their block (:func:`window_origins`).

    Args:
        frame: The regular, filled frame (:func:`prepare_series`).
        groups: :func:`column_groups` of the frame.
        bounds: ``{name: (start, stop)}`` from :func:`block_bounds` (``train`` first).
        input_width: Past steps per window.
        horizon: Future steps per window.
        strides: ``{block name: steps between origins}`` (default 1).
        max_origins: ``{block name: keep the last N origins}`` (None or missing: all).
        frequency: The frequency alias, kept on each split.
        season_length: Steps per season, kept on each split.
        report: The missing-value report, kept on each split.
        source: The file or dataset named in errors.
        setting_prefix: Prefix of the settings named in errors.

    Raises:
        SeqTemplatesError: The training block is shorter than a window, or a block holds none.
    """
    strides, max_origins = strides or {}, max_origins or {}
    train_size = bounds["train"][1]
    if train_size < input_width + horizon:
        raise errors.SeqTemplatesError(
            f"{source}: the training block has {train_size} steps, fewer than {setting_prefix}input_width + "
            f"{setting_prefix}horizon = {input_width + horizon}; give a longer series, or lower "
            f"{setting_prefix}input_width, {setting_prefix}horizon or the held-out sizes.")
    if season_length and season_length > train_size:
        raise errors.SeqTemplatesError(
            f"{source}: {setting_prefix}season_length={season_length} is longer than the training block "
            f"({train_size} steps): the seasonal baselines need a whole season before the first forecast; "
            f"lower {setting_prefix}season_length or give a longer series.")
    targets = frame[groups["targets"]].to_numpy(dtype="float64")
    splits = {}
    for name, (start, stop) in bounds.items():
        origins = window_origins(start, stop, input_width, horizon, strides.get(name) or 1,
                                 inputs_from=start if name == "train" else 0,
                                 max_origins=max_origins.get(name))
        if not len(origins):
            raise errors.SeqTemplatesError(
                f"{source}: the {name} block ({stop - start} steps) holds no window of {setting_prefix}"
                f"horizon={horizon} future steps; raise {setting_prefix}{name}_size or lower "
                f"{setting_prefix}horizon.")
        splits[name] = WindowSplit(
            inputs=window_inputs(frame, groups, origins, input_width), origins=origins,
            future=gather_windows(targets, origins, input_width, horizon)[1].astype("float32"),
            series=targets[:stop], index=frame.index[:stop], block=frame.iloc[start:stop],
            train_size=train_size, frequency=frequency, season_length=season_length, report=report or {})
    return splits
