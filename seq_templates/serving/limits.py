"""What one request may ask of a model: sizes, generation lengths and decoding values.

The server checks every decoded request against a :class:`Limits` before any model
call, and ``seq-templates predict`` checks the same decoding values, so a request
that would run for minutes or fill the memory (one 15 MB string, ``max_length``
of a hundred million) is refused in one line that names the limit and the flag
that raises it:

* ``max_input_bytes``: the longest string element, in UTF-8 bytes;
* ``max_rows``: rows (batch elements) per request;
* ``max_generate_length``: the largest value of a length input
  (:data:`LENGTH_INPUTS`: ``max_length``), so each generation is bounded;
* :data:`VALUE_RULES`: decoding inputs must make sense (``temperature`` >= 0,
  ``top_k`` >= 0, ``top_p`` in (0, 1], ``beam_width`` >= 1, ...), where a model
  would otherwise take a nonsense value silently (``beam_width`` 0 ran greedy).

``request_timeout_seconds`` is the server's deadline for one request (answered
504 when it passes), and ``generate_chunk_length`` the most steps one model call of
a generation runs (:mod:`chunking`), kept here with the other per-request bounds.

Each bound of a model comes from, the later winning: the server's built-in default;
what the export records in ``assets.extra/request_limits.json`` (:data:`EXPORT_FILE`,
written by :func:`export_defaults` when a run exports); ``request_limits`` of the model
in the model config file; a ``serve`` flag given on the command line
(:meth:`Limits.for_model`). A refusal names where its bound came from (:meth:`Limits.where`).
"""

import dataclasses
import json
import math
import pathlib
import typing

import numpy as np

from seq_templates import errors
from seq_templates.serving import error_codes

LENGTH_INPUTS = ("max_length",)
# name: (lowest, highest, include the lowest, what it means); None: no bound on that side.
VALUE_RULES = {
    "max_length": (1, None, True, "at least 1"),
    "temperature": (0.0, None, True, "at least 0 (0: greedy)"),
    "top_k": (0, None, True, "at least 0 (0: off)"),
    "top_p": (0.0, 1.0, False, "in (0, 1] (1: off)"),
    "beam_width": (1, None, True, "at least 1 (1: greedy)"),
    "length_penalty": (0.0, None, True, "at least 0"),
}


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per-request bounds (``seq-templates serve --max-input-bytes ...``).

    Attributes:
        max_input_bytes: The longest string element, in UTF-8 bytes.
        max_rows: Rows per request.
        max_generate_length: The largest value of a :data:`LENGTH_INPUTS` input.
        request_timeout_seconds: A request not answered by then gets a 504.
        generate_chunk_length: The most steps one model call generates: a request of a
            longer ``max_length`` to a signature that can continue its own text runs as
            several calls (:mod:`chunking`), so a deadline or a shutdown stops it between two.
    """

    max_input_bytes: int = 100_000
    max_rows: int = 1_024
    max_generate_length: int = 2_000
    request_timeout_seconds: float = 60.0
    generate_chunk_length: int = 1_000
    model_keys: frozenset = frozenset()  # the bounds one model's request_limits set (named in errors)
    model_name: str = ""
    export_keys: frozenset = frozenset()  # the bounds the served version's export recorded
    export: typing.Optional["Recorded"] = None

    def for_model(self, name, bounds, given=(), recorded=None):
        """These limits for one model.

        Args:
            name: The model's name.
            bounds: Its ``request_limits`` from the model config file (``{bound: number}``).
            given: The bounds given as ``serve`` flags: they win over everything else.
            recorded: The :class:`Recorded` bounds of the version that answers, or None.

        Returns:
            A :class:`Limits`: the flags given, else the model's ``request_limits``, else
            what the export records, else these limits' own values.
        """
        from_export = {key: value for key, value in (recorded.bounds if recorded else {}).items()
                       if key not in given and key not in bounds}
        own = {key: value for key, value in bounds.items() if key not in given}
        return dataclasses.replace(self, **from_export, **own, model_keys=frozenset(own), model_name=name,
                                   export_keys=frozenset(from_export), export=recorded)

    def where(self, bound):
        """Where ``bound`` is set: the ``serve`` flag, the model's ``request_limits`` or its export."""
        flag = f"seq-templates serve --{bound.replace('_', '-')}"
        if bound in self.model_keys:
            return f"request_limits {{ {bound} }} of model '{self.model_name}' in the model config file"
        if bound in self.export_keys:
            reason = self.export.reasons.get(bound)
            return (f"recorded by the export of model '{self.model_name}' in {self.export.source}"
                    + (f": {reason}" if reason else "")
                    + f"; {flag} or request_limits in the model config file overrides it")
        return flag


BOUNDS = {"max_input_bytes": int, "max_rows": int, "max_generate_length": int, "request_timeout_seconds": float,
          "generate_chunk_length": int}
EXPORT_FILE = "request_limits.json"  # in assets.extra/, beside the app's serving.json
GENERATE_LENGTH_FACTOR = 10  # the export allows 10 times its default max_length
BYTES_PER_READ_TOKEN = 64  # an export that reads N tokens of a text takes texts of 64 N bytes


def check_bound(name, value, where):
    """``value`` (from JSON) as the bound ``name`` takes it: a whole number, or a number, above 0.

    Raises:
        SeqTemplatesError: An unknown bound or a value that is not above 0, naming ``where``.
    """
    if name not in BOUNDS:
        raise errors.SeqTemplatesError(f"{where}: '{name}' is not a bound; use {', '.join(BOUNDS)}.")
    kind = BOUNDS[name]
    number = isinstance(value, int) or (kind is float and isinstance(value, float))
    if isinstance(value, bool) or not number or not value > 0 or not math.isfinite(value):
        raise errors.SeqTemplatesError(f"{where}: {name} takes {'a whole number' if kind is int else 'a number'} "
                                       f"above 0, received {value!r}.")
    return kind(value)


@dataclasses.dataclass(frozen=True)
class Recorded:
    """The bounds an export records for the server (:data:`EXPORT_FILE`).

    Attributes:
        bounds: ``{bound: number}``, names as in :data:`BOUNDS`.
        reasons: ``{bound: why the export chose it}``, quoted in refusals.
        source: Where they were read, as a refusal names it.
    """

    bounds: dict
    reasons: dict
    source: str = ""


def export_defaults(assets):
    """The bounds a run's export records, derived from what the app says of its export.

    - ``max_generate_length``: :data:`GENERATE_LENGTH_FACTOR` times the largest default
      ``max_length`` the app records for a signature (``serving.json``'s ``defaults``): a
      generation model allows ten times what it generates by default.
    - ``max_input_bytes``: where the app's ``serving.json`` says ``reads_tokens`` (the
      tokens its export reads of each text, the rest cut and said so in its notes),
      :data:`BYTES_PER_READ_TOKEN` bytes per token read (at most the server's default):
      a text far longer than the export reads is refused rather than mostly thrown away.

    Args:
        assets: The app's ``assets.extra/`` files (``build_serving``'s third value).

    Returns:
        ``{"request_limits": {bound: number}, "reasons": {bound: text}}`` for
        :data:`EXPORT_FILE`, or None when nothing is derived.
    """
    bounds, reasons = {}, {}
    serving = assets.get("serving.json") if isinstance(assets.get("serving.json"), dict) else {}
    lengths = sorted((int(values[name]), signature) for signature, values in (serving.get("defaults") or {}).items()
                     if isinstance(values, dict) for name in LENGTH_INPUTS if name in values)
    if lengths:
        length, signature = lengths[-1]
        bounds["max_generate_length"] = max(1, GENERATE_LENGTH_FACTOR * length)
        reasons["max_generate_length"] = (f"{GENERATE_LENGTH_FACTOR} x the default max_length of {signature}, "
                                          f"{length}")
    read_tokens = serving.get("reads_tokens")
    if read_tokens:
        bounds["max_input_bytes"] = min(Limits().max_input_bytes, BYTES_PER_READ_TOKEN * int(read_tokens))
        reasons["max_input_bytes"] = (f"the export reads the first {read_tokens} tokens of each text "
                                      f"(serving.json's reads_tokens), {BYTES_PER_READ_TOKEN} bytes per token")
    return {"request_limits": bounds, "reasons": reasons} if bounds else None


def read_recorded(version_path, source=None):
    """The :class:`Recorded` bounds of an export version, or None when it records none.

    Raises:
        SeqTemplatesError: The file is not JSON of known bounds above 0 (named with the file).
    """
    path = pathlib.Path(version_path) / "assets.extra" / EXPORT_FILE
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise errors.SeqTemplatesError(f"{path}: cannot be read as JSON ({error}); fix or remove it.") from None
    if not isinstance(document, dict) or not isinstance(document.get("request_limits", {}), dict):
        raise errors.SeqTemplatesError(f'{path}: expected {{"request_limits": {{bound: number}}}}.')
    bounds = {name: check_bound(name, value, str(path)) for name, value in document.get("request_limits", {}).items()}
    reasons = document.get("reasons") if isinstance(document.get("reasons"), dict) else {}
    return Recorded(bounds, {name: str(text) for name, text in reasons.items()},
                    source or f"assets.extra/{EXPORT_FILE}")


def check_values(values, flag_prefix="--param "):
    """Refuses decoding values outside :data:`VALUE_RULES` (``{name: number}``; other names pass).

    Raises:
        ServingError: INVALID_ARGUMENT naming the input, the value and the rule.
    """
    for name, value in values.items():
        rule = VALUE_RULES.get(name)
        if rule is None:
            continue
        for number in np.ravel(np.asarray(value, dtype="float64")):
            lowest, highest, inclusive, meaning = rule
            too_low = lowest is not None and (number < lowest if inclusive else number <= lowest)
            if too_low or (highest is not None and number > highest) or math.isnan(number):
                raise error_codes.invalid_argument(
                    f"{flag_prefix}{name}={_plain(number)} is out of range: {name} must be {meaning}.")


RAW_BYTES_PER_TEXT_BYTE = 6  # a JSON string spends at most 6 bytes (\\u00e9) on one byte of its UTF-8 text
QUOTES_SCANNED = 10_000  # check_body looks at this many quotes at most, then leaves the rest to the parser


def check_body(body, limits):
    """Refuses, before any JSON parsing, a body holding a string literal too long to be allowed.

    Parsing a 15 MB string costs the event loop about 50 ms, which every other client
    would wait; this scan finds such a literal from the positions of its quotes (a few
    ``bytes.find`` calls) and refuses it only when even the most escaped text it could
    hold is over ``max_input_bytes``. Anything it cannot decide cheaply (no long body,
    many quotes) is left to :func:`check_request` after parsing.

    Raises:
        ServingError: INVALID_ARGUMENT naming ``--max-input-bytes``.
    """
    longest_allowed = RAW_BYTES_PER_TEXT_BYTE * limits.max_input_bytes
    if len(body) <= longest_allowed:
        return
    position, opened = 0, None
    for _ in range(QUOTES_SCANNED):
        quote = body.find(b'"', position)
        if quote < 0:
            return
        position = quote + 1
        if opened is not None:
            backslashes = 0
            while body[quote - 1 - backslashes] == 0x5C:  # an odd number of backslashes escapes the quote
                backslashes += 1
            if backslashes % 2:
                continue
            if quote - opened - 1 > longest_allowed:
                raise error_codes.invalid_argument(
                    f"The request holds a text of over {quote - opened - 1:,} bytes of JSON; this server takes at "
                    f"most {limits.max_input_bytes:,} bytes per text ({limits.where('max_input_bytes')}).")
            opened = None
        else:
            opened = quote


def check_request(inputs, limits):
    """Refuses a decoded request (``{input name: numpy array}``) that asks more than ``limits``.

    Raises:
        ServingError: INVALID_ARGUMENT naming the input, the size and the ``serve`` flag.
    """
    for name, array in inputs.items():
        if array.ndim and array.shape[0] > limits.max_rows:
            raise error_codes.invalid_argument(
                f"Input '{name}' has {array.shape[0]:,} rows; this server takes at most {limits.max_rows:,} per "
                f"request ({limits.where('max_rows')}).")
        if array.dtype == object:
            longest = max((len(item) for item in array.ravel()), default=0)
            if longest > limits.max_input_bytes:
                raise error_codes.invalid_argument(
                    f"Input '{name}' holds a text of {longest:,} bytes; this server takes at most "
                    f"{limits.max_input_bytes:,} per text ({limits.where('max_input_bytes')}).")
        if name in LENGTH_INPUTS and array.size and float(np.max(array)) > limits.max_generate_length:
            raise error_codes.invalid_argument(
                f"Input '{name}' asks for {_plain(np.max(array))} steps; this server generates at most "
                f"{limits.max_generate_length:,} ({limits.where('max_generate_length')}).")
    check_values(inputs, flag_prefix="")


def _plain(number):
    number = float(number)
    return str(int(number)) if number.is_integer() else f"{number:g}"
