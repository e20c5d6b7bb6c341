"""Forecasting model pieces from built-in layers, and the quantile (pinball) loss.

* :func:`baseline_path`: the naive or seasonal-naive forecast of a normalized
  window, which a model can learn corrections to (a residual connection over time).
* :func:`forecast_head`: one Dense over the whole horizon (direct multi-step).
* :func:`autoregressive_rollout`: feeds a one-step model (:func:`one_step_model`)
  its own forecasts, ``horizon`` times, inside the graph.
* :func:`encoder_decoder`: the encoder's states start a decoder over the horizon.
* :class:`PinballLoss`: the quantile loss, registered with
  ``package="seq_templates"`` so ``model.keras`` reloads with no custom objects.
* :func:`forecast_outputs`: a normalized forecast back in the series' units, as the
  export's named outputs.
* :func:`series_description` / :func:`read_series_description`: the series' columns
  and frequency kept in a lookup layer, so ``preprocessing.json`` carries them to
  the export.

Everything else is built-in Keras layers (``Cropping1D``, ``Concatenate``,
``Reshape``, ``Dense``), so models load from ``model.keras`` as they are.
"""

import keras
import tensorflow as tf

from seq_templates import errors
from seq_templates.layers import recurrent


def baseline_path(normalized_targets, residual_to, width, horizon, season_length=1):
    """The baseline forecast of a window, ``(batch, horizon or 1, targets)``; None for ``none``.

    Args:
        normalized_targets: ``(batch, width, targets)``.
        residual_to: ``none``, ``last_value`` (one step that broadcasts over the
            horizon) or ``seasonal`` (the last season's values, repeated).
        width: The window's length.
        horizon: Forecast steps.
        season_length: The season in steps (``seasonal``).

    Raises:
        SeqTemplatesError: ``seasonal`` with a window shorter than the season.
    """
    if residual_to == "none":
        return None
    if residual_to == "last_value":
        return keras.layers.Cropping1D((width - 1, 0))(normalized_targets)
    if season_length > width:
        raise errors.SeqTemplatesError(
            f"model.residual_to=seasonal needs data.input_width >= the season ({season_length}); raise "
            "data.input_width or use residual_to=last_value.")
    last_season = keras.layers.Cropping1D((width - season_length, 0))(normalized_targets)
    repeats = -(-horizon // season_length)
    seasons = keras.layers.Concatenate(axis=1)([last_season] * repeats) if repeats > 1 else last_season
    return keras.layers.Cropping1D((0, repeats * season_length - horizon))(seasons)


def forecast_head(encoded, horizon, num_targets, num_quantiles=0, name="forecast"):
    """Dense over the horizon: ``(batch, width)`` -> ``(batch, horizon, targets[, quantiles])``."""
    flat = keras.layers.Dense(horizon * num_targets * max(num_quantiles, 1), name=name)(encoded)
    shape = (horizon, num_targets, num_quantiles) if num_quantiles else (horizon, num_targets)
    return keras.layers.Reshape(shape, name=f"{name}_steps")(flat)


def autoregressive_rollout(one_step, window, horizon, side=None, name="forecast_steps"):
    """Calls ``one_step`` ``horizon`` times, each time on the window moved on by its last forecast.

    The oldest step drops out and the forecast comes in as the newest target
    value; side features (covariates, unknown in the future) repeat their last
    observed step.

    Args:
        one_step: A model ``[window(, side)] -> (batch, 1, targets)``.
        window: ``(batch, width, targets)`` normalized targets.
        horizon: Forecast steps.
        side: ``(batch, width, features)`` side features, or None.
        name: Name of the layer joining the steps.

    Returns:
        ``(batch, horizon, targets)``.
    """
    width = window.shape[1]
    steps = []
    for _ in range(horizon):
        step = one_step([window] if side is None else [window, side])
        steps.append(step)
        window = keras.layers.Concatenate(axis=1)([keras.layers.Cropping1D((1, 0))(window), step])
        if side is not None:
            side = keras.layers.Concatenate(axis=1)([keras.layers.Cropping1D((1, 0))(side),
                                                     keras.layers.Cropping1D((width - 1, 0))(side)])
    return keras.layers.Concatenate(axis=1, name=name)(steps) if horizon > 1 else steps[0]


def one_step_model(width, num_targets, side_width, cell, units, num_layers=1, dropout_rate=0.0,
                   residual_to="last_value", season_length=1, name="one_step"):
    """The step model of :func:`autoregressive_rollout`: ``[window(, side)] -> (batch, 1, targets)``.

    A recurrent stack over the normalized window (and side features), a Dense
    for the next step, plus :func:`baseline_path` of the window for one step.
    """
    window = keras.Input(shape=(width, num_targets), name="window")
    inputs = [window] + ([keras.Input(shape=(width, side_width), name="side")] if side_width else [])
    features = keras.layers.Concatenate()(inputs) if side_width else window
    encoded = recurrent.recurrent_stack(features, cell, units, num_layers, False, dropout_rate, name="encoder")
    next_value = forecast_head(encoded, 1, num_targets, name="next_value")
    base = baseline_path(window, residual_to, width, 1, season_length)
    next_value = keras.layers.Add()([next_value, base]) if base is not None else next_value
    return keras.Model(inputs, next_value, name=name)


def encoder_decoder(features, horizon, num_targets, num_quantiles, cell, units, num_layers=1, bidirectional=False,
                    dropout_rate=0.0):
    """Sequence to sequence: the encoder's final states start a decoder that runs over the horizon.

    The decoder reads the encoder's last output at every step and a Dense turns each
    of its steps into ``(targets[, quantiles])``.

    Returns:
        ``(batch, horizon, targets[, quantiles])``.
    """
    encoded, states = recurrent.recurrent_stack(features, cell, units, num_layers, bidirectional, dropout_rate,
                                                return_state=True, name="encoder")
    decoded = recurrent.recurrent_layer(cell, encoded.shape[-1], return_sequences=True, name="decoder")(
        keras.layers.RepeatVector(horizon, name="decoder_inputs")(encoded), initial_state=states)
    output = keras.layers.Dense(num_targets * max(num_quantiles, 1), name="forecast")(decoded)
    shape = (horizon, num_targets, num_quantiles) if num_quantiles else (horizon, num_targets)
    return keras.layers.Reshape(shape, name="forecast_steps")(output)


@keras.saving.register_keras_serializable(package="seq_templates")
class PinballLoss(keras.losses.Loss):
    """Mean pinball loss of predictions ``(..., k)`` against truths ``(...)`` for ``k`` quantiles.

    The pinball loss of quantile ``q`` is ``max(q * e, (q - 1) * e)`` with
    ``e = truth - prediction``; its minimizer is the ``q``-quantile, so the
    lowest and highest quantiles bound a prediction interval.

    Args:
        quantiles: The quantile levels in (0, 1), in the order of the last axis.
        name: Loss name.
        **kwargs: Other ``keras.losses.Loss`` arguments (e.g. ``reduction``).
    """

    def __init__(self, quantiles, name="pinball", **kwargs):
        super().__init__(name=name, **kwargs)
        self.quantiles = [float(quantile) for quantile in quantiles]

    def call(self, y_true, y_pred):
        levels = keras.ops.convert_to_tensor(self.quantiles, dtype=y_pred.dtype)
        error = keras.ops.expand_dims(keras.ops.cast(y_true, y_pred.dtype), -1) - y_pred
        return keras.ops.mean(keras.ops.maximum(levels * error, (levels - 1.0) * error), axis=-1)

    def get_config(self):
        return {**super().get_config(), "quantiles": self.quantiles}


def forecast_outputs(normalized, normalizer, quantiles=()):
    """The export's outputs: a normalized forecast in the series' units again.

    Args:
        normalized: ``(batch, horizon, targets)``, or ``(..., quantiles)`` with quantiles.
        normalizer: The adapted target ``Normalization`` layer.
        quantiles: The quantile levels of the last axis (empty: a point forecast).

    Returns:
        ``{"forecast"}``; with quantiles also ``quantiles`` (every level), ``lower`` and
        ``upper`` (the outer levels), ``forecast`` being the median (or the middle level).
    """
    mean = tf.reshape(tf.cast(normalizer.mean, tf.float32), [-1])
    scale = tf.maximum(tf.sqrt(tf.reshape(tf.cast(normalizer.variance, tf.float32), [-1])),
                       keras.config.epsilon())  # as Normalization divides
    if not quantiles:
        return {"forecast": normalized * scale + mean}
    values = normalized * scale[:, None] + mean[:, None]
    middle = quantiles.index(0.5) if 0.5 in quantiles else len(quantiles) // 2
    return {"forecast": values[..., middle], "quantiles": values, "lower": values[..., 0],
            "upper": values[..., -1]}


DESCRIPTION_GROUPS = ("targets", "covariates", "categories")


def series_description(groups, frequency, name="series_description"):
    """A ``StringLookup`` whose vocabulary records the column groups and the frequency.

    Entries read ``group:column`` and ``frequency:alias``; the layer is saved with the
    other preprocessing layers and read back by :func:`read_series_description`.

    Args:
        groups: ``{"targets"|"covariates"|"categories": column names}``.
        frequency: The pandas frequency alias.
        name: The layer's name.
    """
    vocabulary = [f"frequency:{frequency}"] + [f"{group}:{column}" for group in DESCRIPTION_GROUPS
                                              for column in groups.get(group, [])]
    return keras.layers.StringLookup(vocabulary=vocabulary, name=name)


def read_series_description(layer):
    """``(groups, frequency)`` back from a :func:`series_description` layer."""
    groups, frequency = {group: [] for group in DESCRIPTION_GROUPS}, None
    for entry in layer.get_vocabulary()[layer.num_oov_indices:]:
        kind, value = str(entry).split(":", 1)
        if kind == "frequency":
            frequency = value
        else:
            groups[kind].append(value)
    return groups, frequency
