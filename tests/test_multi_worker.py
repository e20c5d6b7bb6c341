"""Two local workers through ``seq-templates launch`` against one process on the same data and seed.

Slow (each run starts TensorFlow in every worker and trains on loopback collectives): run with
``-m slow``. The settings leave nothing to chance between the two layouts: no dropout (each
replica would draw its own masks), no gradient clipping (Keras clips each replica's gradient
before the sum), one bucket of full, even batches (each worker's half is a mean over the same
number of examples) and the last epoch's weights kept. What is left is float rounding.
"""

import json
import re
import time

import numpy as np
import pytest

from seq_templates import apps_loader
from seq_templates import config as config_module
from seq_templates import export
from tests import conftest
from tests.conftest import run_cli

pytestmark = pytest.mark.slow

ALIKE = ["model.dropout_rate=0.0", "train.clipnorm=null", "train.bucket_boundaries=[]", "train.batch_size=32",
         "train.epochs=2", "train.restore_best_weights=false", "train.early_stopping_patience=0",
         "train.tensorboard=false", "train.verbose=2"]
SETTINGS = {
    "sentiment": ["data.max_train_samples=512", "model.units=16", "model.embedding_dim=16", *ALIKE],
    "ner": ["data.max_train_samples=256", "model.units=16", *ALIKE],
}
EPOCH_LINE = re.compile(r"^\[worker (\d)\] (\d+/\d+ - .*)$")


def _settings(task):
    return [argument for item in SETTINGS[task] for argument in ("--set", item)]


def _answers(task, run):
    """The export's answers to the app's example inputs: ``{signature: {output: array}}``."""
    app = apps_loader.load_app(task)
    config = config_module.load(app.CONFIG_SECTIONS, run / "config.yaml")
    inputs = app.example_inputs(app.load_raw_data(config["data"]), config)
    predictors = export.batch_predictors(export.load_signatures(run))
    return {name: predictors[name](values) for name, values in inputs.items()}


def _train_both(task, tmp_path):
    """Trains ``task`` in one process, then with two launched workers; returns both runs and timings."""
    scratch = tmp_path / "scratch"  # the workers' temporary folders go here (TMPDIR)
    scratch.mkdir()
    started = time.monotonic()
    single = run_cli("train", task, "--output-dir", tmp_path / "one", *_settings(task), cwd=tmp_path)
    single_seconds = time.monotonic() - started
    assert single.returncode == 0, single.stderr[-3000:]
    started = time.monotonic()
    launched = run_cli("launch", "--workers", "2", "--", "train", task, "--output-dir", tmp_path / "two",
                       *_settings(task), cwd=tmp_path, environment={"TMPDIR": str(scratch)})
    two_seconds = time.monotonic() - started
    assert launched.returncode == 0, (launched.stdout + launched.stderr)[-5000:]
    print(f"{task}: one process {single_seconds:.0f} s, two workers {two_seconds:.0f} s (wall clock, "
          "TensorFlow start-up included)")
    return tmp_path / "one", tmp_path / "two", launched.stdout, scratch


def _check_two_worker_run(run, output, scratch):
    """The chief's run directory is complete; the other worker left nothing; both logged the same epochs."""
    for item in ("config.yaml", "model.keras", "metrics.json", "history.json", "preprocessing.json",
                 "export/1/saved_model.pb", "export/1/assets.extra/config.json"):
        assert (run / item).exists(), item
    assert not run.with_name(run.name + ".partial").exists()
    assert not (run / "checkpoints").exists()
    assert list(scratch.iterdir()) == [], "a worker left its scratch folder behind"
    epochs = {"0": [], "1": []}
    for line in output.splitlines():
        match = EPOCH_LINE.match(line)
        if match:
            parts = match.group(2).split(" - ")  # steps - seconds - seconds/step - metrics
            epochs[match.group(1)].append(" - ".join([parts[0], *parts[3:]]))
    assert len(epochs["0"]) == 2 and epochs["0"] == epochs["1"], epochs  # metrics alike on both workers
    assert "[worker 1] Run directory" not in output and "[worker 0] Run directory" in output


def _largest_difference(first, second):
    largest, disagreements = 0.0, 0
    for signature, outputs in first.items():
        for name, values in outputs.items():
            other = second[signature][name]
            if np.asarray(values).dtype.kind == "f":
                largest = max(largest, float(np.max(np.abs(np.asarray(values) - np.asarray(other)))))
            else:
                disagreements += int(np.sum(np.asarray(values).astype(str) != np.asarray(other).astype(str)))
    return largest, disagreements


def test_two_workers_train_sentiment_as_one_process_does(tmp_path):
    one, two, output, scratch = _train_both("sentiment", tmp_path)
    _check_two_worker_run(two, output, scratch)
    largest, disagreements = _largest_difference(_answers("sentiment", one), _answers("sentiment", two))
    print(f"sentiment: largest |probability difference| one process vs two workers {largest:.2e}, "
          f"{disagreements} labels differ")
    assert largest < 1e-4 and disagreements == 0
    history_one = json.loads((one / "history.json").read_text())
    history_two = json.loads((two / "history.json").read_text())
    np.testing.assert_allclose(history_two["loss"], history_one["loss"], atol=1e-4)


def test_two_workers_train_ner_as_one_process_does(tmp_path):
    one, two, output, scratch = _train_both("ner", tmp_path)
    _check_two_worker_run(two, output, scratch)
    assert re.search(r"\[worker 1\] Epoch 2: val_entity_f1", output)  # the app's own score, on both
    largest, disagreements = _largest_difference(_answers("ner", one), _answers("ner", two))
    print(f"ner: largest |score difference| one process vs two workers {largest:.2e}, {disagreements} tags differ")
    assert largest < 1e-4 and disagreements == 0


FAILING_APP = conftest.sentiment_app_with_callbacks(
    'The sentiment template, whose worker 1 dies (exit status 5) after its second training batch.', '''


class DieOnWorkerOne(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 1 and json.loads(os.environ["TF_CONFIG"])["task"]["index"] == 1:
            print("worker 1 dies now", flush=True)
            os._exit(5)


def training_callbacks(preprocessing, config, raw_data):
    return [DieOnWorkerOne()]
''')


def test_a_worker_that_dies_mid_training_stops_the_other(tmp_path):
    app_file = tmp_path / "dying_app.py"
    app_file.write_text(FAILING_APP)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    started = time.monotonic()
    launched = run_cli("launch", "--workers", "2", "--", "train", app_file, "--output-dir", tmp_path / "run",
                       "--set", "data.max_train_samples=512", "--set", "model.units=8",
                       "--set", "train.batch_size=32", "--set", "train.tensorboard=false",
                       cwd=tmp_path, environment={"TMPDIR": str(scratch)}, timeout=300)
    seconds = time.monotonic() - started
    print(f"a dying worker: the launcher exited after {seconds:.0f} s")
    assert launched.returncode == 5, (launched.stdout + launched.stderr)[-3000:]
    assert "[worker 1] worker 1 dies now" in launched.stdout
    assert "[launch] worker 1 failed (exit status 5); stopping the others." in launched.stdout
    assert not (tmp_path / "run").exists()  # the chief stopped before its first checkpoint: nothing kept
    assert not (tmp_path / "run.partial").exists()
    assert list(scratch.iterdir()) == []
