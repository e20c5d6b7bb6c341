"""Forecasting model pieces: the pinball loss by hand, the baseline paths, and model.keras round trips."""

import keras
import numpy as np
import pytest

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
