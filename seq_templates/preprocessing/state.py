"""Saving and restoring adapted preprocessing layers (vocabularies) as JSON.

A run directory keeps ``preprocessing.json`` so ``seq-templates export RUN`` and
``--resume`` rebuild exactly the layers the model was trained with, without
adapting again. Supported: ``TextVectorization`` and ``StringLookup`` (their
vocabularies), ``Normalization`` (its mean and variance), and plain JSON data (a
``dict`` of what else the training split taught, such as a series' column names and
frequency), kept as it is.
"""

import json
import pathlib

import keras
import numpy as np


def layer_state(layer):
    """Returns a JSON-serializable description of an adapted preprocessing layer."""
    if isinstance(layer, dict):
        return {"class_name": "dict", "value": json.loads(json.dumps(layer, default=_jsonable))}
    config = dict(layer.get_config())
    state = {"class_name": type(layer).__name__}
    if isinstance(layer, keras.layers.TextVectorization):
        config["vocabulary"] = None
        state["vocabulary"] = [str(token) for token in layer.get_vocabulary()]
    elif isinstance(layer, keras.layers.StringLookup):
        config["vocabulary"] = None
        vocabulary = [str(token) for token in layer.get_vocabulary()]
        state["vocabulary"] = vocabulary[(layer.mask_token is not None) + layer.num_oov_indices:]
    elif isinstance(layer, keras.layers.Normalization):
        state["mean"] = _statistic(layer, layer.mean)
        state["variance"] = _statistic(layer, layer.variance)
        state["build_config"] = layer.get_build_config()
        config.pop("mean", None)
        config.pop("variance", None)
    else:
        raise TypeError(f"Expected a TextVectorization, StringLookup or Normalization layer or a dict, "
                        f"received {type(layer).__name__}.")
    state["config"] = json.loads(json.dumps(config, default=_jsonable))
    return state


def _statistic(layer, value):
    """A Normalization statistic without its broadcast axes (what the constructor accepts)."""
    value = np.asarray(value)
    kept = {axis % value.ndim for axis in layer.axis} if value.ndim else set()
    return np.squeeze(value, axis=tuple(axis for axis in range(value.ndim) if axis not in kept)).tolist()


def restore_layer(state):
    """Rebuilds a layer described by :func:`layer_state` (``export.new_archive`` builds it)."""
    return _construct(state)


def _construct(state):
    class_name = state["class_name"]
    if class_name == "dict":
        return dict(state["value"])
    config = dict(state["config"])
    if class_name == "TextVectorization":
        config["vocabulary"] = state["vocabulary"][2:]  # without padding "" and "[UNK]"
        return keras.layers.TextVectorization(**_constructor_arguments(config))
    if class_name == "StringLookup":
        config["vocabulary"] = state["vocabulary"]
        return keras.layers.StringLookup(**_constructor_arguments(config))
    if class_name == "Normalization":
        config["mean"] = state["mean"]
        config["variance"] = state["variance"]
        layer = keras.layers.Normalization(**_constructor_arguments(config))
        if state.get("build_config"):
            layer.build_from_config(state["build_config"])
        return layer
    raise TypeError(f"Cannot restore a preprocessing layer of class {class_name}.")


def save(layers, path):
    """Writes ``{name: layer}`` to a JSON file (temp file, then rename)."""
    path = pathlib.Path(path)
    document = {name: layer_state(layer) for name, layer in layers.items()}
    temporary_path = path.with_name(path.name + ".tmp")
    temporary_path.write_text(json.dumps(document), encoding="utf-8")
    temporary_path.replace(path)


def load(path):
    """Reads layers saved by :func:`save`; returns ``{name: layer}``."""
    document = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    return {name: restore_layer(state) for name, state in document.items()}


def _constructor_arguments(config):
    config = dict(config)
    for key in ("trainable", "dtype", "vocabulary_size", "idf_weights"):
        config.pop(key, None)
    return config


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return str(value)
