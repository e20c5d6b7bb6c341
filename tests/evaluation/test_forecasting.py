"""Forecast metrics and baselines on hand-computed examples (seq_templates.evaluation.forecasting)."""

import numpy as np
import pytest

from seq_templates.evaluation import forecasting


def test_point_metrics_by_hand():
    actual = np.array([[[1.0], [2.0]], [[3.0], [4.0]]])  # 2 origins, horizon 2, 1 target
    forecast = np.array([[[2.0], [2.0]], [[1.0], [4.0]]])  # errors 1, 0, 2, 0
    assert forecasting.mae(actual, forecast) == pytest.approx(0.75)
    assert forecasting.rmse(actual, forecast) == pytest.approx(np.sqrt(5 / 4))
    # sMAPE: 2|e| / (|a| + |f|): 2/3, 0, 4/4, 0 -> mean 5/12, in %
    assert forecasting.smape(actual, forecast) == pytest.approx(100 * 5 / 12)
    assert forecasting.smape([0.0, 1.0], [0.0, 1.0]) == 0.0
    assert forecasting.mase(actual, forecast, [0.5]) == pytest.approx(1.5)
    metrics = forecasting.point_metrics(actual, forecast, [0.5])
    assert metrics["mae_by_horizon"] == pytest.approx([1.5, 0.0])
    assert metrics["mase"] == pytest.approx(1.5)


def test_mase_scale_is_the_in_sample_seasonal_naive_error_of_the_training_part():
    train = np.array([1.0, 2.0, 4.0, 2.0, 3.0, 7.0])  # |y_t - y_{t-2}|: 3, 0, 1, 5 -> 2.25
    assert forecasting.seasonal_naive_scale(train, 2).tolist() == [2.25]
    assert forecasting.seasonal_naive_scale(train, 1).tolist() == [2.0]  # 1, 2, 2, 1, 4
    assert forecasting.seasonal_naive_scale(train, 10).tolist() == [2.0]  # too short: naive
    assert forecasting.seasonal_naive_scale(np.ones((5, 2)), 1).tolist() == [1.0, 1.0]  # flat: no division by 0


def test_coverage_counts_values_inside_the_interval():
    assert forecasting.coverage([1.0, 2.0, 3.0, 4.0], [0.0, 2.5, 3.0, 0.0], [2.0, 3.0, 3.0, 3.9]) == 0.5


def test_baselines_only_look_before_the_origin():
    series = np.arange(10, dtype=float)[:, None] * 10  # 0, 10, ..., 90
    origins = np.array([4, 6])
    assert forecasting.naive_forecast(series, origins, 3)[:, :, 0].tolist() == [[30, 30, 30], [50, 50, 50]]
    # season 2: step h takes the value 2 * ceil(h / 2) steps before it
    assert forecasting.seasonal_naive_forecast(series, origins, 3, 2)[:, :, 0].tolist() == [[20, 30, 20],
                                                                                          [40, 50, 40]]
    assert forecasting.moving_average_forecast(series, origins, 2, 3)[:, :, 0].tolist() == [[20, 20], [40, 40]]


def test_ets_follows_a_trend_and_repeats_a_season():
    steps = np.arange(120, dtype=float)
    series = np.stack([5.0 + 0.5 * steps, 10.0 + np.tile([0.0, 3.0, -1.0, 2.0], 30)], axis=1)
    origins = np.array([100, 110])
    forecast = forecasting.ets_forecast(series, 96, origins, 4, season_length=4, trend="add", seasonal="add",
                                        damped_trend=False)
    truth = np.stack([series[origin:origin + 4] for origin in origins])
    assert forecast.shape == (2, 4, 2)
    np.testing.assert_allclose(forecast, truth, atol=0.05)
