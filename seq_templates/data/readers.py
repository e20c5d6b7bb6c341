"""Readers for labelled text files: CSV, TSV, JSONL and class-per-folder trees.

Every reader returns plain Python lists (``texts``, ``labels``) with labels as
strings, so the same label lookup serves numeric (``0``/``1``) and named labels.
Problems a user can fix (a missing file, a missing column, a short row, bytes that
are not valid in the declared encoding, an empty file) raise
:class:`~seq_templates.errors.SeqTemplatesError` naming the file, line and column.
"""

import csv
import json
import pathlib

from seq_templates import errors

TEXT_FORMATS = ("csv", "tsv", "jsonl")


def infer_format(path):
    """Returns ``csv``, ``tsv`` or ``jsonl`` from a file name's extension.

    Raises:
        SeqTemplatesError: The extension is not one of the known ones.
    """
    suffixes = [suffix.lower() for suffix in pathlib.Path(path).suffixes]
    for suffix in reversed(suffixes):
        name = suffix.lstrip(".")
        if name in ("csv", "tsv", "jsonl"):
            return name
        if name in ("json", "ndjson"):
            return "jsonl"
        if name == "txt":
            return "tsv"
    raise errors.SeqTemplatesError(
        f"Cannot tell the format of '{path}' from its extension; expected .csv, .tsv or "
        f".jsonl, or set data.format to one of {', '.join(TEXT_FORMATS)}."
    )


def read_lines(path, encoding="utf-8"):
    """Reads a text file, reporting undecodable bytes by line and column.

    Args:
        path: File to read.
        encoding: Text encoding of the file.

    Returns:
        The decoded text.

    Raises:
        SeqTemplatesError: The file is missing, is a folder, or holds bytes that
            are not valid in ``encoding``.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise errors.SeqTemplatesError(f"File '{path}' does not exist; check the path.")
    if path.is_dir():
        raise errors.SeqTemplatesError(f"'{path}' is a folder; expected a data file.")
    raw = path.read_bytes()
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        line_start = raw.rfind(b"\n", 0, error.start) + 1
        line_number = raw.count(b"\n", 0, error.start) + 1
        column = error.start - line_start + 1
        raise errors.SeqTemplatesError(
            f"{path}:{line_number}:{column}: byte 0x{raw[error.start]:02x} is not valid "
            f"{encoding}; re-save the file as {encoding} or set data.encoding to its encoding "
            "(e.g. latin-1)."
        ) from None
    except LookupError:
        raise errors.SeqTemplatesError(
            f"Unknown encoding '{encoding}' in data.encoding; use a Python codec name such as "
            "utf-8 or latin-1."
        ) from None


def read_text_classification(
    path,
    text_column="text",
    label_column="label",
    file_format=None,
    has_header=True,
    encoding="utf-8",
    require_labels=True,
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

    Returns:
        A tuple ``(texts, labels)`` of equal-length lists of strings.

    Raises:
        SeqTemplatesError: For a missing file, a missing column, a short row, bad
            bytes, malformed JSON or a file with no examples.
    """
    path = pathlib.Path(path)
    file_format = file_format or infer_format(path)
    if file_format not in TEXT_FORMATS:
        raise errors.SeqTemplatesError(
            f"data.format expects one of {', '.join(TEXT_FORMATS)}, received '{file_format}'."
        )
    text = read_lines(path, encoding)
    if file_format == "jsonl":
        texts, labels = _read_jsonl(path, text, text_column, label_column, require_labels)
    else:
        texts, labels = _read_delimited(
            path, text, "\t" if file_format == "tsv" else ",", file_format == "tsv",
            text_column, label_column, has_header, require_labels,
        )
    if not texts:
        raise errors.SeqTemplatesError(
            f"{path}: no examples found; the file is empty or has only a header."
        )
    return texts, labels


def _column_index(path, header, column, role):
    if header is not None and str(column) in header:
        return header.index(str(column))
    if isinstance(column, int) or (isinstance(column, str) and column.isdigit()):
        return int(column)
    if header is None:
        raise errors.SeqTemplatesError(
            f"{path}: the file has no header, so the {role} column must be a 0-based index; "
            f"received '{column}'."
        )
    raise errors.SeqTemplatesError(
        f"{path}:1: no column '{column}' for the {role}; the header has "
        f"{', '.join(repr(name) for name in header)}. Set data.{role}_column to one of them."
    )


def _read_delimited(path, text, delimiter, no_quoting, text_column, label_column, has_header,
                    require_labels):
    lines = text.splitlines()
    quoting = csv.QUOTE_NONE if no_quoting else csv.QUOTE_MINIMAL
    reader = csv.reader(lines, delimiter=delimiter, quoting=quoting, strict=True)
    header = None
    texts, labels = [], []
    try:
        for row_number, row in enumerate(reader, start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if has_header and header is None:
                header = [cell.strip() for cell in row]
                text_index = _column_index(path, header, text_column, "text")
                label_index = _label_index(path, header, label_column, require_labels)
                continue
            if header is None and not has_header and not texts:
                text_index = _column_index(path, None, text_column, "text")
                label_index = _label_index(path, None, label_column, require_labels)
            needed = max(text_index, label_index if label_index is not None else -1)
            if len(row) <= needed:
                raise errors.SeqTemplatesError(
                    f"{path}:{row_number}: expected at least {needed + 1} fields separated by "
                    f"{'a tab' if delimiter == chr(9) else 'commas'}, found {len(row)}; fix that row."
                )
            texts.append(row[text_index].strip())
            if label_index is None:
                labels.append(None)
            else:
                label = row[label_index].strip()
                if not label:
                    raise errors.SeqTemplatesError(
                        f"{path}:{row_number}:{label_index + 1}: empty label; give every row a label."
                    )
                labels.append(label)
    except csv.Error as error:
        raise errors.SeqTemplatesError(
            f"{path}:{reader.line_num}: malformed row ({error}); check quoting on that line."
        ) from None
    return texts, labels


def _label_index(path, header, label_column, require_labels):
    if require_labels:
        return _column_index(path, header, label_column, "label")
    try:
        return _column_index(path, header, label_column, "label")
    except errors.SeqTemplatesError:
        return None


def _read_jsonl(path, text, text_key, label_key, require_labels):
    texts, labels = [], []
    for line_number, line in enumerate(text.splitlines(), start=1):
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
                f"{', '.join(map(repr, record))}. Set data.text_column to one of them."
            )
        texts.append(str(record[str(text_key)]).strip())
        if str(label_key) in record and record[str(label_key)] is not None:
            labels.append(str(record[str(label_key)]).strip())
        elif require_labels:
            raise errors.SeqTemplatesError(
                f"{path}:{line_number}: no key '{label_key}' for the label; the object has "
                f"{', '.join(map(repr, record))}. Set data.label_column to one of them."
            )
        else:
            labels.append(None)
    return texts, labels


def read_labelled_folders(root, label_folders=None, encoding="utf-8"):
    """Reads a tree ``root/<label>/*.txt`` (the IMDB / ``text_dataset_from_directory`` layout).

    Args:
        root: Folder whose sub-folders are the labels.
        label_folders: Names of the sub-folders to read (others, such as IMDB's
            ``unsup``, are skipped); None reads every sub-folder.
        encoding: Text encoding of the files.

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
            texts.append(read_lines(file_path, encoding).strip())
            labels.append(label_folder.name)
    if not texts:
        raise errors.SeqTemplatesError(
            f"{root}: no examples found; expected sub-folders named by label holding .txt files."
        )
    return texts, labels
