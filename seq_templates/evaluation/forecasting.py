"""Forecast metrics and the baselines every forecast is compared with, on plain numpy arrays.

Arrays of forecasts and truths are shaped ``(origins, horizon, targets)``: one
row per forecast origin of a rolling-origin backtest (the model and every
baseline forecast from the same origins). A series is shaped ``(steps, targets)``
and an origin is the position of the first forecast step in it, so a baseline
sees ``series[:origin]`` only.

Metrics: MAE, RMSE, MASE (MAE divided by the in-sample seasonal-naive MAE of
the training part, per target), sMAPE (in %, 0..200) and interval coverage.
Baselines: naive (the last value), seasonal naive (the value one season
before), moving average (the mean of the last ``width`` values) and
statsmodels' exponential smoothing (ETS, Holt-Winters) fitted on the training
part and then run forward through each origin with the fitted parameters.
:func:`backtest` scores a model's forecasts beside every baseline's, and
:func:`plot_last_origin` draws the last one.
"""

import warnings

import numpy as np

EPSILON = 1e-8


def mae(actual, forecast):
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(forecast) - np.asarray(actual))))


def rmse(actual, forecast):
    """Root mean squared error."""
    return float(np.sqrt(np.mean((np.asarray(forecast) - np.asarray(actual)) ** 2)))


def smape(actual, forecast):
    """Symmetric mean absolute percentage error in % (0..200); a pair of zeros counts as 0."""
    actual, forecast = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    denominator = np.abs(actual) + np.abs(forecast)
    ratio = np.where(denominator > 0, 2.0 * np.abs(forecast - actual) / np.maximum(denominator, EPSILON), 0.0)
    return float(100.0 * np.mean(ratio))


def seasonal_naive_scale(train_values, season_length):
    """In-sample MAE of the seasonal-naive forecast on the training part, per target (MASE's scale).

    Args:
        train_values: ``(steps, targets)`` (or ``(steps,)``) training values.
        season_length: The season in steps (1: the naive forecast); falls back to 1
            when the training part is not longer than one season.

    Returns:
        A float array ``(targets,)``; zeros are replaced by 1 so MASE stays finite.
    """
    values = np.asarray(train_values, dtype=float)
    values = values[:, None] if values.ndim == 1 else values
    lag = season_length if len(values) > season_length else 1
    scale = np.mean(np.abs(values[lag:] - values[:-lag]), axis=0)
    return np.where(scale > EPSILON, scale, 1.0)


def mase(actual, forecast, scale):
    """Mean absolute scaled error: absolute errors divided by ``scale`` (per target, last axis)."""
    errors_ = np.abs(np.asarray(forecast, dtype=float) - np.asarray(actual, dtype=float))
    return float(np.mean(errors_ / np.asarray(scale, dtype=float)))


def coverage(actual, lower, upper):
    """Share of true values inside ``[lower, upper]``."""
    actual = np.asarray(actual)
    return float(np.mean((actual >= np.asarray(lower)) & (actual <= np.asarray(upper))))


def point_metrics(actual, forecast, scale):
    """MAE, RMSE, MASE, sMAPE over everything and MAE per horizon step.

    Args:
        actual: ``(origins, horizon, targets)`` true values.
        forecast: The same shape of forecasts.
        scale: MASE's scale per target (:func:`seasonal_naive_scale`).

    Returns:
        ``{"mae", "rmse", "mase", "smape", "mae_by_horizon": [h=1, h=2, ...]}``.
    """
    actual, forecast = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    return {"mae": mae(actual, forecast), "rmse": rmse(actual, forecast), "mase": mase(actual, forecast, scale),
            "smape": smape(actual, forecast),
            "mae_by_horizon": [mae(actual[:, step], forecast[:, step]) for step in range(actual.shape[1])]}


# Baselines: each returns (origins, horizon, targets) from series[:origin] only.
def naive_forecast(series, origins, horizon):
    """The last observed value, repeated over the horizon."""
    series = np.asarray(series, dtype=float)
    return np.repeat(series[np.asarray(origins) - 1][:, None, :], horizon, axis=1)


def seasonal_naive_forecast(series, origins, horizon, season_length):
    """Step ``h`` (1-based) takes the value ``season_length * ceil(h / season_length)`` steps before it."""
    series = np.asarray(series, dtype=float)
    steps = np.arange(horizon)
    back = season_length * (steps // season_length + 1) - steps  # how far before the origin
    return series[np.asarray(origins)[:, None] - back[None, :]]


def moving_average_forecast(series, origins, horizon, width):
    """The mean of the last ``width`` values, repeated over the horizon."""
    series = np.asarray(series, dtype=float)
    cumulative = np.concatenate([np.zeros((1, series.shape[1])), np.cumsum(series, axis=0)])
    origins = np.asarray(origins)
    means = (cumulative[origins] - cumulative[origins - width]) / width
    return np.repeat(means[:, None, :], horizon, axis=1)


def ets_forecast(series, train_size, origins, horizon, season_length=None, trend="add", seasonal="add",
                 damped_trend=True):
    """Holt-Winters exponential smoothing (statsmodels) fitted on ``series[:train_size]``, per target.

    The smoothing parameters and initial states are estimated once on the
    training part; each origin's forecast then runs the fitted model (parameters
    fixed) over ``series[:origin]``, as a deployed model would.

    Args:
        series: ``(steps, targets)`` values.
        train_size: Steps of the training part.
        origins: Forecast origins (positions of the first forecast step).
        horizon: Steps per forecast.
        season_length: Seasonal period; None or < 2 turns the seasonal part off.
        trend: ``add``, ``mul`` or None.
        seasonal: ``add``, ``mul`` or None.
        damped_trend: Damp the trend (with a trend).

    Returns:
        ``(origins, horizon, targets)`` forecasts.
    """
    from statsmodels.tsa import holtwinters

    series = np.asarray(series, dtype=float)
    if not season_length or season_length < 2 or train_size < 2 * season_length:
        seasonal = None
    options = {"trend": trend, "damped_trend": bool(trend and damped_trend), "seasonal": seasonal,
               "seasonal_periods": season_length if seasonal else None}
    result = np.zeros((len(origins), horizon, series.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for target in range(series.shape[1]):
            column = series[:, target]
            fitted = holtwinters.ExponentialSmoothing(column[:train_size], initialization_method="estimated",
                                                      **options).fit()
            params = fitted.params
            known = {"initial_level": params["initial_level"]}
            if trend:
                known["initial_trend"] = params["initial_trend"]
            if seasonal:
                known["initial_seasonal"] = params["initial_seasons"]
            smoothing = {"smoothing_level": params["smoothing_level"], "optimized": False}
            if trend:
                smoothing["smoothing_trend"] = params["smoothing_trend"]
                if options["damped_trend"]:
                    smoothing["damping_trend"] = params["damping_trend"]
            if seasonal:
                smoothing["smoothing_seasonal"] = params["smoothing_seasonal"]
            for row, origin in enumerate(origins):
                model = holtwinters.ExponentialSmoothing(column[:origin], initialization_method="known",
                                                         **known, **options)
                result[row, :, target] = model.fit(**smoothing).forecast(horizon)
    return result


def baseline_forecasts(series, origins, horizon, season_length, train_size, moving_average_width=None,
                       ets=True, ets_trend="add", ets_seasonal="add", ets_damped_trend=True):
    """Every baseline's forecasts from the same origins: ``{name: (origins, horizon, targets)}``.

    ``naive``, ``seasonal_naive``, ``moving_average`` (``moving_average_width``,
    default the season) and, with ``ets``, ``ets`` (:func:`ets_forecast`).
    """
    forecasts = {"naive": naive_forecast(series, origins, horizon),
                 "seasonal_naive": seasonal_naive_forecast(series, origins, horizon, season_length),
                 "moving_average": moving_average_forecast(series, origins, horizon,
                                                           moving_average_width or season_length)}
    if ets:
        forecasts["ets"] = ets_forecast(series, train_size, origins, horizon, season_length, ets_trend,
                                        ets_seasonal, ets_damped_trend)
    return forecasts


def backtest(actual, forecast, series, origins, train_size, season_length, moving_average_width=None,
             ets=True, ets_trend="add", ets_seasonal="add", ets_damped_trend=True, lower=None,
             upper=None, levels=()):
    """Scores a rolling-origin backtest: the model beside every baseline, from the same origins.

    Args:
        actual: ``(origins, horizon, targets)`` true values.
        forecast: The model's forecasts, shaped like ``actual``.
        series: ``(steps, targets)`` values the baselines look back on (up to the last forecast).
        origins: Positions of each forecast's first step in ``series``.
        train_size: Steps of the training part (MASE's scale, the ETS fit).
        season_length: Steps per season.
        moving_average_width: The moving average's width (None: the season).
        ets: Add the ETS baseline; ``ets_trend``, ``ets_seasonal`` and
            ``ets_damped_trend`` configure it (:func:`ets_forecast`).
        lower: The model's interval's lower bounds, shaped like ``actual``, or None; with
            ``upper`` and the quantile ``levels`` (the outer two bound the interval), adds
            ``interval``, ``nominal`` and ``coverage`` to the model's metrics.
        upper: The interval's upper bounds, or None.
        levels: The quantile levels, increasing.

    Returns:
        ``(metrics, forecasts)``: ``{"model", "baseline" (the best by MAE, with its name),
        "baselines"}`` of :func:`point_metrics`, and ``{baseline name: forecasts}``.
    """
    horizon = np.shape(actual)[1]
    scale = seasonal_naive_scale(np.asarray(series)[:train_size], season_length)
    forecasts = baseline_forecasts(series, origins, horizon, season_length, train_size, moving_average_width,
                                   ets, ets_trend, ets_seasonal, ets_damped_trend)
    baselines = {name: point_metrics(actual, values, scale) for name, values in forecasts.items()}
    model = point_metrics(actual, forecast, scale)
    if lower is not None:
        model.update({"interval": [levels[0], levels[-1]], "nominal": levels[-1] - levels[0],
                      "coverage": coverage(actual, lower, upper)})
    best = min(baselines, key=lambda name: baselines[name]["mae"])
    return {"model": model, "baseline": {"name": best, **baselines[best]}, "baselines": baselines}, forecasts


def describe_backtest(metrics):
    """One line for :func:`backtest`'s metrics: ``MAE .. (MASE ..); baselines: name MAE, ...``."""
    model, baselines = metrics["model"], metrics["baselines"]
    return (f"MAE {model['mae']:.4f} (MASE {model['mase']:.3f}); baselines: "
            + ", ".join(f"{name} {values['mae']:.4f}" for name, values in baselines.items()))


def plot_last_origin(path, index, series, actual, forecast, origins, season_length, baseline=None,
                     lower=None, upper=None, value_name="value", baseline_name="seasonal naive"):
    """Plots the forecast of the first target from the last origin, with the history before it.

    The history shown is four horizons (or four seasons, if longer) back from the origin.

    Args:
        path: The PNG to write.
        index: The times of ``series``.
        series: ``(steps, targets)`` values.
        actual: ``(origins, horizon, targets)`` true values.
        forecast: The model's forecasts, shaped like ``actual``.
        origins: Positions of each forecast's first step.
        season_length: Steps per season.
        baseline: A baseline's forecasts shaped like ``actual``, or None.
        lower: The interval's lower bounds shaped like ``actual``, or None.
        upper: Its upper bounds, or None.
        value_name: The y-axis label.
        baseline_name: The baseline's legend label.
    """
    from seq_templates.evaluation import plots

    origin, horizon = int(origins[-1]), np.shape(actual)[1]
    start = max(origin - 4 * max(horizon, season_length), 0)
    last = lambda values: None if values is None else np.asarray(values)[-1, :, 0]  # noqa: E731
    return plots.forecast(index[start:origin], np.asarray(series)[start:origin, 0],
                          index[origin:origin + horizon], last(actual), last(forecast), path,
                          lower=last(lower), upper=last(upper), baseline=last(baseline),
                          baseline_name=baseline_name, value_name=value_name,
                          title=f"Forecast from the last test origin ({index[origin]})")
