"""The app contract, run against every bundled template and every fixture app in tests/apps/fixtures/.

Each app exposes the names in ``apps_loader.APP_FUNCTIONS`` and ``APP_ATTRIBUTES``.
These tests check what every app must guarantee, driving each with its own
``example_inputs``: main() trains above a loose floor on its offline data and
leaves a complete run directory; the saved config is exactly the one asked for;
model.keras reloads with no custom objects and, behind the app's serving
functions, answers like the export made from the trained model; the export
answers like the in-memory serving functions, also in a fresh Python process
that does not import seq_templates (signatures with a ``seed`` input in their
seeded, deterministic mode).

The fixture apps are tiny apps of the other four shapes (a per-token tagger
with a masked loss, an encoder-decoder started from the encoder's states, a
numeric-window regressor with an exported Normalization, a sampler with a
seeded parity check) that exercise the shared plumbing before the templates
of those shapes exist.
"""

import json
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import yaml

from seq_templates import apps_loader
from seq_templates import config as config_module
from seq_templates import export
from seq_templates import lifecycle
from seq_templates.preprocessing import state

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
BUNDLED = {task: apps_loader.app_path(task) for task in apps_loader.list_templates()}
APPS = {**BUNDLED, **{path.stem: path for path in sorted(FIXTURES.glob("*_app.py"))}}

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
        "overrides": ["train.epochs=3", "data.max_train_samples=1500", "model.units=32", *QUIET],
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
    "tagger_app": {
        "overrides": QUIET,
        "metric": lambda metrics: metrics["model"]["token_accuracy"],
        "floor": 0.9,
    },
    "encoder_decoder_app": {
        "overrides": QUIET,
        "metric": lambda metrics: metrics["model"]["token_accuracy"],
        "floor": 0.6,
    },
    "window_regressor_app": {
        "overrides": QUIET,
        "metric": lambda metrics: metrics["baseline"]["mae"] - metrics["model"]["mae"],
        "floor": 0.0,
    },
    "sampler_app": {
        "overrides": QUIET,
        "metric": lambda metrics: metrics["baseline"]["perplexity"] - metrics["model"]["perplexity"],
        "floor": 0.0,
    },
}


def test_every_app_has_quick_settings():
    assert set(APPS) <= set(QUICK), "add quick settings for new apps to QUICK"
    assert {"tagger_app", "encoder_decoder_app", "window_regressor_app", "sampler_app"} <= set(APPS)


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
    assert "baseline" in metrics and "model" in metrics
    assert QUICK[name]["metric"](metrics) >= QUICK[name]["floor"]
    assert json.loads((run / "run.json").read_text())["task"] == app.TASK


def test_saved_config_is_exactly_the_one_asked_for(trained):
    name, app, run = trained
    saved = config_module.load(app.CONFIG_SECTIONS, run / "config.yaml")
    assert saved == config_module.resolve(app.CONFIG_SECTIONS, [], QUICK[name]["overrides"])
    assert issubclass(app.CONFIG_SECTIONS["data"], config_module.DataConfig)


def _example_inputs(app, run):
    config = config_module.load(app.CONFIG_SECTIONS, run / "config.yaml")
    return config, app.example_inputs(app.load_raw_data(config["data"]), config)


def test_model_keras_reloads_and_answers_like_the_export_of_the_trained_model(trained):
    _, app, run = trained
    config, examples = _example_inputs(app, run)
    model = keras.saving.load_model(run / "model.keras")  # no custom_objects
    _, endpoints = app.build_serving(model, state.load(run / "preprocessing.json"), config)
    assert "serving_default" in endpoints and set(examples) <= set(endpoints)
    for signature_name, inputs in examples.items():
        tensors = lifecycle.seeded_inputs(endpoints[signature_name], inputs)
        rebuilt = export.to_numpy(endpoints[signature_name](**tensors))
        export.check_parity(export.find_version(run), tensors, rebuilt, signature_name=signature_name)


def test_export_parity_in_a_fresh_process_without_seq_templates(trained):
    _, app, run = trained
    config, examples = _example_inputs(app, run)
    model = keras.saving.load_model(run / "model.keras")
    _, endpoints = app.build_serving(model, state.load(run / "preprocessing.json"), config)
    requests, expected = {}, {}
    for signature_name, inputs in examples.items():
        tensors = lifecycle.seeded_inputs(endpoints[signature_name], inputs)
        requests[signature_name] = {name: tensor.numpy().tolist() for name, tensor in tensors.items()}
        requests[signature_name] = {name: [item.decode() if isinstance(item, bytes) else item for item in value]
                                    if isinstance(value, list) else value
                                    for name, value in requests[signature_name].items()}
        expected[signature_name] = export.to_numpy(endpoints[signature_name](**tensors))
    script = (
        "import json, sys\n"
        "import numpy as np\n"
        "import tensorflow as tf\n"
        "loaded = tf.saved_model.load(sys.argv[1])\n"
        "answers = {}\n"
        "for name, inputs in json.loads(sys.stdin.read()).items():\n"
        "    function = loaded.signatures[name]\n"
        "    specs = function.structured_input_signature[1]\n"
        "    out = function(**{k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()})\n"
        "    answers[name] = {k: v.numpy().tolist() if v.dtype != tf.string else "
        "np.vectorize(lambda b: b.decode('utf-8'), otypes=[object])(v.numpy()).tolist() for k, v in out.items()}\n"
        "assert 'seq_templates' not in sys.modules\n"
        "print(json.dumps(answers))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script, str(export.find_version(run))],
                               input=json.dumps(requests), capture_output=True, text=True, timeout=300,
                               env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert completed.returncode == 0, completed.stderr[-2000:]
    fresh = json.loads(completed.stdout.strip().splitlines()[-1])
    for signature_name, outputs in expected.items():
        for name, value in outputs.items():
            if value.dtype.kind == "f":
                np.testing.assert_allclose(np.array(fresh[signature_name][name]), value, atol=1e-5)
            else:
                assert np.array_equal(np.array(fresh[signature_name][name]).astype(str), value.astype(str)), name


@pytest.mark.parametrize("task", sorted(BUNDLED))
def test_default_yaml_writes_out_every_default(task):
    app = apps_loader.load_app(task)
    written = yaml.safe_load((BUNDLED[task].parent / "configs" / "default.yaml").read_text())
    assert written == config_module.to_dict(config_module.defaults(app.CONFIG_SECTIONS))
