"""Readers for every shape of sequence data, returning plain Python data.

* :func:`read_text_classification`: (text, label) rows from CSV, TSV or JSONL;
  :func:`read_labelled_folders`: the ``root/<label>/*.txt`` layout.
* :func:`read_conll`: token and tag columns, blank lines between sentences.
* :func:`read_parallel_tsv`: ``source<TAB>target`` sentence pairs.
* :func:`read_plain_text`: one corpus as a string; :func:`gutenberg_body` finds a
  Project Gutenberg book's own text between its header and its license footer.
* :func:`read_timeseries`: a CSV/TSV/Parquet table indexed by time, as a
  ``pandas.DataFrame``.
* :func:`read_columns`: the column reader the CSV/TSV readers share.

Problems a user can fix (a missing file, a missing column, a short row, bytes
that are not valid in the declared encoding, an empty file) raise
:class:`~seq_templates.errors.SeqTemplatesError` naming the file, line and column
and the setting to change. Shared code never names one app's settings: every
reader takes ``setting_prefix`` (``"data."`` by default, so a message says
``data.token_column``); the dataset registry passes ``"reader."`` and names the
recipe file. Every reader removes a UTF-8 byte-order mark and accepts CRLF line
ends and a missing final newline.
"""

import codecs
import csv
import io
import itertools
import json
import pathlib
import re
import sys
import warnings

import numpy as np
import pandas

from seq_templates import errors

TEXT_FORMATS = ("csv", "tsv", "jsonl")
TIMESERIES_FORMATS = ("csv", "tsv", "parquet")
CONLL_SEPARATORS = (None, "\t", " ")
TIME_UNITS = ("year", "month", "day", "hour", "minute", "second")
FORMATS_BY_SUFFIX = {
    "csv": "csv", "tsv": "tsv", "jsonl": "jsonl", "json": "jsonl", "ndjson": "jsonl",
    "txt": "text", "parquet": "parquet", "conll": "conll", "iob": "conll", "bio": "conll",
}
BYTE_ORDER_MARK = "\ufeff"
COUNTED_YEAR = re.compile(r"(\d+)(\D.*)?", re.DOTALL)  # a year counted from 1, then the rest of a time
YEAR_MISSING = re.compile(r"\d{1,3}-\d{1,2}")  # e.g. "1-01": no calendar year for pandas to find


def infer_format(path, setting_prefix="data."):
    """Returns the format of a file from its extension.

    ``.csv`` → ``csv``, ``.tsv`` → ``tsv``, ``.jsonl``/``.json``/``.ndjson`` →
    ``jsonl``, ``.txt`` → ``text`` (plain text), ``.parquet`` → ``parquet``,
    ``.conll``/``.iob``/``.bio`` → ``conll``. Unknown trailing extensions (such
    as ``.gz``) are looked past.

    Args:
        path: The file name.
        setting_prefix: Prefix of the format setting named in the error.

    Raises:
        SeqTemplatesError: No extension is a known one.
    """
    suffixes = [suffix.lower().lstrip(".") for suffix in pathlib.Path(path).suffixes]
    for suffix in reversed(suffixes):
        if suffix in FORMATS_BY_SUFFIX:
            return FORMATS_BY_SUFFIX[suffix]
    known = ", ".join(f".{suffix}" for suffix in FORMATS_BY_SUFFIX)
    if (pathlib.Path(path) / "prepared.json").is_file():
        raise errors.SeqTemplatesError(
            f"'{path}' is a prepared dataset (seq-templates prepare), which this template does not read; "
            "give it the data file itself.")
    raise errors.SeqTemplatesError(
        f"Cannot tell the format of '{path}' from its extension; expected one of {known}, "
        f"or set {setting_prefix}format."
    )


def read_lines(path, encoding="utf-8", setting_prefix="data."):
    """Reads a text file, reporting undecodable bytes by line and column.

    Args:
        path: File to read.
        encoding: Text encoding of the file.
        setting_prefix: Prefix of the encoding setting named in errors.

    Returns:
        The decoded text, without a leading byte-order mark; line ends are kept
        as they are in the file.

    Raises:
        SeqTemplatesError: The file is missing, is a folder, or holds bytes that
            are not valid in ``encoding``.
    """
    _check_encoding(encoding, setting_prefix)
    with open_binary(path) as handle:
        raw = handle.read()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise _bad_bytes(path, raw, error, encoding, setting_prefix) from None
    return text[1:] if text.startswith(BYTE_ORDER_MARK) else text


def _split_lines(text):
    """Splits on LF, CRLF or CR only (not on the other characters ``str.splitlines`` breaks at)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def stream_lines(path, encoding="utf-8", setting_prefix="data.", chunk_bytes=1 << 20):
    """Yields a text file's lines with their line ends, reading ``chunk_bytes`` at a time.

    A path with a scheme (``gs://bucket/file``) is read through ``tf.io.gfile``; a local one
    with ``open``. The leading byte-order mark is removed; bytes that are not valid in
    ``encoding`` raise the error :func:`read_lines` raises, with the same line and column.
    A LF, CRLF or CR line end ends a line; the last line may lack one.

    Raises:
        SeqTemplatesError: The file is missing or a folder, bad bytes, an unknown encoding.
    """
    _check_encoding(encoding, setting_prefix)
    if "\n\n".encode(encoding) != "\n".encode(encoding) + b"\n":  # UTF-16, UTF-32: decode, then cut
        yield from _stream_wide_lines(path, encoding, setting_prefix, chunk_bytes)
        return
    line_number, pending, first = 1, b"", True
    with open_binary(path) as handle:
        while True:
            chunk = handle.read(chunk_bytes)
            data = pending + chunk
            if not chunk and not data:
                return
            end = len(data) if not chunk else _last_line_end(data, b"\n", b"\r")  # whole lines only
            if end == 0:
                pending = data
                continue
            block, pending = data[:end], data[end:]
            try:
                text = block.decode(encoding)
            except UnicodeDecodeError as error:
                raise _bad_bytes(path, block, error, encoding, setting_prefix, line_number) from None
            if first and text.startswith(BYTE_ORDER_MARK):
                text = text[1:]
            first = False
            line_number += block.count(b"\n")
            yield from io.StringIO(text, newline="")
            if not chunk:
                return


def _last_line_end(data, line_feed, carriage_return):
    """Where the whole lines of ``data`` end: after its last LF, or after a CR that is not its last
    character (a CR at the very end may be the first half of a CRLF)."""
    return max(data.rfind(line_feed), data.rfind(carriage_return, 0, len(data) - 1)) + 1


def _stream_wide_lines(path, encoding, setting_prefix, chunk_bytes):
    """:func:`stream_lines` for encodings in which a line end is not the byte 0x0A (UTF-16, UTF-32)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line_number, pending, first = 1, "", True
    with open_binary(path) as handle:
        while True:
            chunk = handle.read(chunk_bytes)
            try:
                text = pending + decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:  # the line: those before it in this chunk counted
                before = pending + bytes(error.object[:error.start]).decode(encoding, "replace")
                raise errors.SeqTemplatesError(
                    f"{path}:{line_number + before.count(chr(10))}: bytes not valid in {encoding} ({error.reason}); "
                    f"re-save the file as {encoding} or set {setting_prefix}encoding to its encoding.") from None
            if first and text.startswith(BYTE_ORDER_MARK):
                text = text[1:]
            first = False
            end = len(text) if not chunk else _last_line_end(text, "\n", "\r")
            block, pending = text[:end], text[end:]
            line_number += block.count("\n")
            yield from io.StringIO(block, newline="")
            if not chunk:
                return


def _check_encoding(encoding, setting_prefix):
    """Raises the one-line error for an encoding Python does not know."""
    try:
        "".encode(encoding)
    except LookupError:
        raise errors.SeqTemplatesError(
            f"Unknown encoding '{encoding}' in {setting_prefix}encoding; use a Python codec name "
            "such as utf-8 or latin-1.") from None


def _bad_bytes(path, raw, error, encoding, setting_prefix, first_line=1):
    """The one-line error for bytes of ``raw`` (starting at line ``first_line``) invalid in ``encoding``."""
    line_start = raw.rfind(b"\n", 0, error.start) + 1
    line_number = first_line + raw.count(b"\n", 0, error.start)
    return errors.SeqTemplatesError(
        f"{path}:{line_number}:{error.start - line_start + 1}: byte 0x{raw[error.start]:02x} is not valid "
        f"{encoding}; re-save the file as {encoding} or set {setting_prefix}encoding to its encoding "
        "(e.g. latin-1).")


def open_binary(path):
    """``path`` opened for reading bytes: ``tf.io.gfile`` for ``scheme://`` paths, else ``open``."""
    path = str(path)
    if "://" in path:
        import tensorflow as tf  # only remote paths need TensorFlow's file systems

        if not tf.io.gfile.exists(path):
            raise errors.SeqTemplatesError(f"File '{path}' does not exist; check the path.")
        if tf.io.gfile.isdir(path):
            raise errors.SeqTemplatesError(f"'{path}' is a folder; expected a data file.")
        return tf.io.gfile.GFile(path, "rb")
    local = pathlib.Path(path)
    if not local.exists():
        raise errors.SeqTemplatesError(f"File '{local}' does not exist; check the path.")
    if local.is_dir():
        raise errors.SeqTemplatesError(f"'{local}' is a folder; expected a data file.")
    return open(local, "rb")


# region Delimited columns (CSV, TSV)
def read_columns(path, columns, delimiter=",", has_header=True, quoting=True, encoding="utf-8",
                 optional_columns=(), required_values=(), setting_prefix="data."):
    """Reads chosen columns of a CSV or TSV file as lists of strings.

    Args:
        path: The file.
        columns: Dict of role (e.g. ``"text"``, ``"source"``) to its column: a
            header name, or a 0-based index (an int or a digit string; negative
            counts from the end). Messages name the setting that chose the column
            ``{setting_prefix}{role}_column``.
        delimiter: The field separator, e.g. ``","`` or ``"\\t"``.
        has_header: Whether the first non-blank row names the columns.
        quoting: Whether double quotes group a field (CSV). False reads quotes as
            text (TSV files such as SST-2 and the Anki pairs).
        encoding: Text encoding.
        optional_columns: Roles whose column may be absent; their values are None.
        required_values: Roles whose value may not be empty on any row.
        setting_prefix: Prefix of the settings named in errors.

    Returns:
        A dict of role to a list of whitespace-stripped strings, one per non-blank
        row, all lists of equal length (possibly empty).

    Raises:
        SeqTemplatesError: For a missing file, bad bytes, a missing column, a row
            with too few fields, an empty required value or broken quoting.
    """
    path = pathlib.Path(path)
    text = read_lines(path, encoding, setting_prefix)
    values = {role: [] for role in columns}
    for row_values in column_rows(io.StringIO(text, newline=""), path, columns, delimiter, has_header, quoting,
                                  optional_columns, required_values, setting_prefix):
        for role, value in row_values.items():
            values[role].append(value)
    return values


def column_rows(lines, path, columns, delimiter=",", has_header=True, quoting=True, optional_columns=(),
                required_values=(), setting_prefix="data."):
    """Yields ``{role: value}`` for each non-blank row of delimited ``lines``: :func:`read_columns`, streamed.

    Args:
        lines: An iterable of text lines with their line ends (a file, :func:`stream_lines`),
            so a quoted field may span lines.
        path: The file's name, for messages.
        columns, delimiter, has_header, quoting, optional_columns, required_values,
            setting_prefix: As in :func:`read_columns`.

    Raises:
        SeqTemplatesError: As :func:`read_columns`, when the row at fault is reached.
    """
    reader = csv.reader(lines, delimiter=delimiter,
                        quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE, strict=True)
    separated_by = {"\t": "tab-separated", ",": "comma-separated"}.get(delimiter, f"'{delimiter}'-separated")
    indexes = None
    header = None
    try:
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            if indexes is None:
                header = [cell.strip() for cell in row] if has_header else None
                if not has_header:
                    _warn_if_header_like(path, row, columns, setting_prefix)
                indexes = {role: _column_index(path, header, column, role, role in optional_columns,
                                               setting_prefix)
                           for role, column in columns.items()}
                needed = max([index + 1 if index >= 0 else -index
                              for index in indexes.values() if index is not None] or [0])
                if has_header:
                    continue
            if len(row) < needed:
                raise errors.SeqTemplatesError(
                    f"{path}:{reader.line_num}: expected at least {needed} {separated_by} fields, "
                    f"found {len(row)}; fix that line."
                )
            row_values = {}
            for role, index in indexes.items():
                if index is None:
                    row_values[role] = None
                    continue
                value = row[index].strip()
                if not value and role in required_values:
                    field_number = index + 1 if index >= 0 else len(row) + index + 1
                    raise errors.SeqTemplatesError(
                        f"{path}:{reader.line_num}:{field_number}: empty {role} in field "
                        f"{field_number}; give every row a {role}."
                    )
                row_values[role] = value
            yield row_values
    except csv.Error as error:
        raise errors.SeqTemplatesError(
            f"{path}:{reader.line_num}: malformed row ({error}); check quoting on that line."
        ) from None


def _warn_if_header_like(path, row, columns, setting_prefix):
    """Warns (one line) when ``has_header=false`` meets a first row that names the columns."""
    names = {str(column).strip().lower() for column in columns.values() if column is not None}
    names |= {role.lower() for role in columns}
    cells = {cell.strip().lower() for cell in row}
    if cells & names and len(cells & names) >= min(2, len(row)):
        print(f"warning: {path}: the first row ({', '.join(cell.strip() for cell in row)[:80]}) looks like a "
              f"header, but {setting_prefix}has_header is false, so it is read as an example; set "
              f"{setting_prefix}has_header=true if it names the columns.", file=sys.stderr, flush=True)


def _parse_index(column):
    if isinstance(column, bool):
        return None
    if isinstance(column, int):
        return column
    if isinstance(column, str) and re.fullmatch(r"-?\d+", column.strip()):
        return int(column)
    return None


def _column_index(path, header, column, role, optional, setting_prefix):
    """Returns the 0-based index of a role's column (None for an absent optional one)."""
    setting = f"{setting_prefix}{role}_column"
    if header is not None and str(column) in header:
        return header.index(str(column))
    index = _parse_index(column)
    if index is not None:
        return index
    if optional:
        return None
    if header is None:
        raise errors.SeqTemplatesError(
            f"{path}: the file has no header, so the {role} column must be a 0-based index; "
            f"received '{column}'. Set {setting} to a column number."
        )
    raise errors.SeqTemplatesError(
        f"{path}:1: no column '{column}' for the {role}; the header has "
        f"{', '.join(repr(name) for name in header)}. Set {setting} to one of them."
    )
# endregion


# region Text classification
def read_text_classification(
    path,
    text_column="text",
    label_column="label",
    file_format=None,
    has_header=True,
    encoding="utf-8",
    require_labels=True,
    setting_prefix="data.",
):
    """Reads (text, label) examples from a CSV, TSV or JSONL file.

    Args:
        path: The file.
        text_column: Column name (or 0-based index as a string or int for files
            without a header) holding the text; for JSONL, the key.
        label_column: Column name, index or key holding the label.
        file_format: ``csv``, ``tsv`` or ``jsonl``; inferred from the extension
            when None.
        has_header: Whether the first CSV/TSV row names the columns.
        encoding: Text encoding.
        require_labels: When False, a missing label column yields labels of None
            (for unlabelled prediction files).
        setting_prefix: Prefix of the settings named in errors
            (``data.text_column``, ``data.label_column``).

    Returns:
        A tuple ``(texts, labels)`` of equal-length lists of strings.

    Raises:
        SeqTemplatesError: For a missing file, a missing column, a short row, bad
            bytes, malformed JSON or a file with no examples.
    """
    path = pathlib.Path(path)
    file_format = file_format or infer_format(path, setting_prefix)
    if file_format == "text":
        raise errors.SeqTemplatesError(
            f"{path}: a .txt file is read as plain text, not as labelled examples; set "
            f"{setting_prefix}format to tsv (or csv) or rename the file to .tsv."
        )
    if file_format not in TEXT_FORMATS:
        raise errors.SeqTemplatesError(
            f"{setting_prefix}format expects one of {', '.join(TEXT_FORMATS)}, received "
            f"'{file_format}'."
        )
    if file_format == "jsonl":
        text = read_lines(path, encoding, setting_prefix)
        texts, labels = _read_jsonl(path, text, text_column, label_column, require_labels,
                                    setting_prefix)
    else:
        values = read_columns(
            path, {"text": text_column, "label": label_column},
            delimiter="\t" if file_format == "tsv" else ",", has_header=has_header,
            quoting=file_format == "csv", encoding=encoding,
            optional_columns=() if require_labels else ("label",), required_values=("label",),
            setting_prefix=setting_prefix,
        )
        texts, labels = values["text"], values["label"]
    if not texts:
        raise errors.SeqTemplatesError(
            f"{path}: no examples found; the file is empty or has only a header."
        )
    return texts, labels


def _read_jsonl(path, text, text_key, label_key, require_labels, setting_prefix):
    texts, labels = [], []
    for text_value, label in jsonl_examples(_split_lines(text), path, text_key, label_key, require_labels,
                                            setting_prefix):
        texts.append(text_value)
        labels.append(label)
    return texts, labels


def jsonl_examples(lines, path, text_key, label_key, require_labels=True, setting_prefix="data."):
    """Yields ``(text, label)`` of each JSON object in ``lines`` (one per line; blank lines skipped)."""
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise errors.SeqTemplatesError(
                f"{path}:{line_number}:{error.colno}: invalid JSON ({error.msg}); each line "
                "must be one JSON object."
            ) from None
        if not isinstance(record, dict):
            raise errors.SeqTemplatesError(
                f"{path}:{line_number}: expected a JSON object, received {type(record).__name__}."
            )
        if str(text_key) not in record:
            raise errors.SeqTemplatesError(
                f"{path}:{line_number}: no key '{text_key}' for the text; the object has "
                f"{', '.join(map(repr, record))}. Set {setting_prefix}text_column to one of them."
            )
        for role, key in (("text", text_key), ("label", label_key)):
            value = record.get(str(key))
            if isinstance(value, (list, dict)) or (role == "label" and isinstance(value, str) and not value.strip()):
                shown = json.dumps(value, ensure_ascii=False)[:40]
                raise errors.SeqTemplatesError(
                    f"{path}:{line_number}: the {role} under '{key}' is {shown}; give one "
                    f"{'non-empty string or number' if role == 'label' else 'string'} per line.")
        if str(label_key) in record and record[str(label_key)] is not None:
            label = str(record[str(label_key)]).strip()
        elif require_labels:
            raise errors.SeqTemplatesError(
                f"{path}:{line_number}: no key '{label_key}' for the label; the object has "
                f"{', '.join(map(repr, record))}. Set {setting_prefix}label_column to one of them."
            )
        else:
            label = None
        yield str(record[str(text_key)]).strip(), label


def stream_text_classification(path, text_column="text", label_column="label", file_format=None,
                               has_header=True, encoding="utf-8", setting_prefix="data."):
    """Yields the ``(text, label)`` examples of :func:`read_text_classification`, holding one row at a time.

    For files larger than memory (``seq-templates prepare``): the same formats, checks and
    messages, read through :func:`stream_lines` (local or ``gs://``-style paths).

    Raises:
        SeqTemplatesError: As :func:`read_text_classification`, when the row at fault is reached.
    """
    file_format = file_format or infer_format(pathlib.Path(path), setting_prefix)
    if file_format not in TEXT_FORMATS:
        raise errors.SeqTemplatesError(
            f"{setting_prefix}format expects one of {', '.join(TEXT_FORMATS)}, received '{file_format}'.")
    lines = stream_lines(path, encoding, setting_prefix)
    if file_format == "jsonl":
        yield from jsonl_examples((line.rstrip("\r\n") for line in lines), path, text_column, label_column,
                                  setting_prefix=setting_prefix)
        return
    for row in column_rows(lines, path, {"text": text_column, "label": label_column},
                           delimiter="\t" if file_format == "tsv" else ",", has_header=has_header,
                           quoting=file_format == "csv", required_values=("label",),
                           setting_prefix=setting_prefix):
        yield row["text"], row["label"]


def read_labelled_folders(root, label_folders=None, encoding="utf-8", setting_prefix="data."):
    """Reads a tree ``root/<label>/*.txt`` (the IMDB / ``text_dataset_from_directory`` layout).

    Args:
        root: Folder whose sub-folders are the labels.
        label_folders: Names of the sub-folders to read (others, such as IMDB's
            ``unsup``, are skipped); None reads every sub-folder.
        encoding: Text encoding of the files.
        setting_prefix: Prefix of the settings named in errors.

    Returns:
        A tuple ``(texts, labels)``; files are read in sorted order.

    Raises:
        SeqTemplatesError: The folder is missing or holds no ``.txt`` files.
    """
    root = pathlib.Path(root)
    if not root.is_dir():
        raise errors.SeqTemplatesError(f"Folder '{root}' does not exist; check the path.")
    texts, labels = [], []
    folders = sorted(path for path in root.iterdir() if path.is_dir())
    if label_folders is not None:
        folders = [path for path in folders if path.name in label_folders]
    for label_folder in folders:
        for file_path in sorted(label_folder.glob("*.txt")):
            texts.append(read_lines(file_path, encoding, setting_prefix).strip())
            labels.append(label_folder.name)
    if not texts:
        raise errors.SeqTemplatesError(
            f"{root}: no examples found; expected sub-folders named by label holding .txt files."
        )
    return texts, labels
# endregion


# region CoNLL (tagging)
def read_conll(path, token_column=0, tag_column=-1, separator=None, encoding="utf-8",
               setting_prefix="data.", return_line_numbers=False):
    """Reads sentences of (token, tag) rows from a CoNLL column file.

    One token per line, columns separated by ``separator``, a blank (or
    whitespace-only) line between sentences; several blank lines in a row are
    one break. ``-DOCSTART-`` lines end the current sentence and are skipped.
    Every row must have as many columns as the first one.

    Args:
        path: The file.
        token_column: 0-based column of the token; negative counts from the end.
        tag_column: 0-based column of the tag (default: the last one).
        separator: None for any run of whitespace, or ``"\\t"`` or ``" "`` for
            exactly that character (so a tab-separated token may hold spaces).
        encoding: Text encoding.
        setting_prefix: Prefix of the settings named in errors
            (``data.token_column``, ``data.tag_column``, ``data.separator``).
        return_line_numbers: Also return each token's 1-based line number, so
            later checks (a tag scheme, say) can name ``file:line``.

    Returns:
        A tuple ``(token_lists, tag_lists)``: one list of strings per sentence,
        aligned; with ``return_line_numbers``, ``(token_lists, tag_lists,
        line_number_lists)``.

    Raises:
        SeqTemplatesError: For a missing file, bad bytes, a row whose column count
            differs from the first row's, a column index beyond the row, a bad
            separator, or a file with no sentences.
    """
    path = pathlib.Path(path)
    indexes = _conll_indexes(token_column, tag_column, separator, setting_prefix)
    text = read_lines(path, encoding, setting_prefix)
    sentences = list(conll_sentences(_split_lines(text), path, indexes, separator, setting_prefix))
    columns = tuple(list(column) for column in zip(*sentences)) or ([], [], [])
    return columns if return_line_numbers else columns[:2]


CONLL_OPTIONS = ("token_column", "tag_column", "separator", "encoding")  # what a CoNLL file's reader takes


def stream_conll(path, token_column=0, tag_column=-1, separator=None, encoding="utf-8", setting_prefix="data."):
    """Yields the ``(tokens, tags, line_numbers)`` sentences of :func:`read_conll`, one at a time.

    For files larger than memory (``seq-templates prepare``): the same format, checks and
    messages, read through :func:`stream_lines` (local or ``gs://``-style paths).
    """
    indexes = _conll_indexes(token_column, tag_column, separator, setting_prefix)
    lines = (line.rstrip("\r\n") for line in stream_lines(path, encoding, setting_prefix))
    yield from conll_sentences(lines, path, indexes, separator, setting_prefix)


def _conll_indexes(token_column, tag_column, separator, setting_prefix):
    """``{"token": index, "tag": index}``, the settings checked first."""
    if separator not in CONLL_SEPARATORS:
        raise errors.SeqTemplatesError(
            f"{setting_prefix}separator expects none (any whitespace), '\\t' or ' ', received "
            f"{separator!r}."
        )
    indexes = {"token": token_column, "tag": tag_column}
    for role, column in indexes.items():
        if _parse_index(column) is None:
            raise errors.SeqTemplatesError(
                f"{setting_prefix}{role}_column expects a 0-based column number (negative counts "
                f"from the end), received {column!r}."
            )
        indexes[role] = _parse_index(column)
    return indexes


def conll_sentences(lines, path, indexes, separator=None, setting_prefix="data."):
    """Yields ``(tokens, tags, line_numbers)`` per sentence of CoNLL lines (without line ends).

    Raises:
        SeqTemplatesError: A row whose column count differs from the first row's, a column
            index beyond the row, or no sentence at all (when the lines end).
    """
    tokens, tags, line_numbers = [], [], []
    expected_columns = first_line = None
    found = False
    for line_number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("-DOCSTART-"):
            if tokens:
                found = True
                yield tokens, tags, line_numbers
                tokens, tags, line_numbers = [], [], []
            continue
        if separator is None:
            fields = line.split()
        else:
            fields = [field.strip() for field in line.strip(" ").split(separator)]
        if expected_columns is None:
            expected_columns, first_line = len(fields), line_number
            for role, index in indexes.items():
                if not -expected_columns <= index < expected_columns:
                    raise errors.SeqTemplatesError(
                        f"{path}:{line_number}: {setting_prefix}{role}_column is {index} but the rows "
                        f"have {expected_columns} columns; set it to 0..{expected_columns - 1} "
                        f"(or -{expected_columns}..-1 from the end)."
                    )
        elif len(fields) != expected_columns:
            raise errors.SeqTemplatesError(
                f"{path}:{line_number}: expected {expected_columns} columns (as on line "
                f"{first_line}), found {len(fields)}; fix that line."
            )
        tokens.append(fields[indexes["token"]])
        tags.append(fields[indexes["tag"]])
        line_numbers.append(line_number)
    if tokens:
        found = True
        yield tokens, tags, line_numbers
    if not found:
        raise errors.SeqTemplatesError(
            f"{path}: no sentences found; expected one token per line with its tag in another "
            "column and a blank line between sentences."
        )
# endregion


# region Parallel text (translation)
def read_parallel_tsv(path, source_column=0, target_column=1, encoding="utf-8",
                      setting_prefix="data."):
    """Reads sentence pairs from a tab-separated file without a header.

    The Anki / Tatoeba layout: ``English<TAB>Spanish[<TAB>attribution]``. Quotes
    are text (no CSV quoting); blank lines are skipped; further columns (the
    attribution of newer Anki files) are ignored. A dataset in several part
    files is read file by file (the registry concatenates them); filter and
    deduplicate the pairs with :func:`clean_pairs`.

    Args:
        path: The file.
        source_column: 0-based column of the source sentence.
        target_column: 0-based column of the target sentence.
        encoding: Text encoding.
        setting_prefix: Prefix of the settings named in errors
            (``data.source_column``, ``data.target_column``).

    Returns:
        A tuple ``(sources, targets)`` of equal-length lists of strings.

    Raises:
        SeqTemplatesError: For a missing file, bad bytes, a line with too few
            fields, an empty side or a file with no pairs.
    """
    path = pathlib.Path(path)
    values = read_columns(
        path, {"source": source_column, "target": target_column}, delimiter="\t",
        has_header=False, quoting=False, encoding=encoding,
        required_values=("source", "target"), setting_prefix=setting_prefix,
    )
    if not values["source"]:
        raise errors.SeqTemplatesError(
            f"{path}: no sentence pairs found; expected lines 'source<TAB>target'."
        )
    return values["source"], values["target"]


def stream_parallel_tsv(path, source_column=0, target_column=1, encoding="utf-8", reverse=False, max_words=None,
                        setting_prefix="data."):
    """Yields the ``(source, target)`` pairs of :func:`read_parallel_tsv`, cleaned, one at a time.

    For files larger than memory (``seq-templates prepare``): the same format, checks and
    messages, read through :func:`stream_lines` (local or ``gs://``-style paths); each pair
    turned around when ``reverse``, and dropped over ``max_words`` as :func:`clean_pairs`
    drops it. Repeats are kept (remembering every pair would not fit in memory).

    Raises:
        SeqTemplatesError: As :func:`read_parallel_tsv`, when the row at fault is reached.
    """
    found = False
    for row in column_rows(stream_lines(path, encoding, setting_prefix), path,
                           {"source": source_column, "target": target_column}, delimiter="\t",
                           has_header=False, quoting=False, required_values=("source", "target"),
                           setting_prefix=setting_prefix):
        found = True
        pair = (row["target"], row["source"]) if reverse else (row["source"], row["target"])
        if max_words is None or max(len(pair[0].split()), len(pair[1].split())) <= max_words:
            yield pair
    if not found:
        raise errors.SeqTemplatesError(f"{path}: no sentence pairs found; expected lines 'source<TAB>target'.")


def clean_pairs(sources, targets, max_words=None, deduplicate=True):
    """Drops sentence pairs that are too long and repeats of an identical pair, keeping the order.

    Args:
        sources: Source sentences.
        targets: Target sentences, aligned with ``sources``.
        max_words: Keep pairs whose sides both have at most this many
            whitespace-separated words; None keeps all.
        deduplicate: Keep only the first of identical ``(source, target)`` pairs.

    Returns:
        A tuple ``(sources, targets)`` of the kept pairs.
    """
    seen = set()
    kept_sources, kept_targets = [], []
    for source, target in zip(sources, targets):
        if max_words is not None and (len(source.split()) > max_words or len(target.split()) > max_words):
            continue
        if deduplicate:
            if (source, target) in seen:
                continue
            seen.add((source, target))
        kept_sources.append(source)
        kept_targets.append(target)
    return kept_sources, kept_targets
# endregion


# region Plain text (language modelling)
def read_plain_text(path, encoding="utf-8", setting_prefix="data."):
    """Reads a whole text file as one string with ``\\n`` line ends.

    Args:
        path: The file (any text, e.g. a Project Gutenberg book with its header).
        encoding: Text encoding.
        setting_prefix: Prefix of the settings named in errors.

    Returns:
        The text, byte-order mark removed, CRLF and CR turned into ``\\n``.

    Raises:
        SeqTemplatesError: For a missing file, bad bytes, or a file that is empty
            or holds only whitespace.
    """
    path = pathlib.Path(path)
    text = read_lines(path, encoding, setting_prefix).replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise errors.SeqTemplatesError(
            f"{path}: the file is empty or holds only whitespace; give a file with text to learn from."
        )
    return text


def stream_text_pieces(path, encoding="utf-8", piece_characters=4096, setting_prefix="data."):
    """Yields a text file as ``(piece,)`` rows of about ``piece_characters`` characters, each ending at a line end.

    For corpora larger than memory (``seq-templates prepare``): read through :func:`stream_lines`
    (local or ``gs://``-style paths), line ends turned into ``\\n`` as :func:`read_plain_text`
    turns them; a line longer than a piece is a piece of its own.

    Raises:
        SeqTemplatesError: As :func:`read_plain_text` (a file with no text: when its end is reached).
    """
    piece, size, found = [], 0, False
    for line in stream_lines(path, encoding, setting_prefix):
        line = line.rstrip("\r\n") + "\n" if line.endswith(("\r", "\n")) else line
        piece.append(line)
        size += len(line)
        found = found or bool(line.strip())
        if size >= piece_characters:
            yield ("".join(piece),)
            piece, size = [], 0
    if piece:
        yield ("".join(piece),)
    if not found:
        raise errors.SeqTemplatesError(
            f"{path}: the file is empty or holds only whitespace; give a file with text to learn from.")


# The lines that open and close a Project Gutenberg book's own text: "*** START OF THE PROJECT
# GUTENBERG EBOOK TITLE ***" (older files: "THIS PROJECT", "ETEXT", or the header's last line
# "*END*THE SMALL PRINT! ...") and "*** END OF THE PROJECT GUTENBERG EBOOK TITLE ***", which older
# files precede with "End of the Project Gutenberg EBook of Title" (also "End of Project Gutenberg's").
GUTENBERG_START = re.compile(r"^[ \t]*\*{3}[ \t]*START OF (?:THE|THIS) PROJECT GUTENBERG E(?:BOOK|TEXT)\b.*$"
                             r"|^[ \t]*\*END\*THE SMALL PRINT!.*$", re.IGNORECASE | re.MULTILINE)
GUTENBERG_END = re.compile(r"^[ \t]*\*{3}[ \t]*END OF (?:THE|THIS) PROJECT GUTENBERG E(?:BOOK|TEXT)\b.*$",
                           re.IGNORECASE | re.MULTILINE)
GUTENBERG_END_LINE = re.compile(r"^[ \t]*End of (?:the )?Project Gutenberg(?:'s)?\b.*$",
                                re.IGNORECASE | re.MULTILINE)


def gutenberg_body(text):
    """Finds the book's own text in a Project Gutenberg file: after its header, before its footer.

    Only the ``*** START OF ...`` / ``*** END OF ...`` marker lines (and their older forms) count, so
    a text that merely mentions Project Gutenberg is left whole.

    Args:
        text: A whole file as :func:`read_plain_text` returns it.

    Returns:
        ``(start, end)`` character offsets of the body; ``(0, len(text))`` when the file has
        neither marker. The blank lines next to a marker belong to the boilerplate.
    """
    start_marker = GUTENBERG_START.search(text)
    start = start_marker.end() if start_marker else 0
    end_marker = GUTENBERG_END.search(text, start)
    end = end_marker.start() if end_marker else len(text)
    if start_marker or end_marker:
        end_line = GUTENBERG_END_LINE.search(text, start, end)
        end = end_line.start() if end_line else end
    if not (start_marker or end_marker):
        return 0, len(text)
    while start < end:  # whole blank lines only: the body's first line keeps its indent
        line_end = text.find("\n", start, end)
        line_end = end if line_end == -1 else line_end
        if text[start:line_end].strip():
            break
        start = line_end + 1
    return start, start + len(text[start:end].rstrip())
# endregion


# region Time series (forecasting)
def read_timeseries(path, time_column=None, time_columns=None, value_columns=None,
                    missing_values=None, time_format=None, file_format=None, encoding="utf-8",
                    setting_prefix="data.", delimiter=None, year_offset=None):
    """Reads a table of observations in time order, indexed by time.

    Gaps in time and missing values are reported as they are (NaN), never filled:
    the forecasting template owns that policy.

    Args:
        path: A CSV, TSV or Parquet file with a header.
        time_column: The column holding the timestamp (e.g. ``Month``).
        time_columns: Several columns making up the timestamp, either unit names
            (``[year, month, day, hour]``, any of year/month/day/hour/minute/
            second) or columns whose values, joined by a space, parse with
            ``time_format`` (e.g. ``[Date, Time]``). Give this or ``time_column``.
        value_columns: Columns to keep, in order; None keeps every non-time column. Or
            ``{setting: [columns]}`` (``{"data.target_columns": [...], ...}``), kept in that
            order, so a missing column's error names the setting that asked for it; every
            list empty keeps every non-time column.
        missing_values: Strings that mean "no value" (e.g. ``["NA", "?"]``); empty
            cells always do.
        time_format: A ``strftime`` format for the timestamps; None lets pandas
            infer it from the first value.
        file_format: ``csv``, ``tsv`` or ``parquet``; inferred from the extension
            when None (``.txt`` is read as CSV).
        encoding: Text encoding of a CSV/TSV file.
        setting_prefix: Prefix of the settings named in errors
            (``data.time_column``, ``data.value_columns``, ...).
        delimiter: The field separator of a CSV file; None: a tab for TSV, and for
            CSV a comma, or a semicolon when the header has semicolons and no comma.
        year_offset: For a series whose years are counted (1, 2, ...) rather than
            calendar years, an integer added to each year before the time is read:
            with 1900, ``"1-01"`` .. ``"13-03"`` become January 1901 .. March 1913,
            in the file's order. The year is then the number a time starts with
            (``YEAR-MONTH``, ``YEAR-MONTH-DAY HH:MM``; ``time_format``, if given,
            starts with ``%Y``), or the ``year`` column of unit ``time_columns``.
            None: years are calendar years.

    Returns:
        A ``pandas.DataFrame`` with a ``DatetimeIndex`` named ``time``, strictly
        increasing, holding ``value_columns``: float for numeric columns (missing
        values NaN), strings for non-numeric ones (categorical covariates).

    Raises:
        SeqTemplatesError: For a missing file or column, an unparseable or empty
            timestamp, timestamps out of order or repeated, a non-numeric value in
            a numeric column, or a file with no rows; the message gives the file
            and line (1-based, as in the file; "row N" for Parquet).
    """
    path = pathlib.Path(path)
    file_format = file_format or infer_format(path, setting_prefix)
    if file_format == "text":
        file_format = "csv"
    if file_format not in TIMESERIES_FORMATS:
        raise errors.SeqTemplatesError(
            f"{path}: time series are read from {', '.join(TIMESERIES_FORMATS)} files, not "
            f"{file_format}; set {setting_prefix}format to one of those."
        )
    if file_format == "parquet":
        frame = _read_parquet_table(path)
        frame.columns = [str(name).strip() for name in frame.columns]
        line_labels = [f"row {position + 1}" for position in range(len(frame))]
    else:
        frame = _read_delimited_table(path, delimiter or _default_delimiter(path, file_format, encoding),
                                      encoding, setting_prefix)
        # Blank lines were kept so that row positions match lines: drop them now.
        blank = (frame.apply(lambda column: column.str.strip()) == "").all(axis=1).to_numpy()
        line_labels = [f"line {position + 2}" for position in range(len(frame))
                       if not blank[position]]  # the header is line 1
        frame = frame.loc[~blank].reset_index(drop=True)
    return _timeseries_from_table(frame, _RowLocator(path, line_labels), path, time_column, time_columns,
                                  value_columns, missing_values, time_format, setting_prefix, year_offset)


def _timeseries_from_table(frame, where, path, time_column, time_columns, value_columns, missing_values,
                           time_format, setting_prefix, year_offset, decided=None, guessed_format=None):
    """:func:`read_timeseries` from the file's table of strings (``where`` names its rows).

    For a chunk of a streamed file: ``decided`` maps the value columns an earlier chunk decided
    to whether they hold numbers (None: the values decide; a column with no value yet is numbers);
    ``guessed_format`` is the time format the first chunk's first time was read with.
    """
    available = ", ".join(repr(name) for name in frame.columns)
    if (time_column is None) == (time_columns is None):
        raise errors.SeqTemplatesError(
            f"{path}: set {setting_prefix}time_column (one column) or {setting_prefix}time_columns "
            f"(e.g. [year, month, day, hour]), not {'both' if time_column else 'neither'} of them; "
            f"the file has {available}."
        )
    single = time_column is not None
    setting = f"{setting_prefix}time_column" if single else f"{setting_prefix}time_columns"
    time_names = [str(time_column)] if single else [str(name) for name in time_columns]
    for name in time_names:
        if name not in frame.columns:
            raise errors.SeqTemplatesError(
                f"{path}:1: no column '{name}' for {setting}; the file has {available}. "
                f"Set {setting} to {'one' if single else 'some'} of them."
            )
    if isinstance(value_columns, dict):
        asked = value_columns
    else:
        asked = {} if value_columns is None else {f"{setting_prefix}value_columns": value_columns}
    if value_columns is None or (isinstance(value_columns, dict) and not any(value_columns.values())):
        value_names = [name for name in frame.columns if name not in time_names]
    else:
        value_names = []
        for setting, columns in asked.items():
            for name in (str(column) for column in columns):
                if name not in frame.columns:
                    raise errors.SeqTemplatesError(
                        f"{path}:1: no column '{name}' for {setting}; the file has "
                        f"{available}. Set {setting} to some of them."
                    )
                value_names.append(name)
    if not value_names:
        raise errors.SeqTemplatesError(
            f"{path}: no value columns besides the time; the file has {available}. "
            f"Set {setting_prefix}value_columns."
        )
    if frame.empty:
        raise errors.SeqTemplatesError(f"{path}: no rows found; the file has only a header.")
    times, describe = _parse_times(frame, time_names, single, time_format, where, setting_prefix,
                                   _checked_year_offset(year_offset, time_format, setting_prefix), guessed_format)
    _check_time_order(times, describe, where, time_names)
    missing_markers = {""} | {str(marker).strip() for marker in (missing_values or [])}
    result = pandas.DataFrame(index=pandas.DatetimeIndex(times, name="time"))
    for name in value_names:
        result[name] = _convert_column(frame[name], name, missing_markers, where, setting_prefix,
                                       None if decided is None else decided.get(name, "undecided"))
    return result


class _RowLocator:
    """Names a data row by its place in the file: ``path:LINE`` (CSV) or ``path: row N`` (Parquet)."""

    def __init__(self, path, labels):
        self.path = path
        self.labels = labels

    def label(self, row):
        """Returns ``line N`` or ``row N``."""
        return self.labels[row]

    def __call__(self, row):
        label = self.labels[row]
        return f"{self.path}:{label[5:]}" if label.startswith("line ") else f"{self.path}: {label}"

    def at(self, row, field_number):
        """Returns ``path:LINE:FIELD`` (CSV) or ``path: row N, field F`` (Parquet); fields count from 1."""
        label = self.labels[row]
        if label.startswith("line "):
            return f"{self.path}:{label[5:]}:{field_number}"
        return f"{self.path}: {label}, field {field_number}"


def _default_delimiter(path, file_format, encoding):
    """A tab for TSV; for CSV a comma, or a semicolon when the header has semicolons and no comma."""
    if file_format == "tsv":
        return "\t"
    try:
        with open(path, encoding=encoding, errors="replace") as file:
            header = file.readline()
    except OSError:
        return ","  # the reader reports the missing file
    return ";" if ";" in header and "," not in header else ","


def _read_delimited_table(path, delimiter, encoding, setting_prefix):
    text = read_lines(path, encoding, setting_prefix)
    if not text.strip():
        raise errors.SeqTemplatesError(f"{path}: the file is empty; expected a header and rows.")
    return _parse_delimited(text, path, delimiter)


def _parse_delimited(text, path, delimiter, file_line=None):
    """A header and rows of delimited text as a table of strings; ``file_line(n)`` is the file's line of
    the text's line ``n`` (1-based; None: the same), for the error of a row with the wrong field count."""
    try:
        frame = pandas.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False,
                                na_filter=False, skip_blank_lines=False)
    except pandas.errors.ParserError as error:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
        if match:
            expected, line, found = match.groups()
            line = file_line(int(line)) if file_line else line
            raise errors.SeqTemplatesError(
                f"{path}:{line}: expected {expected} fields (as in the header), found {found}; "
                "fix that line."
            ) from None
        raise errors.SeqTemplatesError(f"{path}: malformed CSV ({error}).") from None
    frame.columns = [str(name).strip() for name in frame.columns]
    return frame


def stream_timeseries(path, time_column=None, time_columns=None, value_columns=None, missing_values=None,
                      time_format=None, file_format=None, encoding="utf-8", setting_prefix="data.",
                      delimiter=None, year_offset=None, chunk_rows=100_000):
    """Yields :func:`read_timeseries`'s frame of a file larger than memory, ``chunk_rows`` rows at a time.

    The same formats, checks and one-line errors (file and line), read through
    :func:`stream_lines` (local or ``gs://``-style paths; Parquet by row groups through
    ``pyarrow``). The first chunk decides which value columns are numbers; a later text value
    in one of them is an error naming its line. Time order is checked across chunks too.
    A quoted CSV field must not span lines.

    Raises:
        SeqTemplatesError: As :func:`read_timeseries`, when the row at fault is reached.
    """
    file_format = file_format or infer_format(pathlib.Path(path), setting_prefix)
    file_format = "csv" if file_format == "text" else file_format
    if file_format not in TIMESERIES_FORMATS:
        raise errors.SeqTemplatesError(
            f"{path}: time series are read from {', '.join(TIMESERIES_FORMATS)} files, not "
            f"{file_format}; set {setting_prefix}format to one of those.")
    options = (time_column, time_columns, value_columns, missing_values, time_format, setting_prefix, year_offset)
    decided, previous, guessed = {}, None, None  # numbers or not, by column; the last row read; the time format
    for table, labels, carried in _table_chunks(path, file_format, delimiter, encoding, setting_prefix, chunk_rows):
        if previous is not None and not carried:  # the last row again: time order is checked across chunks
            table, labels = pandas.concat([previous[0], table], ignore_index=True), [previous[1], *labels]
            carried = True
        if previous is None and time_format is None and year_offset is None:  # as pandas reads a whole file
            guessed = _guessed_time_format(table, time_column, time_columns)
        frame = _timeseries_from_table(table, _RowLocator(path, labels), path, *options, decided=decided,
                                       guessed_format=guessed)
        for name in frame.columns:  # a column decides with its first chunk that has a value
            if name not in decided and frame[name].notna().any():
                decided[name] = frame[name].dtype.kind == "f"
        previous = (table.iloc[-1:], labels[-1])
        yield frame.iloc[1:] if carried else frame
    if previous is None:
        raise errors.SeqTemplatesError(f"{path}: no rows found; the file has only a header.")


def _guessed_time_format(table, time_column, time_columns):
    """The format pandas would read a whole file's times with: guessed from the first time (None: unit
    columns, a first time it cannot guess, or times that are not text)."""
    from pandas.tseries.api import guess_datetime_format

    names = [str(time_column)] if time_column is not None else [str(name) for name in time_columns or []]
    units = [name.lower() for name in names]
    if (len(names) > 1 and "year" in units and all(unit in TIME_UNITS for unit in units)) or not len(table) or any(
            name not in table.columns or not isinstance(table[name].iloc[0], str) for name in names):
        return None
    with warnings.catch_warnings():  # (pandas' note on day-first formats)
        warnings.simplefilter("ignore", UserWarning)
        return guess_datetime_format(" ".join(str(_strip(table[name].iloc[0])) for name in names))


def _table_chunks(path, file_format, delimiter, encoding, setting_prefix, chunk_rows):
    """Yields ``(table, labels, carried)``: :func:`stream_timeseries`'s rows as tables (strings from CSV/TSV,
    blank lines left out), each row's ``line N`` (``row N`` for Parquet), and whether the first row is
    the previous table's last (CSV/TSV chunks after the first)."""
    if file_format == "parquet":
        try:
            import pyarrow.parquet
        except ImportError:
            raise errors.SeqTemplatesError(
                f"{path}: reading Parquet needs pyarrow; run `pip install pyarrow`.") from None
        with open_binary(path) as handle:
            done = 0
            for batch in pyarrow.parquet.ParquetFile(handle).iter_batches(batch_size=chunk_rows):
                table = batch.to_pandas()
                table.columns = [str(name).strip() for name in table.columns]
                yield table, [f"row {done + position + 1}" for position in range(len(table))], False
                done += len(table)
        return
    lines = stream_lines(path, encoding, setting_prefix)
    header = next(lines, "")
    if not header.strip():
        raise errors.SeqTemplatesError(f"{path}: the file is empty or its first line is blank; expected a header "
                                       "and rows.")
    if delimiter is None:
        delimiter = "\t" if file_format == "tsv" else ";" if ";" in header and "," not in header else ","
    first_line, previous = 2, None  # the file's line of the chunk's first row; the last row read (line, text)
    while chunk := list(itertools.islice(lines, chunk_rows)):
        # The last row read comes first again (pandas reads a first row with a field too many as an index).
        carried = [previous[1]] if previous else []
        start = first_line - len(carried)
        table = _parse_delimited(header + "".join(carried + chunk), path, delimiter,
                                 lambda line, start=start: 1 if line == 1 else (
                                     previous[0] if carried and line == 2 else start + line - 2))
        blank = (table.apply(lambda column: column.str.strip()) == "").all(axis=1).to_numpy()
        numbers = [previous[0] for _ in carried] + list(range(first_line, first_line + len(chunk)))
        labels = [f"line {number}" for number, empty in zip(numbers, blank) if not empty]
        first_line += len(chunk)
        if len(labels) > len(carried):
            last = int((~blank).nonzero()[0][-1])
            previous = (numbers[last], (carried + chunk)[last])
            yield table.loc[~blank].reset_index(drop=True), labels, bool(carried)


def _read_parquet_table(path):
    if not path.is_file():
        raise errors.SeqTemplatesError(f"File '{path}' does not exist; check the path.")
    try:
        return pandas.read_parquet(path)
    except ImportError:
        raise errors.SeqTemplatesError(
            f"{path}: reading Parquet needs pyarrow; run `pip install pyarrow`."
        ) from None
    except (OSError, ValueError) as error:
        raise errors.SeqTemplatesError(f"{path}: not a readable Parquet file ({error}).") from None


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _stripped(column, as_text=False):
    """A column's values as an object array, strings stripped (vectorized where every value is a string);
    ``as_text``: other values but None as their ``str``."""
    if pandas.api.types.is_string_dtype(column) and not column.isna().any():
        return column.astype(str).str.strip().to_numpy(dtype=object)
    array = np.empty(len(column), dtype=object)
    array[:] = [value if value is None or not as_text else str(value)
                for value in map(_strip, column.astype(object))]
    return array


def _checked_year_offset(year_offset, time_format, setting_prefix):
    """Returns ``year_offset`` as an int (or None), refusing a value or format it cannot work with."""
    if year_offset is None:
        return None
    if isinstance(year_offset, bool) or not isinstance(year_offset, int):
        raise errors.SeqTemplatesError(
            f"Expected a whole number of years for {setting_prefix}year_offset (e.g. 1900), received "
            f"{year_offset!r}.")
    if time_format and not time_format.startswith("%Y"):
        raise errors.SeqTemplatesError(
            f"{setting_prefix}year_offset reads the year as the number a time starts with, so "
            f"{setting_prefix}time_format must start with %Y (e.g. '%Y-%m'); received '{time_format}'.")
    return year_offset


def _parse_times(frame, time_names, single, time_format, where, setting_prefix, year_offset=None,
                 guessed_format=None):
    """Returns ``(times, describe)``: a ``DatetimeIndex`` and ``describe(row)``, the time as written.

    With ``year_offset``, the year a time starts with (or the ``year`` unit column)
    is a count to which ``year_offset`` is added before the time is read.

    Raises:
        SeqTemplatesError: Naming the first row whose time does not parse.
    """
    format_note = (f" with {setting_prefix}time_format '{time_format}'" if time_format
                   else f"; fix it or set {setting_prefix}time_format (e.g. '%Y-%m-%d %H:%M')")
    columns = ", ".join(repr(name) for name in time_names)
    units = [name.lower() for name in time_names]
    if not single and "year" in units and all(unit in TIME_UNITS for unit in units):
        parts = {unit: pandas.to_numeric(frame[name].map(_strip), errors="coerce")
                 for name, unit in zip(time_names, units)}
        parts["year"] = parts["year"] + (year_offset or 0)
        parts.setdefault("month", 1)
        parts.setdefault("day", 1)
        times = pandas.to_datetime(pandas.DataFrame(parts, index=frame.index), errors="coerce")
        shown = lambda row: ", ".join(  # noqa: E731
            f"{name}={_strip(frame[name].iloc[row])}" for name in time_names)
        format_note = "; fix that row"
    else:
        values = frame[time_names[0]]
        if not pandas.api.types.is_datetime64_any_dtype(values):
            values = pandas.Series(_stripped(values, as_text=True), index=values.index, dtype=object)
            for name in time_names[1:]:
                values = values + " " + frame[name].map(lambda value: str(_strip(value)))
        shown = lambda row: repr(values.iloc[row])  # noqa: E731
        if year_offset is not None:
            return _parse_counted_years(frame, values, time_names, time_format, year_offset, where,
                                        setting_prefix), shown
        if not time_format:
            _refuse_times_without_a_year(frame, values, time_names, where, setting_prefix)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            times = pandas.to_datetime(values, format=time_format or guessed_format, errors="coerce")
    bad = times.isna().to_numpy().nonzero()[0]
    if len(bad):
        row = int(bad[0])
        raise errors.SeqTemplatesError(
            f"{where(row)}: cannot read the time {shown(row)} in {columns}{format_note}."
        )
    return pandas.DatetimeIndex(times), shown


def _parse_counted_years(frame, values, time_names, time_format, year_offset, where, setting_prefix):
    """Reads times that start with a counted year, adding ``year_offset`` (``"1-01"`` → 1901-01-01).

    Raises:
        SeqTemplatesError: Naming file, line and field of the first time that
            does not start with a number or does not parse once its year is added.
    """
    field_number = frame.columns.get_loc(time_names[0]) + 1
    columns = ", ".join(repr(name) for name in time_names)
    readable = []
    for row, value in enumerate(values):
        match = COUNTED_YEAR.fullmatch("" if value is None else str(value))
        if match is None:
            raise errors.SeqTemplatesError(
                f"{where.at(row, field_number)}: cannot read the time {value!r} in {columns}: with "
                f"{setting_prefix}year_offset set, a time starts with its year number (e.g. '1-01' for "
                "January of year 1); fix that row.")
        readable.append(f"{int(match.group(1)) + year_offset:04d}{match.group(2) or ''}")
    readable = pandas.Series(readable, index=values.index, dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        times = pandas.to_datetime(readable, format=time_format, errors="coerce")
    bad = times.isna().to_numpy().nonzero()[0]
    if len(bad):
        row = int(bad[0])
        with_format = f" and {setting_prefix}time_format '{time_format}'" if time_format else ""
        raise errors.SeqTemplatesError(
            f"{where.at(row, field_number)}: cannot read the time {values.iloc[row]!r} in {columns} (read "
            f"as {readable.iloc[row]!r} with {setting_prefix}year_offset {year_offset}{with_format}); "
            "fix that row.")
    return pandas.DatetimeIndex(times)


def _refuse_times_without_a_year(frame, values, time_names, where, setting_prefix):
    """Refuses times like ``"1-01"`` (a counted year and a month) that pandas would read as a made-up date."""
    first = next((row for row, value in enumerate(values) if isinstance(value, str) and value), None)
    if first is None or not YEAR_MISSING.fullmatch(values.iloc[first]):
        return
    raise errors.SeqTemplatesError(
        f"{where.at(first, frame.columns.get_loc(time_names[0]) + 1)}: the time {values.iloc[first]!r} in "
        f"{', '.join(repr(name) for name in time_names)} has no calendar year; if it is a counted year "
        f"and a month, set {setting_prefix}year_offset (e.g. 1900, so 1-01 is January 1901) and "
        f"{setting_prefix}time_format '%Y-%m', or else set {setting_prefix}time_format.")


def _check_time_order(times, describe, where, time_names):
    values = times.asi8
    bad = (values[1:] <= values[:-1]).nonzero()[0]
    if not len(bad):
        return
    row = int(bad[0]) + 1
    columns = ", ".join(repr(name) for name in time_names)
    if values[row] == values[row - 1]:
        raise errors.SeqTemplatesError(
            f"{where(row)}: time {describe(row)} repeats the one on {where.label(row - 1)}; each time "
            f"in {columns} must appear once: remove or merge the duplicate rows."
        )
    raise errors.SeqTemplatesError(
        f"{where(row)}: time {describe(row)} comes before {describe(row - 1)} on "
        f"{where.label(row - 1)}; "
        f"rows must be in time order: sort the file by {columns}."
    )


def _convert_column(column, name, missing_markers, where, setting_prefix, numeric=None):
    """Returns a float column, or the strings of a non-numeric (categorical) one (``numeric``: it
    must be numbers (True) or is text (False); None decides: numbers where most values are)."""
    if numeric is not False and pandas.api.types.is_numeric_dtype(column) and not pandas.api.types.is_bool_dtype(
            column):  # (Parquet's numbers)
        return column.astype("float64").to_numpy()
    text = pandas.Series(_stripped(column), dtype=object)
    missing = text.isna().to_numpy() | text.isin(missing_markers).to_numpy()
    numbers = pandas.to_numeric(text.where(~missing, None), errors="coerce")
    unparsed = numbers.isna().to_numpy() & ~missing
    present = int((~missing).sum())
    if numeric == "undecided":  # a chunk of a streamed file: its values decide; none yet, numbers
        numeric = None if present else True
    if numeric or (numeric is None and present and unparsed.sum() * 2 < present):
        if unparsed.any():
            row = int(unparsed.nonzero()[0][0])
            raise errors.SeqTemplatesError(
                f"{where(row)}: column '{name}' holds {text.iloc[row]!r}, not a number, while the "
                f"column is numeric elsewhere; fix the value or add it to "
                f"{setting_prefix}missing_values."
            )
        return numbers.astype("float64").to_numpy()
    return text.where(~missing, None).to_numpy(dtype=object)
# endregion
