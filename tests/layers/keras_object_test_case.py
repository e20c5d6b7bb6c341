"""One test every Keras object of the package passes, in the manner of KerasHub's ``run_layer_test``.

:func:`run_layer_test` and :func:`run_loss_test` check, for a custom layer or loss:

- the config round trip: ``from_config(get_config())`` gives an object with the same config;
- a symbolic call on ``keras.Input`` s gives an output of the shape the eager call returns;
- one ``fit`` step on a tiny functional model moves every trainable weight and gives a finite loss;
- the ``.keras`` round trip: the saved model reloads in a fresh Python process that imports
  only ``seq_templates`` (which registers the object) and keras, and answers as in this one.
"""

import pathlib
import subprocess
import sys

import keras
import numpy as np

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
RELOAD_IN_A_FRESH_PROCESS = """
import sys
import numpy as np
import seq_templates  # registers the Keras objects; nothing else of the package is imported
import keras
arguments = sys.argv[1:]
for model_path, inputs_path, outputs_path in zip(arguments[::3], arguments[1::3], arguments[2::3]):
    model = keras.saving.load_model(model_path)
    with np.load(inputs_path) as saved:
        positional = all(name.startswith("arr_") for name in saved.files)
        inputs = ([saved[f"arr_{index}"] for index in range(len(saved.files))] if positional
                  else {name: saved[name] for name in saved.files})
    outputs = keras.tree.flatten(model.predict(inputs if not positional or len(inputs) > 1 else inputs[0],
                                               verbose=0))
    np.savez(outputs_path, *[np.asarray(output) for output in outputs])
    print(type(model.loss).__name__)
assert not any(name.startswith("seq_templates_app") for name in sys.modules)
"""


def assert_config_round_trip(instance):
    """``from_config(get_config())`` rebuilds an object with the same config."""
    config = instance.get_config()
    rebuilt = type(instance).from_config(config)
    assert rebuilt.get_config() == config
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(instance)).get_config() \
        == config


def _predict(model, inputs):
    """``model.predict`` on a dict of named inputs, or a list (one array: that array), flattened."""
    if isinstance(inputs, list) and len(inputs) == 1:
        inputs = inputs[0]
    return [np.asarray(output) for output in keras.tree.flatten(model.predict(inputs, verbose=0))]


def assert_reloads_in_a_fresh_process(model, inputs, folder, path=None, atol=1e-6):
    """Checks a fresh process that imports only ``seq_templates`` and keras reloads a ``.keras`` file
    and answers as ``model`` does here, its compiled loss included.

    Args:
        model: The model in this process.
        inputs: A list of input arrays, or ``{input name: array}``.
        folder: A temporary folder.
        path: The ``.keras`` file to reload (default: ``model`` saved into ``folder``).
        atol: The absolute tolerance of the comparison (the relative one is 1e-5).
    """
    assert_models_reload_in_a_fresh_process([(model, inputs, path)], folder, atol)


def assert_models_reload_in_a_fresh_process(cases, folder, atol=1e-6):
    """:func:`assert_reloads_in_a_fresh_process` for several models in one fresh process.

    Args:
        cases: ``(model, inputs, path or None)`` triples.
        folder: A temporary folder.
        atol: The absolute tolerance of the comparisons.
    """
    folder = pathlib.Path(folder)
    arguments = []
    for index, (model, inputs, path) in enumerate(cases):
        if path is None:
            path = folder / f"model_{index}.keras"
            model.save(path)
        if isinstance(inputs, dict):
            np.savez(folder / f"inputs_{index}.npz", **inputs)
        else:
            np.savez(folder / f"inputs_{index}.npz", *inputs)
        arguments += [str(path), str(folder / f"inputs_{index}.npz"), str(folder / f"outputs_{index}.npz")]
    completed = subprocess.run(
        [sys.executable, "-c", RELOAD_IN_A_FRESH_PROCESS, *arguments], capture_output=True, text=True,
        timeout=300 * len(cases),
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPOSITORY)})
    assert completed.returncode == 0, completed.stderr[-2000:]
    losses = completed.stdout.strip().splitlines()[-len(cases):]
    for index, (model, inputs, _) in enumerate(cases):
        assert losses[index] == type(model.loss).__name__  # the compiled loss too
        expected = _predict(model, inputs)
        with np.load(folder / f"outputs_{index}.npz") as saved:
            fresh = [saved[f"arr_{position}"] for position in range(len(saved.files))]
        assert len(fresh) == len(expected)
        for answered, wanted in zip(fresh, expected):
            np.testing.assert_allclose(answered, wanted, rtol=1e-5, atol=atol)


def assert_one_fit_step_trains(model, inputs, targets, sample_weight=None):
    """One ``fit`` step gives a finite loss and changes every trainable weight."""
    before = [np.array(weight) for weight in model.trainable_weights]
    history = model.fit(inputs if len(inputs) > 1 else inputs[0], targets, sample_weight=sample_weight,
                        batch_size=len(targets), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [not np.allclose(old, np.array(new)) for old, new in zip(before, model.trainable_weights)]
    assert all(changed), [weight.path for weight, moved in zip(model.trainable_weights, changed) if not moved]


def run_layer_test(layer, input_shapes, input_data, build_model, targets, loss, folder, input_dtypes=None,
                   sample_weight=None):
    """The shared test of a custom layer.

    Args:
        layer: A fresh instance of the layer.
        input_shapes: Shapes of the model's inputs without the batch axis.
        input_data: Arrays for those inputs.
        build_model: ``(inputs, layer) -> outputs`` wiring the layer into a functional model (e.g. an
            ``Embedding(mask_zero=True)`` before it, so masks are exercised).
        targets: Targets for one ``fit`` step.
        loss: The loss to compile with.
        folder: A temporary folder.
        input_dtypes: Dtypes of the inputs (default float32).
        sample_weight: Optional sample weights for the fit step.
    """
    assert_config_round_trip(layer)
    input_dtypes = input_dtypes or ["float32"] * len(input_shapes)
    inputs = [keras.Input(shape=shape, dtype=dtype) for shape, dtype in zip(input_shapes, input_dtypes)]
    outputs = build_model(inputs, layer)
    model = keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs)
    symbolic_shape = tuple(outputs.shape)
    eager = model.predict(input_data if len(input_data) > 1 else input_data[0], verbose=0)
    assert len(symbolic_shape) == eager.ndim
    assert all(size is None or size == actual for size, actual in zip(symbolic_shape, eager.shape)), \
        (symbolic_shape, eager.shape)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss)
    assert_one_fit_step_trains(model, input_data, targets, sample_weight)
    assert_reloads_in_a_fresh_process(model, input_data, folder)


def run_loss_test(loss, y_true, y_pred):
    """The shared test of a custom loss: config round trip, a finite value, gradients that flow."""
    import tensorflow as tf

    assert_config_round_trip(loss)
    rebuilt = type(loss).from_config(loss.get_config())
    prediction = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        value = loss(y_true, prediction)
    assert np.isfinite(float(value))
    assert float(rebuilt(y_true, y_pred)) == float(value)
    gradient = tape.gradient(value, prediction)
    assert gradient is not None and np.any(np.asarray(gradient) != 0)
