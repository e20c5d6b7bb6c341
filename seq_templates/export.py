"""SavedModel export with ``keras.export.ExportArchive``, versioning and parity checks.

An export lives at ``<export_root>/<version>/`` (the layout TensorFlow Serving
watches), with ``assets.extra/`` holding the label names, the configuration and
the metrics. It is written to a temp folder and renamed, so a server never sees
half an export. :func:`check_parity` reloads it and compares its answers with the
in-memory model's.
"""

import json
import pathlib
import shutil

import numpy as np
import tensorflow as tf

from seq_templates import errors

ASSETS_EXTRA = "assets.extra"


def new_archive(tracked):
    """Returns a ``keras.export.ExportArchive`` tracking models and lookup layers.

    ``ExportArchive`` tracks only built layers, and a lookup layer is built by its
    first call, so an adapted or restored layer that has not run yet is called once
    here on the last token of its vocabulary.

    Args:
        tracked: Models and preprocessing layers the endpoints use.
    """
    import keras

    archive = keras.export.ExportArchive()
    for resource in tracked:
        if not resource.built and hasattr(resource, "get_vocabulary"):
            resource(tf.constant([resource.get_vocabulary()[-1]]))
        archive.track(resource)
    return archive


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


def load_serving_function(path):
    """Loads an export's ``serving_default`` signature (what TF Serving calls).

    Returns:
        A tuple ``(function, input_specs)``; ``function(**inputs)`` returns a dict
        of tensors, ``input_specs`` maps input names to ``tf.TensorSpec``.
    """
    version_path = find_version(path)
    loaded = tf.saved_model.load(str(version_path))
    function = loaded.signatures["serving_default"]
    input_specs = function.structured_input_signature[1]
    # keep the loaded object alive as long as the function
    function._seq_templates_owner = loaded  # noqa: SLF001
    return function, input_specs


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


def check_parity(version_path, inputs, expected, atol=1e-5):
    """Reloads an export and checks it answers like the in-memory model.

    Args:
        version_path: The export version folder.
        inputs: Dict of input name to a batch tensor for ``serving_default``.
        expected: Dict of output name to numpy arrays from the in-memory model.
        atol: Tolerance for floating-point outputs.

    Returns:
        The largest absolute difference over floating-point outputs.

    Raises:
        RuntimeError: The reloaded export answers differently.
    """
    function, _ = load_serving_function(version_path)
    actual = to_numpy(function(**inputs))
    largest = 0.0
    for name, expected_value in expected.items():
        expected_value = np.asarray(expected_value)
        if name not in actual:
            raise RuntimeError(f"Reloaded export lacks output '{name}'.")
        if expected_value.dtype.kind == "f":
            difference = float(np.max(np.abs(actual[name] - expected_value), initial=0.0))
            largest = max(largest, difference)
            if difference > atol:
                raise RuntimeError(
                    f"Reloaded export differs on '{name}' by {difference:.3g} (> {atol})."
                )
        elif not np.array_equal(actual[name].astype(str), expected_value.astype(str)):
            raise RuntimeError(f"Reloaded export gives different '{name}' values.")
    return largest
