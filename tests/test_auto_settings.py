"""Settings that follow the data: the shared rules, and what a run with real data gets from them."""

import dataclasses
import json

import numpy as np
import pandas
import pytest
import yaml

from seq_templates import auto_settings
from seq_templates import config as config_module


def test_vocabulary_keeps_tokens_seen_twice():
    counts = auto_settings.token_counts([["a", "b", "a"], ["c", "b", "d"]])
    (choice,) = auto_settings.vocabulary("data.max_tokens", counts)
    assert choice.key == "data.max_tokens" and choice.value == 2 + 2  # a and b, plus padding and OOV


def test_bucket_boundaries_follow_length_quantiles():
    (choice,) = auto_settings.bucket_boundaries(list(range(1, 101)))
    assert choice.value == sorted(set(choice.value))
    assert choice.value[0] <= 8 and choice.value[-1] >= 99


def test_widths_and_batch_grow_with_the_data():
    small, large = (auto_settings.recurrent_sizes([10] * count) for count in (100, 200_000))
    values = [{choice.key: choice.value for choice in choices if isinstance(choice, auto_settings.Choice)}
              for choices in (small, large)]
    assert values[0]["model.units"] < values[1]["model.units"]
    assert values[0]["train.batch_size"] < values[1]["train.batch_size"]
    assert values[0]["model.dropout_rate"] > values[1]["model.dropout_rate"]


def test_apply_keeps_the_users_keys_and_runs_the_schedule_on_the_batch_in_use():
    sections = {"data": config_module.DataConfig, "model": config_module.RecurrentConfig,
                "train": config_module.TrainConfig}
    config = config_module.resolve(sections, overrides=["train.batch_size=10"])
    choices = [auto_settings.Choice("model.units", 96, "test"), *auto_settings.batch_size(100_000),
               auto_settings.schedule(5000)]
    new_config, applied, kept = auto_settings.apply(config, sections, choices, {"train.batch_size"})
    assert new_config["model"].units == 96
    assert new_config["train"].batch_size == 10  # the user's
    assert [choice.key for choice in kept] == ["train.batch_size"]
    assert new_config["train"].early_stopping_patience == 5  # 500 steps of 10 examples: at least 5
    tiny = dict((choice.key, choice.value) for choice in auto_settings.schedule(30).rule(new_config))
    assert tiny["train.early_stopping_patience"] == 100 and tiny["train.epochs"] == 1000  # 3 steps
    assert new_config["train"].ema_momentum == pytest.approx(0.998)
    assert "model.units 96: test" in auto_settings.describe(applied, kept, new_config)


@dataclasses.dataclass
class EmbeddedRecurrentConfig(config_module.RecurrentConfig):
    embedding_dim: int = 16


def test_the_budget_keeps_the_widest_width_whose_epochs_fit():
    sections = {"data": config_module.DataConfig, "model": EmbeddedRecurrentConfig,
                "train": config_module.TrainConfig}
    config = config_module.resolve(sections, overrides=["train.max_minutes=10", "train.epochs=50"])
    choices = auto_settings.widths(("model.units", "model.embedding_dim"), 5_000_000, within_budget=True)
    rule = auto_settings.budget_rule(choices, explicit_keys=set())
    assert rule.widths == [256, 128, 64] and rule.num_tokens == 5_000_000
    timed = []

    def seconds_per_token(candidate):  # 5 M tokens per epoch: 256 -> 2.5 min, 128 -> 1.25 min
        timed.append(candidate["model"].units)
        assert candidate["model"].embedding_dim == candidate["model"].units
        return {256: 150, 128: 75, 64: 40}[candidate["model"].units] / 5e6 / auto_settings.EPOCH_OVERHEAD

    narrowed, timings = auto_settings.narrow_to_budget(rule, config, seconds_per_token)
    assert timed == [256, 128]  # 5 epochs of 256 need 12.5 min; 128 fits, 64 is never timed
    assert {choice.key: choice.value for choice in narrowed} == {"model.units": 128, "model.embedding_dim": 128}
    assert timings[128] == pytest.approx(75.0) and "fits 5 times into 10 min" in narrowed[0].reason
    tight = dataclasses.replace(config["train"], max_minutes=1)
    narrowed, _ = auto_settings.narrow_to_budget(rule, {**config, "train": tight}, seconds_per_token)
    assert narrowed[0].value == 64 and "none fits" in narrowed[0].reason
    assert auto_settings.budget_rule(choices, explicit_keys={"model.units"}) is None  # the user sized it


def test_an_encoder_decoder_warms_its_learning_rate_up_over_one_epoch_of_the_batch_in_use():
    sections = {"data": config_module.DataConfig, "model": config_module.RecurrentConfig,
                "train": config_module.TrainConfig}
    config = config_module.defaults(sections)
    for pairs, batch, steps in ((10_000, 32, 313), (500_000, 128, auto_settings.WARMUP_STEPS)):
        choices = [*auto_settings.batch_size(pairs), *auto_settings.encoder_decoder_learning_rate(pairs)]
        warm, _, _ = auto_settings.apply(config, sections, choices, set())
        assert warm["train"].batch_size == batch and warm["train"].warmup_steps == steps
        assert warm["train"].learning_rate == auto_settings.ENCODER_DECODER_RATE
    given, _, kept = auto_settings.apply(config, sections, choices, {"train.warmup_steps"})
    assert given["train"].warmup_steps == 0 and [choice.key for choice in kept] == ["train.warmup_steps"]


def test_apply_refuses_a_value_a_setting_cannot_take():
    sections = {"data": config_module.DataConfig, "model": config_module.RecurrentConfig,
                "train": config_module.TrainConfig}
    config = config_module.defaults(sections)
    with pytest.raises(Exception, match="auto_settings=false"):
        auto_settings.apply(config, sections, [auto_settings.Choice("model.cell", "tree", "test")], set())


def test_series_windows_pick_the_season_and_the_seasonal_residual():
    steps = np.arange(240)
    values = 100 + 10 * np.sin(2 * np.pi * steps / 12) + 0.01 * steps
    frame = pandas.DataFrame({"value": values}, index=pandas.date_range("2000-01-01", periods=240, freq="MS"))
    report = {"policy": "interpolate", "rows_added_for_gaps": 1, "filled_values": {"value": 3}}
    choices = {choice.key: choice.value for choice in auto_settings.series_windows(frame, [], "MS", report)
               if isinstance(choice, auto_settings.Choice)}
    assert choices["data.missing_policy"] == "interpolate"
    assert choices["data.horizon"] == 12 and choices["data.season_length"] == 12
    assert choices["model.residual_to"] == "seasonal"
    assert choices["data.input_width"] >= 12
    assert choices["data.ets_seasonal"] in ("add", "mul")


def test_series_windows_average_seasons_when_one_season_is_noisy():
    steps = np.arange(240)
    values = 10 * np.sin(2 * np.pi * steps / 12) + np.random.default_rng(0).normal(0, 2, 240)
    frame = pandas.DataFrame({"value": values}, index=pandas.date_range("2000-01-01", periods=240, freq="MS"))
    choices = {choice.key: choice.value for choice in auto_settings.series_windows(frame, [], "MS")
               if isinstance(choice, auto_settings.Choice)}
    assert choices["data.input_width"] == 24
    assert choices["model.residual_to"] == "seasonal_mean"


def test_series_windows_do_not_average_a_season_the_series_lacks():
    # Daily values on a yearly wave with noise: the week ago is no better a guess than yesterday,
    # so averaging the last two weeks (which errs least) would only smooth.
    steps = np.arange(1500)
    values = 10 * np.sin(2 * np.pi * steps / 365) + np.random.default_rng(0).normal(0, 2, 1500)
    frame = pandas.DataFrame({"value": values}, index=pandas.date_range("2000-01-01", periods=1500, freq="D"))
    residual = [choice for choice in auto_settings.series_windows(frame, [], "D")
                if getattr(choice, "key", "") == "model.residual_to"][0]
    errors_by_residual = dict(part.split() for part in residual.reason.split(" of ", 1)[1].split("; ")[0].split(", "))
    assert float(errors_by_residual["seasonal_mean"]) < float(errors_by_residual["last_value"])
    assert residual.value == "last_value"


def write_reviews(path, count=300, unique=False):
    rows = ["text,label"]
    for index in range(count):
        label = "pos" if index % 2 else "neg"
        word = "great" if label == "pos" else "awful"
        rows.append(f"the film {index if unique else index % 7} was {word} and the cast {index % 5},{label}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_a_run_on_real_data_writes_the_auto_settings_it_chose(tmp_path, cli_in_process):
    data = tmp_path / "reviews.csv"
    write_reviews(data)
    run = tmp_path / "run"
    result = cli_in_process("train", "sentiment", "--data", data, "--output-dir", run,
                            "--set", "train.epochs=1", "--set", "model.units=7", "--set", "train.verbose=0")
    assert result.returncode == 0, result.stderr
    assert "Settings from the training split" in result.out if hasattr(result, "out") else result.stdout
    assert "yours, kept: " in result.stdout and "model.units=7" in result.stdout
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["units"] == 7  # the user's value wins
    assert saved["train"]["epochs"] == 1
    assert saved["train"]["batch_size"] == 16  # 240 training examples
    assert saved["train"]["max_minutes"] == auto_settings.DEFAULT_MINUTES
    info = json.loads((run / "run.json").read_text())
    assert info["auto_settings"]["train.batch_size"]["value"] == 16
    assert "training examples" in info["auto_settings"]["train.batch_size"]["reason"]


def test_auto_settings_off_and_the_offline_demo_keep_the_defaults(tmp_path, cli_in_process):
    data = tmp_path / "reviews.csv"
    write_reviews(data, count=120)
    run = tmp_path / "off"
    result = cli_in_process("train", "sentiment", "--data", data, "--output-dir", run, "--set",
                            "train.epochs=1", "--set", "train.auto_settings=false", "--set", "train.verbose=0")
    assert result.returncode == 0, result.stderr
    assert "Settings from the training split" not in result.stdout
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["batch_size"] == 64 and saved["train"]["max_minutes"] is None
    assert "auto_settings" not in json.loads((run / "run.json").read_text())


def test_a_run_on_real_data_times_the_widths_its_budget_allows(tmp_path, cli_in_process):
    data = tmp_path / "reviews.csv"  # 3,200 reviews of 9 words: 23 k training tokens allow units 128
    write_reviews(data, count=3200, unique=True)
    run = tmp_path / "run"
    result = cli_in_process("train", "sentiment", "--data", data, "--output-dir", run, "--set",
                            "train.max_minutes=0.001", "--set", "train.verbose=0")
    assert result.returncode == 0, result.stderr
    assert "Timing training steps at width 128" in result.stdout
    assert "Timing training steps at width 64" in result.stdout  # 0.06 s hold no epoch of 128
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["units"] == 64 and saved["model"]["embedding_dim"] == 64
    reason = json.loads((run / "run.json").read_text())["auto_settings"]["model.units"]["reason"]
    assert "allow 128" in reason and "none fits" in reason and "128 " in reason.split("timed:")[1]
