"""Predict requests to input arrays and outputs to answers, in TensorFlow Serving's JSON formats.

Follows ``tensorflow_serving/util/json_tensor.cc`` and the REST API guide
(https://www.tensorflow.org/tfx/serving/api_rest), messages included:

- **Row format** ``{"instances": [...]}``: one item per example; a plain value or
  list when the signature has one input, else an object keyed by input name.
  Items are stacked into a batch. Answer: ``{"predictions": [...]}``, one item
  per example, an object keyed by output name when there are several outputs.
- **Columnar format** ``{"inputs": ...}``: a value (one input) or an object of
  whole tensors keyed by input name. Answer: ``{"outputs": ...}``, a value or an
  object keyed by output name.
- ``"signature_name"`` picks the signature (default ``serving_default``).
- Strings are JSON strings; ``{"b64": "..."}`` carries bytes. An output whose
  name ends in ``_bytes`` is answered as ``{"b64": ...}``. Floats are written as
  the shortest decimal that reads back to the same float32, ``NaN`` and
  ``Infinity`` as TF Serving writes them.

Three deliberate differences, each refusing what TF Serving would pass on to the
model and fail on, or accept silently: an ``inputs`` object with a name the
signature lacks is refused (TF Serving ignores it), an empty batch is refused
in either format, and so is a number that is not finite (the literals ``NaN``,
``Infinity`` and ``-Infinity``, or a decimal too large for a double, such as
``1e400``): a model answers nonsense for it (a forecast of NaN). One addition: in the row format, an input whose
signature shape is a scalar (``[]``, e.g. a ``temperature``) is accepted when
every instance gives the same value, which then goes to the model once.
"""

import base64
import binascii
import dataclasses
import functools
import json
import math
import typing

import numpy as np

from seq_templates.serving import error_codes

ROW = "row"
COLUMNAR = "columnar"
DEFAULT_SIGNATURE = "serving_default"
MAX_RANK = 32  # deeper nesting is refused (numpy stops at 64 dimensions)

# TensorFlow's DataTypeString names, used in TF Serving's messages.
_TYPE_NAMES = {"float32": "float", "float64": "double", "float16": "half"}
_INTEGER_RANGES = {"int8": (-2 ** 7, 2 ** 7 - 1), "uint8": (0, 2 ** 8 - 1), "int16": (-2 ** 15, 2 ** 15 - 1),
                   "uint16": (0, 2 ** 16 - 1), "int32": (-2 ** 31, 2 ** 31 - 1), "uint32": (0, 2 ** 32 - 1),
                   "int64": (-2 ** 63, 2 ** 63 - 1), "uint64": (0, 2 ** 64 - 1)}
# The largest whole number a float type holds exactly, and its largest finite value.
_FLOAT_LIMITS = {"float32": (2 ** 24 - 1, float(np.finfo(np.float32).max)),
                 "float16": (2 ** 11 - 1, float(np.finfo(np.float16).max)),
                 "bfloat16": (2 ** 8 - 1, 3.3895313892515355e38),
                 "float64": (2 ** 53 - 1, float(np.finfo(np.float64).max))}
_SHOWN_CHARACTERS = 200


@dataclasses.dataclass
class PredictRequest:
    """A decoded predict request.

    Attributes:
        signature_name: The signature to call.
        request_format: ``ROW`` or ``COLUMNAR`` (the answer uses the same).
        inputs: ``{input name: numpy array}`` (scalar inputs as 0-d arrays).
        rows: The batch size, or None when no input has a batch dimension.
    """

    signature_name: str
    request_format: str
    inputs: typing.Dict[str, np.ndarray]
    rows: typing.Optional[int]


def _show(value):
    """A JSON value as TF Serving quotes it in a message, cut short."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN_CHARACTERS else text[:_SHOWN_CHARACTERS] + "..."


def _json_type(value):
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def type_name(dtype):
    """TensorFlow's name for a dtype in messages (``float``, ``int64``, ``string``...)."""
    return _TYPE_NAMES.get(dtype.name, dtype.name)


def _type_error(value, dtype):
    return error_codes.invalid_argument(f"JSON Value: {_show(value)} Type: {_json_type(value)} is not of expected "
                                        f"type: {type_name(dtype)}")


def parse(body):
    """Parses a request body; it must be a JSON object.

    Raises:
        ServingError: INVALID_ARGUMENT, worded as TF Serving's parse errors.
    """
    if not body or not body.strip():
        raise error_codes.invalid_argument("JSON Parse error: The document is empty")
    try:
        document = json.loads(body)
    except json.JSONDecodeError as error:
        raise error_codes.invalid_argument(f"JSON Parse error: {error.msg} at offset: {error.pos}") from None
    except UnicodeDecodeError as error:
        raise error_codes.invalid_argument(
            f"JSON Parse error: Invalid encoding in string. at offset: {error.start}") from None
    except RecursionError:
        raise error_codes.invalid_argument("JSON Parse error: The document is nested too deeply") from None
    except ValueError as error:  # an integer literal over Python's digit limit (4,300 digits)
        raise error_codes.invalid_argument(f"JSON Parse error: Number too big to convert ({error})") from None
    if not isinstance(document, dict):
        raise error_codes.invalid_argument(f"JSON Value: {_show(document)} Is not object")
    return document


def signature_name(document):
    """The request's ``signature_name`` (``serving_default`` when absent or empty)."""
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise error_codes.invalid_argument(f"JSON Value: {_show(document)} not formatted correctly. "
                                           "'signature_name' key must be a string value.")
    return name or DEFAULT_SIGNATURE


def decode_predict(document, input_specs):
    """Builds the input arrays of a predict request for a signature.

    Args:
        document: The parsed request (see :func:`parse`).
        input_specs: The signature's ``{input name: tf.TensorSpec}``.

    Returns:
        A :class:`PredictRequest`.

    Raises:
        ServingError: INVALID_ARGUMENT naming what is wrong and where.
    """
    name = signature_name(document)
    if not input_specs:
        raise error_codes.invalid_argument(f"Failed to get input map for signature: {name}")
    if "instances" in document and "inputs" in document:
        raise error_codes.invalid_argument(f"JSON Value: {_show(document)} Not formatted correctly expecting only "
                                           "one of 'inputs' or 'instances' keys to exist ")
    try:
        if "instances" in document:
            instances = document["instances"]
            if not isinstance(instances, list):
                raise error_codes.invalid_argument(
                    f"JSON Value: {_show(document)} Excepting 'instances' to be an list/array")
            if not instances:
                raise error_codes.invalid_argument(f"JSON Value: {_show(document)} No values in 'instances' array")
            request_format, inputs = ROW, _from_instances(instances, input_specs)
        elif "inputs" in document:
            request_format, inputs = COLUMNAR, _from_inputs(document["inputs"], input_specs)
        else:
            raise error_codes.invalid_argument("Missing 'inputs' or 'instances' key")
    except RecursionError:
        raise error_codes.invalid_argument("JSON Value nested too deeply for any input of the signature") from None
    for input_name, array in inputs.items():
        spec = input_specs[input_name]
        if not _shape_fits(_spec_shape(spec), array.shape):
            raise error_codes.invalid_argument(
                f"Input '{input_name}' expects a tensor of shape {_shape_text(spec.shape)}, received shape "
                f"{list(array.shape)}.")
    batch_sizes = {array.shape[0] for array in inputs.values() if array.ndim}
    if 0 in batch_sizes:
        raise error_codes.invalid_argument("Empty batch: every input must have at least one row.")
    rows = batch_sizes.pop() if len(batch_sizes) == 1 else None
    return PredictRequest(name, request_format, inputs, rows)


@functools.lru_cache(maxsize=1024)
def _spec_shape(spec):
    """A spec's shape as a tuple (None: any size), or None for any rank (cached: TF shapes are slow)."""
    return None if spec.shape.rank is None else tuple(spec.shape.as_list())


def _shape_fits(expected, shape):
    if expected is None:
        return True
    return len(expected) == len(shape) and all(size is None or size == actual for size, actual in zip(expected, shape))


def _shape_text(shape):
    if shape.rank is None:
        return "[?]"
    return "[" + ",".join("-1" if size is None else str(size) for size in shape.as_list()) + "]"


def _is_base64_object(value):
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_element_object(value):
    return isinstance(value, dict) and not _is_base64_object(value)


def _from_instances(instances, input_specs):
    names = sorted(input_specs)
    objects = _is_element_object(instances[0])
    if not objects and len(input_specs) > 1:
        raise error_codes.invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
            "tensorinfo_map")
    columns = {name: [] for name in names}
    for index, element in enumerate(instances):
        if objects:
            if not _is_element_object(element):
                raise error_codes.invalid_argument(f"Expecting object but got list at item {index} of input list")
            for key in element:
                if key not in input_specs:
                    raise error_codes.invalid_argument(
                        f"Failed to process element: {index} key: {key} of 'instances' list. Error: "
                        f"INVALID_ARGUMENT: JSON object: does not have named input: {key}")
            if len(element) != len(input_specs):
                raise error_codes.invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON object: {_show(element)} keys "
                    f"must be equal to: {','.join(names)}")
            for name in names:
                columns[name].append(element[name])
        else:
            if _is_element_object(element):
                raise error_codes.invalid_argument(f"Expecting value/list but got object at item {index} of input list")
            columns[names[0]].append(element)
    return {name: _stack_instances(name, values, input_specs[name], objects) for name, values in columns.items()}


def _stack_instances(name, values, spec, keyed):
    """Stacks one input's per-instance values into a batch (checking equal shapes, as TF Serving does)."""
    where = (lambda index: f"Failed to process element: {index} key: {name} of 'instances' list. Error: "
             "INVALID_ARGUMENT: ") if keyed \
        else (lambda index: f"Failed to process element: {index} of 'instances' list. Error: INVALID_ARGUMENT: ")
    if spec.shape.rank == 0:
        first = _to_array(values[0], spec.dtype, lambda: where(0), name)
        for index, value in enumerate(values[1:], start=1):
            array = _to_array(value, spec.dtype, lambda: where(index), name)
            if not np.array_equal(array, first, equal_nan=first.dtype.kind == "f"):
                raise error_codes.invalid_argument(
                    f"{where(index)}input '{name}' takes one value per request (its signature shape is []), and the "
                    "instances give different values; give every instance the same value or use the 'inputs' format.")
        return first
    if spec.dtype.name == "string" and all(type(value) is str for value in values):  # the common fast path
        try:
            return np.array([value.encode("utf-8") for value in values] + [None], dtype=object)[:-1]
        except UnicodeEncodeError:
            pass  # reported with its position below
    arrays = []
    for index, value in enumerate(values):
        array = _to_array(value, spec.dtype, lambda: where(index), name)
        if arrays and array.shape != arrays[0].shape:
            if array.size != arrays[0].size:
                raise error_codes.invalid_argument(f"{where(index)}Expecting tensor size: "
                                                   f"{arrays[0].size} but got: {array.size}")
            raise error_codes.invalid_argument(f"{where(index)}Expecting shape "
                                               f"{_list_text(arrays[0].shape)} but got: {_list_text(array.shape)}")
        arrays.append(array)
    return np.stack(arrays)


def _list_text(shape):
    return "[" + ",".join(str(size) for size in shape) + "]"


def _from_inputs(value, input_specs):
    if not isinstance(value, dict) or _is_base64_object(value):
        if len(input_specs) > 1:
            raise error_codes.invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required as per "
                "tensorinfo_map")
        (name, spec), = input_specs.items()
        return {name: _to_array(value, spec.dtype, input_name=name)}
    for name in sorted(input_specs):
        if name not in value:
            raise error_codes.invalid_argument(f"Missing named input: {name} in 'inputs' object.")
    extra = sorted(set(value) - set(input_specs))
    if extra:
        raise error_codes.invalid_argument(
            f"input size does not match signature: {len(value)}!={len(input_specs)} "
            f"len({{{','.join(sorted(value))}}}) != len({{{','.join(sorted(input_specs))}}}). "
            f"Sent extra: {{{','.join(extra)}}}. Missing but required: {{}}.")
    return {name: _to_array(value[name], spec.dtype, input_name=name) for name, spec in input_specs.items()}


def _to_array(value, dtype, where=lambda: "", input_name=""):
    """Converts a JSON value (a scalar or nested lists) to a numpy array of ``dtype``, as TF Serving checks it.

    Args:
        value: The JSON value of one input (or of one instance's part of it).
        dtype: The input's ``tf.DType``.
        where: Returns the prefix of a message (the instance and key in the row format).
        input_name: The input's name, for the messages that name it.
    """
    shape = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    rank = len(shape)
    if rank > MAX_RANK:
        raise error_codes.invalid_argument(
            f"{where()}JSON Value nested {rank} lists deep; a tensor has at most {MAX_RANK} dimensions here")
    convert = _converter(dtype, input_name)
    flat = []

    def fill(item, level):
        if not isinstance(item, list):
            if level != rank:
                raise error_codes.invalid_argument(
                    f"{where()}JSON Value: {_show(item)} found at incorrect level: {level + 1} in the JSON DOM. "
                    f"Expected at level: {rank}")
            flat.append(convert(item))
            return
        if level >= rank:
            raise error_codes.invalid_argument(
                f"{where()}Encountered list at unexpected level: {level} expected < {rank}")
        if len(item) != shape[level]:
            raise error_codes.invalid_argument(f"{where()}Encountered list at unexpected size: {len(item)} at level: "
                                               f"{level} expected size: {shape[level]}")
        for element in item:
            fill(element, level + 1)

    try:
        fill(value, 0)
    except error_codes.ServingError as error:
        if error.message.startswith(where()):
            raise
        raise error_codes.invalid_argument(where(), error.message) from None
    if dtype.name == "string":
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        return array.reshape(shape)
    return np.array(flat, dtype=dtype.as_numpy_dtype).reshape(shape)


def _converter(dtype, input_name=""):
    """The function checking and converting one JSON scalar for ``dtype`` (of the input ``input_name``)."""
    name = dtype.name
    if name == "string":
        def convert(value):
            if isinstance(value, str):
                try:
                    return value.encode("utf-8")
                except UnicodeEncodeError:
                    raise error_codes.invalid_argument(f"JSON Value: {_show(value)} is not valid UTF-8 text") from None
            if isinstance(value, dict):
                if not _is_base64_object(value):
                    raise error_codes.invalid_argument(f"JSON Value: {_show(value)} not formatted correctly for "
                                                       "base64 data")
                text = value["b64"]
                try:
                    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
                except (binascii.Error, ValueError):
                    raise error_codes.invalid_argument("Unable to base64 decode") from None
            raise _type_error(value, dtype)
        return convert
    if name == "bool":
        def convert(value):
            if not isinstance(value, bool):
                raise _type_error(value, dtype)
            return value
        return convert
    if name in _FLOAT_LIMITS:
        largest_whole, largest = _FLOAT_LIMITS[name]

        def convert(value):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _type_error(value, dtype)
            if isinstance(value, int):
                if abs(value) > largest_whole:
                    raise error_codes.invalid_argument(f"Cannot convert JSON value: {value} to {type_name(dtype)} "
                                                       "without loss of precision.")
            elif not math.isfinite(value):  # json.loads reads NaN, Infinity, -Infinity and 1e400
                raise error_codes.invalid_argument(
                    f"JSON Value: {_show(value)} in input '{input_name}' is not a finite number; send finite "
                    f"{type_name(dtype)} values (fill in a missing value before the request).")
            elif abs(value) > largest:
                raise error_codes.invalid_argument(f"Cannot convert JSON value: {_show(value)} to {type_name(dtype)} "
                                                   "without loss of precision.")
            return value
        return convert
    if name in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[name]

        def convert(value):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise _type_error(value, dtype)
            return value
        return convert

    def unsupported(value):
        raise error_codes.ServingError("UNIMPLEMENTED", f"Conversion of JSON Value: {_show(value)} to type: "
                                                        f"{type_name(dtype)}")
    return unsupported


def encode_predict(outputs, request_format):
    """Writes a signature's outputs as the answer to a request in ``request_format``.

    Args:
        outputs: ``{output name: numpy array}``.
        request_format: ``ROW`` (``predictions``) or ``COLUMNAR`` (``outputs``).

    Returns:
        The UTF-8 JSON body.

    Raises:
        ServingError: INVALID_ARGUMENT when the row format cannot hold the outputs
            (an output without a batch dimension, or batch sizes that differ).
    """
    if not outputs:
        raise error_codes.invalid_argument("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if request_format == ROW:
        batch_size = None
        for name in names:
            array = np.asarray(outputs[name])
            if array.ndim == 0:
                raise error_codes.invalid_argument(f"Tensor name: {name} has no shape information ")
            if batch_size is not None and array.shape[0] != batch_size:
                raise error_codes.invalid_argument(f"Tensor name: {name} has inconsistent batch size: "
                                                   f"{array.shape[0]} expecting: {batch_size}")
            batch_size = array.shape[0]
        columns = {name: to_json_values(outputs[name], name) for name in names}
        if len(names) == 1:
            document = {"predictions": columns[names[0]]}
        else:
            document = {"predictions": [{name: columns[name][index] for name in names} for index in range(batch_size)]}
    else:
        columns = {name: to_json_values(outputs[name], name) for name in names}
        document = {"outputs": columns[names[0]] if len(names) == 1 else columns}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _decode_text(value):
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _base64_object(value):
    return {"b64": base64.b64encode(value if isinstance(value, bytes) else str(value).encode("utf-8")).decode("ascii")}


_DECODE_TEXT = np.frompyfunc(_decode_text, 1, 1)
_BASE64_OBJECTS = np.frompyfunc(_base64_object, 1, 1)


def to_json_values(array, name=""):
    """An output array as nested Python lists of JSON values, written as TF Serving writes them.

    Float32 values become the shortest decimal that reads back to the same float32
    (``0.2``, not ``0.20000000298023224``); bytes become text, or ``{"b64": ...}``
    when the output's name ends in ``_bytes``.
    """
    array = np.asarray(array)
    kind = array.dtype.kind
    if kind == "f" and array.dtype != np.float64:
        return array.astype(np.float32).astype(str).astype(np.float64).tolist()
    if kind in ("O", "S", "U"):
        converter = _BASE64_OBJECTS if name.endswith("_bytes") else _DECODE_TEXT
        converted = converter(array)
        return converted.tolist() if isinstance(converted, np.ndarray) else converted
    return array.tolist()
