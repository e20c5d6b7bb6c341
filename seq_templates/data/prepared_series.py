"""A series larger than memory: ``seq-templates prepare forecasting`` writes it as sharded TFRecords of
consecutive steps, and ``train`` cuts them into windows as it streams them.

:func:`prepare` reads the series a chunk of rows at a time (``readers.stream_timeseries``), puts each
chunk on the time grid and applies the missing-value policy with the results it has on the whole
series (rows after the last complete one wait for the next chunk, so a gap is filled from both
neighbours), and writes (every file through ``tf.io.gfile``: local or ``gs://``-style folders)::

    prepared.json                    the columns, frequency, steps, what the policy filled, the settings read
    train-00000-of-00004.tfrecord    record k holds the steps [k*C, (k + 2)*C) (C = ``chunk_steps``): every
    ...                              window of at most C + 1 steps that starts in its first C steps lies in
                                     it whole; records go to shards at random (seeded)
    tail.csv                         the last ``tail_steps`` steps with their times: the validation and test
                                     blocks, the history their windows look back on, the baselines' fit
    sample.csv                       a seeded sample of steps (column ``step``: their place in the series),
                                     which the normalization and the category lookup adapt on

``train --data FOLDER`` reads it with :func:`read`: the tail is the series frame, marked with the
series' length, and :func:`split_windows` cuts the held-out blocks from it as from a whole series
while the training windows (:class:`StreamedWindows`) come from the shards (:func:`window_dataset`).
"""

import dataclasses
import io
import json
import math
import random
import time

import numpy as np
import pandas

from seq_templates import errors
from seq_templates.data import prepared
from seq_templates.preprocessing import windows

CHUNK_STEPS = 4096  # steps a record starts windows at (it holds twice as many)
CHUNK_ROWS = 100_000  # rows of the source read at a time
TAIL_STEPS = prepared.MAX_HELDOUT_ROWS  # the last steps kept whole: held-out blocks, history, baselines' fit
SAMPLE_ROWS = prepared.SAMPLE_ROWS  # steps the normalization and the category lookup adapt on
SHUFFLE_WINDOWS = 32_768  # training windows shuffled together (from about 8 records)
SHUFFLE_RECORD_BYTES = 128 * 2 ** 20  # records shuffled together before their windows are cut
RECORDS_SIDE_BY_SIDE = 16  # records whose windows are taken in turn
MAX_HELD_ROWS = 1_000_000  # rows interpolation may wait on for a column's next value
TAIL_FILE, SAMPLE_FILE = "tail.csv", "sample.csv"
ATTRIBUTE = "prepared_series"  # the tail frame's ``attrs`` entry: {"path", "steps", "first_step"}
KIND = "series"
READ_SETTINGS = ("time_column", "time_columns", "time_format", "year_offset", "missing_values", "format",
                 "encoding")  # the data settings readers.stream_timeseries reads a file with


@dataclasses.dataclass
class StreamedWindows:
    """A training block's windows read from a prepared folder's shards (``len``: how many).

    Attributes:
        shards: The TFRecord files.
        records: How many records they hold.
        chunk_steps: Steps each record starts windows at.
        groups: ``windows.column_groups`` of the series.
        origins: The training windows' origins as ``(first, last, stride)``.
        input_width, horizon: Past and future steps per window.
        block: The sample of training steps (a frame of the series' columns): what adapts.
        train_size, frequency, season_length, report: As ``windows.WindowSplit``'s.
    """

    shards: list
    records: int
    chunk_steps: int
    groups: dict
    origins: tuple
    input_width: int
    horizon: int
    block: pandas.DataFrame
    train_size: int
    frequency: str
    season_length: int
    report: dict

    def __len__(self):
        first, last, stride = self.origins
        return max(0, (last - first) // stride + 1)


def is_prepared(path):
    """Whether ``path`` is a folder ``seq-templates prepare`` completed (``prepared.is_prepared``)."""
    return prepared.is_prepared(path)


def prepare(output, data_config, task, sample_rows=SAMPLE_ROWS, max_heldout_rows=TAIL_STEPS,
            shard_megabytes=prepared.SHARD_MEGABYTES, source_bytes=None, source_rows=None, chunk_steps=CHUNK_STEPS):
    """Writes the series of ``data_config``'s files into the prepared folder ``output``; returns its manifest.

    Args:
        output: A new folder (local or ``gs://...``).
        data_config: The forecaster's data settings: ``path`` (then ``validation_path`` and
            ``test_path``, continuing it) read a chunk of rows at a time by
            ``readers.stream_timeseries`` with the reading settings (:data:`READ_SETTINGS`);
            ``target_columns``, ``covariate_columns`` (``windows.select_columns``), ``frequency``
            (None infers it from the first chunk), ``missing_policy`` (``windows.fill_missing``),
            ``split_seed`` (seeds the shard of each record and the sample); recorded in the manifest.
        task: The template, checked when the folder is read.
        sample_rows: Steps in the sample.
        max_heldout_rows: The last steps kept whole in ``tail.csv``.
        shard_megabytes: Source megabytes per shard (the count is fixed from ``source_bytes``).
        source_bytes: The source's size in bytes.
        source_rows: About how many rows ``data.path`` holds (its lines): each shard then takes the
            records of one stretch of time, so that reading shards side by side mixes distant
            times; None: each record goes to a shard at random.
        chunk_steps: Steps each record starts windows at (windows up to ``chunk_steps + 1`` steps).

    Raises:
        SeqTemplatesError: The reader's, the grid's or the policy's error (what was written is removed).
    """
    from seq_templates.data import readers

    targets, covariates = list(data_config.target_columns), list(data_config.covariate_columns)
    columns = {"data.target_columns": targets, "data.covariate_columns": covariates} if targets else {}  # {}: all
    options = {key: getattr(data_config, key) for key in READ_SETTINGS if key != "format"}
    chunks = (frame for path in (data_config.path, data_config.validation_path, data_config.test_path) if path
              for frame in readers.stream_timeseries(path, value_columns=columns, file_format=data_config.format,
                                                     chunk_rows=CHUNK_ROWS, **options))
    return prepared.write_folder(output, lambda folder: {
        **_write(folder, chunks, targets, covariates, data_config.frequency, data_config.missing_policy,
                 data_config.split_seed, sample_rows, max_heldout_rows, shard_megabytes, source_bytes,
                 source_rows, str(data_config.path), chunk_steps),
        "task": task, "source": {"data": dataclasses.asdict(data_config)}})


def source_settings(data_config):
    """``data_config`` with the settings its prepared series (``data.path``) was read with, so that a
    file (``predict --input-file``) is read as the source was; other data as it is."""
    if not is_prepared(data_config.path):
        return data_config
    source = json.loads(_read_text(prepared.join(str(data_config.path), prepared.MANIFEST)))["source"]["data"]
    return dataclasses.replace(data_config, **{key: source[key] for key in (
        *READ_SETTINGS, "target_columns", "covariate_columns", "frequency", "missing_policy") if key in source})


def _write(output, frames, target_columns, covariate_columns, frequency, policy, seed, sample_rows, tail_steps,
           shard_megabytes, source_bytes, source_rows, source_name, chunk_steps):
    import tensorflow as tf

    num_shards = max(1, math.ceil((source_bytes or 0) / (shard_megabytes * 2 ** 20)))
    shard_names = [f"train-{index:05d}-of-{num_shards:05d}.tfrecord" for index in range(num_shards)]
    writers = [tf.io.TFRecordWriter(prepared.join(output, name)) for name in shard_names]
    chooser, sampler = random.Random(seed), np.random.default_rng(seed + 1)
    pieces, groups, state = None, None, {"steps": 0, "records": 0, "buffer": [], "buffer_start": 0}
    tail, sample, sample_steps = [], None, np.zeros(0, np.int64)
    started = last_report = time.monotonic()

    def write_records(final):  # records of 2C steps every C steps; at the end, the rest
        buffer = pandas.concat(state["buffer"]) if len(state["buffer"]) > 1 else state["buffer"][0]
        while len(buffer) >= 2 * chunk_steps or (final and len(buffer)):
            record = _serialize(state["buffer_start"], buffer.iloc[:2 * chunk_steps], groups)
            shard = (min(num_shards - 1, state["buffer_start"] * num_shards // source_rows) if source_rows
                     else chooser.randrange(num_shards))  # a stretch of time each, or at random
            writers[shard].write(record)
            state["records"] += 1
            if final and len(buffer) <= chunk_steps:
                break
            buffer, state["buffer_start"] = buffer.iloc[chunk_steps:], state["buffer_start"] + chunk_steps
        state["buffer"] = [buffer]

    def take(piece):  # filled rows in order: records, tail, sample
        nonlocal tail, sample, sample_steps, groups
        groups = groups or windows.column_groups(piece, target_columns)  # (a first chunk's blank column: filled)
        steps = np.arange(state["steps"], state["steps"] + len(piece))
        state["steps"] += len(piece)
        state["buffer"].append(piece)
        if sum(map(len, state["buffer"])) >= 2 * chunk_steps:
            write_records(final=False)
        tail.append(piece)
        while len(tail) > 1 and sum(map(len, tail[1:])) >= tail_steps:
            tail.pop(0)
        sample, sample_steps = _reservoir(sample, sample_steps, piece, steps, sample_rows, sampler)

    try:
        for raw in frames:
            frame = windows.select_columns(raw, target_columns, covariate_columns, source_name)
            windows.check_finite(frame, source_name)
            if pieces is None:
                pieces = _FilledPieces(windows.infer_frequency(frame.index, frequency, source_name), policy,
                                       source_name)
            for piece in pieces.add(frame):
                take(piece)
            if time.monotonic() - last_report > prepared.PROGRESS_SECONDS:
                last_report = time.monotonic()
                print(f"prepare: {pieces.rows_read:,} rows read, {state['steps']:,} steps written, "
                      f"{pieces.rows_read / (last_report - started):,.0f} rows/s", flush=True)
        if pieces is None:
            raise errors.SeqTemplatesError(f"{source_name}: no rows found; the file has only a header.")
        for piece in pieces.finish():
            take(piece)
        write_records(final=True)
    finally:
        for writer in writers:
            writer.close()
    tail = pandas.concat(tail).iloc[-tail_steps:]
    _write_text(prepared.join(output, TAIL_FILE), tail.to_csv(index_label="time"))
    sampled = sample.set_axis(pandas.Index(sample_steps, name="step")).sort_index()
    _write_text(prepared.join(output, SAMPLE_FILE), sampled.to_csv())
    elapsed = time.monotonic() - started
    print(f"prepare: {state['steps']:,} steps ({pieces.rows_read:,} rows read, {pieces.report['rows_added_for_gaps']:,}"
          f" added for gaps) in {state['records']:,} records, {num_shards} shards; tail {len(tail):,} steps, sample "
          f"{len(sampled):,}; {elapsed:.0f} s ({pieces.rows_read / max(elapsed, 1e-9):,.0f} rows/s).", flush=True)
    return {"format": prepared.FORMAT, "version": prepared.VERSION, "kind": KIND, "seed": seed,
            "groups": groups, "frequency": pieces.frequency, "steps": state["steps"], "report": pieces.report,
            "chunk_steps": chunk_steps, "shards": shard_names, "records": state["records"],
            "shard_order": "a stretch of time each" if source_rows else f"at random, seeded {seed}",
            "tail": {"file": TAIL_FILE, "steps": len(tail), "first_step": state["steps"] - len(tail)},
            "sample": {"file": SAMPLE_FILE, "rows": len(sampled), "how": f"reservoir sampling seeded {seed + 1}"}}


class _FilledPieces:
    """The time grid and the missing-value policy a chunk at a time, with the whole series' results.

    Each chunk is put on the grid from the last row before it; under ``interpolate`` and ``ffill`` the
    rows after its last complete row wait for the next chunk (their fill may need a later value),
    and each piece is filled after the last filled row (which the fill may need too).
    """

    def __init__(self, frequency, policy, source):
        self.frequency, self.policy, self.source = frequency, policy, source
        self.rows_read, self.last_raw, self.carry = 0, None, None
        self.held, self.held_added, self.held_first_row = None, np.zeros(0, bool), 1
        self.report = {"policy": policy, "rows_added_for_gaps": 0, "filled_values": {}}

    def add(self, frame):
        """Returns the filled pieces the chunk ``frame`` (selected, checked) completes, in time order."""
        if self.last_raw is not None and frame.index[0] <= self.last_raw.index[-1]:
            raise errors.SeqTemplatesError(
                f"{self.source}: time {frame.index[0]} (data row {self.rows_read + 1}) does not follow "
                f"{self.last_raw.index[-1]}; the rows (and data.validation_path, data.test_path after data.path) "
                "must continue the series in time order, without overlap.")
        joined = frame if self.last_raw is None else pandas.concat([self.last_raw, frame])
        regular, added = windows.regularize(joined, self.frequency, self.source, first_row=max(self.rows_read, 1))
        if self.last_raw is not None:
            regular, added = regular.iloc[1:], added[1:]
        first_row, self.rows_read, self.last_raw = self.rows_read + 1, self.rows_read + len(frame), frame.iloc[-1:]
        if self.held is None:
            self.held_first_row = first_row
            self.held, self.held_added = regular, added
        else:
            self.held, self.held_added = pandas.concat([self.held, regular]), np.concatenate([self.held_added, added])
        return self._fill(final=False)

    def finish(self):
        """The pieces still held (the series' end: filled from the last value before it)."""
        return self._fill(final=True) if self.held is not None else []

    def _fill(self, final):
        regular, added = self.held, self.held_added
        if self.policy == "error" or final or (self.policy == "ffill" and self.carry is not None):
            end = len(regular)  # (ffill needs no later value once a filled row is before it)
        else:
            complete = (~regular.isna().any(axis=1)).to_numpy().nonzero()[0]
            end = int(complete[-1]) + 1 if len(complete) else 0
        if len(regular) - end > MAX_HELD_ROWS:
            row = regular.iloc[end]
            name = next(name for name in regular.columns if pandas.isna(row[name]))
            raise errors.SeqTemplatesError(
                f"{self.source}: column '{name}' has no value for {len(regular) - end:,} rows from "
                f"{regular.index[end]} on, which data.missing_policy={self.policy} would fill from the value after "
                "them; fill the column, leave it out of data.covariate_columns, or set data.missing_policy=ffill.")
        if end == 0:
            return []
        piece, piece_added = regular.iloc[:end], added[:end]
        self.held, self.held_added = (regular.iloc[end:], added[end:]) if end < len(regular) else (None, added[:0])
        joined = piece if self.carry is None else pandas.concat([self.carry, piece])  # (a data row: no error yet)
        carried = len(joined) - len(piece)
        filled, _ = windows.fill_missing(joined, self.policy, np.concatenate([np.zeros(carried, bool), piece_added]),
                                         self.source, first_row=self.held_first_row - carried)
        filled = filled.iloc[carried:]
        self.held_first_row += int((~piece_added).sum())
        self.carry = filled.iloc[-1:]
        self.report["rows_added_for_gaps"] += int(piece_added.sum())
        for name, count in piece.isna().sum().items():
            if count:
                self.report["filled_values"][name] = self.report["filled_values"].get(name, 0) + int(count)
        return [filled]


def _reservoir(sample, sample_steps, piece, steps, size, rng):
    """Reservoir sampling, a piece at a time: ``(sample rows, their steps)`` after ``piece`` (at ``steps``)."""
    if sample is None or len(sample) < size:
        room = size - (0 if sample is None else len(sample))
        head = piece.iloc[:room]
        sample = head if sample is None else pandas.concat([sample, head])
        sample_steps = np.concatenate([sample_steps, steps[:room]])
        piece, steps = piece.iloc[room:], steps[room:]
    if len(steps):
        slots = (rng.random(len(steps)) * (steps + 1)).astype(np.int64)  # a row replaces slot j < size
        chosen = np.flatnonzero(slots < size)
        if len(chosen):
            values = sample.to_numpy(dtype=object, copy=True)
            kept = {int(slot): int(position) for slot, position in zip(slots[chosen], chosen)}  # the last one wins
            values[list(kept)] = piece.to_numpy(dtype=object)[list(kept.values())]
            sample_steps = sample_steps.copy()
            sample_steps[list(kept)] = steps[list(kept.values())]
            sample = pandas.DataFrame(values, index=sample.index, columns=sample.columns).astype(sample.dtypes)
    return sample, sample_steps


def _serialize(start, rows, groups):
    import tensorflow as tf

    numbers = rows[groups["targets"] + groups["covariates"]].to_numpy(dtype="float32").ravel()
    categories = rows[groups["categories"]].to_numpy(dtype=str).ravel() if groups["categories"] else []
    return tf.train.Example(features=tf.train.Features(feature={
        "start": tf.train.Feature(int64_list=tf.train.Int64List(value=[start])),
        "numbers": tf.train.Feature(float_list=tf.train.FloatList(value=numbers)),
        "categories": tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[value.encode("utf-8") for value in categories]))})).SerializeToString()


def _write_text(path, text):
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "w") as handle:
        handle.write(text)


def _read_csv(path, index_column, text_columns=(), times=False):
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "r") as handle:  # text columns as written ("01" stays "01")
        frame = pandas.read_csv(io.StringIO(handle.read()), index_col=index_column, keep_default_na=False,
                                na_values=[""], dtype={name: str for name in text_columns})
    if times:
        frame.index = pandas.DatetimeIndex(pandas.to_datetime(frame.index), name="time")
    return frame


def read(data_config, task):
    """The prepared series ``data_config.path`` as ``(tail frame, report, frequency, source)``, as a
    file's series is read.

    The frame is the series' last steps; ``frame.attrs[ATTRIBUTE]`` holds the folder, the series'
    steps and the tail's first step, which :func:`steps` and :func:`split_windows` read.

    Raises:
        SeqTemplatesError: Not this template's prepared series, or settings that would read the
            source otherwise than it was prepared (other columns, more files).
    """
    path = str(data_config.path)
    manifest = prepared.read_manifest(path, task)
    groups = manifest["groups"]
    for setting, asked, kept in (("target_columns", data_config.target_columns, groups["targets"]),
                                 ("covariate_columns", data_config.covariate_columns,
                                  groups["covariates"] + groups["categories"])):
        if asked and (list(asked) != list(kept) if setting == "target_columns" else set(asked) != set(kept)):
            raise errors.SeqTemplatesError(
                f"data.{setting}={list(asked)} differs from the columns prepared in {path} ({kept}); remove the "
                "setting, or prepare the source again with it.")
    for setting in ("validation_path", "test_path"):
        if getattr(data_config, setting, None):
            raise errors.SeqTemplatesError(
                f"data.{setting} cannot be added to the prepared series {path}: `seq-templates prepare` reads "
                "every file of a series; prepare them together, or remove the setting.")
    frame = _read_csv(prepared.join(path, manifest["tail"]["file"]), "time", groups["categories"], times=True)
    frame = frame[groups["targets"] + groups["covariates"] + groups["categories"]]
    for name in groups["categories"]:
        frame[name] = frame[name].astype(object)
    frame.attrs[ATTRIBUTE] = {"path": str(path), "steps": manifest["steps"],
                              "first_step": manifest["tail"]["first_step"]}
    print(f"Data: the prepared series {path}: {manifest['steps']:,} steps in {manifest['records']:,} records, "
          f"training windows streamed from {len(manifest['shards'])} shards; the held-out blocks and baselines "
          f"read its last {len(frame):,} steps, the normalization its sample of {manifest['sample']['rows']:,}.",
          flush=True)
    return frame, manifest["report"], manifest["frequency"], f"prepared series '{path}'"


def steps(frame):
    """The steps of the series ``frame`` is (all of them when it is a prepared series' tail)."""
    return frame.attrs[ATTRIBUTE]["steps"] if ATTRIBUTE in frame.attrs else len(frame)


def split_windows(frame, groups, bounds, input_width, horizon, strides=None, max_origins=None, **options):
    """``windows.split_windows``; for a prepared series' tail, its training windows are streamed.

    ``bounds`` count the whole series' steps. The validation and test blocks (and the history
    their windows look back on) come from the tail as from the whole series; the baselines'
    training block is the tail's steps before validation. The training split is a
    :class:`StreamedWindows`.

    Raises:
        SeqTemplatesError: The tail is too short for the held-out blocks, a window's history, and
            a season (naming the ``--max-heldout-rows`` to prepare again with); or as
            ``windows.split_windows``.
    """
    strides, max_origins = strides or {}, max_origins or {}
    if ATTRIBUTE not in frame.attrs:
        return windows.split_windows(frame, groups, bounds, input_width, horizon, strides, max_origins, **options)
    where = frame.attrs[ATTRIBUTE]
    offset, train_stop = where["first_step"], bounds["train"][1]
    needed = where["steps"] - train_stop + max(input_width + horizon, 2 * (options.get("season_length") or 1))
    if needed > len(frame):
        raise errors.SeqTemplatesError(
            f"{where['path']} keeps its last {len(frame):,} steps whole, fewer than the held-out blocks "
            f"({where['steps'] - train_stop:,} steps) and a window or two seasons before them need ({needed:,}); lower "
            f"data.test_size and data.validation_size, or prepare the source again with --max-heldout-rows {needed}.")
    local = {name: (max(start - offset, 0), stop - offset) for name, (start, stop) in bounds.items()}
    splits = windows.split_windows(frame, groups, local, input_width, horizon, strides,
                                   {**max_origins, "train": 1}, **options)
    manifest = json.loads(_read_text(prepared.join(where["path"], prepared.MANIFEST)))  # read checked it
    sample = _read_csv(prepared.join(where["path"], manifest["sample"]["file"]), "step", groups["categories"])
    block = sample.loc[sample.index < train_stop, list(frame.columns)]
    for name in groups["categories"]:
        block[name] = block[name].astype(object)
    origins = windows.window_origins(0, train_stop, input_width, horizon, strides.get("train") or 1, 0,
                                     max_origins.get("train"))
    splits["train"] = StreamedWindows(
        shards=[prepared.join(where["path"], name) for name in manifest["shards"]], records=manifest["records"],
        chunk_steps=manifest["chunk_steps"], groups=groups,
        origins=(int(origins[0]), int(origins[-1]), strides.get("train") or 1), input_width=input_width,
        horizon=horizon, block=block, train_size=train_stop, frequency=splits["validation"].frequency,
        season_length=splits["validation"].season_length, report=splits["validation"].report)
    if input_width + horizon > manifest["chunk_steps"] + 1:
        raise errors.SeqTemplatesError(
            f"data.input_width + data.horizon = {input_width + horizon} is longer than the windows {where['path']} "
            f"was prepared for (at most {manifest['chunk_steps'] + 1} steps); lower them.")
    return splits


def _read_text(path):
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "r") as handle:
        return handle.read()


def window_dataset(split, transform, batch_size, shuffle=False, seed=None):
    """A :class:`StreamedWindows`' windows as batches: ``transform(raw inputs, future)`` on each record's.

    Records are read from the shards in a seeded order (reshuffled each pass when ``shuffle``, with
    the records, the windows of :data:`RECORDS_SIDE_BY_SIDE` records taken in turn, and the windows
    :data:`SHUFFLE_WINDOWS` at a time); never the whole block in memory.
    """
    import tensorflow as tf

    groups, width, horizon = split.groups, split.input_width, split.horizon
    num_numbers, first, last, stride = len(groups["targets"]) + len(groups["covariates"]), *split.origins
    features = {"start": tf.io.FixedLenFeature([], tf.int64), "numbers": tf.io.VarLenFeature(tf.float32),
                "categories": tf.io.VarLenFeature(tf.string)}

    def record_windows(serialized):
        record = tf.io.parse_single_example(serialized, features)
        numbers = tf.reshape(tf.sparse.to_dense(record["numbers"]), [-1, num_numbers])
        count = tf.minimum(tf.constant(split.chunk_steps, tf.int64), tf.shape(numbers, out_type=tf.int64)[0])
        starts = record["start"] + tf.range(count)
        origins = starts + width  # each window's first future step, kept where training has it
        keep = (origins >= first) & (origins <= last) & tf.equal((last - origins) % stride, 0)
        positions = tf.boolean_mask(origins - record["start"], keep)
        past = positions[:, None] + tf.range(-width, 0, dtype=tf.int64)[None, :]
        future = positions[:, None] + tf.range(horizon, dtype=tf.int64)[None, :]
        inputs = {"targets": tf.gather(numbers[:, :len(groups["targets"])], past)}
        if groups["covariates"]:
            inputs["covariates"] = tf.gather(numbers[:, len(groups["targets"]):], past)
        if groups["categories"]:
            categories = tf.reshape(tf.sparse.to_dense(record["categories"], ""), [-1, len(groups["categories"])])
            inputs["categories"] = tf.gather(categories, past)
        return transform(inputs, tf.gather(numbers[:, :len(groups["targets"])], future))

    files = tf.data.Dataset.from_tensor_slices(split.shards)
    if shuffle:
        files = files.shuffle(len(split.shards), seed=seed, reshuffle_each_iteration=True)
    records = files.interleave(tf.data.TFRecordDataset, cycle_length=min(len(split.shards), 16),
                               num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if not shuffle:
        return records.map(record_windows, num_parallel_calls=tf.data.AUTOTUNE).unbatch().batch(
            batch_size).prefetch(tf.data.AUTOTUNE)
    # Shuffled: records of distant times (the shards, stretches of time, read side by side) are
    # shuffled, then the windows of 16 records taken in turn, then shuffled again.
    record_bytes = 2 * split.chunk_steps * (4 * num_numbers + 16 * len(groups["categories"]))
    records = records.shuffle(max(1, min(split.records, SHUFFLE_RECORD_BYTES // record_bytes)), seed=seed,
                              reshuffle_each_iteration=True)
    dataset = records.interleave(lambda serialized: tf.data.Dataset.from_tensor_slices(record_windows(serialized)),
                                 cycle_length=RECORDS_SIDE_BY_SIDE, block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
                                 deterministic=True)
    dataset = dataset.shuffle(SHUFFLE_WINDOWS, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
