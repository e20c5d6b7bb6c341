"""Forecasting model pieces from built-in layers, and the quantile (pinball) loss.

* :func:`baseline_path`: the naive or seasonal-naive forecast of a normalized
  window, which a model can learn corrections to (a residual connection over time).
* :func:`forecast_head`: one Dense over the whole horizon (direct multi-step).
* :func:`autoregressive_rollout`: feeds a one-step model (:func:`one_step_model`)
  its own forecasts, ``horizon`` times, inside the graph.
* :func:`encoder_decoder`: the encoder's states start a decoder over the horizon.
* :func:`window_inputs`, :func:`covariate_features` and :func:`forecast_network`:
  the model's named inputs, the per-step side features and the whole network of one
  ``architecture`` from a normalized window;
  :func:`check_network_settings` refuses settings that do not go together.
* :class:`ShrunkCorrection` and :func:`shrinkage_score`: a point forecast is the baseline plus
  ``scale`` times the network's correction; training learns the correction at scale 1, and after
  each epoch the scale (0, 0.25, ..., 1) that forecasts the validation origins best is kept, so a
  network that cannot beat its baseline on a short series falls back toward it, in the export too.
* :class:`PinballLoss`: the quantile loss, registered with
  ``package="seq_templates"``, so ``model.keras`` reloads in any process that ran ``import seq_templates``.
* :func:`forecast_outputs`: a normalized forecast back in the series' units, as the
  export's named outputs; :func:`serving_function` gives it one parameter per input of
  :func:`input_specs`.
* :func:`window_dataset`: raw windows and their futures as a batched ``tf.data`` pipeline.
* :func:`series_description`: the series' columns and frequency as plain data, which
  ``preprocessing.json`` carries to the export's ``serving.json``.

Everything else is built-in Keras layers (``Cropping1D``, ``Concatenate``,
``Reshape``, ``Dense``), so models load from ``model.keras`` as they are.
"""

import keras
import numpy as np
import tensorflow as tf

from seq_templates import errors
from seq_templates.layers import recurrent

SHRINK_SCALES = (0.0, 0.25, 0.5, 0.75, 1.0)  # the correction scales tried on validation


def baseline_path(normalized_targets, residual_to, width, horizon, season_length=1):
    """The baseline forecast of a window, ``(batch, horizon or 1, targets)``; None for ``none``.

    Args:
        normalized_targets: ``(batch, width, targets)``.
        residual_to: ``none``, ``last_value`` (one step that broadcasts over the
            horizon), ``seasonal`` (the last season's values, repeated) or
            ``seasonal_mean`` (each step of the season averaged over every whole season
            in the window, repeated: steadier than one season when the seasons are noisy).
        width: The window's length.
        horizon: Forecast steps.
        season_length: The season in steps (``seasonal``, ``seasonal_mean``).

    Raises:
        SeqTemplatesError: ``seasonal`` or ``seasonal_mean`` with a window shorter than the season.
    """
    if residual_to == "none":
        return None
    if residual_to == "last_value":
        return keras.layers.Cropping1D((width - 1, 0))(normalized_targets)
    if season_length > width:
        raise errors.SeqTemplatesError(
            f"model.residual_to={residual_to} needs data.input_width >= the season ({season_length}); raise "
            "data.input_width or use residual_to=last_value.")
    count = width // season_length if residual_to == "seasonal_mean" else 1
    seasons_back = [keras.layers.Cropping1D((width - (back + 1) * season_length, back * season_length))(
        normalized_targets) for back in range(count)]
    last_season = keras.layers.Average()(seasons_back) if count > 1 else seasons_back[0]
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


ARCHITECTURES = ("single_step", "direct", "autoregressive", "encoder_decoder")
INPUT_GROUPS = ("targets", "covariates", "categories")  # the export's named inputs, in order


def check_network_settings(architecture, horizon, quantiles=(), residual_to="none",
                           season_length=None, model_prefix="model.", data_prefix="data."):
    """Refuses a network whose settings do not go together, naming the fix.

    Args:
        architecture: One of :data:`ARCHITECTURES`.
        horizon: Forecast steps (``single_step`` forecasts one).
        quantiles: Quantile levels (increasing, in (0, 1); not with ``autoregressive``).
        residual_to: ``none``, ``last_value``, ``seasonal`` or ``seasonal_mean`` (both need
            ``season_length``).
        season_length: The season in steps, or None.
        model_prefix: Prefix of the model settings named in errors.
        data_prefix: Prefix of the data settings named in errors.

    Raises:
        SeqTemplatesError: The first problem found.
    """
    quantiles, model, data = list(quantiles), model_prefix, data_prefix
    problems = [
        (architecture == "single_step" and horizon != 1, f"{model}architecture=single_step "
         f"forecasts one step; set {data}horizon=1 or choose direct, autoregressive or "
         "encoder_decoder."),
        (architecture == "autoregressive" and quantiles, f"{model}quantiles needs architecture "
         "single_step, direct or encoder_decoder; the autoregressive model feeds back one value "
         "per step."),
        (any(not 0.0 < level < 1.0 for level in quantiles) or quantiles != sorted(set(quantiles)),
         f"{model}quantiles expects increasing levels in (0, 1), received {quantiles}."),
        (residual_to in ("seasonal", "seasonal_mean") and not season_length,
         f"{model}residual_to={residual_to} needs "
         f"{data}season_length; set it (e.g. 12).")]
    for found, message in problems:
        if found:
            raise errors.SeqTemplatesError(message)


def covariate_features(normalized_covariates=None, category_ids=None, vocabulary_size=None,
                       embedding_dim=4):
    """Per-step side features: normalized numeric covariates and embedded categories, joined.

    Args:
        normalized_covariates: ``(batch, width, numeric covariates)``, or None.
        category_ids: ``(batch, width, categorical covariates)`` ids, or None.
        vocabulary_size: Ids of the category lookup (with ``category_ids``).
        embedding_dim: Embedding size per categorical column.

    Returns:
        ``(batch, width, features)``, or None without covariates.
    """
    side = [] if normalized_covariates is None else [normalized_covariates]
    if category_ids is not None:
        width, count = category_ids.shape[1], category_ids.shape[2]
        embedded = keras.layers.Embedding(vocabulary_size, embedding_dim)(category_ids)
        side.append(keras.layers.Reshape((width, count * embedding_dim))(embedded))
    if len(side) > 1:
        return keras.layers.Concatenate(name="covariate_features")(side)
    return side[0] if side else None


def window_inputs(width, target_normalizer, covariate_normalizer=None, category_lookup=None,
                  num_category_columns=0, embedding_dim=4):
    """The model's named inputs for windows of ``width`` steps, normalized, and their side features.

    Args:
        width: Steps per window.
        target_normalizer: The adapted ``Normalization`` of the targets.
        covariate_normalizer: The adapted ``Normalization`` of the numeric covariates, or None.
        category_lookup: The adapted ``StringLookup`` of the text covariates, or None.
        num_category_columns: The text covariate columns.
        embedding_dim: Embedding size per text column.

    Returns:
        ``(inputs, normalized targets, side)``: ``{"targets"[, "covariates"][, "category_ids"]:
        keras.Input}`` and :func:`covariate_features` (None without covariates).
    """
    inputs = {"targets": keras.Input((width, target_normalizer.mean.shape[-1]), name="targets")}
    covariates = None
    if covariate_normalizer is not None:
        numeric = covariate_normalizer.mean.shape[-1]
        inputs["covariates"] = keras.Input((width, numeric), name="covariates")
        covariates = covariate_normalizer(inputs["covariates"])
    if category_lookup is not None:
        inputs["category_ids"] = keras.Input((width, num_category_columns), dtype="int64", name="category_ids")
    side = covariate_features(covariates, inputs.get("category_ids"),
                              category_lookup and category_lookup.vocabulary_size(), embedding_dim)
    return inputs, target_normalizer(inputs["targets"]), side


def forecast_network(normalized, side, architecture, horizon, num_quantiles, cell, units,
                     num_layers=1, bidirectional=False, dropout_rate=0.0, residual_to="none",
                     season_length=1):
    """The forecast of a normalized window, ``(batch, horizon, targets[, quantiles])``.

    Args:
        normalized: ``(batch, width, targets)`` normalized targets.
        side: Per-step side features (:func:`covariate_features`), or None.
        architecture: ``single_step`` or ``direct`` (:func:`forecast_head` over an encoder),
            ``autoregressive`` (:func:`one_step_model` fed back by
            :func:`autoregressive_rollout`) or ``encoder_decoder`` (:func:`encoder_decoder`).
        horizon: Forecast steps.
        num_quantiles: Quantile levels of the last axis (0: a point forecast).
        cell: ``simple_rnn``, ``lstm`` or ``gru``.
        units: Units per recurrent layer.
        num_layers: Stacked recurrent layers.
        bidirectional: A bidirectional encoder (not the autoregressive step model's).
        dropout_rate: Dropout between and inside the recurrent layers.
        residual_to: The network forecasts corrections to ``none``, ``last_value``,
            ``seasonal`` or ``seasonal_mean`` (:func:`baseline_path`).
        season_length: The season in steps (``seasonal``, ``seasonal_mean``).
    """
    width, num_targets = normalized.shape[1], normalized.shape[-1]
    if architecture == "autoregressive":
        one_step = one_step_model(width, num_targets, side.shape[-1] if side is not None else 0,
                                  cell, units, num_layers, dropout_rate, residual_to, season_length)
        return float32_output(autoregressive_rollout(one_step, normalized, horizon, side))
    features = normalized if side is None else keras.layers.Concatenate(name="features")(
        [normalized, side])
    encoder = (cell, units, num_layers, bidirectional, dropout_rate)
    if architecture == "encoder_decoder":
        output = encoder_decoder(features, horizon, num_targets, num_quantiles, *encoder)
    else:  # single_step and direct: one Dense over the horizon
        encoded = recurrent.recurrent_stack(features, *encoder, name="encoder")
        output = forecast_head(encoded, horizon, num_targets, num_quantiles)
    base = baseline_path(normalized, residual_to, width, horizon, season_length)
    if base is not None and num_quantiles:  # every quantile corrects the same baseline
        base = keras.layers.Reshape((-1, num_targets, 1))(base)
        output = keras.layers.Add(name="corrected_forecast")([output, base])
    elif base is not None:
        output = ShrunkCorrection(name="corrected_forecast")([output, base])
    return float32_output(output)


@keras.saving.register_keras_serializable(package="seq_templates")
class ShrunkCorrection(keras.layers.Layer):
    """``baseline + scale * correction``: ``scale`` is 1 in training and a kept, non-trainable weight otherwise.

    Training always learns the full correction (a scale of 0 would stop its gradient);
    :func:`shrinkage_score` sets the scale that inference (validation, evaluation, the
    export) uses. The scale is one of the model's weights, so early stopping's best
    weights, checkpoints and ``model.keras`` keep it with the epoch it was chosen for.

    Call arguments:
        inputs: ``[correction, baseline]`` of one shape.
        training: Whether the call trains (the scale is then 1).
    """

    def build(self, input_shapes):
        self.scale = self.add_weight(name="correction_scale", shape=(), initializer="ones",
                                     trainable=False)

    def call(self, inputs, training=None):
        correction, base = inputs
        if training:
            return base + correction
        scale = keras.ops.cast(self.scale, correction.dtype)  # 0: the baseline, even past a NaN correction
        return keras.ops.where(scale == 0, base, base + scale * correction)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


def shrinkage_score(name, build_signature, inputs, future, score, scales=SHRINK_SCALES):
    """A validation score that first sets the model's :class:`ShrunkCorrection` scale on validation.

    After each epoch the signature forecasts the validation windows at scale 1 (the
    network's whole correction) and, once, at scale 0 (the baseline alone); a forecast is
    linear in the scale, so each of ``scales`` is scored from those two, the best is kept in
    the model and its score is logged (``train.monitor`` follows it). A model without the
    layer (quantiles, no residual, the autoregressive step model) is scored as it is.

    Args:
        name: The logged name, e.g. ``val_forecast_mae``.
        build_signature: ``model -> tf.function`` (the app's serving signature).
        inputs: ``{input name: values}`` of the validation windows.
        future: Their true futures, in the series' units.
        score: ``(future, forecast) -> float``, lower is better (e.g. MAE).
        scales: The scales tried.
    """
    from seq_templates import export
    from seq_templates import training  # not at import: it loads matplotlib for its plots

    predictors, baselines = {}, {}

    def score_model(model):
        if model not in predictors:
            predictors[model] = export.batch_predictor(build_signature(model), batch_size=256)
        predict = predictors[model]
        layer = next((layer for layer in model.layers if isinstance(layer, ShrunkCorrection)), None)
        if layer is None:
            return score(future, predict(inputs)["forecast"])
        layer.scale.assign(1.0)
        corrected = np.asarray(predict(inputs)["forecast"], dtype=np.float64)
        if model not in baselines:
            layer.scale.assign(0.0)
            baselines[model] = np.asarray(predict(inputs)["forecast"], dtype=np.float64)
        base = baselines[model]
        scored = [(score(future, base + scale * (corrected - base)), -scale) for scale in scales]
        value, negative_scale = min(scored)  # ties go to the larger scale
        layer.scale.assign(-negative_scale)
        return value

    return training.ValidationScore(name, score_model)


def float32_output(output):
    """``output`` as float32: as it is, or (under a mixed-precision policy) cast by a linear float32 layer."""
    if str(output.dtype) == "float32":
        return output
    return keras.layers.Activation("linear", dtype="float32", name="float32_forecast")(output)


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


def series_description(groups, frequency):
    """What a run records of its series in ``preprocessing.json``: columns by group and frequency.

    Args:
        groups: ``{"targets"|"covariates"|"categories": column names}``.
        frequency: The pandas frequency alias.

    Returns:
        ``{"columns": {group: names}, "frequency": alias}`` (every group present).
    """
    return {"columns": {group: list(groups.get(group, [])) for group in INPUT_GROUPS},
            "frequency": frequency}


def input_specs(model):
    """The export's raw inputs for a forecast model's, in order: ``targets``[, ``covariates``]
    (float windows)[, ``categories``] (string windows, for the model's ``category_ids``)."""
    specs = {}
    for tensor in model.inputs:
        if tensor.name == "category_ids":
            specs["categories"] = tf.TensorSpec([None, tensor.shape[1], None], tf.string,
                                                name="categories")
        else:
            specs[tensor.name] = tf.TensorSpec([None, *tensor.shape[1:]], tf.float32,
                                               name=tensor.name)
    return [specs[name] for name in INPUT_GROUPS if name in specs]


def serving_function(forecast, specs):
    """A ``tf.function`` over ``specs`` that calls ``forecast(**inputs)`` by the specs' names.

    A signature needs one named parameter per input, so this picks a small function for
    the inputs present: ``targets``, with ``covariates`` and/or ``categories``.
    """
    functions = {
        ("targets",): lambda targets: forecast(targets=targets),
        ("targets", "covariates"): lambda targets, covariates: forecast(
            targets=targets, covariates=covariates),
        ("targets", "categories"): lambda targets, categories: forecast(
            targets=targets, categories=categories),
        ("targets", "covariates", "categories"): lambda targets, covariates, categories: forecast(
            targets=targets, covariates=covariates, categories=categories)}
    return tf.function(functions[tuple(spec.name for spec in specs)], input_signature=specs)


def window_dataset(split, transform, batch_size, shuffle=False, seed=None):
    """A split's raw windows and their futures as a cached, batched ``tf.data.Dataset`` (a prepared
    series' training windows, ``prepared_series.StreamedWindows``, streamed from its shards).

    Args:
        split: A ``windows.WindowSplit`` (``inputs``: ``{name: array}`` raw windows, object arrays of
            strings for categories; ``future``: ``(windows, horizon, targets)``), or a
            ``prepared_series.StreamedWindows``.
        transform: ``transform(raw inputs, future) -> (features, targets)`` on batches, run
            once (the pipeline is cached after it).
        batch_size: Windows per batch.
        shuffle: Reshuffle the windows every epoch (training).
        seed: The shuffle's seed.
    """
    from seq_templates.data import prepared_series

    if isinstance(split, prepared_series.StreamedWindows):
        return prepared_series.window_dataset(split, transform, batch_size, shuffle, seed)
    inputs, future = split.inputs, split.future
    inputs = {name: tf.constant(values.astype(str) if values.dtype == object else values)
              for name, values in inputs.items()}
    dataset = tf.data.Dataset.from_tensor_slices((inputs, future)).batch(1024).map(
        transform).unbatch().cache()
    if shuffle:
        dataset = dataset.shuffle(len(future), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
