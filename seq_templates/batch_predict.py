"""Batch scoring: many raw inputs through an export, streamed in batches into a JSON-lines file.

``seq-templates predict RUN --input-file F --output-file G`` reads F lazily (one input per
line, or the app's own reader: forecasting reads a series in its training format), answers it
``--batch-size`` inputs at a time through the SavedModel, and writes one JSON line per input to
a hidden temporary file beside G, renamed to G when the last line is written: memory stays
bounded by a batch whatever F's size, and an error, Ctrl-C or SIGTERM leaves no G (and no
temporary file). Progress goes to stderr: one line updated in place on a terminal, a line every
:data:`PROGRESS_INTERVAL_SECONDS` otherwise.

:class:`Scorer` is the one way inputs are answered: ``predict`` without ``--output-file`` (all
inputs in one request, printed), the streamed file and the Apache Beam pipeline
(``seq_templates/beam.py``) give the same JSON lines for the same inputs and batch size. It parses
inputs by ``predict``'s rules (``cli._parse_inputs``: a string for a one-input model, a JSON
object keyed by input name otherwise; ``--param`` values; the export's recorded defaults).
"""

import contextlib
import json
import os
import pathlib
import signal
import sys
import threading
import time

from seq_templates import errors

DEFAULT_BATCH_SIZE = 512  # export.batch_predictor's: the in-memory and streamed paths call alike
PROGRESS_INTERVAL_SECONDS = 10.0  # between progress lines when stderr is not a terminal
TERMINAL_REFRESH_SECONDS = 0.2  # between redraws of the progress line on a terminal


class Scorer:
    """Answers raw inputs through one signature of an export, as ``seq-templates predict`` prints them.

    The app and config of a run directory are read at once (``predict --input-file`` needs the
    app's reader first); the SavedModel is loaded on first use.

    Args:
        model: A run directory, an export folder or a version folder.
        signature: The signature to call.
        parameters: ``--param`` strings (``NAME=VALUE``), one value for every input.
        batch_size: Inputs per call of the signature.
        app: The run's app module, or None to read it from ``model`` (``run.json``).
        config: The run's config when ``app`` is given.
    """

    def __init__(self, model, signature="serving_default", parameters=(), batch_size=DEFAULT_BATCH_SIZE,
                 app=None, config=None):
        from seq_templates import cli

        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise errors.SeqTemplatesError(
                f"--batch-size {batch_size!r}: expected a number of inputs per call of at least 1, e.g. 512.")
        self.model = model
        self.signature = signature
        self.parameters = list(parameters)
        self.batch_size = batch_size
        self.app, self.config = (app, config) if app is not None else cli._run_app(model)
        self._loaded = False
        self._whole_values = {}  # one value per request (rank-0 inputs such as a seed): the same in every batch

    def load(self):
        """Loads the export (once): the signature, its input specs, recorded defaults and output names.

        Raises:
            SeqTemplatesError: No export, no such signature, or a bad ``--param``.
        """
        if self._loaded:
            return
        from seq_templates import cli
        from seq_templates import export

        version_path = export.find_version(self.model)
        function, self.specs = export.load_serving_function(version_path, self.signature)
        assets = export.read_assets(version_path)
        serving = assets.get("serving.json") or {}
        defaults = (serving.get("defaults") or {}).get(self.signature) or {}
        self.defaults = {name: value for name, value in defaults.items() if name in self.specs}
        self.fixed = cli._parse_parameters(self.parameters, self.specs)
        self.notes = serving.get("notes") or (
            [f"this export reads the first {serving['max_length']} tokens of each input"]
            if serving.get("max_length") else [])  # an export from before notes
        # An output whose last axis has one value per name in an assets.extra/ file (class probabilities);
        # an export from before named_outputs has labels.txt for its probabilities.
        named = serving.get("named_outputs") or ({"probabilities": "labels.txt"} if "labels.txt" in assets else {})
        self.named_outputs = {output: assets[file_name] for output, file_name in named.items()
                              if isinstance(assets.get(file_name), list)}
        self._predict = export.batch_predictor(function, self.batch_size)
        self._loaded = True

    def read_input_file(self, path):
        """The inputs of ``predict --input-file PATH``: the app's reader when it has one, else lines.

        Returns:
            An iterable of ``(where, input)`` pairs, read lazily for a file of lines.
        """
        if self.app is not None and hasattr(self.app, "read_prediction_file"):
            return self.app.read_prediction_file(pathlib.Path(path), self.config)
        return InputLines(path)

    def score(self, raw_inputs):
        """Answers ``raw_inputs`` (``(where, input)`` pairs) in one request, in ``batch_size`` calls.

        Returns:
            One record per input: ``{"input": ..., output name: value, ...}`` (outputs in name order,
            sequences cut to their length, named outputs as ``{name: value}``), as the app describes it.

        Raises:
            SeqTemplatesError: An input that does not parse (naming its ``where``), or one the
                model rejects.
        """
        from seq_templates import cli
        from seq_templates import export

        self.load()
        columns = cli._parse_inputs(raw_inputs, self.specs, self.fixed, self.defaults)
        self._check_whole_values(columns)
        outputs = cli._call_export(self._predict, columns)
        records = []
        for index, (_, raw) in enumerate(raw_inputs):
            record = {"input": raw}
            for name, item in sorted(export.trim_to_length(outputs, index).items()):  # a fixed key order
                names = self.named_outputs.get(name)
                if names and isinstance(item, list) and len(item) == len(names):
                    item = {label: round(float(value), 6) for label, value in zip(names, item)}
                record[name] = item
            if self.app is not None and hasattr(self.app, "describe_prediction"):
                record = self.app.describe_prediction(record, self.config)
            records.append(record)
        return records

    def _check_whole_values(self, columns):
        """An input that takes one value per request takes the same one in every batch of a stream."""
        for name, spec in self.specs.items():
            if spec.shape.rank != 0 or name in self.fixed or name not in columns:
                continue
            value = json.dumps(columns[name])
            first = self._whole_values.setdefault(name, value)
            if value != first:
                raise errors.SeqTemplatesError(
                    f"Input '{name}' takes one value for the whole request; the examples give different "
                    f"ones ({first} and {value}). Give the same value in every example.")


def json_line(record):
    """The JSON text of one answer, as ``predict`` prints it and writes it (no newline)."""
    return json.dumps(record, ensure_ascii=False, default=str)


class InputLines:
    """The non-blank lines of a UTF-8 text file, read lazily: ``(f"{path}:{number}", line)`` pairs.

    Lines are numbered and split as ``str.splitlines`` splits the whole file (``\\n``, ``\\r\\n``,
    ``\\r`` and the other Unicode line breaks); a leading byte-order mark is dropped. ``size`` and
    ``bytes_read`` give the progress through the file.

    Raises (when iterated):
        SeqTemplatesError: The file is missing or a folder, or a line holds bytes that are not UTF-8
            (naming the file, line and column).
    """

    def __init__(self, path):
        self.path = pathlib.Path(path)
        if not self.path.exists():
            raise errors.SeqTemplatesError(f"File '{self.path}' does not exist; check the path.")
        if self.path.is_dir():
            raise errors.SeqTemplatesError(f"'{self.path}' is a folder; expected a file of inputs, one a line.")
        self.size = self.path.stat().st_size
        self.bytes_read = 0

    def __iter__(self):
        number = 0
        with open(self.path, "rb") as handle:
            for physical_number, raw in enumerate(handle, start=1):  # split at b"\n", never inside a character
                self.bytes_read += len(raw)
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise errors.SeqTemplatesError(
                        f"{self.path}:{physical_number}:{error.start + 1}: byte 0x{raw[error.start]:02x} is not "
                        "valid UTF-8; re-save the file as UTF-8.") from None
                if physical_number == 1 and text.startswith("\ufeff"):
                    text = text[1:]
                for line in text.splitlines():
                    number += 1
                    if line.strip():
                        yield f"{self.path}:{number}", line

    def fraction_read(self):
        """The share of the file's bytes read so far (1.0 for an empty file)."""
        return min(1.0, self.bytes_read / self.size) if self.size else 1.0


class Progress:
    """Inputs done and inputs/s on a stream: redrawn in place on a terminal, a line now and then otherwise.

    Args:
        stream: Where to write (``sys.stderr`` by default).
        interval_seconds: Seconds between lines when ``stream`` is not a terminal.
        clock: Seconds since any fixed point (``time.monotonic``).
    """

    def __init__(self, stream=None, interval_seconds=PROGRESS_INTERVAL_SECONDS, clock=time.monotonic):
        self.stream = sys.stderr if stream is None else stream
        self.terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval_seconds = TERMINAL_REFRESH_SECONDS if self.terminal else interval_seconds
        self.clock = clock
        self.started = clock()
        self.last_shown = self.started
        self.drawn = False

    def update(self, done, fraction=None):
        """Shows ``done`` inputs (and ``fraction`` of the input read, when known) if it is time to."""
        now = self.clock()
        if now - self.last_shown < self.interval_seconds:
            return
        self.last_shown = now
        line = self._line(done, now, fraction)
        if self.terminal:
            self.stream.write(f"\r{line}\x1b[K")
            self.drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self, done, destination):
        """Writes the last line: inputs, time, rate and where the answers went."""
        now = self.clock()
        if self.drawn:
            self.stream.write("\r\x1b[K")
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        self.stream.write(f"predict: {_inputs(done)} in {_duration(elapsed)} ({_rate(rate)} inputs/s); "
                          f"wrote {destination}\n")
        self.stream.flush()

    def _line(self, done, now, fraction):
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        parts = ["predict:"]
        if fraction is not None:
            parts.append(f"{100 * fraction:3.0f}%")
        parts.append(f"{_inputs(done)}, {_rate(rate)} inputs/s, {_duration(elapsed)}")
        if fraction and rate and 0 < fraction < 1:
            parts.append(f"(about {_duration(elapsed * (1 - fraction) / fraction)} left)")
        return " ".join(parts)


def _inputs(count):
    return f"{count:,} input{'' if count == 1 else 's'}"


def _rate(rate):
    return f"{rate:,.0f}" if rate >= 10 else f"{rate:.2g}"


def _duration(seconds):
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def batches(items, size):
    """Lists of ``size`` consecutive items (the last one shorter), taken lazily from ``items``."""
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def check_output_path(output_file, input_file=None):
    """``--output-file``: a file in an existing folder, not a folder, not the input file.

    Returns:
        The path as a ``pathlib.Path``.

    Raises:
        SeqTemplatesError: It names a folder, its folder does not exist, or it is the input file.
    """
    path = pathlib.Path(output_file)
    if path.is_dir():
        raise errors.SeqTemplatesError(f"--output-file '{path}' is a folder; give a file name in it.")
    if not path.parent.is_dir():
        raise errors.SeqTemplatesError(
            f"--output-file '{path}': the folder '{path.parent}' does not exist; create it first.")
    if input_file is not None and path.exists() and pathlib.Path(input_file).exists() and \
            os.path.samefile(path, input_file):
        raise errors.SeqTemplatesError(
            f"--output-file '{path}' is the input file; write the answers to another file.")
    return path


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """While writing, SIGTERM stops like Ctrl-C (so the temporary file is removed), in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signal_number, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_json_lines(records, output_file, progress=None, fraction_read=None):
    """Writes records as JSON lines to a temporary file beside ``output_file``, renamed at the end.

    Args:
        records: An iterable of lists of records (one list per batch), consumed lazily.
        output_file: The file to write; replaced only once every line is written.
        progress: A :class:`Progress`, or None for none.
        fraction_read: A function returning the share of the input read, or None.

    Returns:
        The number of lines written.

    Raises:
        Whatever ``records`` raises (and KeyboardInterrupt): the temporary file is removed first
        and ``output_file`` is left as it was.
    """
    path = pathlib.Path(output_file)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask's mode, as > would
    count = 0
    try:
        with _sigterm_as_interrupt():
            with open(descriptor, "w", encoding="utf-8") as handle:
                for batch in records:
                    handle.write("".join(json_line(record) + "\n" for record in batch))
                    handle.flush()  # a batch at a time: the temporary file shows how far it got
                    count += len(batch)
                    if progress is not None:
                        progress.update(count, fraction_read() if fraction_read else None)
            os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return count


def predict_to_file(scorer, raw_inputs, input_file, output_file, progress=None):
    """``predict --output-file``: the INPUTs, then ``input_file``'s inputs, answered batch by batch.

    Args:
        scorer: A :class:`Scorer`.
        raw_inputs: ``(where, input)`` pairs given on the command line (answered first).
        input_file: The file of inputs, or None.
        output_file: Where the JSON lines go (written through a temporary file).
        progress: A :class:`Progress` (one on stderr by default).

    Returns:
        The number of inputs answered.

    Raises:
        SeqTemplatesError: No inputs, a bad output path, or a bad input (nothing is written).
    """
    output_path = check_output_path(output_file, input_file)
    file_inputs = scorer.read_input_file(input_file) if input_file else ()
    inputs = iter(_chain(raw_inputs, file_inputs))
    first = next(inputs, None)
    if first is None:
        raise errors.SeqTemplatesError("No inputs: give INPUT arguments or --input-file FILE.")
    scorer.load()
    for note in scorer.notes:
        print(f"note: {note}", file=sys.stderr)
    progress = Progress() if progress is None else progress
    fraction_read = getattr(file_inputs, "fraction_read", None)
    answered = (scorer.score(batch) for batch in batches(_chain([first], inputs), scorer.batch_size))
    count = write_json_lines(answered, output_path, progress, fraction_read)
    progress.finish(count, output_path)
    return count


def _chain(*iterables):
    for iterable in iterables:
        yield from iterable
