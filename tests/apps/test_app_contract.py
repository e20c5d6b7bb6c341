"""The app contract, run against every bundled template through the app protocol.

Each app exposes load_raw_data, build_preprocessing, build_model, build_serving,
evaluate and main. These tests check what every app must guarantee: the config
round-trips, model.keras reloads with equal outputs and no custom objects, the
export answers raw inputs like the in-memory serving function, also in a fresh
Python process that does not import seq_templates, and main() trains above a
loose floor on the offline dataset.
"""

import json
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq_templates import apps_loader
from seq_templates import config as config_module
from seq_templates import export

# Small, fast settings per template, and a loose floor on its main test metric.
QUICK = {
    "sentiment": {
        "overrides": ["train.epochs=6", "train.batch_size=32", "data.max_train_samples=3000",
                      "model.units=32", "model.embedding_dim=32", "train.learning_rate=0.003",
                      "train.tensorboard=false", "train.verbose=0"],
        "metric": lambda metrics: metrics["model"]["accuracy"],
        "floor": 0.75,
    },
}
TEMPLATES = apps_loader.list_templates()


def test_every_template_has_quick_settings():
    assert set(TEMPLATES) <= set(QUICK), "add quick settings for new templates to QUICK"


@pytest.fixture(scope="module", params=TEMPLATES)
def trained(request, tmp_path_factory):
    """Runs the app's main() once on its offline dataset; yields (app, run directory)."""
    task = request.param
    app = apps_loader.load_app(task)
    output_dir = tmp_path_factory.mktemp(task) / "run"
    assert app.main(["--output-dir", str(output_dir), *sum((["--set", item] for item in
                                                               QUICK[task]["overrides"]), [])]) == 0
    return task, app, output_dir


def test_run_directory_is_complete(trained):
    task, app, run = trained
    for name in ("config.yaml", "model.keras", "metrics.json", "history.json", "preprocessing.json",
                 "run.json", "plots/training_curves.png", "export/1/saved_model.pb",
                 "export/1/assets.extra/config.json"):
        assert (run / name).exists(), name
    assert not (run / "checkpoints").exists()
    assert not run.with_name(run.name + ".partial").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert "baseline" in metrics and "model" in metrics
    assert QUICK[task]["metric"](metrics) >= QUICK[task]["floor"]


def test_config_round_trip(trained):
    task, app, run = trained
    saved = config_module.load(app.CONFIG_SECTIONS, run / "config.yaml")
    again = config_module.resolve(app.CONFIG_SECTIONS, [], QUICK[task]["overrides"])
    again["data"] = saved["data"]  # --output-dir only; data section is the default
    assert saved == again


def test_keras_file_round_trip_gives_equal_outputs(trained, tmp_path):
    _, app, run = trained
    model = keras.saving.load_model(run / "model.keras")  # no custom objects
    model.save(tmp_path / "again.keras")
    reloaded = keras.saving.load_model(tmp_path / "again.keras")
    batch = np.array([[2, 3, 4, 0], [5, 6, 0, 0]], dtype="int64")
    np.testing.assert_allclose(model.predict(batch, verbose=0), reloaded.predict(batch, verbose=0),
                               atol=1e-6)


def test_export_parity_in_process_and_in_a_fresh_process(trained):
    _, app, run = trained
    config = config_module.load(app.CONFIG_SECTIONS, run / "config.yaml")
    raw = app.load_raw_data(config["data"])
    from seq_templates.preprocessing import state

    model = keras.saving.load_model(run / "model.keras")
    _, serve = app.build_serving(model, state.load(run / "preprocessing.json"), config)
    sample = raw["test"][0][:16]
    expected = export.to_numpy(serve(tf.constant(sample)))
    function, input_specs = export.load_serving_function(run)
    (input_name,) = input_specs
    export.check_parity(export.find_version(run), {input_name: tf.constant(sample)}, expected)
    script = (
        "import json, sys\n"
        "import tensorflow as tf\n"
        "loaded = tf.saved_model.load(sys.argv[1])\n"
        "inputs = json.loads(sys.stdin.read())\n"
        "out = loaded.signatures['serving_default'](**{sys.argv[2]: tf.constant(inputs)})\n"
        "print(json.dumps({k: v.numpy().tolist() if v.dtype != tf.string else "
        "[x.decode() for x in v.numpy().ravel()] for k, v in out.items()}))\n"
        "assert 'seq_templates' not in sys.modules\n"
    )
    completed = subprocess.run([sys.executable, "-c", script, str(export.find_version(run)), input_name],
                               input=json.dumps(sample), capture_output=True, text=True, timeout=300,
                               env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert completed.returncode == 0, completed.stderr[-2000:]
    fresh = json.loads(completed.stdout.strip().splitlines()[-1])
    for name, value in expected.items():
        if value.dtype.kind == "f":
            np.testing.assert_allclose(np.array(fresh[name]), value, atol=1e-5)
        else:
            assert fresh[name] == [str(item) for item in value.ravel()]
