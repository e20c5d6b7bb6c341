"""The server's settings: which models to serve and how to batch, from flags or TF Serving's own files.

TensorFlow Serving reads two protocol-buffer text files, and so does this server:

- ``--model_config_file`` (here ``--model-config-file``), a ``ModelServerConfig``::

      model_config_list {
        config {
          name: 'sentiment'
          base_path: '/models/sentiment'
          model_platform: 'tensorflow'
          model_version_policy { latest { num_versions: 2 } }   # or all {} or specific { versions: 1 }
          version_labels { key: 'stable' value: 1 }
          request_limits { max_input_bytes: 20000 max_generate_length: 300 }  # this server only
        }
      }

  ``request_limits`` is this server's own field (``tensorflow_model_server`` does not read
  it: leave it out of a file for both): one model's bounds, with the names of the ``serve``
  flags (``max_input_bytes``, ``max_rows``, ``max_generate_length``,
  ``request_timeout_seconds``); a flag given on the command line still wins.

- ``--batching_parameters_file`` (here ``--batching-parameters-file``), a
  ``BatchingParameters``::

      max_batch_size { value: 32 }
      batch_timeout_micros { value: 2000 }
      max_enqueued_batches { value: 100 }
      num_batch_threads { value: 2 }

Only the fields this server acts on are accepted; any other field is an error
naming the file, line and field rather than being silently ignored.
"""

import dataclasses
import pathlib
import re
import typing

from seq_templates import errors

LATEST = "latest"
ALL = "all"
SPECIFIC = "specific"


@dataclasses.dataclass
class ModelConfig:
    """One served model: TF Serving's ``ModelConfig`` fields this server uses.

    Attributes:
        name: The model name in URLs (``/v1/models/<name>``).
        base_path: The folder of numeric version folders.
        version_policy: ``"latest"`` (the ``num_versions`` newest), ``"all"`` or
            ``"specific"`` (the listed ``versions``). TF Serving's default is the latest one.
        num_versions: How many versions ``"latest"`` serves.
        versions: The versions ``"specific"`` serves.
        version_labels: ``{label: version}`` for ``/labels/<label>`` URLs.
    """

    name: str
    base_path: pathlib.Path
    version_policy: str = LATEST
    num_versions: int = 1
    versions: typing.Tuple[int, ...] = ()
    version_labels: typing.Dict[str, int] = dataclasses.field(default_factory=dict)
    request_limits: typing.Dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class BatchingParameters:
    """Server-side batching, as TF Serving's ``BatchingParameters``.

    Attributes:
        max_batch_size: The most rows one merged model call takes.
        batch_timeout_micros: How long a batch that is not full waits for more
            requests after its first one arrives (0: it runs as soon as a batch
            thread is free, still merging whatever queued while the threads were busy).
        num_batch_threads: How many merged calls run at once.
        max_enqueued_batches: Batches waiting beyond this answer 429 (the queue is full).
    """

    max_batch_size: int = 32
    batch_timeout_micros: int = 2000
    num_batch_threads: int = 2
    max_enqueued_batches: int = 1000

    def __post_init__(self):
        for name in ("max_batch_size", "num_batch_threads", "max_enqueued_batches"):
            if int(getattr(self, name)) < 1:
                raise errors.SeqTemplatesError(
                    f"Batching parameter {name} must be at least 1, received {getattr(self, name)}.")
        if int(self.batch_timeout_micros) < 0:
            raise errors.SeqTemplatesError(
                f"Batching parameter batch_timeout_micros must be 0 or more, received {self.batch_timeout_micros}.")


_TOKEN = re.compile(r"""(\#[^\n]*)|([{}<>:;,\[\]])|("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""
                    r"""|([^\s{}<>:;,\[\]#"']+)|(\S)""")


def _tokens(text, path):
    """Yields ``(token, line)`` of a protocol-buffer text file, comments dropped."""
    for match in _TOKEN.finditer(text):
        if match.group(1):
            continue
        line = text.count("\n", 0, match.start()) + 1
        if match.group(5):
            raise errors.SeqTemplatesError(f"{path}:{line}: cannot read {text[match.start():match.start() + 20]!r}; "
                                           "expected protocol-buffer text like `name: 'value'` or `field { ... }`.")
        yield match.group(0), line


def parse_text_proto(text, path="<text>"):
    """Parses protocol-buffer text format into nested ``[(field, value, line), ...]`` lists.

    A message value is itself such a list; a scalar is the token as written (quotes
    removed from strings).

    Raises:
        SeqTemplatesError: The text is not well-formed; names the file and line.
    """
    tokens = list(_tokens(text, path))
    position = 0

    def message(closing):
        nonlocal position
        fields = []
        while True:
            if position >= len(tokens):
                if closing is None:
                    return fields
                raise errors.SeqTemplatesError(f"{path}: a '{{' is never closed; add the missing '{closing}'.")
            token, line = tokens[position]
            if token == closing:
                position += 1
                return fields
            if token in ";,":
                position += 1
                continue
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token):
                raise errors.SeqTemplatesError(f"{path}:{line}: expected a field name, received {token!r}.")
            position += 1
            if position < len(tokens) and tokens[position][0] == ":":
                position += 1
            if position >= len(tokens):
                raise errors.SeqTemplatesError(f"{path}:{line}: field '{token}' has no value.")
            value, value_line = tokens[position]
            position += 1
            if value in ("{", "<"):
                fields.append((token, message("}" if value == "{" else ">"), line))
            elif value in ("}", ">", ":", ";", ",", "[", "]"):
                raise errors.SeqTemplatesError(f"{path}:{value_line}: field '{token}' has no value.")
            else:
                if value[0] in "\"'":
                    value = re.sub(r"\\(.)", r"\1", value[1:-1])
                fields.append((token, value, line))

    return message(None)


def _integer(value, field, line, path):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise errors.SeqTemplatesError(f"{path}:{line}: field '{field}' takes a whole number, received {value!r}.") \
            from None


def _unknown(field, line, path, allowed):
    return errors.SeqTemplatesError(f"{path}:{line}: field '{field}' is not supported here; use "
                                    f"{', '.join(allowed)}.")


def _single(fields, path, field, line):
    """The one ``value`` of a wrapper message such as ``max_batch_size { value: 32 }``."""
    if not isinstance(fields, list) or [name for name, _, _ in fields] != ["value"]:
        raise errors.SeqTemplatesError(f"{path}:{line}: write '{field} {{ value: N }}'.")
    return _integer(fields[0][1], field, line, path)


def read_model_config_file(path):
    """Reads a TF Serving ``models.config`` (a ``ModelServerConfig`` in text format).

    Returns:
        A list of :class:`ModelConfig`. Relative base paths are taken relative to
        the current folder, as TF Serving takes them.

    Raises:
        SeqTemplatesError: The file is missing or malformed, a field is not
            supported, a name repeats, or a platform other than tensorflow is asked for.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise errors.SeqTemplatesError(f"Model config file '{path}' does not exist; check --model-config-file.")
    fields = parse_text_proto(path.read_text(encoding="utf-8"), path)
    if [name for name, _, _ in fields] != ["model_config_list"] or not isinstance(fields[0][1], list):
        raise errors.SeqTemplatesError(f"{path}: expected one 'model_config_list {{ config {{ ... }} }}' block.")
    models = []
    for name, config_fields, line in fields[0][1]:
        if name != "config" or not isinstance(config_fields, list):
            raise _unknown(name, line, path, ["config { ... }"])
        models.append(_model_config(config_fields, path, line))
    names = [model.name for model in models]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise errors.SeqTemplatesError(f"{path}: model name(s) {', '.join(repeated)} appear more than once.")
    if not models:
        raise errors.SeqTemplatesError(f"{path}: the model_config_list has no config; add one per model.")
    return models


def _model_config(fields, path, config_line):
    values = {"version_labels": {}}
    for field, value, line in fields:
        if field in ("name", "base_path"):
            values[field] = value
        elif field == "model_platform":
            if value != "tensorflow":
                raise errors.SeqTemplatesError(f"{path}:{line}: model_platform '{value}' is not supported; "
                                               "use 'tensorflow'.")
        elif field == "model_version_policy":
            values.update(_version_policy(value, path, line))
        elif field == "request_limits":
            values["request_limits"] = _request_limits(value, path, line)
        elif field == "version_labels":
            entry = {name: item for name, item, _ in value} if isinstance(value, list) else {}
            if set(entry) != {"key", "value"}:
                raise errors.SeqTemplatesError(f"{path}:{line}: write version_labels {{ key: 'stable' value: 1 }}.")
            values["version_labels"][entry["key"]] = _integer(entry["value"], "version_labels", line, path)
        else:
            raise _unknown(field, line, path, ["name", "base_path", "model_platform", "model_version_policy",
                                               "version_labels", "request_limits"])
    missing = [field for field in ("name", "base_path") if not values.get(field)]
    if missing:
        raise errors.SeqTemplatesError(f"{path}:{config_line}: the config lacks {' and '.join(missing)}.")
    values["base_path"] = pathlib.Path(values["base_path"])
    return ModelConfig(**values)


def _request_limits(fields, path, line):
    """``request_limits { max_rows: 64 ... }`` -> ``{name: number}``, each a bound above 0."""
    from seq_templates.serving import limits

    if not isinstance(fields, list):
        raise errors.SeqTemplatesError(f"{path}:{line}: write request_limits {{ max_input_bytes: 20000 }}.")
    bounds = {}
    for field, value, field_line in fields:
        if field not in limits.BOUNDS:
            raise _unknown(field, field_line, path, list(limits.BOUNDS))
        try:
            number = limits.BOUNDS[field](value)
        except (TypeError, ValueError):
            number = None
        if number is None or not number > 0:
            kind = "a whole number" if limits.BOUNDS[field] is int else "a number"
            raise errors.SeqTemplatesError(f"{path}:{field_line}: {field} takes {kind} above 0, received {value!r}.")
        bounds[field] = number
    return bounds


def _version_policy(fields, path, line):
    if not isinstance(fields, list) or len(fields) != 1:
        raise errors.SeqTemplatesError(f"{path}:{line}: model_version_policy takes one of "
                                       "latest { num_versions: N }, all {}, specific { versions: N }.")
    kind, body, body_line = fields[0]
    if kind == LATEST:
        number = 1
        for field, value, field_line in body:
            if field != "num_versions":
                raise _unknown(field, field_line, path, ["num_versions"])
            number = _integer(value, field, field_line, path)
        if number < 1:
            raise errors.SeqTemplatesError(f"{path}:{body_line}: num_versions must be at least 1.")
        return {"version_policy": LATEST, "num_versions": number}
    if kind == ALL:
        if body:
            raise errors.SeqTemplatesError(f"{path}:{body_line}: write 'all {{}}'.")
        return {"version_policy": ALL}
    if kind == SPECIFIC:
        versions = []
        for field, value, field_line in body:
            if field != "versions":
                raise _unknown(field, field_line, path, ["versions"])
            versions.append(_integer(value, field, field_line, path))
        if not versions:
            raise errors.SeqTemplatesError(f"{path}:{body_line}: specific {{ }} lists no versions.")
        return {"version_policy": SPECIFIC, "versions": tuple(versions)}
    raise _unknown(kind, body_line, path, ["latest", "all", "specific"])


BATCHING_FIELDS = ("max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches")


def read_batching_parameters_file(path):
    """Reads a TF Serving batching parameters file into :class:`BatchingParameters`.

    Raises:
        SeqTemplatesError: The file is missing, malformed or sets a field this server does not implement.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise errors.SeqTemplatesError(f"Batching parameters file '{path}' does not exist; check "
                                       "--batching-parameters-file.")
    values = {}
    for field, value, line in parse_text_proto(path.read_text(encoding="utf-8"), path):
        if field not in BATCHING_FIELDS:
            raise _unknown(field, line, path, BATCHING_FIELDS)
        values[field] = _single(value, path, field, line)
    return BatchingParameters(**values)
