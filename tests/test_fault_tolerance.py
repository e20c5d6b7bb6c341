"""A training process killed mid-epoch (SIGKILL) and restarted with ``--resume`` finishes as expected.

The app below is the sentiment template with one callback: it logs every trained batch, and the
first time it runs (no marker file yet) it SIGKILLs its process after batch ``KILL_BATCH`` of epoch
``KILL_EPOCH`` (in a multi-worker run, only worker 1 dies). The app's callbacks run before the
shared ones, so the step backup of that batch is never written: the last backup is the last one
before it (``keras.callbacks.BackupAndRestore`` saves every ``save_freq`` batches counted across
epochs, so where depends on the length of the first epoch: :func:`_backed_up_steps`).

Optimizer steps are counted as Keras 3.15 counts them on a dataset of unknown length (bucketed
batches): every epoch adds one step to its batches, the step that finds the dataset exhausted.
"""

import json
import math
import signal
import time

import keras
import pytest

from tests import conftest
from tests.conftest import run_cli

KILL_EPOCH, KILL_BATCH, BACKUP_EVERY = 1, 6, 3
LEARNING_RATE = 0.01

KILLED_APP = conftest.sentiment_app_with_callbacks(
    'The sentiment template that logs its batches and kills its process once, mid-epoch.', '''
WORKER = json.loads(os.environ.get("TF_CONFIG") or '{"task": {"index": 0}}')["task"]["index"]
DYING_WORKER = int(os.environ["DYING_WORKER"])
KILL_AT = tuple(json.loads(os.environ["KILL_AT"]))  # (epoch, batch)


class LogBatchesThenDie(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        with open(os.environ["BATCH_LOG"], "a") as log:
            log.write(json.dumps([WORKER, self.epoch, batch]) + "\\n")
        if (self.epoch, batch) == KILL_AT and WORKER == DYING_WORKER:
            if not os.path.exists(os.environ["KILLED_MARKER"]):
                open(os.environ["KILLED_MARKER"], "w").close()
                print(f"worker {WORKER} is killed now", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)


def training_callbacks(preprocessing, config, raw_data):
    return [LogBatchesThenDie()]
''')

SETTINGS = ["model.units=8", "model.embedding_dim=8", "train.batch_size=32", "train.epochs=2",
            f"train.backup_every_steps={BACKUP_EVERY}", "train.learning_rate_schedule=cosine",
            f"train.learning_rate={LEARNING_RATE}", "train.ema_momentum=0.9", "train.tensorboard=false",
            "train.verbose=2"]


def _setup(tmp_path, dying_worker=0):
    app_file = tmp_path / "killed_app.py"
    app_file.write_text(KILLED_APP)
    environment = {"BATCH_LOG": str(tmp_path / "batches.jsonl"), "KILLED_MARKER": str(tmp_path / "killed"),
                   "DYING_WORKER": str(dying_worker), "KILL_AT": json.dumps([KILL_EPOCH, KILL_BATCH])}
    return app_file, environment


def _trained_batches(tmp_path, worker=0):
    """``[(epoch, batch)]`` each process of ``worker`` trained, in order, over every run."""
    lines = (tmp_path / "batches.jsonl").read_text().splitlines()
    return [(epoch, batch) for index, epoch, batch in map(json.loads, lines) if index == worker]


def _backed_up_steps(batches, last_batch):
    """Steps of epoch ``KILL_EPOCH`` the last backup up to batch ``last_batch`` of that epoch holds.

    Args:
        batches: The process's ``_trained_batches`` of the first run.
        last_batch: The last batch it could back up: ``KILL_BATCH - 1`` in the killed process,
            ``KILL_BATCH`` in a worker the kill stopped in the next batch.
    """
    batches_per_epoch = sum(1 for epoch, _ in batches if epoch == 0)
    assert KILL_EPOCH == 1 and batches_per_epoch > KILL_BATCH + 1
    return 1 + max(batch for batch in range(last_batch + 1) if (batches_per_epoch + batch + 1) % BACKUP_EVERY == 0)


def _check_finished_run(run, batches, steps, resume_line, output):
    """The killed-then-resumed run is complete and trained every batch of both epochs once."""
    batches_per_epoch = sum(1 for epoch, _ in batches if epoch == 0)
    killed_epoch = [batch for epoch, batch in batches if epoch == KILL_EPOCH]
    # The killed process trained batches 0..KILL_BATCH; the resumed one those after the backup, counted from 0.
    assert killed_epoch == [*range(KILL_BATCH + 1), *range(batches_per_epoch - steps)], killed_epoch
    assert resume_line in output, output[-3000:]
    for item in ("config.yaml", "model.keras", "metrics.json", "history.json", "preprocessing.json", "run.json",
                 "export/1/saved_model.pb", "export/1/assets.extra/config.json"):
        assert (run / item).exists(), item
    assert not run.with_name(run.name + ".partial").exists()
    assert not (run / "checkpoints").exists()
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == len(history["val_loss"]) == 2
    assert all(math.isfinite(value) for value in history["loss"] + history["val_loss"])
    # The cosine schedule's rate of each epoch: epoch 2 (the resumed one) at half the rate.
    assert history["learning_rate"] == pytest.approx([LEARNING_RATE, LEARNING_RATE / 2], rel=1e-6)
    model = keras.saving.load_model(run / "model.keras")
    # Every batch of both epochs stepped the optimizer once (its state came back from the backup),
    # plus the step per epoch Keras counts at the end of a dataset of unknown length.
    assert int(model.optimizer.iterations.numpy()) == 2 * (batches_per_epoch + 1)
    assert model.optimizer.use_ema
    assert len(json.loads((run / "run.json").read_text())["resumed"]) == 1


def test_a_run_killed_mid_epoch_resumes_from_its_step_backup(tmp_path, tiny_sentiment_file):
    app_file, environment = _setup(tmp_path)
    run = tmp_path / "run"
    partial = tmp_path / "run.partial"
    settings = [argument for item in SETTINGS for argument in ("--set", item)]
    started = time.monotonic()
    killed = run_cli("train", app_file, "--data", tiny_sentiment_file, "--output-dir", run, *settings,
                     cwd=tmp_path, environment=environment, timeout=300)
    assert killed.returncode == -signal.SIGKILL, (killed.stdout + killed.stderr)[-3000:]
    steps = _backed_up_steps(_trained_batches(tmp_path), KILL_BATCH - 1)
    metadata = json.loads((partial / "checkpoints" / "backup" / "training_metadata.json").read_text())
    assert (metadata["epoch"], metadata["batch"]) == (KILL_EPOCH, steps - 1)
    assert json.loads((partial / "checkpoints" / "state.json").read_text())["epochs_completed"] == KILL_EPOCH
    resumed = run_cli("train", app_file, "--output-dir", run, "--resume", cwd=tmp_path, environment=environment,
                      timeout=300)
    seconds = time.monotonic() - started
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    print(f"killed and resumed in {seconds:.0f} s (two processes, TensorFlow start-up included)")
    resume_line = f"Resuming after epoch {KILL_EPOCH} and {steps} steps of epoch {KILL_EPOCH + 1}"
    _check_finished_run(run, _trained_batches(tmp_path), steps, resume_line, resumed.stdout)


@pytest.mark.slow
def test_a_worker_killed_mid_epoch_and_the_launch_resumed_finishes_the_run(tmp_path, tiny_sentiment_file):
    """SIGKILL worker 1 of two; the launcher stops worker 0; the same launch with --resume finishes."""
    app_file, environment = _setup(tmp_path, dying_worker=1)
    scratch = tmp_path / "scratch"  # the workers' temporary folders go here (TMPDIR)
    scratch.mkdir()
    environment["TMPDIR"] = str(scratch)
    run = tmp_path / "run"
    partial = tmp_path / "run.partial"
    settings = [argument for item in [*SETTINGS, "model.dropout_rate=0.0"] for argument in ("--set", item)]
    started = time.monotonic()
    killed = run_cli("launch", "--workers", "2", "--", "train", app_file, "--data", tiny_sentiment_file,
                     "--output-dir", run, *settings, cwd=tmp_path, environment=environment, timeout=400)
    killed_seconds = time.monotonic() - started
    assert killed.returncode == 128 + signal.SIGKILL, (killed.stdout + killed.stderr)[-5000:]
    assert "[worker 1] worker 1 is killed now" in killed.stdout
    assert f"[launch] worker 1 failed (exit status {128 + signal.SIGKILL}); stopping the others." in killed.stdout
    # The chief trained batch KILL_BATCH with worker 1, then waited for it in the next batch.
    steps = _backed_up_steps(_trained_batches(tmp_path, 0), KILL_BATCH)
    metadata = json.loads((partial / "checkpoints" / "backup" / "training_metadata.json").read_text())
    assert (metadata["epoch"], metadata["batch"]) == (KILL_EPOCH, steps - 1)
    started = time.monotonic()
    resumed = run_cli("launch", "--workers", "2", "--", "train", app_file, "--output-dir", run, "--resume",
                      cwd=tmp_path, environment=environment, timeout=400)
    resumed_seconds = time.monotonic() - started
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-5000:]
    print(f"two workers: killed after {killed_seconds:.0f} s, resumed and finished in {resumed_seconds:.0f} s")
    resume_line = f"Resuming after epoch {KILL_EPOCH} and {steps} steps of epoch {KILL_EPOCH + 1}"
    for worker in (0, 1):
        _check_finished_run(run, _trained_batches(tmp_path, worker), steps, f"[worker {worker}] {resume_line}",
                            resumed.stdout)
    assert list(scratch.iterdir()) == [], "a worker left its scratch folder behind"
