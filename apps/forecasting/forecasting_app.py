"""Time-series forecasting (window -> horizon): past values in, future values in the series' units out.

Run it as ``python forecasting_app.py [--dataset airline_passengers] [--set model.architecture=gru]`` or
``seq-templates train forecasting``. ``main`` runs seven regions in order: load (a regular time grid, the
missing-value policy, chronological blocks, windows) -> preprocess (Normalization and a category lookup
adapted on the training block) -> build model (single-step, direct, autoregressive or encoder-decoder)
-> train -> evaluate (a rolling-origin backtest beside naive, seasonal-naive, moving-average and ETS
forecasts) -> export (raw windows in, forecasts in original units out) -> check the reloaded export.

Copy it with ``seq-templates new forecasting ./my_app`` and edit any region.
"""

import dataclasses
import pathlib
import sys
import typing

import keras
import numpy as np
import pandas
import tensorflow as tf

from seq_templates import cli
from seq_templates import config as config_module
from seq_templates import errors
from seq_templates import export
from seq_templates import lifecycle
from seq_templates import training
from seq_templates.data import readers
from seq_templates.data import registry
from seq_templates.evaluation import forecasting
from seq_templates.evaluation import plots
from seq_templates.layers import forecasting as forecasting_layers
from seq_templates.layers import recurrent
from seq_templates.preprocessing import windows

TASK = "forecasting"
ARCHITECTURES = ("single_step", "direct", "autoregressive", "encoder_decoder")
INPUT_GROUPS = ("targets", "covariates", "categories")  # the export's named inputs, in order


@dataclasses.dataclass
class DataConfig(config_module.DataConfig):
    """Where the series comes from (see the base), its columns, the missing-value policy and the windows."""

    dataset: typing.Optional[str] = "synthetic_series"  # a registry name (`seq-templates list`)
    time_column: typing.Optional[str] = None  # --data: the timestamp column (or time_columns)
    time_columns: typing.Optional[typing.List[str]] = None  # --data: e.g. [year, month, day, hour]
    time_format: typing.Optional[str] = None  # --data: strftime format; null infers it
    missing_values: typing.List[str] = dataclasses.field(default_factory=list)  # --data: e.g. [NA, "?"]
    target_columns: typing.List[str] = dataclasses.field(default_factory=list)  # []: the first value column
    covariate_columns: typing.List[str] = dataclasses.field(default_factory=list)  # numbers or categories
    frequency: typing.Optional[str] = None  # pandas alias (h, D, MS); null infers it
    missing_policy: str = dataclasses.field(default="error", metadata={"choices": windows.MISSING_POLICIES})
    input_width: int = dataclasses.field(default=48, metadata={"minimum": 1})
    horizon: int = dataclasses.field(default=12, metadata={"minimum": 1})
    stride: int = dataclasses.field(default=1, metadata={"minimum": 1})  # between training windows
    test_size: typing.Optional[int] = dataclasses.field(default=None, metadata={"minimum": 1})  # steps
    validation_size: typing.Optional[int] = dataclasses.field(default=None, metadata={"minimum": 1})
    season_length: typing.Optional[int] = dataclasses.field(default=None, metadata={"minimum": 1})
    backtest_origins: typing.Optional[int] = dataclasses.field(default=None, metadata={"minimum": 1})
    backtest_stride: int = dataclasses.field(default=1, metadata={"minimum": 1})
    moving_average_width: typing.Optional[int] = dataclasses.field(default=None, metadata={"minimum": 1})
    ets: bool = True  # the exponential-smoothing baseline (statsmodels Holt-Winters)
    ets_trend: typing.Optional[str] = dataclasses.field(default="add", metadata={"choices": (None, "add", "mul")})
    ets_seasonal: typing.Optional[str] = dataclasses.field(default="add",
                                                           metadata={"choices": (None, "add", "mul")})
    ets_damped_trend: bool = True


@dataclasses.dataclass
class ModelConfig:
    """Normalized window -> recurrent encoder -> forecast head (or decoder, or a fed-back one-step model)."""

    architecture: str = dataclasses.field(default="direct", metadata={"choices": ARCHITECTURES})
    cell: str = dataclasses.field(default="lstm", metadata={"choices": recurrent.CELLS})
    units: int = dataclasses.field(default=64, metadata={"minimum": 1})
    num_layers: int = dataclasses.field(default=1, metadata={"minimum": 1})
    bidirectional: bool = False  # the encoder (not the autoregressive step model's)
    dropout_rate: float = dataclasses.field(default=0.0, metadata={"minimum": 0.0})
    # The network forecasts corrections to a baseline: none, the last value, or the last season.
    residual_to: str = dataclasses.field(default="last_value",
                                         metadata={"choices": ("none", "last_value", "seasonal")})
    quantiles: typing.List[float] = dataclasses.field(default_factory=list)  # e.g. [0.1, 0.5, 0.9]: pinball
    loss: str = dataclasses.field(default="mse", metadata={"choices": ("mse", "mae", "huber")})
    category_embedding_dim: int = dataclasses.field(default=4, metadata={"minimum": 1})


@dataclasses.dataclass
class TrainConfig(config_module.TrainConfig):
    epochs: int = dataclasses.field(default=30, metadata={"minimum": 1})
    batch_size: int = dataclasses.field(default=32, metadata={"minimum": 1})
    learning_rate: float = dataclasses.field(default=0.003, metadata={"minimum": 0.0})
    early_stopping_patience: int = dataclasses.field(default=5, metadata={"minimum": 0})


CONFIG_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


# region 1. load
def read_series(data_config, path=None):
    """Reads the series (``path``, ``--data`` files or a recipe) and applies the missing-value policy.

    Returns:
        ``(frame, report, frequency, source)``: targets then covariates on a regular time grid.
    """
    if path or data_config.path:
        paths = [path] if path else [data_config.path] + [getattr(data_config, f"{name}_path") for name in (
            "validation", "test") if getattr(data_config, f"{name}_path")]
        frame = pandas.concat([readers.read_timeseries(
            file, time_column=data_config.time_column, time_columns=data_config.time_columns,
            value_columns=(data_config.target_columns + data_config.covariate_columns) or None,
            missing_values=data_config.missing_values, time_format=data_config.time_format,
            file_format=data_config.format, encoding=data_config.encoding) for file in paths])
        source = str(paths[0])
        if not frame.index.is_monotonic_increasing or frame.index.has_duplicates:
            raise errors.SeqTemplatesError(f"{source}: data.validation_path and data.test_path must continue "
                                           "the series in time order, without overlap.")
    elif data_config.dataset:
        splits, _ = registry.read(data_config.dataset)
        frame = pandas.concat([splits[name] for name in ("train", "all", "validation", "test") if name in splits])
        source = f"dataset '{data_config.dataset}'"
    else:
        raise errors.SeqTemplatesError("No data: pass --data PATH or --dataset NAME.")
    targets = data_config.target_columns or [frame.columns[0]]
    for name in targets + data_config.covariate_columns:
        if name not in frame.columns or (name in targets and frame[name].dtype.kind != "f"):
            problem = "is not numeric" if name in frame.columns else "does not exist"
            raise errors.SeqTemplatesError(
                f"{source}: column '{name}' of data.target_columns/data.covariate_columns {problem}; the columns "
                f"are {', '.join(map(repr, frame.columns))}.")
    frame, report, frequency = windows.prepare_series(frame[targets + data_config.covariate_columns],
                                                      data_config.frequency, data_config.missing_policy, source)
    return frame, report, frequency, source


def column_groups(frame, data_config):
    """``{"targets": names, "covariates": numeric names, "categories": text names}``."""
    targets = data_config.target_columns or [frame.columns[0]]
    others = [name for name in frame.columns if name not in targets]
    numeric = [name for name in others if frame[name].dtype.kind == "f"]
    return {"targets": targets, "covariates": numeric, "categories": [name for name in others if name not in numeric]}


def window_inputs(frame, data_config, origins):
    """The raw named inputs of the windows that end just before ``origins`` (groups without columns left out)."""
    return {name: windows.gather_windows(frame[columns].to_numpy(dtype=object if name == "categories" else "float32"),
                                         origins, data_config.input_width, 0)[0]
            for name, columns in column_groups(frame, data_config).items() if columns}


def load_raw_data(data_config):
    """Returns ``{"train"|"validation"|"test": split}``: windows and what evaluation needs around them.

    A split holds ``inputs`` (raw named windows), ``future`` (``(windows, horizon, targets)``),
    ``origins`` (position of each first forecast step), ``series`` and ``index`` (the targets and
    times up to the block's end), ``block`` (the block's rows), ``train_size``, ``frequency``,
    ``season_length`` and ``report`` (what the missing-value policy filled).
    """
    frame, report, frequency, source = read_series(data_config)
    steps, width, horizon = len(frame), data_config.input_width, data_config.horizon
    sizes = {name: getattr(data_config, f"{name}_size") or int(round(steps * getattr(data_config, f"{name}_fraction")))
             for name in ("test", "validation")}
    bounds = windows.block_bounds(steps, sizes["test"], sizes["validation"], source)
    if bounds["train"][1] < width + horizon:
        raise errors.SeqTemplatesError(
            f"{source}: the training block has {bounds['train'][1]} steps, fewer than data.input_width + "
            f"data.horizon = {width + horizon}; give a longer series, or lower data.input_width, data.horizon "
            "or the held-out sizes.")
    targets = frame[column_groups(frame, data_config)["targets"]].to_numpy(dtype="float64")
    splits = {}
    for name, (start, stop) in bounds.items():
        train = name == "train"  # training windows stay inside the block; others may look back before it
        origins = windows.window_origins(
            start, stop, width, horizon, data_config.stride if train else data_config.backtest_stride,
            inputs_from=start if train else 0,
            max_origins={"test": data_config.backtest_origins, "train": data_config.max_train_samples}.get(name))
        if not len(origins):
            raise errors.SeqTemplatesError(
                f"{source}: the {name} block ({stop - start} steps) holds no window of data.horizon={horizon} "
                f"future steps; raise data.{name}_size or lower data.horizon.")
        splits[name] = {
            "inputs": window_inputs(frame, data_config, origins), "origins": origins,
            "future": windows.gather_windows(targets, origins, width, horizon)[1].astype("float32"),
            "series": targets[:stop], "index": frame.index[:stop], "block": frame.iloc[start:stop],
            "train_size": bounds["train"][1], "frequency": frequency, "report": report,
            "season_length": data_config.season_length or windows.season_length_for(frequency)}
    return splits
# endregion


# region 2. preprocess
def build_preprocessing(config, train_split):
    """Adapts Normalization layers (targets, numeric covariates) and a category lookup on the training block."""
    block = train_split["block"]
    groups = column_groups(block, config["data"])
    preprocessing = {"target_normalizer": keras.layers.Normalization(axis=-1, name="target_normalizer")}
    preprocessing["target_normalizer"].adapt(block[groups["targets"]].to_numpy(dtype="float32"))
    if groups["covariates"]:
        preprocessing["covariate_normalizer"] = keras.layers.Normalization(axis=-1, name="covariate_normalizer")
        preprocessing["covariate_normalizer"].adapt(block[groups["covariates"]].to_numpy(dtype="float32"))
    if groups["categories"]:
        preprocessing["category_lookup"] = keras.layers.StringLookup(name="category_lookup")
        preprocessing["category_lookup"].adapt(tf.constant(block[groups["categories"]].to_numpy(dtype=str).ravel()))
    return preprocessing


def featurize(preprocessing, config, inputs):
    """Raw named windows -> model features: numbers stay raw (the model normalizes), categories become ids."""
    features = {name: inputs[name] for name in ("targets", "covariates") if name in inputs}
    if "categories" in inputs:
        features["category_ids"] = preprocessing["category_lookup"](inputs["categories"])
    return features


def make_dataset(split, preprocessing, config, shuffle=False):
    """``(features, normalized future)`` batches."""
    inputs = {name: tf.constant(values.astype(str) if values.dtype == object else values)
              for name, values in split["inputs"].items()}
    dataset = tf.data.Dataset.from_tensor_slices((inputs, split["future"])).batch(1024).map(
        lambda raw, future: (featurize(preprocessing, config, raw), preprocessing["target_normalizer"](future))
    ).unbatch().cache()
    if shuffle:
        dataset = dataset.shuffle(len(split["future"]), seed=config["train"].seed, reshuffle_each_iteration=True)
    return dataset.batch(config["train"].batch_size).prefetch(tf.data.AUTOTUNE)
# endregion


# region 3. build model
def build_model(config, preprocessing):
    """Returns the compiled model: raw ``targets``[, ``covariates``, ``category_ids``] -> normalized forecast."""
    model_config, data_config = config["model"], config["data"]
    width, horizon, quantiles = data_config.input_width, data_config.horizon, model_config.quantiles
    check_model_settings(model_config, data_config)
    widths = {name: int(np.prod(preprocessing[layer].mean.shape)) for name, layer in
              (("targets", "target_normalizer"), ("covariates", "covariate_normalizer")) if layer in preprocessing}
    inputs = {name: keras.Input(shape=(width, size), name=name) for name, size in widths.items()}
    normalized = preprocessing["target_normalizer"](inputs["targets"])
    side = []  # per-step covariate features
    if "covariates" in inputs:
        side.append(preprocessing["covariate_normalizer"](inputs["covariates"]))
    if "category_lookup" in preprocessing:
        count = len(data_config.covariate_columns) - widths.get("covariates", 0)  # the categorical columns
        inputs["category_ids"] = keras.Input(shape=(width, count), dtype="int64", name="category_ids")
        embedded = keras.layers.Embedding(preprocessing["category_lookup"].vocabulary_size(),
                                          model_config.category_embedding_dim)(inputs["category_ids"])
        side.append(keras.layers.Reshape((width, count * model_config.category_embedding_dim))(embedded))
    side = keras.layers.Concatenate(name="covariate_features")(side) if len(side) > 1 else (side or [None])[0]
    encoder_arguments = (model_config.cell, model_config.units, model_config.num_layers, model_config.bidirectional,
                         model_config.dropout_rate)
    residual_to, season_length = model_config.residual_to, data_config.season_length or 1
    if model_config.architecture == "autoregressive":  # a one-step model fed its own forecasts in the graph
        one_step = forecasting_layers.one_step_model(
            width, widths["targets"], side.shape[-1] if side is not None else 0, model_config.cell,
            model_config.units, model_config.num_layers, model_config.dropout_rate, residual_to, season_length)
        output = forecasting_layers.autoregressive_rollout(one_step, normalized, horizon, side)
    else:
        features = normalized if side is None else keras.layers.Concatenate(name="features")([normalized, side])
        if model_config.architecture == "encoder_decoder":
            output = forecasting_layers.encoder_decoder(features, horizon, widths["targets"], len(quantiles),
                                                        *encoder_arguments)
        else:  # single_step and direct: one Dense over the horizon
            encoded = recurrent.recurrent_stack(features, *encoder_arguments, name="encoder")
            output = forecasting_layers.forecast_head(encoded, horizon, widths["targets"], len(quantiles))
        base = forecasting_layers.baseline_path(normalized, residual_to, width, horizon, season_length)
        if base is not None:
            base = keras.layers.Reshape((-1, widths["targets"], 1))(base) if quantiles else base
            output = keras.layers.Add(name="corrected_forecast")([output, base])
    model = keras.Model(inputs, output, name=f"{TASK}_{model_config.architecture}_{model_config.cell}")
    loss = forecasting_layers.PinballLoss(quantiles) if quantiles else (
        keras.losses.Huber() if model_config.loss == "huber" else model_config.loss)
    model.compile(optimizer=training.build_optimizer(config["train"]), loss=loss,
                  metrics=[] if quantiles else ["mae"])
    return model


def check_model_settings(model_config, data_config):
    """Refuses settings that do not go together, naming the fix."""
    quantiles = model_config.quantiles
    if model_config.architecture == "single_step" and data_config.horizon != 1:
        raise errors.SeqTemplatesError("model.architecture=single_step forecasts one step; set data.horizon=1 "
                                       "or choose direct, autoregressive or encoder_decoder.")
    if model_config.architecture == "autoregressive" and quantiles:
        raise errors.SeqTemplatesError("model.quantiles needs architecture single_step, direct or "
                                       "encoder_decoder; the autoregressive model feeds back one value per step.")
    if any(not 0.0 < quantile < 1.0 for quantile in quantiles) or quantiles != sorted(set(quantiles)):
        raise errors.SeqTemplatesError(f"model.quantiles expects increasing levels in (0, 1), received {quantiles}.")
    if model_config.residual_to == "seasonal" and not data_config.season_length:
        raise errors.SeqTemplatesError("model.residual_to=seasonal needs data.season_length; set it (e.g. 12).")
# endregion


# region 6. export (defined before evaluation, which runs through the same serving function)
def input_signature(preprocessing, config):
    """The export's named raw inputs: ``targets``[, ``covariates``][, ``categories``] windows."""
    width = config["data"].input_width
    specs = [tf.TensorSpec([None, width, int(np.prod(preprocessing[layer].mean.shape))], tf.float32, name=name)
             for name, layer in (("targets", "target_normalizer"), ("covariates", "covariate_normalizer"))
             if layer in preprocessing]
    if "category_lookup" in preprocessing:
        specs.append(tf.TensorSpec([None, width, None], tf.string, name="categories"))
    return specs


def build_serving(model, preprocessing, config):
    """Returns ``(archive, endpoints)``: raw windows in; ``forecast`` (+ ``quantiles``, ``lower``, ``upper``) out."""
    normalizer, quantiles = preprocessing["target_normalizer"], config["model"].quantiles

    def forecast(**inputs):
        normalized = model(featurize(preprocessing, config, inputs), training=False)
        mean = tf.reshape(tf.cast(normalizer.mean, tf.float32), [-1])
        scale = tf.maximum(tf.sqrt(tf.reshape(tf.cast(normalizer.variance, tf.float32), [-1])),
                           keras.config.epsilon())  # as Normalization divides
        if not quantiles:
            return {"forecast": normalized * scale + mean}
        values = normalized * scale[:, None] + mean[:, None]
        middle = quantiles.index(0.5) if 0.5 in quantiles else len(quantiles) // 2
        return {"forecast": values[..., middle], "quantiles": values, "lower": values[..., 0],
                "upper": values[..., -1]}

    specs = input_signature(preprocessing, config)
    # tf.function needs one named parameter per input: one small function per combination of groups.
    serve = {("targets",): lambda targets: forecast(targets=targets),
             ("targets", "covariates"): lambda targets, covariates: forecast(targets=targets, covariates=covariates),
             ("targets", "categories"): lambda targets, categories: forecast(targets=targets, categories=categories),
             INPUT_GROUPS: lambda targets, covariates, categories: forecast(
                 targets=targets, covariates=covariates, categories=categories)}[tuple(spec.name for spec in specs)]
    serve = tf.function(serve, input_signature=specs)
    archive = export.new_archive([model, *preprocessing.values()])
    archive.add_endpoint("serving_default", serve)
    return archive, {"serving_default": serve}


def example_inputs(raw_data, config):
    """The first test windows, as lists (the parity check and the contract tests send them)."""
    return {"serving_default": {name: values[:16].tolist() for name, values in raw_data["test"]["inputs"].items()}}


def read_prediction_file(path, config):
    """``predict --input-file``: the last ``input_width`` steps of a file in the training format.

    The file goes through the reader, time grid and missing-value policy of training; the
    record's ``_context`` (not a model input) carries the forecast's timestamps to
    :func:`describe_prediction`.
    """
    data_config = config["data"]
    if data_config.dataset and not data_config.path:  # a file like the recipe's: read it with its options
        options = registry.reader_options(registry.get_recipe(data_config.dataset))
        data_config = dataclasses.replace(data_config, **{key: options.get(key) for key in (
            "time_column", "time_columns", "time_format")}, missing_values=options.get("missing_values") or [])
    frame, report, frequency, source = read_series(data_config, path=path)
    if len(frame) < data_config.input_width:
        raise errors.SeqTemplatesError(
            f"{source}: {len(frame)} time steps, but the model reads the last data.input_width="
            f"{data_config.input_width}; give a file with at least {data_config.input_width} rows.")
    record = {name: values[0].tolist() for name, values in window_inputs(frame, data_config, [len(frame)]).items()}
    record["_context"] = {
        "input": {"file": source, "last_time": str(frame.index[-1]), "filled": report},
        "targets": column_groups(frame, data_config)["targets"],
        "times": windows.future_times(frame.index[-1], frequency, data_config.horizon)}
    return [(source, record)]


def describe_prediction(record, config):
    """Replaces the raw window by where it came from, and lists the forecast by timestamp."""
    context = record["input"].get("_context") if isinstance(record.get("input"), dict) else None
    if context is None:  # an INPUT given on the command line: no timestamps known
        return record
    rows = []
    for step, time in enumerate(context["times"]):
        row = {"time": time}
        for index, name in enumerate(context["targets"]):
            row[name] = round(float(record["forecast"][step][index]), 6)
            levels = record["quantiles"][step][index] if "quantiles" in record else []
            for quantile, value in zip(config["model"].quantiles, levels):
                row[f"{name}_q{quantile:g}"] = round(float(value), 6)
        rows.append(row)
    return {"input": context["input"], "forecast": rows}
# endregion


# region 5. evaluate
def evaluate(predict, raw_data, config, output_dir):
    """A rolling-origin backtest on the test block: the model beside naive, seasonal-naive, moving-average and ETS.

    ``predict`` takes the raw named windows and returns ``{"forecast"[, "lower", "upper"]}``.
    """
    data_config, test = config["data"], raw_data["test"]
    origins, season, horizon = test["origins"], test["season_length"], data_config.horizon
    outputs = predict(test["inputs"])
    scale = forecasting.seasonal_naive_scale(test["series"][:test["train_size"]], season)
    forecasts = forecasting.baseline_forecasts(
        test["series"], origins, horizon, season, test["train_size"], data_config.moving_average_width,
        data_config.ets, data_config.ets_trend, data_config.ets_seasonal, data_config.ets_damped_trend)
    baselines = {name: forecasting.point_metrics(test["future"], values, scale) for name, values in forecasts.items()}
    model_metrics = forecasting.point_metrics(test["future"], outputs["forecast"], scale)
    interval = {}
    if "lower" in outputs:
        quantiles = config["model"].quantiles
        model_metrics.update({"interval": [quantiles[0], quantiles[-1]], "nominal": quantiles[-1] - quantiles[0],
                              "coverage": forecasting.coverage(test["future"], outputs["lower"], outputs["upper"])})
        interval = {"lower": outputs["lower"][-1, :, 0], "upper": outputs["upper"][-1, :, 0]}
    origin, history_start = origins[-1], max(int(origins[-1]) - 4 * max(horizon, season), 0)
    plots.forecast(test["index"][history_start:origin], test["series"][history_start:origin, 0],
                   test["index"][origin:origin + horizon], test["future"][-1, :, 0], outputs["forecast"][-1, :, 0],
                   pathlib.Path(output_dir) / "plots" / "forecast.png", **interval,
                   baseline=forecasts["seasonal_naive"][-1, :, 0], baseline_name="seasonal naive",
                   title=f"Forecast from the last test origin ({test['index'][origin]})",
                   value_name=test["block"].columns[0])
    best = min(baselines, key=lambda name: baselines[name]["mae"])
    return {"split": "test", "num_origins": len(origins), "horizon": horizon, "season_length": season,
            "frequency": test["frequency"], "missing_values": test["report"], "model": model_metrics,
            "baseline": {"name": best, **baselines[best]}, "baselines": baselines}
# endregion


def main(argv=None):
    """Trains, evaluates and exports a forecaster; returns the exit status."""
    run = lifecycle.start(argv, CONFIG_SECTIONS, TASK, __file__, description=__doc__.splitlines()[0])
    config = run.config
    raw_data = load_raw_data(config["data"])  # 1. load (before any folder is made)
    report = raw_data["train"]["report"]
    counts = ", ".join(f"{name} {len(split['origins'])} windows" for name, split in raw_data.items())
    print(f"Data: {counts}; frequency {raw_data['train']['frequency']}; missing values ({report['policy']}): "
          f"{report['filled_values'] or 'none'}, rows added for gaps: {report['rows_added_for_gaps']}")
    with run.directory():
        preprocessing = run.preprocessing(build_preprocessing, raw_data["train"])  # 2. preprocess
        train_dataset = make_dataset(raw_data["train"], preprocessing, config, shuffle=True)
        validation_dataset = make_dataset(raw_data["validation"], preprocessing, config)
        model = run.model(build_model, preprocessing)  # 3. build model (or the checkpoint's on --resume)
        run.fit(model, train_dataset, validation_dataset)  # 4. train
        archive, endpoints = build_serving(model, preprocessing, config)
        metrics = run.record_metrics(evaluate(export.batch_predictor(endpoints["serving_default"]),  # 5.
                                              raw_data, config, run.path))
        print(f"Test MAE {metrics['model']['mae']:.4f} (MASE {metrics['model']['mase']:.3f}) over "
              f"{metrics['num_origins']} origins; baselines: " + ", ".join(
                  f"{name} {values['mae']:.4f}" for name, values in metrics["baselines"].items()))
        version_path = run.export(archive, {"serving.json": {  # 6. export
            "columns": column_groups(raw_data["train"]["block"], config["data"]),
            "frequency": raw_data["train"]["frequency"], "horizon": config["data"].horizon,
            "quantiles": config["model"].quantiles}})
        run.check_export(version_path, endpoints, example_inputs(raw_data, config))  # 7. check the reloaded export
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
