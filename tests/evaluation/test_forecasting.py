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


def test_backtest_scores_the_model_beside_every_baseline_and_picks_the_best():
    series = np.tile(np.array([1.0, 5.0, 3.0]), 10)[:, None]  # a season of 3
    origins = np.array([21, 24, 27])
    actual = np.stack([series[origin:origin + 3] for origin in origins])
    metrics, forecasts = forecasting.backtest(actual, actual + 1.0, series, origins, 18, 3, ets=False)
    assert metrics["model"]["mae"] == pytest.approx(1.0) and set(forecasts) == set(metrics["baselines"])
    assert set(metrics["baselines"]) == {"naive", "seasonal_naive", "moving_average"}
    assert metrics["baseline"]["name"] == "seasonal_naive" and metrics["baseline"]["mae"] == 0.0
    np.testing.assert_array_equal(forecasts["seasonal_naive"], actual)
    assert "coverage" not in metrics["model"]
    with_interval, _ = forecasting.backtest(actual, actual, series, origins, 18, 3, ets=False, lower=actual - 1,
                                            upper=actual + 0.5 * (actual > 2), levels=[0.1, 0.5, 0.9])
    assert with_interval["model"]["interval"] == [0.1, 0.9]
    assert with_interval["model"]["nominal"] == pytest.approx(0.8) and with_interval["model"]["coverage"] == 1.0
    assert forecasting.describe_backtest(metrics).startswith("MAE 1.0000 (MASE ")
    assert "baselines: naive " in forecasting.describe_backtest(metrics)


def test_plot_last_origin_writes_a_png(tmp_path):
    import pandas

    series = np.sin(np.arange(60) / 3.0)[:, None]
    index = pandas.date_range("2020-01-01", periods=60, freq="D")
    origins = np.array([50, 55])
    actual = np.stack([series[origin:origin + 5] for origin in origins])
    path = forecasting.plot_last_origin(tmp_path / "forecast.png", index, series, actual, actual, origins, 7,
                                        baseline=actual * 0.5, lower=actual - 1, upper=actual + 1)
    assert path.stat().st_size > 1000
