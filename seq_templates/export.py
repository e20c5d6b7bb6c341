"""SavedModel export with ``keras.export.ExportArchive``, versioning and parity checks.

An export lives at ``<export_root>/<version>/`` (the layout TensorFlow Serving
watches), with ``assets.extra/`` holding the label names, the configuration and
the metrics. It is written to a temp folder and renamed, so a server never sees
half an export. :func:`check_parity` reloads it and compares its answers with the
in-memory model's.

Serving functions take named inputs (the ``tf.TensorSpec`` names, which are also
the Python parameter names, so ``function(**inputs)`` works for an in-memory
``tf.function`` and for a reloaded signature alike) and return a dict of dense
outputs. Sequence outputs are padded per batch to the longest sequence, and a
``length`` output gives each row's true length: every output of rank 2 or more
is padded along axis 1 (see :func:`batch_predictor` and :func:`trim_to_length`).
"""

import json
import pathlib
import shutil

import numpy as np
import tensorflow as tf

from seq_templates import errors

ASSETS_EXTRA = "assets.extra"


def new_archive(tracked, endpoints=None):
    """Returns a ``keras.export.ExportArchive`` tracking models and lookup layers.

    ``ExportArchive`` tracks only built layers, and a lookup layer is built by its
    first call, so an adapted or restored layer that has not run yet is called once
    here on the last token of its vocabulary.

    Args:
        tracked: Models and preprocessing layers the endpoints use.
        endpoints: ``{signature name: tf.function}`` to add, or None.
    """
    import keras

    archive = keras.export.ExportArchive()
    for resource in tracked:
        if not resource.built:
            _build(resource)
        archive.track(resource)
    for name, function in (endpoints or {}).items():
        archive.add_endpoint(name, function)
    return archive


def _build(layer):
    """Builds an adapted or restored preprocessing layer that has not been called yet."""
    import keras

    if hasattr(layer, "get_vocabulary"):
        layer(tf.constant([layer.get_vocabulary()[-1]]))
    elif isinstance(layer, keras.layers.Normalization) and layer.input_mean is not None:
        # A restored Normalization holds its statistics in the broadcast shape, e.g. (1, 1, features).
        mean_shape = np.shape(layer.input_mean)
        features = mean_shape[-1] if mean_shape else 1
        layer.build((None,) * max(len(mean_shape) - 1, 1) + (features,))
    else:
        raise TypeError(f"Cannot build an unbuilt {type(layer).__name__} for export; call it once first.")


def next_version(export_root):
    """Returns 1 + the highest numeric version under ``export_root`` (1 when none)."""
    export_root = pathlib.Path(export_root)
    versions = [int(path.name) for path in export_root.glob("*") if path.name.isdigit()]
    return max(versions, default=0) + 1


def write(archive, export_root, assets=None):
    """Writes an archive as the next version under ``export_root``.

    Args:
        archive: An ``ExportArchive`` with its endpoints added.
        export_root: Folder of versions (e.g. ``runs/x/export``).
        assets: Mapping of file name to content for ``assets.extra/``: a str is
            written as text, anything else as JSON.

    Returns:
        The version folder, e.g. ``runs/x/export/1``.
    """
    export_root = pathlib.Path(export_root)
    export_root.mkdir(parents=True, exist_ok=True)
    version = next_version(export_root)
    temporary_path = export_root / f".{version}.tmp"
    shutil.rmtree(temporary_path, ignore_errors=True)
    archive.write_out(str(temporary_path), verbose=False)
    extra = temporary_path / ASSETS_EXTRA
    extra.mkdir(exist_ok=True)
    for name, content in (assets or {}).items():
        text = content if isinstance(content, str) else json.dumps(content, indent=2, default=str)
        (extra / name).write_text(text, encoding="utf-8")
    final_path = export_root / str(version)
    temporary_path.rename(final_path)
    return final_path


def find_version(path):
    """Resolves a run directory, an export root or a version folder to a version folder.

    Raises:
        SeqTemplatesError: No SavedModel is found there.
    """
    path = pathlib.Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    for root in (path / "export", path):
        versions = sorted((int(item.name), item) for item in root.glob("*")
                          if item.name.isdigit() and (item / "saved_model.pb").is_file())
        if versions:
            return versions[-1][1]
    raise errors.SeqTemplatesError(
        f"No SavedModel found at '{path}'; pass a run directory, its export/ folder or a version "
        "folder holding saved_model.pb."
    )


def read_assets(version_path):
    """Reads ``assets.extra/`` files: JSON files parsed, text files as lists of lines."""
    assets = {}
    for item in sorted((pathlib.Path(version_path) / ASSETS_EXTRA).glob("*")):
        text = item.read_text(encoding="utf-8")
        assets[item.name] = json.loads(text) if item.suffix == ".json" else text.splitlines()
    return assets


def load_serving_function(path, signature_name="serving_default"):
    """Loads one signature of an export (``serving_default`` is what TF Serving calls).

    Returns:
        A tuple ``(function, input_specs)``; ``function(**inputs)`` returns a dict
        of tensors, ``input_specs`` maps input names to ``tf.TensorSpec``.

    Raises:
        SeqTemplatesError: No export at ``path``, or no such signature.
    """
    functions = load_signatures(path)
    if signature_name not in functions:
        raise errors.SeqTemplatesError(
            f"The export at {find_version(path)} has no signature '{signature_name}'; it has "
            f"{', '.join(sorted(functions))}.")
    function = functions[signature_name]
    return function, input_specs(function)


def load_signatures(path):
    """Loads every signature of an export: ``{signature name: function}``.

    Raises:
        SeqTemplatesError: No export at ``path``.
    """
    loaded = tf.saved_model.load(str(find_version(path)))
    functions = dict(loaded.signatures)
    for function in functions.values():
        function._seq_templates_owner = loaded  # keep the loaded object alive as long as its functions
    return functions


def batch_predictors(functions, batch_size=256):
    """:func:`batch_predictor` of each function: ``{signature name: predict}``.

    The one way a run's functions are called on a whole split, in training (in memory)
    and by ``seq-templates evaluate`` (the export), with the same batches.
    """
    return {name: batch_predictor(function, batch_size) for name, function in functions.items()}


def input_specs(function):
    """Returns ``{input name: tf.TensorSpec}`` of a ``tf.function`` with an input signature or a signature."""
    if getattr(function, "structured_input_signature", None) is not None:
        return dict(function.structured_input_signature[1])
    return {spec.name: spec for spec in function.input_signature}


def to_tensor(values, spec):
    """Converts values to a tensor for ``spec``; a user error names the input when they do not fit."""
    try:
        tensor = tf.constant(values, dtype=spec.dtype)
    except (ValueError, TypeError) as error:
        raise errors.SeqTemplatesError(
            f"Input '{spec.name}' expects {spec.dtype.name} values shaped {_shape(spec.shape)}; received values "
            f"that do not fit ({error}).") from None
    if not spec.shape.is_compatible_with(tensor.shape):
        raise errors.SeqTemplatesError(
            f"Input '{spec.name}' expects a batch shaped {_shape(spec.shape)}, received {_shape(tensor.shape)}.")
    return tensor


def _shape(shape):
    return "(" + ", ".join("any" if size is None else str(size) for size in shape.as_list()) + ")"


def _pad_axis_1(arrays):
    """Right-pads arrays of rank >= 2 along axis 1 to the longest (0, or "" for strings)."""
    if arrays[0].ndim < 2 or len({array.shape[1] for array in arrays}) == 1:
        return arrays
    longest = max(array.shape[1] for array in arrays)
    padded = []
    for array in arrays:
        widths = [(0, 0), (0, longest - array.shape[1])] + [(0, 0)] * (array.ndim - 2)
        filler = "" if array.dtype.kind in ("O", "U", "S") else 0
        padded.append(np.pad(array, widths, constant_values=filler))
    return padded


def batch_predictor(function, batch_size=512):
    """Wraps a serving function as ``predict(inputs) -> outputs`` over any number of examples.

    Args:
        function: A ``tf.function`` with an input signature, or a loaded signature.
        batch_size: Examples per call.

    Returns:
        ``predict``: takes ``{input name: list or array}`` (the same number of
        examples for every batched input; numbers and strings alike; an input
        whose spec is a scalar, such as a ``seed``, takes one value that goes
        with every call) and returns ``{output name: numpy array}``, strings
        decoded. Outputs padded per batch along axis 1 are padded again to the
        longest over all batches.
    """
    specs = input_specs(function)

    def predict(inputs):
        missing = sorted(set(specs) - set(inputs))
        if missing:
            raise errors.SeqTemplatesError(
                f"Missing input(s) {', '.join(missing)}; the model takes {', '.join(sorted(specs))}.")
        whole = {name: to_tensor(values, specs[name]) for name, values in inputs.items()
                 if specs[name].shape.rank == 0}
        batched = {name: values for name, values in inputs.items() if name not in whole}
        count = len(next(iter(batched.values()))) if batched else 1
        parts = []
        for start in range(0, count, batch_size):
            batch = {name: to_tensor(values[start:start + batch_size] if isinstance(values, np.ndarray)
                                      else list(values[start:start + batch_size]), specs[name])
                     for name, values in batched.items()}
            parts.append(to_numpy(function(**batch, **whole)))
        return {name: np.concatenate(_pad_axis_1([part[name] for part in parts])) for name in parts[0]}

    return predict


def trim_to_length(outputs, index):
    """Returns example ``index`` of ``outputs`` as Python values, sequence outputs cut to its ``length``."""
    length = int(outputs["length"][index]) if "length" in outputs else None
    example = {}
    for name, array in outputs.items():
        value = array[index]
        if length is not None and name != "length" and array.ndim >= 2:
            value = value[:length]
        example[name] = value.tolist() if hasattr(value, "tolist") else value
    return example


def to_numpy(outputs):
    """Converts a dict of tensors to numpy arrays (bytes decoded to str)."""
    converted = {}
    for name, value in outputs.items():
        array = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
        if array.dtype.kind in ("S", "O"):
            array = np.vectorize(lambda item: item.decode("utf-8") if isinstance(item, bytes) else item,
                                 otypes=[object])(array)
        converted[name] = array
    return converted


def check_parity(version_path, inputs, expected, atol=1e-5, signature_name="serving_default"):
    """Reloads an export and checks it answers like the in-memory model.

    Args:
        version_path: The export version folder.
        inputs: Dict of input name to a batch tensor for the signature.
        expected: Dict of output name to numpy arrays from the in-memory model.
        atol: Tolerance for floating-point outputs.
        signature_name: The signature to call.

    Returns:
        The largest absolute difference over floating-point outputs.

    Raises:
        RuntimeError: The reloaded export answers differently.
    """
    function, _ = load_serving_function(version_path, signature_name)
    actual = to_numpy(function(**inputs))
    largest = 0.0
    for name, expected_value in expected.items():
        expected_value = np.asarray(expected_value)
        if name not in actual:
            raise RuntimeError(f"Reloaded export lacks output '{name}' of {signature_name}.")
        if actual[name].shape != expected_value.shape:
            raise RuntimeError(f"Reloaded export gives '{name}' of {signature_name} shaped {actual[name].shape}, "
                               f"expected {expected_value.shape}.")
        if expected_value.dtype.kind == "f":
            difference = float(np.max(np.abs(actual[name] - expected_value), initial=0.0))
            largest = max(largest, difference)
            if difference > atol:
                raise RuntimeError(
                    f"Reloaded export differs on '{name}' of {signature_name} by {difference:.3g} (> {atol})."
                )
        elif not np.array_equal(actual[name].astype(str), expected_value.astype(str)):
            raise RuntimeError(f"Reloaded export gives different '{name}' values from {signature_name}.")
    return largest
