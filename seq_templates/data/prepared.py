"""Data larger than memory: ``seq-templates prepare`` writes sharded TFRecords that ``train`` streams.

A prepared folder (a local path or a ``gs://``-style one: every file goes through ``tf.io.gfile``)::

    prepared.json                          what was read, how it was split and sampled, the counts
    train-00000-of-00080.tfrecord ...      every training row; each row went to a shard at random (seeded),
                                           so a file sorted by label is mixed across the shards
    validation-00000-of-00001.tfrecord     the held-out rows (at most about ``max_heldout_rows`` each)
    test-00000-of-00001.tfrecord
    sample-train.tfrecord                  the seeded sample of training rows (reservoir sampling)

Each record is a ``tf.train.Example`` with one bytes feature per column (``text``, ``label``); a
column whose values are lists of strings (a sentence's ``tokens`` and ``tags``) keeps each list as
the feature's values, and reads back as lists (ragged tensors when streamed).
:func:`prepare` reads the source once, one row at a time (``readers.stream_text_classification``):
a row goes to test or validation by a seeded hash of its first column, so identical inputs
share a split, as the in-memory carving keeps repeats together; with ``data.validation_path`` or
``data.test_path`` that split is the file's rows instead. ``prepared.json`` is written last, so a
folder without it is not a prepared dataset; a failed or interrupted ``prepare`` removes what it
wrote.

``train --data FOLDER`` reads it through :func:`load`: the training split is a
:class:`PreparedSplit`. As a tuple it is the columns of the seeded sample, which is what
vocabularies, label lookups, auto settings and baselines read (in memory, bounded); its
``shards`` are what :func:`examples` streams to training, every row, never all in memory.
The held-out splits are small enough to be plain columns.
"""

import hashlib
import itertools
import json
import math
import random
import time

from seq_templates import errors

FORMAT = "seq-templates prepared dataset"
VERSION = 1
MANIFEST = "prepared.json"
SAMPLE_ROWS = 100_000  # the training rows vocabularies and auto settings read
MAX_HELDOUT_ROWS = 50_000  # about: each carved held-out split, so it fits in memory for evaluation
SHARD_MEGABYTES = 64  # of source text per training shard
ESTIMATE_ROWS = 1_000  # the first rows, whose mean size estimates the source's rows
MAX_COVERED_VALUES = 1_000  # the sample holds a row of each value of the last column, if it has no more
MAX_LABEL_CHARACTERS = 100  # ... and none longer (a longer value is text, not a label)
PROGRESS_SECONDS = 10.0
_ANNOUNCED = set()


class PreparedSplit(tuple):
    """A training split on disk: as a tuple, its seeded sample's columns; ``shards`` stream every row.

    Attributes:
        shards: The TFRecord files of every row.
        rows: The number of rows in the shards.
        column_names: The feature names of each record, in column order.
        list_columns: The names of the columns whose values are lists of strings.
    """

    def __new__(cls, columns, shards, rows, column_names, list_columns=()):
        split = super().__new__(cls, columns)
        split.shards, split.rows, split.column_names = list(shards), int(rows), tuple(column_names)
        split.list_columns = tuple(list_columns)
        return split


def rows(split):
    """The rows a split holds: every row of a :class:`PreparedSplit`, not its sample's."""
    return split.rows if isinstance(split, PreparedSplit) else len(split[0])


def is_prepared(path):
    """Whether ``path`` is a folder :func:`prepare` completed (it holds ``prepared.json``)."""
    import tensorflow as tf

    return bool(path) and tf.io.gfile.exists(join(str(path), MANIFEST))


def examples(split, seed=None):
    """What ``bucketing.sequence_dataset`` reads: the split's string columns, in memory or streamed.

    Args:
        split: Columns (a tuple of lists of str) or a :class:`PreparedSplit`.
        seed: Seeds the order of a prepared split's shards, so that several workers (which
            shard by data) read the same stream.

    Returns:
        A tuple of ``tf.string`` tensors (a column of lists: a ragged ``(rows, None)`` one), or
        for a prepared split a ``tf.data.Dataset`` of such tuples' rows read lazily from its
        shards (16 interleaved at a time, in one seeded order: the training pipeline caches the
        first pass in a file and shuffles rows each epoch, so every pass, in a resumed process
        too, must give the same rows in the same order).
    """
    import tensorflow as tf

    if not isinstance(split, PreparedSplit):
        from seq_templates.preprocessing import text

        return tuple(text.ragged_strings(column) if column and isinstance(column[0], (list, tuple))
                     else tf.constant(column, dtype=tf.string) for column in split)
    names = split.column_names
    files = tf.data.Dataset.from_tensor_slices(split.shards).shuffle(len(split.shards), seed=seed,
                                                                     reshuffle_each_iteration=False)
    records = files.interleave(tf.data.TFRecordDataset, cycle_length=min(len(split.shards), 16),
                               num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    features = _feature_spec(names, split.list_columns)
    return records.batch(1024).map(
        lambda batch: tuple(tf.io.parse_example(batch, features)[name] for name in names),
        num_parallel_calls=tf.data.AUTOTUNE).unbatch()


def load(path, task):
    """Reads a prepared folder: ``{"train": PreparedSplit, "validation"|"test": columns}``.

    Raises:
        SeqTemplatesError: Not a prepared folder, another template's, or another version's.
    """
    path = str(path)
    manifest = read_manifest(path, task)
    names, list_columns = manifest["columns"], manifest.get("list_columns", [])
    splits = {}
    for name in ("validation", "test"):
        splits[name] = read_columns([join(path, shard) for shard in manifest["splits"][name]["shards"]], names,
                                    list_columns)
    train = manifest["splits"]["train"]
    sample = read_columns([join(path, manifest["sample"]["file"])], names, list_columns)
    splits["train"] = PreparedSplit(sample, [join(path, shard) for shard in train["shards"]], train["rows"],
                                    names, list_columns)
    if path not in _ANNOUNCED:  # once per process (auto settings read the folder before training does)
        _ANNOUNCED.add(path)
        print(f"Data: the prepared dataset {path}: {train['rows']:,} training rows in {len(train['shards'])} "
              f"shards, streamed to training; vocabularies, auto settings and baselines read its seeded sample "
              f"of {len(sample[0]):,} rows.", flush=True)
    return splits


def read_manifest(path, task):
    """The manifest of the prepared folder ``path``, checked to be this version's and ``task``'s.

    Raises:
        SeqTemplatesError: Not readable, another version's, or another template's.
    """
    import tensorflow as tf

    manifest_path = join(str(path), MANIFEST)
    try:
        manifest = json.loads(tf.io.gfile.GFile(manifest_path, "r").read())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise errors.SeqTemplatesError(f"{manifest_path}: not readable as JSON ({error}); prepare the data "
                                       "again with `seq-templates prepare`.") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise errors.SeqTemplatesError(
            f"{manifest_path}: not a version-{VERSION} prepared dataset (format {manifest.get('format')!r}, "
            f"version {manifest.get('version')!r}); prepare the data again with this version.")
    if manifest["task"] != task:
        raise errors.SeqTemplatesError(
            f"{path} was prepared for the {manifest['task']} template, not {task}; train "
            f"{manifest['task']} on it, or prepare the source again with `seq-templates prepare {task}`.")
    return manifest


def prepare(output, columns, splits, estimated_rows=None, fractions=None, seed=1234, sample_rows=SAMPLE_ROWS,
            max_heldout_rows=MAX_HELDOUT_ROWS, shard_megabytes=SHARD_MEGABYTES, source_bytes=None, task=None,
            source=None):
    """Streams rows into a prepared folder (see the module docstring); returns the manifest.

    Args:
        output: The folder to create (local or ``gs://...``); it must not exist or be empty.
        columns: The column names of each row, e.g. ``("text", "label")``. The first keys the
            held-out hash; the sample holds a row of every value of the last when it has at
            most :data:`MAX_COVERED_VALUES` values of at most :data:`MAX_LABEL_CHARACTERS`
            characters (a label, or each tag of a list of tags; free text gets no such rows).
        splits: ``{"train": rows, "validation": rows, "test": rows}``: iterables of tuples
            whose values are str or (in the same columns in every row) lists of str; ``train``
            is the source the missing held-out splits are carved from.
        estimated_rows: An upper bound of the rows ``splits["train"]`` holds (its lines); the
            estimate for the carved fractions' cap and the progress line is the source's
            bytes over the mean size of its first :data:`ESTIMATE_ROWS` rows, at most this
            (a CoNLL sentence is a row of many lines).
        fractions: ``{"validation": f, "test": f}`` carved from train for splits not given.
        seed: Seeds the held-out hash, the shard choice and the sample.
        sample_rows: Training rows kept in the sample.
        max_heldout_rows: About the most rows a carved held-out split takes.
        shard_megabytes: Source megabytes per training shard (the shard count is fixed up front
            from ``source_bytes``).
        source_bytes: The training source's size in bytes.
        task: The template's name, checked by :func:`load`.
        source: What was read (paths, settings), recorded in the manifest.

    Raises:
        SeqTemplatesError: ``output`` holds files, or the reader's error (what was written is removed).
    """
    return write_folder(output, lambda folder: {
        **_write(folder, tuple(columns), splits, estimated_rows, fractions or {}, seed, sample_rows,
                 max_heldout_rows, shard_megabytes, source_bytes), "task": task, "source": source or {}})


def write_folder(output, write):
    """Creates the new folder ``output``, fills it with ``write(output)`` and writes the manifest that
    returns last; on any error removes what was written. Returns the manifest.

    Raises:
        SeqTemplatesError: ``output`` is a file or holds files, a write failed, or ``write``'s error.
    """
    import tensorflow as tf

    output = str(output).rstrip("/")
    if tf.io.gfile.exists(output) and not tf.io.gfile.isdir(output):
        raise errors.SeqTemplatesError(f"'{output}' is a file; give --output a new folder.")
    if tf.io.gfile.exists(output) and tf.io.gfile.listdir(output):
        raise errors.SeqTemplatesError(f"'{output}' already holds files; give --output a new folder or remove it.")
    created = not tf.io.gfile.exists(output)
    try:
        tf.io.gfile.makedirs(output)
    except tf.errors.OpError as error:
        raise errors.SeqTemplatesError(f"Cannot create '{output}' ({error.message}); give --output a folder "
                                       "you can write.") from None
    try:
        manifest = write(output)
        with tf.io.gfile.GFile(join(output, MANIFEST + ".partial"), "w") as handle:
            handle.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        tf.io.gfile.rename(join(output, MANIFEST + ".partial"), join(output, MANIFEST), overwrite=True)
    except tf.errors.OpError as error:  # the file system refused a write (space, permission, ...)
        _remove_written(output, created)
        raise errors.SeqTemplatesError(f"Writing '{output}' failed ({error.message}); nothing was kept.") from None
    except BaseException:
        _remove_written(output, created)
        raise
    return manifest


def _remove_written(output, created):
    """Removes what :func:`prepare` wrote: the folder it created, or the files it put in an empty one."""
    import tensorflow as tf

    if created:
        tf.io.gfile.rmtree(output)
    else:
        for name in tf.io.gfile.listdir(output):
            tf.io.gfile.remove(join(output, name))


def _write(output, columns, splits, estimated_rows, fractions, seed, sample_rows, max_heldout_rows,
           shard_megabytes, source_bytes):
    import tensorflow as tf

    carved = {name: fraction for name, fraction in fractions.items() if name not in splits and fraction}
    rows_in = iter(splits["train"])
    first_rows = list(itertools.islice(rows_in, ESTIMATE_ROWS))
    estimated_rows = _estimated_rows(first_rows, source_bytes, estimated_rows)
    if estimated_rows:  # each carved split takes its fraction, up to about max_heldout_rows rows
        carved = {name: min(fraction, max_heldout_rows / estimated_rows) for name, fraction in carved.items()}
    num_shards = max(1, math.ceil((source_bytes or 0) / (shard_megabytes * 2 ** 20)))
    shard_names = [f"train-{index:05d}-of-{num_shards:05d}.tfrecord" for index in range(num_shards)]
    writers = [tf.io.TFRecordWriter(join(output, name)) for name in shard_names]
    heldout = {name: [] for name in ("validation", "test")}
    chooser, sampler = random.Random(seed), random.Random(seed + 1)
    sample, seen, first_of_value, train_rows, list_columns = [], 0, {}, 0, None
    salt = str(seed).encode()
    started = last_report = time.monotonic()
    try:
        for row in itertools.chain(first_rows, rows_in):
            seen += 1
            if list_columns is None:  # the first row says which columns hold lists
                list_columns = [name for name, value in zip(columns, row) if isinstance(value, (list, tuple))]
            held_out = _carved_split(_key(row[0]), carved, salt) if carved else None
            if held_out:
                heldout[held_out].append(row)
                continue
            writers[chooser.randrange(num_shards)].write(_serialize(columns, row))
            train_rows += 1
            if len(sample) < sample_rows:  # reservoir sampling: every row kept with the same chance
                sample.append(row)
            else:
                slot = sampler.randrange(train_rows)
                if slot < sample_rows:
                    sample[slot] = row
            if first_of_value is not None:  # a column of few values is a label: the sample holds each
                for value in _values(row[-1]):
                    first_of_value.setdefault(value, row)
                if len(first_of_value) > MAX_COVERED_VALUES or any(  # free text, not labels: no coverage
                        len(value) > MAX_LABEL_CHARACTERS for value in _values(row[-1])):
                    first_of_value = None
            if time.monotonic() - last_report > PROGRESS_SECONDS:
                last_report = time.monotonic()
                share = f" (about {min(seen / estimated_rows, 1):.0%})" if estimated_rows else ""
                print(f"prepare: {seen:,} rows read{share}, {seen / (last_report - started):,.0f} rows/s",
                      flush=True)
    finally:
        for writer in writers:
            writer.close()
    if not train_rows:
        raise errors.SeqTemplatesError("No training rows were read; check the file and its columns.")
    sampled_values = {value for row in sample for value in _values(row[-1])}
    for value, row in (first_of_value or {}).items():
        if value not in sampled_values:
            sample.append(row)
            sampled_values.update(_values(row[-1]))
    manifest = {"format": FORMAT, "version": VERSION, "columns": list(columns), "list_columns": list_columns,
                "seed": seed,
                "splits": {"train": {"rows": train_rows, "shards": shard_names}},
                "sample": {"file": "sample-train.tfrecord", "rows": len(sample), "of_rows": train_rows,
                           "how": f"reservoir sampling seeded {seed + 1}" + (
                               f", plus the first row of each value of '{columns[-1]}' the reservoir missed"
                               if first_of_value is not None else "")}}
    ranges, bound = {}, 0.0
    for name, fraction in carved.items():
        ranges[name], bound = f"[{bound:.4g}, {bound + fraction:.4g})", bound + fraction
    for name in ("validation", "test"):
        rows_of_split = heldout[name] if name in carved else list(splits.get(name) or [])
        if not rows_of_split:
            raise errors.SeqTemplatesError(
                f"The {name} split is empty; give data.{name}_path or a data.{name}_fraction above 0.")
        _write_records(join(output, f"{name}-00000-of-00001.tfrecord"), columns, rows_of_split)
        manifest["splits"][name] = {"rows": len(rows_of_split), "shards": [f"{name}-00000-of-00001.tfrecord"],
                                    "how": (f"carved: rows whose seeded hash of '{columns[0]}' falls in {ranges[name]}"
                                            if name in carved else "its own file")}
    _write_records(join(output, "sample-train.tfrecord"), columns, sample)
    elapsed = time.monotonic() - started
    print(f"prepare: {train_rows:,} training rows in {num_shards} shards, validation "
          f"{manifest['splits']['validation']['rows']:,}, test {manifest['splits']['test']['rows']:,}, sample "
          f"{len(sample):,}; {seen:,} rows read in {elapsed:.0f} s ({seen / max(elapsed, 1e-9):,.0f} rows/s).",
          flush=True)
    return manifest


def measure(path, chunk_bytes=1 << 22):
    """``(bytes, lines)`` of a source file (lines: an upper bound of its rows), read in chunks."""
    from seq_templates.data import readers

    size, lines = 0, 0
    with readers.open_binary(path) as handle:
        while chunk := handle.read(chunk_bytes):
            size += len(chunk)
            lines += chunk.count(b"\n")
    return size, lines + 1


def _carved_split(key, carved, salt):
    """The held-out split a row with this key goes to (``carved`` fractions, one after the other), or None."""
    draw, bound = _hash_fraction(key, salt), 0.0
    for name, fraction in carved.items():
        bound += fraction
        if draw < bound:
            return name
    return None


def _estimated_rows(first_rows, source_bytes, upper_bound):
    """About how many rows the source holds: its bytes over its first rows' mean size (each value's
    UTF-8 bytes and one separator), at most ``upper_bound`` (its lines); ``upper_bound`` without a size."""
    if not first_rows or not source_bytes:
        return upper_bound
    mean_bytes = sum(len(item.encode("utf-8")) + 1 for row in first_rows for value in row
                     for item in _values(value)) / len(first_rows)
    estimate = max(len(first_rows), math.ceil(source_bytes / max(mean_bytes, 1.0)))
    return min(estimate, upper_bound) if upper_bound else estimate


def _key(value):
    """The held-out hash's key of a first column's value (a list: its items joined)."""
    return "\x1f".join(value) if isinstance(value, (list, tuple)) else value


def _values(value):
    """The values a cell holds: a list's items, or the value itself."""
    return value if isinstance(value, (list, tuple)) else (value,)


def _hash_fraction(key, salt):
    """A number in [0, 1) from a seeded hash of ``key``: the same key, the same number."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8, key=salt).digest()
    return int.from_bytes(digest, "big") / 2 ** 64


def _serialize(columns, row):
    import tensorflow as tf

    return tf.train.Example(features=tf.train.Features(feature={
        name: tf.train.Feature(bytes_list=tf.train.BytesList(value=[item.encode("utf-8") for item in _values(value)]))
        for name, value in zip(columns, row)})).SerializeToString()


def _write_records(path, columns, rows_to_write):
    import tensorflow as tf

    with tf.io.TFRecordWriter(path) as writer:
        for row in rows_to_write:
            writer.write(_serialize(columns, row))


def read_columns(files, names, list_columns=()):
    """Every record of ``files`` (shards of a prepared folder) as columns, in file order.

    Returns:
        A tuple of lists, one per name: of str, or of lists of str for ``list_columns``.
    """
    import tensorflow as tf

    values = [[] for _ in names]
    for batch in tf.data.TFRecordDataset(files).batch(4096):
        parsed = tf.io.parse_example(batch, _feature_spec(names, list_columns))
        for column, name in zip(values, names):
            if name in list_columns:
                column.extend([item.decode("utf-8") for item in items] for items in parsed[name].to_list())
            else:
                column.extend(value.decode("utf-8") for value in parsed[name].numpy())
    return tuple(values)


def _feature_spec(names, list_columns=()):
    """How ``tf.io.parse_example`` reads a record: one string per column, a ragged row of a list column."""
    import tensorflow as tf

    return {name: tf.io.RaggedFeature(tf.string) if name in list_columns else tf.io.FixedLenFeature([], tf.string)
            for name in names}


def join(folder, name):
    return f"{folder.rstrip('/')}/{name}"
