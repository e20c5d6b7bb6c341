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
   of an earlier block's windows.
"""

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


def regularize(frame, frequency, source="data", setting="data.frequency"):
    """Reindexes a time-indexed frame onto its full grid; gaps become rows of missing values.

    Args:
        frame: A ``pandas.DataFrame`` with a strictly increasing ``DatetimeIndex``.
        frequency: The grid's frequency alias.
        source: The file or dataset named in errors.
        setting: The frequency setting named in errors.

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
            f"{source}: data row {row + 1} has time {frame.index[row]}, which is not a step of the "
            f"frequency '{frequency}' counted from {frame.index[0]}; set {setting} to the data's time step.")
    added = ~grid.isin(frame.index)
    return frame.reindex(grid), added


def fill_missing(frame, policy, added=None, source="data", setting_prefix="data."):
    """Applies the missing-value policy; returns ``(filled frame, report)``.

    Args:
        frame: A regular time-indexed frame (numeric columns float, categorical object).
        policy: ``error``, ``interpolate`` or ``ffill``.
        added: Boolean array of rows :func:`regularize` added (gaps), or None.
        source: The file or dataset named in errors.
        setting_prefix: Prefix of the settings named in errors.

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
        data_row = int((~added[:row]).sum()) + 1
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


def prepare_series(frame, frequency=None, policy="error", source="data", setting_prefix="data."):
    """Steps 1 and 2 together: the frequency, the regular grid and the missing-value policy.

    Returns:
        ``(frame, report, frequency)``: the regular, filled frame, what was filled
        (:func:`fill_missing`) and the frequency alias.
    """
    frequency = infer_frequency(frame.index, frequency, source, f"{setting_prefix}frequency")
    frame, added = regularize(frame, frequency, source, f"{setting_prefix}frequency")
    frame, report = fill_missing(frame, policy, added, source, setting_prefix)
    return frame, report, frequency


def future_times(last_time, frequency, horizon):
    """The ``horizon`` timestamps after ``last_time`` on the grid of ``frequency``, as strings."""
    offset = pandas.tseries.frequencies.to_offset(frequency)
    return [str(pandas.Timestamp(last_time) + offset * step) for step in range(1, horizon + 1)]
