"""Time-series forecasting (window -> horizon): past values in, the next ones out, in their units.

``seq-templates train forecasting [--dataset airline_passengers]``: load (time grid, gaps,
windows) -> preprocess -> model (single-step, direct, autoregressive, encoder-decoder) -> train ->
evaluate (a backtest beside naive, seasonal naive, moving average, ETS) -> export -> check."""

import dataclasses
import pathlib
import sys
import typing

import keras
import tensorflow as tf

from seq_templates import auto_settings as auto
from seq_templates import cli
from seq_templates import config as config_module
from seq_templates import errors
from seq_templates import export
from seq_templates import lifecycle
from seq_templates import training
from seq_templates.data import prepared_series
from seq_templates.data import readers
from seq_templates.data import registry
from seq_templates.evaluation import forecasting
from seq_templates.layers import forecasting as forecasting_layers
from seq_templates.layers import recurrent
from seq_templates.preprocessing import windows

TASK = "forecasting"
ETS_CHOICES, POSITIVE = {"choices": (None, "add", "mul")}, {"minimum": 1}
NORMALIZERS = {"targets": "target_normalizer", "covariates": "covariate_normalizer"}
HEADLINE = ("mae", "min", "model.mae", ("baselines.*.mae",))  # beside every baseline's
TIME_OPTIONS = ("time_column", "time_columns", "time_format", "year_offset")  # how times are read
COLUMN_KEYS = ("target_columns", "covariate_columns")  # the columns read, each named in its errors


@dataclasses.dataclass
class DataConfig(config_module.DataConfig):
    """The series (files or a dataset: see the base), its columns, windows and baselines."""

    dataset: typing.Optional[str] = "synthetic_series"  # a registry name (`seq-templates list`)
    time_column: typing.Optional[str] = None  # --data: the timestamp column (or time_columns)
    time_columns: typing.Optional[typing.List[str]] = None  # --data: e.g. [year, month, day, hour]
    time_format: typing.Optional[str] = None  # --data: strftime format; null infers it
    year_offset: typing.Optional[int] = None  # --data: added to counted years (1-01: 1900)
    missing_values: typing.List[str] = dataclasses.field(default_factory=list)  # e.g. [NA, "?"]
    target_columns: typing.List[str] = dataclasses.field(default_factory=list)  # []: the first
    covariate_columns: typing.List[str] = dataclasses.field(default_factory=list)  # number, text
    frequency: typing.Optional[str] = None  # pandas alias (h, D, MS); null infers it
    missing_policy: str = dataclasses.field(default="error",
                                            metadata={"choices": windows.MISSING_POLICIES})
    input_width: int = dataclasses.field(default=48, metadata=POSITIVE)
    horizon: int = dataclasses.field(default=12, metadata=POSITIVE)
    stride: int = dataclasses.field(default=1, metadata=POSITIVE)  # between training windows
    test_size: typing.Optional[int] = dataclasses.field(default=None, metadata=POSITIVE)  # steps
    validation_size: typing.Optional[int] = dataclasses.field(default=None, metadata=POSITIVE)
    season_length: typing.Optional[int] = dataclasses.field(default=None, metadata=POSITIVE)
    backtest_origins: typing.Optional[int] = dataclasses.field(default=None, metadata=POSITIVE)
    backtest_stride: int = dataclasses.field(default=1, metadata=POSITIVE)
    moving_average_width: typing.Optional[int] = dataclasses.field(default=None, metadata=POSITIVE)
    ets: bool = True  # the exponential-smoothing baseline (statsmodels Holt-Winters)
    ets_trend: typing.Optional[str] = dataclasses.field(default="add", metadata=ETS_CHOICES)
    ets_seasonal: typing.Optional[str] = dataclasses.field(default="add", metadata=ETS_CHOICES)
    ets_damped_trend: bool = True


@dataclasses.dataclass
class ModelConfig:
    """Normalized window -> recurrent encoder -> forecast head (or decoder, or fed-back steps)."""

    architecture: str = dataclasses.field(
        default="direct", metadata={"choices": forecasting_layers.ARCHITECTURES})
    cell: str = dataclasses.field(default="lstm", metadata={"choices": recurrent.CELLS})
    units: int = dataclasses.field(default=64, metadata=POSITIVE)
    num_layers: int = dataclasses.field(default=1, metadata=POSITIVE)
    bidirectional: bool = False  # the encoder (not the autoregressive step model's)
    dropout_rate: float = dataclasses.field(default=0.0, metadata=config_module.RATE)
    residual_to: str = dataclasses.field(default="last_value", metadata={  # what the network
        "choices": ("none", "last_value", "seasonal", "seasonal_mean")})  # corrects (README step 3)
    quantiles: typing.List[float] = dataclasses.field(default_factory=list)  # [0.1, 0.5, 0.9]
    loss: str = dataclasses.field(default="mse", metadata={"choices": ("mse", "mae", "huber")})
    category_embedding_dim: int = dataclasses.field(default=4, metadata=POSITIVE)


@dataclasses.dataclass
class TrainConfig(config_module.TrainConfig):
    """The shared training options (see the base) with this template's defaults."""

    epochs: int = dataclasses.field(default=30, metadata=POSITIVE)
    batch_size: int = dataclasses.field(default=32, metadata=POSITIVE)
    learning_rate: float = dataclasses.field(default=0.003, metadata={"minimum": 0.0})
    early_stopping_patience: int = dataclasses.field(default=5, metadata={"minimum": 0})
    monitor: str = "val_forecast_mae"  # validation origins in the series' units (min: auto)


CONFIG_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def check_settings(config):
    """Refuses model settings that do not go together, naming the fix (before reading data)."""
    model, data = config["model"], config["data"]
    forecasting_layers.check_network_settings(model.architecture, data.horizon, model.quantiles,
                                              model.residual_to, data.season_length)


# region 1. load
def auto_settings(config):
    """Real data: windows, blocks, residual and ETS form from the series (auto_settings.py)."""
    data_config = dataclasses.replace(config["data"], missing_policy="interpolate")  # gaps counted
    frame, report, frequency, _ = read_series(data_config)  # its first target decides
    return auto.series_windows(frame, data_config.target_columns, frequency, report)


def read_series(data_config, path=None):
    """The series (``path``, ``--data`` or a dataset): ``(frame, report, frequency, source)``."""
    if not path and prepared_series.is_prepared(data_config.path):  # `seq-templates prepare`d
        return prepared_series.read(data_config, TASK)  # (its last steps; training streams)
    if path or data_config.path:
        paths = [path] if path else [file for file in (
            data_config.path, data_config.validation_path, data_config.test_path) if file]
        options = {key: getattr(data_config, key) for key in (*TIME_OPTIONS, "missing_values")}
        frames, source = [readers.read_timeseries(
            file, value_columns={f"data.{key}": getattr(data_config, key) for key in COLUMN_KEYS
                                 if data_config.target_columns},  # none: all (the first target)
            file_format=data_config.format, encoding=data_config.encoding, **options)
            for file in paths], str(paths[0])
    elif data_config.dataset:
        (splits, _), source = registry.read(data_config.dataset), f"dataset '{data_config.dataset}'"
        frames = [splits[name] for name in ("train", "all", "validation", "test") if name in splits]
    else:
        raise errors.SeqTemplatesError("No data: pass --data PATH or --dataset NAME.")
    return (*windows.series_frame(frames, data_config.target_columns, data_config.covariate_columns,
            data_config.frequency, data_config.missing_policy, source), source)


def prepare_data(data, output, **limits):  # `seq-templates prepare`: a chunk of rows at a time
    return prepared_series.prepare(output, data, TASK, **limits)


def load_raw_data(data_config):
    """Returns ``{"train"|"validation"|"test": windows.WindowSplit}``: blocks in time order."""
    frame, report, frequency, source = read_series(data_config)
    steps = prepared_series.steps(frame)  # a prepared series' frame is its tail
    sizes = [getattr(data_config, f"{name}_size")  # steps, else a fraction of the series
             or int(round(steps * getattr(data_config, f"{name}_fraction")))
             for name in ("test", "validation")]
    evaluation = data_config.backtest_stride  # steps between the origins of held-out windows
    return prepared_series.split_windows(  # a prepared series: training windows streamed
        frame, windows.column_groups(frame, data_config.target_columns),
        windows.block_bounds(steps, *sizes, source), data_config.input_width, data_config.horizon,
        strides={"train": data_config.stride, "validation": evaluation, "test": evaluation},
        max_origins={"train": data_config.max_train_samples, "test": data_config.backtest_origins},
        frequency=frequency, report=report, source=source,
        season_length=data_config.season_length or windows.season_length_for(frequency))
# endregion


# region 2. preprocess
def build_preprocessing(config, train_split):
    """Normalization (numbers) and category lookups adapted on the training block; columns too."""
    groups = windows.column_groups(train_split.block, config["data"].target_columns)
    preprocessing = {}
    for name, layer in NORMALIZERS.items():
        if groups[name]:
            preprocessing[layer] = keras.layers.Normalization(axis=-1, name=layer)
            preprocessing[layer].adapt(train_split.block[groups[name]].to_numpy(dtype="float32"))
    if groups["categories"]:
        preprocessing["category_lookup"] = keras.layers.StringLookup(name="category_lookup")
        preprocessing["category_lookup"].adapt(
            tf.constant(train_split.block[groups["categories"]].to_numpy(dtype=str).ravel()))
    preprocessing["series_description"] = forecasting_layers.series_description(
        groups, train_split.frequency)
    return preprocessing


def featurize(preprocessing, inputs):
    """Raw named windows -> features: numbers stay raw (the model normalizes), categories ids."""
    features = {name: inputs[name] for name in ("targets", "covariates") if name in inputs}
    if "categories" in inputs:
        features["category_ids"] = preprocessing["category_lookup"](inputs["categories"])
    return features


def make_dataset(split, preprocessing, config, shuffle=False):
    """``(features, normalized future)`` batches."""
    return forecasting_layers.window_dataset(split, lambda raw, future: (  # or prepared shards
        featurize(preprocessing, raw), preprocessing["target_normalizer"](future)),
        config["train"].batch_size, shuffle=shuffle, seed=config["train"].seed)
# endregion


# region 3. build model
def build_model(config, preprocessing):
    """The compiled model: raw ``targets``[, ``covariates``, ``category_ids``] -> forecast."""
    model_config, data_config = config["model"], config["data"]
    quantiles, name = model_config.quantiles, f"{TASK}_{model_config.architecture}"
    inputs, normalized, side = forecasting_layers.window_inputs(
        data_config.input_width, *(preprocessing.get(key) for key in (*NORMALIZERS.values(),
                                                                       "category_lookup")),
        len(preprocessing["series_description"]["columns"]["categories"]),  # (the series' own)
        model_config.category_embedding_dim)
    output = forecasting_layers.forecast_network(
        normalized, side, model_config.architecture, data_config.horizon, len(quantiles),
        model_config.cell, model_config.units, model_config.num_layers, model_config.bidirectional,
        model_config.dropout_rate, model_config.residual_to, data_config.season_length or 1)
    model = keras.Model(inputs, output, name=f"{name}_{model_config.cell}")
    loss = forecasting_layers.PinballLoss(quantiles) if quantiles else (
        keras.losses.Huber() if model_config.loss == "huber" else model_config.loss)
    model.compile(optimizer=training.build_optimizer(config["train"]), loss=loss,
                  metrics=[] if quantiles else ["mae"])
    return model
# endregion


# region 4. train
def training_callbacks(preprocessing, config, raw_data):
    """``val_forecast_mae``, the monitor: validation MAE at the best scale of the correction."""
    validation = raw_data["validation"]
    return [forecasting_layers.shrinkage_score(
        "val_forecast_mae", lambda model: build_serving(model, preprocessing, config)[1][
            "serving_default"], validation.inputs, validation.future, forecasting.mae)]
# endregion


# region 5. evaluate
def evaluate(predictors, raw_data, config, output_dir):
    """A rolling-origin backtest of the test block beside naive, seasonal naive, MA and ETS."""
    data_config, quantiles, test = config["data"], config["model"].quantiles, raw_data["test"]
    outputs = predictors["serving_default"](test.inputs)
    metrics, baselines = forecasting.backtest(
        test.future, outputs["forecast"], test.series, test.origins, test.train_size,
        test.season_length, data_config.moving_average_width, data_config.ets,
        data_config.ets_trend, data_config.ets_seasonal, data_config.ets_damped_trend,
        outputs.get("lower"), outputs.get("upper"), quantiles)
    forecasting.plot_last_origin(
        pathlib.Path(output_dir) / "plots" / "forecast.png", test.index, test.series, test.future,
        outputs["forecast"], test.origins, test.season_length, baselines["seasonal_naive"],
        outputs.get("lower"), outputs.get("upper"), value_name=test.block.columns[0])
    return {"split": "test", "num_origins": len(test), "horizon": data_config.horizon,
            "season_length": test.season_length, "frequency": test.frequency,
            "missing_values": test.report, **metrics}


def summary(metrics):
    """The line printed after evaluation: the model beside the baselines, and the series' grid."""
    return (f"Test {forecasting.describe_backtest(metrics)} ({metrics['num_origins']} origins); "
            + windows.describe_report(metrics["missing_values"], metrics["frequency"]))
# endregion


# region 6. export
def build_serving(model, preprocessing, config):
    """``(archive, endpoints, assets)``: raw windows -> forecasts in the series' units."""
    quantiles = config["model"].quantiles
    def forecast(**inputs):  # raw windows -> the model -> the series' units
        normalized = model(featurize(preprocessing, inputs), training=False)
        return forecasting_layers.forecast_outputs(normalized, preprocessing["target_normalizer"],
                                                   quantiles)

    serve = forecasting_layers.serving_function(forecast, forecasting_layers.input_specs(model))
    archive = export.new_archive([model, *(layer for layer in preprocessing.values() if not
                                           isinstance(layer, dict))], {"serving_default": serve})
    assets = {"serving.json": {**preprocessing["series_description"],
                               "horizon": config["data"].horizon, "quantiles": quantiles}}
    return archive, {"serving_default": serve}, assets


def example_inputs(raw_data, config):
    """The first test windows, as lists (the parity check and the contract tests send them)."""
    return {"serving_default": {name: values[:16].tolist()
                                for name, values in raw_data["test"].inputs.items()}}


def read_prediction_file(path, config):
    """``predict --input-file``: its last ``input_width`` steps, read as training read them."""
    data_config = prepared_series.source_settings(config["data"])  # a prepared source's
    if data_config.dataset and not data_config.path:  # a file like the recipe's: its options
        options = registry.reader_options(registry.get_recipe(data_config.dataset))
        data_config = dataclasses.replace(data_config, missing_values=options.get(
            "missing_values") or [], **{key: options.get(key) for key in TIME_OPTIONS})
    series = read_series(data_config, path=path)  # (frame, report, frequency, source)
    return [(series[3], windows.prediction_record(*series, data_config.target_columns,
                                                  data_config.input_width, data_config.horizon))]


def describe_prediction(record, config):
    """Replaces the raw window by where it came from, and lists the forecast by timestamp."""
    return windows.describe_forecast(record, config["model"].quantiles)  # by read_prediction_file
# endregion


def main(argv=None):
    """Trains, evaluates and exports a forecaster (the seven regions, in order); returns 0."""
    return lifecycle.train(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
