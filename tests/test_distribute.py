"""distribute.py: strategy choice, TF_CONFIG, the Keras corrections' guard, sharding, mixed precision.

The multi-worker runs themselves are in tests/test_multi_worker.py (slow: two processes each).
"""

import inspect
import json
import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq_templates import apps_loader
from seq_templates import config as config_module
from seq_templates import distribute
from seq_templates import errors
from seq_templates import export


def _cluster(workers=2, task_type="worker", index=0, chief=False):
    cluster = {"worker": [f"127.0.0.1:{2220 + number}" for number in range(workers)]}
    if chief:
        cluster["chief"] = ["127.0.0.1:2219"]
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})}


@pytest.mark.parametrize("requested, num_gpus, environ, expected", [
    ("auto", 0, {}, "one_device"),
    ("auto", 1, {}, "one_device"),
    ("auto", 2, {}, "mirrored"),
    ("auto", 0, _cluster(workers=2), "multi_worker"),
    ("auto", 4, _cluster(workers=2), "multi_worker"),
    ("auto", 0, _cluster(workers=1), "one_device"),  # a cluster of one is one process
    ("one_device", 4, {}, "one_device"),
    ("mirrored", 0, {}, "mirrored"),
    ("multi_worker", 0, _cluster(workers=3, index=2), "multi_worker"),
])
def test_choose_resolves_auto_from_the_cluster_and_the_gpus(requested, num_gpus, environ, expected):
    assert distribute.choose(requested, num_gpus, distribute.read_tf_config(environ)) == expected


@pytest.mark.parametrize("requested, environ, phrase", [
    ("multi_worker", {}, "needs TF_CONFIG describing several workers, found none"),
    ("multi_worker", _cluster(workers=1), "found one"),
    ("one_device", _cluster(workers=2), "TF_CONFIG describes 2 workers but train.strategy=one_device"),
    ("mirrored", _cluster(workers=2), "train.strategy=mirrored trains each process alone"),
])
def test_a_strategy_the_cluster_cannot_run_is_a_user_error(requested, environ, phrase):
    with pytest.raises(errors.SeqTemplatesError, match=phrase):
        distribute.choose(requested, 0, distribute.read_tf_config(environ))


def test_tf_config_gives_the_role_the_index_and_the_chief():
    first = distribute.read_tf_config(_cluster(workers=3, index=0))
    last = distribute.read_tf_config(_cluster(workers=3, index=2))
    assert (first.task_type, first.task_index, first.num_workers, first.is_chief) == ("worker", 0, 3, True)
    assert (last.task_index, last.is_chief) == (2, False)
    # With a chief task, the chief writes and worker 0 is one of the others.
    assert distribute.read_tf_config(_cluster(workers=2, chief=True, task_type="chief")).is_chief
    with_chief = distribute.read_tf_config(_cluster(workers=2, chief=True, index=0))
    assert (with_chief.num_workers, with_chief.is_chief) == (3, False)
    assert distribute.read_tf_config({}) is None
    assert distribute.read_tf_config({"TF_CONFIG": "  "}) is None


@pytest.mark.parametrize("text, phrase", [
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"task": {"type": "worker", "index": 0}}', "has no cluster with chief or worker addresses"),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "has no cluster"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}',
     "has ps tasks; only chief and worker"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "evaluator", "index": 0}}', "must have type chief"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}}', "must have type chief or worker, received None"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     "task index 2 is not one of the 2 worker addresses"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": "1"}}', "task index '1'"),
])
def test_a_malformed_tf_config_is_one_line_naming_the_fix(text, phrase):
    with pytest.raises(errors.SeqTemplatesError, match=phrase) as raised:
        distribute.read_tf_config({"TF_CONFIG": text})
    assert "\n" not in str(raised.value) and "docs/scaling.md" in str(raised.value)


def test_one_device_is_the_default_strategy_so_single_process_runs_are_unchanged():
    distribution = distribute.setup("one_device", environ={})
    assert distribution.strategy is tf.distribute.get_strategy()
    assert (distribution.name, distribution.is_chief, distribution.num_replicas) == ("one_device", True, 1)
    assert distribute.setup("one_device", environ={}) is distribution  # made once per process
    assert not distribute.is_distributed(distribution.strategy)
    assert distribute.agree(0.25, distribution.strategy, "MAX") == 0.25


def test_train_strategy_and_mixed_precision_are_checked_train_keys():
    sections = {"train": config_module.TrainConfig}
    config = config_module.resolve(sections, overrides=["train.strategy=multi_worker", "train.mixed_precision=true"])
    assert (config["train"].strategy, config["train"].mixed_precision) == ("multi_worker", True)
    assert config_module.TrainConfig().strategy == "auto"
    with pytest.raises(errors.SeqTemplatesError, match="expects one of auto, one_device, mirrored, multi_worker"):
        config_module.resolve(sections, overrides=["train.strategy=horovod"])


def test_keras_still_has_the_multi_worker_faults_the_corrections_fix():
    """Fails, saying what to do, the day the installed Keras no longer needs a correction."""
    from keras.src.backend.tensorflow import trainer

    assert distribute.corrections_apply(), (
        f"Keras {keras.__version__} is not among distribute.CORRECTED_KERAS_VERSIONS "
        f"{distribute.CORRECTED_KERAS_VERSIONS}: run tests/test_multi_worker.py with -m slow; if it passes without "
        "the corrections, remove the correction from seq_templates/distribute.py, else add the version.")
    build = inspect.getsource(trainer.TensorFlowTrainer._maybe_symbolic_build)
    assert "self.distribute_strategy.reduce(" in build, (
        f"Keras {keras.__version__}'s _maybe_symbolic_build no longer reduces the first batch across replicas "
        "(keras-team/keras#20585 fixed?): remove the correction _corrected_maybe_symbolic_build from "
        "seq_templates/distribute.py.")
    reduce = inspect.getsource(trainer.reduce_per_replica)
    assert 'strategy.reduce("MEAN", v, axis=0)' in reduce, (
        f"Keras {keras.__version__}'s reduce_per_replica no longer reduces multi-worker scalars over axis 0: "
        "remove the correction _corrected_reduce_per_replica from seq_templates/distribute.py.")
    assert distribute.corrections_apply("3.15.9") and not distribute.corrections_apply("3.16.0")


def test_the_corrections_are_installed_only_while_a_multi_worker_fit_runs(monkeypatch):
    from keras.src.backend.tensorflow import trainer

    original_build, original_reduce = trainer.TensorFlowTrainer._maybe_symbolic_build, trainer.reduce_per_replica
    with distribute.keras_corrections(tf.distribute.get_strategy()):  # one process: nothing changes
        assert trainer.TensorFlowTrainer._maybe_symbolic_build is original_build
        assert trainer.reduce_per_replica is original_reduce
    monkeypatch.setattr(distribute, "is_multi_worker", lambda strategy: True)
    with pytest.raises(RuntimeError, match="fit failed"):
        with distribute.keras_corrections(object()):
            assert trainer.TensorFlowTrainer._maybe_symbolic_build is distribute._corrected_maybe_symbolic_build
            assert trainer.reduce_per_replica is not original_reduce
            raise RuntimeError("fit failed")
    assert trainer.TensorFlowTrainer._maybe_symbolic_build is original_build  # restored, also after an error
    assert trainer.reduce_per_replica is original_reduce


def test_sharding_by_data_drops_the_batches_some_replica_would_get_none_of():
    batches = tf.data.Dataset.from_generator(
        lambda: ((np.zeros((size, 3), "int64"), np.zeros((size,), "int64")) for size in (4, 1, 3, 2)),
        output_signature=(tf.TensorSpec((None, 3), tf.int64), tf.TensorSpec((None,), tf.int64)))
    sharded = distribute.shard_by_data(batches, num_replicas=2)
    assert [int(features.shape[0]) for features, _ in sharded] == [4, 3, 2]
    assert sharded.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA
    assert [int(features.shape[0]) for features, _ in distribute.shard_by_data(batches, 1)] == [4, 1, 3, 2]


def test_building_under_mixed_precision_sets_the_policy_for_the_build_only():
    with distribute.building(config_module.TrainConfig(mixed_precision=True)):
        inside = keras.layers.Dense(2)
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
    assert keras.mixed_precision.global_policy().name == "float32"
    assert (inside.compute_dtype, inside.variable_dtype) == ("float16", "float32")
    with distribute.building(config_module.TrainConfig()):
        assert keras.mixed_precision.global_policy().name == "float32"


def test_a_model_with_float16_outputs_is_refused_under_mixed_precision():
    with distribute.building(config_module.TrainConfig(mixed_precision=True)):
        inputs = keras.Input((3,))
        hidden = keras.layers.Dense(4, name="hidden")(inputs)
        half = keras.Model(inputs, keras.layers.Dense(2, name="scores")(hidden))
        full = keras.Model(inputs, keras.layers.Dense(2, dtype="float32", name="scores")(hidden))
    with pytest.raises(errors.SeqTemplatesError, match=r"outputs must be float32, received .*float16"):
        distribute.check_float32_outputs(half)
    distribute.check_float32_outputs(full)


MIXED = {
    "sentiment": ["data.max_train_samples=300", "model.units=16", "model.embedding_dim=16"],
    "ner": ["data.max_train_samples=200", "model.units=16"],  # a sequence output, through a float32 CRF
}


@pytest.mark.parametrize("task", sorted(MIXED))
def test_mixed_precision_trains_to_a_finite_loss_with_float32_outputs(task, tmp_path):
    app = apps_loader.load_app(task)
    run = tmp_path / "run"
    overrides = ["train.mixed_precision=true", "train.epochs=1", "train.tensorboard=false", "train.verbose=0",
                 *MIXED[task]]
    # main's region 7 checks that the export answers as the serving graph rebuilt from model.keras.
    assert app.main(["--output-dir", str(run), *sum((["--set", item] for item in overrides), [])]) == 0
    history = json.loads((run / "history.json").read_text())
    assert all(math.isfinite(value) for value in history["loss"] + history["val_loss"]), history
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras.saving.load_model(run / "model.keras")
    assert not [str(warning.message) for warning in caught if "Skipping variable loading" in str(warning.message)]
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)  # its saved state reloads (--resume)
    policies = {layer.dtype_policy.name for layer in model.layers}
    assert "mixed_float16" in policies and "float32" in policies
    assert [str(output.dtype) for output in model.outputs] == ["float32"]
    assert keras.mixed_precision.global_policy().name == "float32"  # back as it was
    config = config_module.load(app.CONFIG_SECTIONS, run / "config.yaml")
    inputs = app.example_inputs(app.load_raw_data(config["data"]), config)["serving_default"]
    answers = export.batch_predictors(export.load_signatures(run))["serving_default"](inputs)
    for values in answers.values():
        if np.asarray(values).dtype.kind == "f":
            assert np.isfinite(values).all()
