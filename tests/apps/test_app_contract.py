"""The app contract, run against every bundled template through its public interfaces.

Each app exposes the names in ``apps_loader.REQUIRED`` and ``REQUIRED_ATTRIBUTES`` (and
may have those in ``OPTIONAL``). These tests check what every template must guarantee,
driving each with its own ``example_inputs``: main() trains above a loose floor on its
offline data and leaves a complete run directory; the saved config is exactly the one
asked for; ``model.keras`` reloads in a fresh process that imports only ``seq_templates``
and keras, and answers as in this one; the export answers alike in a fresh Python process
that does not import seq_templates (that it answers like the serving functions rebuilt
from ``model.keras``, main's region 7 checks in every training); ``seq-templates export
RUN`` writes a version that answers exactly like ``export/1``; ``seq-templates evaluate
RUN`` reproduces the metrics training wrote.

The four fixture apps that stood in for the other shapes before their templates existed
are gone: ner (a per-token tagger with a masked loss), translation (an encoder-decoder),
forecasting (numeric windows with an exported Normalization) and text_generation (a
sampler with a seeded parity check) cover all they did.
"""

import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from seq_templates import apps_loader
from seq_templates import cli
from seq_templates import config as config_module
from seq_templates import export
from seq_templates import lifecycle
from tests.layers import keras_object_test_case

APPS = {task: apps_loader.app_path(task) for task in apps_loader.list_templates()}
BUNDLED = APPS

# Small, fast settings per app, and a loose floor on its main test metric.
QUIET = ["train.tensorboard=false", "train.verbose=0"]
QUICK = {
    "sentiment": {
        "overrides": ["train.epochs=6", "train.batch_size=32", "data.max_train_samples=3000",
                      "model.units=32", "model.embedding_dim=32", "train.learning_rate=0.003", *QUIET],
        "metric": lambda metrics: metrics["model"]["accuracy"],
        "floor": 0.75,
    },
    "text_generation": {
        "overrides": ["train.epochs=4", "model.units=64", "data.sequence_length=50", "data.window_stride=10",
                      "train.learning_rate=0.005", "model.max_length=40", *QUIET],
        "metric": lambda metrics: -metrics["model"]["bits_per_char"],
        "floor": -1.0,
    },
    "ner": {
        "overrides": ["train.epochs=4", *QUIET],  # default data and model: F1 saturates early, the
                                                   # loss falls on (test_ner_app.py best-F1 case)
        "metric": lambda metrics: metrics["model"]["micro"]["f1"],
        "floor": 0.8,
    },
    "forecasting": {
        "overrides": ["train.epochs=4", "model.units=16", *QUIET],
        "metric": lambda metrics: metrics["baselines"]["seasonal_naive"]["mae"] - metrics["model"]["mae"],
        "floor": 0.0,
    },
    "translation": {
        "overrides": ["data.max_train_samples=3000", "train.epochs=3", "model.units=64", "model.embedding_dim=32",
                      "model.attention_units=64", *QUIET],
        "metric": lambda metrics: metrics["model"]["chrf"],
        "floor": 60.0,
    },
}


def test_every_app_has_quick_settings_and_the_contract():
    assert set(APPS) <= set(QUICK), "add quick settings for new apps to QUICK"
    for task in APPS:
        app = apps_loader.load_app(task)
        assert all(callable(getattr(app, name)) for name in apps_loader.REQUIRED)
        assert issubclass(app.CONFIG_SECTIONS["data"], config_module.DataConfig)
        assert issubclass(app.CONFIG_SECTIONS["train"], config_module.TrainConfig)


def test_load_app_names_what_a_file_lacks(tmp_path):
    path = tmp_path / "half_app.py"
    path.write_text("TASK = 'half'\nCONFIG_SECTIONS = {}\ndef main(argv=None):\n    return 0\n"
                    "summary = 3\n")
    with pytest.raises(Exception, match=r"lacks load_raw_data, build_preprocessing.*summary \(not callable\)"):
        apps_loader.load_app(str(path))


@pytest.mark.parametrize("task", sorted(BUNDLED))
def test_app_file_is_a_story_of_at_most_300_lines_in_region_order(task):
    lines = BUNDLED[task].read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300
    assert max(len(line) for line in lines) <= 100
    regions = [line.split("region ", 1)[1].split(".")[0] for line in lines if line.startswith("# region ")]
    numbers = [int(number) for number in regions]
    assert numbers == sorted(numbers) and {1, 2, 3, 5, 6} <= set(numbers), regions


@pytest.fixture(scope="module", params=sorted(APPS))
def trained(request, trained_app_runs):
    """The app's main() run once per session on its offline dataset (shared with tests/serving/, see
    ``trained_app_runs`` in tests/conftest.py); returns (name, app, run directory)."""
    app, output_dir = trained_app_runs(request.param)
    return request.param, app, output_dir


def test_run_directory_is_complete(trained):
    name, app, run = trained
    for item in ("config.yaml", "model.keras", "metrics.json", "history.json", "preprocessing.json",
                 "run.json", "plots/training_curves.png", "export/1/saved_model.pb",
                 "export/1/assets.extra/config.json", "export/1/assets.extra/metrics.json"):
        assert (run / item).exists(), item
    assert not (run / "checkpoints").exists()
    assert not run.with_name(run.name + ".partial").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert "baseline" in metrics or "baselines" in metrics
    assert "model" in metrics
    assert QUICK[name]["metric"](metrics) >= QUICK[name]["floor"]
    assert json.loads((run / "run.json").read_text())["task"] == app.TASK


def test_saved_config_is_exactly_the_one_asked_for(trained):
    name, app, run = trained
    saved = config_module.load(app.CONFIG_SECTIONS, run / "config.yaml")
    assert saved == config_module.resolve(app.CONFIG_SECTIONS, [], QUICK[name]["overrides"])


def _example_inputs(app, run):
    config = config_module.load(app.CONFIG_SECTIONS, run / "config.yaml")
    return config, app.example_inputs(app.load_raw_data(config["data"]), config)


def _export_answers(version_path, examples):
    """``{signature: {output: array}}`` of an export for the example inputs."""
    functions = export.load_signatures(version_path)
    return {name: export.to_numpy(functions[name](**lifecycle.input_tensors(functions[name], inputs)))
            for name, inputs in examples.items()}


def test_reexport_answers_exactly_like_export_1(trained, tmp_path):
    _, app, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert cli.main(["export", str(copy)]) == 0
    assert (copy / "export" / "2" / "saved_model.pb").is_file()
    _, examples = _example_inputs(app, copy)
    first, second = (_export_answers(copy / "export" / version, examples) for version in ("1", "2"))
    for signature_name, outputs in first.items():
        for name, value in outputs.items():
            assert np.array_equal(value, second[signature_name][name]), (signature_name, name)
    assets = {version: export.read_assets(copy / "export" / version) for version in ("1", "2")}
    assert assets["1"] == assets["2"]


def _assert_same_metrics(expected, actual, where="metrics"):
    if isinstance(expected, dict):
        assert set(expected) == set(actual), where
        for key in expected:
            _assert_same_metrics(expected[key], actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(expected) == len(actual), where
        for index, (left, right) in enumerate(zip(expected, actual)):
            _assert_same_metrics(left, right, f"{where}[{index}]")
    elif isinstance(expected, float) and not math.isnan(expected):
        assert actual == pytest.approx(expected, rel=1e-5, abs=1e-6), where
    else:
        assert actual == expected or (actual != actual and expected != expected), where


def test_evaluate_reproduces_the_metrics_training_wrote(trained, tmp_path):
    _, app, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    written = json.loads((run / "metrics.json").read_text())
    (copy / "metrics.json").unlink()
    assert cli.main(["evaluate", str(copy)]) == 0
    _assert_same_metrics(written, json.loads((copy / "metrics.json").read_text()))


def test_every_model_keras_reloads_in_a_fresh_process_with_import_seq_templates(trained_app_runs, tmp_path):
    """One fresh process (a TensorFlow start-up, not five) reloads every template's model.keras."""
    cases = []
    for name in sorted(APPS):
        app, run = trained_app_runs(name)
        trained_run = lifecycle.load_trained(app, run)
        raw_data = app.load_raw_data(trained_run.config["data"])
        features = next(iter(app.make_dataset(raw_data["test"], trained_run.preprocessing, trained_run.config)))[0]
        features = ({key: np.asarray(value) for key, value in features.items()} if isinstance(features, dict)
                    else {trained_run.model.inputs[0].name: np.asarray(features)})
        cases.append((trained_run.model, features, run / "model.keras"))
    keras_object_test_case.assert_models_reload_in_a_fresh_process(cases, tmp_path, atol=1e-5)


def _decoded(value):
    """Nested lists of bytes (string tensors of any rank) as str, for JSON."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return [_decoded(item) for item in value] if isinstance(value, list) else value


EXPORTS_WITHOUT_SEQ_TEMPLATES = """
import json, sys
import numpy as np
import tensorflow as tf
answers = {}
for name, request in json.loads(sys.stdin.read()).items():
    loaded = tf.saved_model.load(request["path"])
    answers[name] = {}
    for signature_name, inputs in request["inputs"].items():
        function = loaded.signatures[signature_name]
        specs = function.structured_input_signature[1]
        outputs = function(**{key: tf.constant(value, dtype=specs[key].dtype) for key, value in inputs.items()})
        answers[name][signature_name] = {
            key: value.numpy().tolist() if value.dtype != tf.string else
            np.vectorize(lambda item: item.decode("utf-8"), otypes=[object])(value.numpy()).tolist()
            for key, value in outputs.items()}
assert "seq_templates" not in sys.modules
print(json.dumps(answers))
"""


def test_every_export_answers_alike_in_a_process_without_seq_templates(trained_app_runs):
    """TensorFlow alone (what TF Serving has) loads each export and answers as it does here; that the
    export answers like the serving functions rebuilt from model.keras, main's region 7 has checked."""
    requests, expected = {}, {}
    for name in sorted(APPS):
        app, run = trained_app_runs(name)
        _, examples = _example_inputs(app, run)
        version_path = export.find_version(run)
        functions = export.load_signatures(version_path)
        requests[name] = {"path": str(version_path), "inputs": {}}
        expected[name] = {}
        for signature_name, inputs in examples.items():
            tensors = lifecycle.input_tensors(functions[signature_name], inputs)
            requests[name]["inputs"][signature_name] = {key: _decoded(tensor.numpy().tolist())
                                                        for key, tensor in tensors.items()}
            expected[name][signature_name] = export.to_numpy(functions[signature_name](**tensors))
    completed = subprocess.run([sys.executable, "-c", EXPORTS_WITHOUT_SEQ_TEMPLATES], input=json.dumps(requests),
                               capture_output=True, text=True, timeout=900,
                               env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert completed.returncode == 0, completed.stderr[-2000:]
    fresh = json.loads(completed.stdout.strip().splitlines()[-1])
    for name, signatures in expected.items():
        for signature_name, outputs in signatures.items():
            for key, value in outputs.items():
                answered = np.array(fresh[name][signature_name][key])
                if value.dtype.kind == "f":
                    np.testing.assert_allclose(answered, value, atol=1e-5)
                else:
                    assert np.array_equal(answered.astype(str), value.astype(str)), (name, signature_name, key)


@pytest.mark.parametrize("task", sorted(BUNDLED))
def test_default_yaml_writes_out_every_default(task):
    app = apps_loader.load_app(task)
    written = yaml.safe_load((BUNDLED[task].parent / "configs" / "default.yaml").read_text())
    assert written == config_module.to_dict(config_module.defaults(app.CONFIG_SECTIONS))
