"""Forecasting model pieces: the pinball loss by hand, the baseline paths, model.keras round trips, the
networks, the settings check and the serving pieces."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq_templates import errors
from seq_templates.layers import forecasting


def test_pinball_loss_by_hand_and_its_config_round_trip():
    loss = forecasting.PinballLoss([0.1, 0.9])
    truth = np.array([[1.0, 2.0]])
    predicted = np.array([[[0.0, 2.0], [3.0, 1.0]]])  # (batch, steps, quantiles)
    # max(q e, (q - 1) e) with e = truth - prediction:
    # step 1: q=0.1, e=1 -> 0.1; q=0.9, e=-1 -> 0.1.  step 2: q=0.1, e=-1 -> 0.9; q=0.9, e=1 -> 0.9.
    assert float(loss(truth, predicted)) == pytest.approx(0.5)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert again.quantiles == [0.1, 0.9]


def test_baseline_paths_are_the_naive_and_seasonal_naive_forecasts():
    window = keras.Input(shape=(6, 1))
    values = np.arange(6, dtype="float32").reshape(1, 6, 1)
    last = keras.Model(window, forecasting.baseline_path(window, "last_value", 6, 4))
    assert last(values).numpy().ravel().tolist() == [5.0]
    seasonal = keras.Model(window, forecasting.baseline_path(window, "seasonal", 6, 5, season_length=2))
    assert seasonal(values).numpy().ravel().tolist() == [4.0, 5.0, 4.0, 5.0, 4.0]
    # Seasons of 2 in a window of 7: the three whole ones (steps 1-6) averaged per phase.
    window_of_7 = keras.Input(shape=(7, 1))
    mean = keras.Model(window_of_7, forecasting.baseline_path(window_of_7, "seasonal_mean", 7, 3, season_length=2))
    assert mean(np.array([[[9], [1], [10], [3], [20], [5], [30]]], "float32")).numpy().ravel().tolist() == [
        (1 + 3 + 5) / 3, (10 + 20 + 30) / 3, (1 + 3 + 5) / 3]
    assert forecasting.baseline_path(window, "none", 6, 4) is None


def test_autoregressive_model_reloads_from_keras_file_with_no_custom_objects(tmp_path):
    one_step = forecasting.one_step_model(8, 1, 0, "gru", 4)
    window = keras.Input(shape=(8, 1), name="targets")
    model = keras.Model(window, forecasting.autoregressive_rollout(one_step, window, 3))
    model.compile(loss=forecasting.PinballLoss([0.5]))
    model.save(tmp_path / "model.keras")
    values = np.random.default_rng(0).normal(size=(2, 8, 1)).astype("float32")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded(values).numpy(), model(values).numpy(), atol=1e-6)


def test_series_description_survives_preprocessing_json(tmp_path):
    from seq_templates.preprocessing import state

    groups = {"targets": ["pm2.5"], "covariates": ["TEMP", "a:b"], "categories": ["cbwd"]}
    state.save({"series_description": forecasting.series_description(groups, "h")}, tmp_path / "state.json")
    restored = state.load(tmp_path / "state.json")["series_description"]
    assert restored == {"columns": groups, "frequency": "h"}
    empty = forecasting.series_description({"targets": ["value"]}, "MS")
    assert empty["columns"] == {"targets": ["value"], "covariates": [], "categories": []}


def test_forecast_outputs_undo_the_normalization_and_name_the_interval():
    normalizer = keras.layers.Normalization(axis=-1)
    normalizer.adapt(np.array([[0.0], [2.0], [4.0]], dtype="float32"))  # mean 2, variance 8/3
    scale = np.sqrt(8 / 3)
    point = forecasting.forecast_outputs(np.zeros((1, 2, 1), "float32"), normalizer)
    np.testing.assert_allclose(point["forecast"].numpy(), 2.0, rtol=1e-6)
    levels = np.array([[[[-1.0, 0.0, 1.0]]]], dtype="float32")  # (batch, horizon, targets, quantiles)
    outputs = forecasting.forecast_outputs(levels, normalizer, [0.1, 0.5, 0.9])
    np.testing.assert_allclose(outputs["lower"].numpy(), [[[2.0 - scale]]], rtol=1e-5)
    np.testing.assert_allclose(outputs["upper"].numpy(), [[[2.0 + scale]]], rtol=1e-5)
    np.testing.assert_allclose(outputs["forecast"].numpy(), [[[2.0]]], rtol=1e-6)
    assert outputs["quantiles"].shape == (1, 1, 1, 3)


def test_serving_function_takes_the_inputs_of_the_model_by_name():
    inputs = {"targets": keras.Input((4, 1), name="targets"),
              "category_ids": keras.Input((4, 2), dtype="int64", name="category_ids")}
    model = keras.Model(inputs, keras.layers.Flatten()(inputs["targets"]))
    specs = forecasting.input_specs(model)
    assert [(spec.name, spec.dtype.name, spec.shape.as_list()) for spec in specs] == [
        ("targets", "float32", [None, 4, 1]), ("categories", "string", [None, 4, None])]
    function = forecasting.serving_function(lambda **given: {"names": tf.constant(sorted(given))}, specs)
    answer = function(targets=tf.zeros((1, 4, 1)), categories=tf.constant([[["a"]] * 4]))
    assert answer["names"].numpy().tolist() == [b"categories", b"targets"]


@pytest.mark.parametrize("arguments, fragment", [
    (("single_step", 3), "set data.horizon=1"),
    (("autoregressive", 3, [0.1, 0.9]), "feeds back one value"),
    (("direct", 3, [0.5, 1.0]), "increasing levels in (0, 1)"),
    (("direct", 3, [], "seasonal", None), "needs data.season_length"),
])
def test_network_settings_that_do_not_go_together_are_refused(arguments, fragment):
    with pytest.raises(errors.SeqTemplatesError, match=re.escape(fragment)):
        forecasting.check_network_settings(*arguments)
    forecasting.check_network_settings("direct", 3, [0.1, 0.5, 0.9], "seasonal", 12)


def test_forecast_network_of_every_architecture_with_side_features():
    window = keras.Input((8, 2))
    ids = keras.Input((8, 1), dtype="int64")
    side = forecasting.covariate_features(keras.Input((8, 3)), ids, vocabulary_size=5, embedding_dim=2)
    assert side.shape == (None, 8, 5)
    assert forecasting.covariate_features() is None
    for architecture, quantiles, shape in (("direct", 3, (None, 4, 2, 3)), ("encoder_decoder", 0, (None, 4, 2)),
                                           ("autoregressive", 0, (None, 4, 2))):
        output = forecasting.forecast_network(window, side, architecture, 4, quantiles, "gru", 4,
                                              residual_to="last_value")
        assert tuple(output.shape) == shape, architecture


def test_shrinkage_keeps_the_scale_that_forecasts_validation_best_and_trains_at_scale_one():
    window = keras.Input(shape=(4, 1), name="targets")
    correction = keras.layers.Reshape((2, 1))(keras.layers.Dense(2, kernel_initializer="ones",
                                                                 name="head")(keras.layers.Flatten()(window)))
    base = forecasting.baseline_path(window, "last_value", 4, 2)
    model = keras.Model({"targets": window}, forecasting.ShrunkCorrection(name="corrected_forecast")(
        [correction, base]))
    layer = model.get_layer("corrected_forecast")
    inputs = {"targets": np.arange(12, dtype="float32").reshape(3, 4, 1)}
    signature = tf.function(lambda targets: {"forecast": model({"targets": targets})},
                            input_signature=[tf.TensorSpec([None, 4, 1], tf.float32, name="targets")])
    last = inputs["targets"][:, -1:, :].repeat(2, axis=1)
    correction_values = inputs["targets"].sum(axis=(1, 2))[:, None, None].repeat(2, axis=1)
    for truth, scale in ((last, 0.0), (last + correction_values, 1.0), (last + 0.5 * correction_values, 0.5)):
        score = forecasting.shrinkage_score("val_forecast_mae", lambda unused_model: signature, inputs, truth,
                                            lambda actual, forecast: float(np.mean(np.abs(actual - forecast))))
        score.set_model(model)
        logs = {}
        score.on_epoch_end(0, logs)
        assert float(layer.scale.numpy()) == scale and logs["val_forecast_mae"] == pytest.approx(0.0, abs=1e-4)
    layer.scale.assign(0.0)
    trained = model(inputs, training=True).numpy()  # training always learns the whole correction
    np.testing.assert_allclose(trained, last + correction_values, rtol=1e-5)
    np.testing.assert_allclose(model(inputs).numpy(), last, rtol=1e-5)
