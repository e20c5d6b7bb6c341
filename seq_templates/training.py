"""Training: seeds, optimizer, callbacks, checkpoint/resume and history.

:func:`fit` wraps ``model.fit`` with what every template needs: a progress bar
(or one line per epoch in scripted mode), early stopping and best-weights selection on
``train.monitor`` (validation loss unless the app logs its own score, :class:`ValidationScore`),
a checkpoint after every epoch (``checkpoints/last.keras`` + ``state.json``) and a step
backup inside the epoch (:class:`StepBackup`, ``keras.callbacks.BackupAndRestore`` in
``checkpoints/backup``) so ``--resume`` continues an interrupted run, TensorBoard logs, and
``history.json`` plus ``plots/training_curves.png`` at the end. The checkpoint carries what a
resumed run needs to go on as if it had never stopped: the optimizer state (in
``last.keras``), the raw weights behind a weight moving average, and early
stopping's patience counter and best weights.

**Killed mid-epoch** (SIGKILL, a lost machine or worker): :func:`load_checkpoint` takes the step
backup when it is newer than the last epoch's checkpoint: the weights and optimizer state (step
count, moments, weight average) after the backed-up step go into the checkpoint's model (or, before
the first epoch's checkpoint, into the freshly built one), and :func:`fit` skips the steps the
interrupted epoch had already trained. Epoch ``e`` of a resumed run
draws the same shuffled order as epoch ``e`` of an uninterrupted one (the dataset is wound on one
pass per completed epoch), so a run killed and resumed ends as the same run would without the
kill, up to float rounding.

Ctrl-C during training stops at the next batch boundary (a second Ctrl-C stops
at once): a ``KeyboardInterrupt`` delivered while TensorFlow is executing a
function can surface as a TensorFlow error instead, with a traceback.
"""

import contextlib
import dataclasses
import json
import math
import pathlib
import shutil
import signal
import sys
import threading
import time
import typing
import warnings

import keras
import numpy as np

from seq_templates import distribute
from seq_templates import errors
from seq_templates import run_directory as run_directory_module
from seq_templates.evaluation import plots

CHECKPOINT_FOLDER = run_directory_module.CHECKPOINT_FOLDER
BACKUP_FOLDER = "backup"  # inside CHECKPOINT_FOLDER: StepBackup's files
RAW_WEIGHTS_FILE = "raw_weights.npz"
BEST_WEIGHTS_FILE = "best_weights.npz"


@dataclasses.dataclass
class Checkpoint:
    """What :func:`load_checkpoint` restores for ``--resume``.

    Attributes:
        model: The compiled model with its optimizer state, as saved after the
            last completed epoch (the averaged weights when EMA is on).
        epochs_completed: Epochs completed before the interruption.
        history: Per-epoch metrics of those epochs.
        raw_weights: With EMA, the raw (not averaged) weights training continues
            from; else None.
        early_stopping: Early stopping's state (``wait``, ``best``, ``best_epoch``,
            ``stopped_epoch``) or None.
        best_weights: Early stopping's best weights, or None.
        steps_completed: Steps of epoch ``epochs_completed`` (0-based) trained before the
            interruption, from a step backup; the model then holds the weights and optimizer
            state after them (the raw weights, so ``raw_weights`` is None).
    """

    model: keras.Model
    epochs_completed: int
    history: dict
    raw_weights: typing.Optional[list] = None
    early_stopping: typing.Optional[dict] = None
    best_weights: typing.Optional[list] = None
    steps_completed: int = 0


def set_seed(seed):
    """Seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``)."""
    keras.utils.set_random_seed(seed)


def build_optimizer(train_config):
    """Returns Adam with the configured learning rate, clipping by norm and optional weight EMA.

    Under ``train.mixed_precision`` it comes wrapped in a ``LossScaleOptimizer`` (float16 gradients
    would underflow without loss scaling). Keras would wrap it at ``compile`` too, but then
    ``model.keras`` would record a plain Adam, and a reloaded model (``--resume``) would skip the
    saved optimizer state.
    """
    optimizer = keras.optimizers.Adam(learning_rate=train_config.learning_rate,
                                      clipnorm=train_config.clipnorm,
                                      use_ema=train_config.ema_momentum is not None,
                                      ema_momentum=train_config.ema_momentum or 0.99)
    if getattr(train_config, "mixed_precision", False):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def seconds_per_token(model, dataset, steps=16, warmup=3):
    """Seconds of training per padded token (batch x steps) of ``model`` on ``dataset`` (it trains the model).

    ``warmup`` batches are untimed (the first traces the step); of the next ``steps``, any over
    5 times their median (a retrace for a new batch shape) is left out. Per token, not per step:
    a bucketed dataset gives its commonest lengths first, so its first batches are not an epoch's.
    """
    seconds, tokens = [], []
    for batch in dataset.take(warmup + steps):
        batch = batch if isinstance(batch, tuple) else (batch,)
        started = time.perf_counter()
        model.train_on_batch(*batch)
        seconds.append(time.perf_counter() - started)
        tokens.append(padded_tokens(batch[0]))
    if not seconds:
        return 0.0
    timed = slice(warmup, None) if len(seconds) > warmup else slice(None)  # a short dataset: all it has
    seconds, tokens = np.array(seconds[timed]), np.array(tokens[timed], dtype="float64")
    typical = seconds <= 5 * np.median(seconds)
    return float(np.sum(seconds[typical]) / max(1.0, np.sum(tokens[typical])))


def padded_tokens(features):
    """The largest ``batch x steps`` among a batch's inputs (dense or ragged; 1-D inputs count their rows)."""
    import tensorflow as tf

    largest = 0
    for tensor in tf.nest.flatten(features, expand_composites=False):
        shape = tensor.bounding_shape() if isinstance(tensor, tf.RaggedTensor) else tf.shape(tensor)
        shape = [int(size) for size in np.asarray(shape)]
        largest = max(largest, (shape[0] * (shape[1] if len(shape) > 1 else 1)) if shape else 1)
    return largest


def epoch_learning_rate(train_config, epoch):
    """The learning rate of a 0-based epoch under ``train_config.learning_rate_schedule``."""
    if train_config.learning_rate_schedule == "cosine":
        return train_config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * epoch / train_config.epochs))
    return train_config.learning_rate


class LinearWarmUp(keras.callbacks.Callback):
    """Scales the learning rate by ``(step + 1) / warmup_steps`` over the first optimizer steps.

    The rate it scales is the epoch's (:func:`epoch_learning_rate`, so it composes with the
    cosine schedule); the step is the optimizer's ``iterations``, which a resumed run restores,
    so a resume continues the warm-up where it stopped. Past ``warmup_steps`` it sets the
    epoch's rate once and leaves it.

    Args:
        train_config: The run's :class:`~seq_templates.config.TrainConfig` (``warmup_steps`` > 0).
    """

    def __init__(self, train_config):
        super().__init__()
        self.train_config = train_config
        self._epoch_rate = train_config.learning_rate
        self._warming = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_rate = epoch_learning_rate(self.train_config, epoch)
        self._warming = True

    def on_train_batch_begin(self, batch, logs=None):
        if not self._warming:
            return
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        fraction = min(1.0, (step + 1) / self.train_config.warmup_steps)
        self.model.optimizer.learning_rate.assign(self._epoch_rate * fraction)
        self._warming = fraction < 1.0


def resolve_verbosity(verbose):
    """Keras verbosity: the configured value, else a bar on a terminal and a line per epoch otherwise."""
    if verbose is not None:
        return verbose
    return 1 if sys.stdout.isatty() else 2


def save_weights(weights, path):
    """Writes a list of weight arrays (``model.get_weights()``) to ``path`` (.npz) via a temp file and a rename."""
    path = pathlib.Path(path)
    temporary_path = path.with_name(f".{path.stem}.tmp.npz")
    np.savez(temporary_path, *weights)
    temporary_path.replace(path)


def load_weights(path):
    """Reads what :func:`save_weights` wrote; None when ``path`` does not exist."""
    path = pathlib.Path(path)
    if not path.is_file():
        return None
    with np.load(path) as saved:
        return [saved[f"arr_{index}"] for index in range(len(saved.files))]


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the model, the history and the callbacks' state after every epoch.

    Files are written to temp names and renamed; ``state.json`` goes last, so it
    always describes the files beside it.

    Args:
        folder: Checkpoint folder.
        previous_history: History of epochs completed before a resume.
        averaged_weights: The run's :class:`AveragedWeightsCallback`, or None.
        early_stopping: The run's :class:`ResumableEarlyStopping`, or None.
    """

    def __init__(self, folder, previous_history=None, averaged_weights=None, early_stopping=None):
        super().__init__()
        self.folder = pathlib.Path(folder)
        self.history = {name: list(values) for name, values in (previous_history or {}).items()}
        self.averaged_weights = averaged_weights
        self.early_stopping = early_stopping

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        # Keras logs the learning rate only under a schedule callback; record it every epoch.
        logs.setdefault("learning_rate", float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
        logs["epoch_seconds"] = time.perf_counter() - self._epoch_started  # training + validation
        for name, value in logs.items():
            self.history.setdefault(name, []).append(float(value))
        for name, values in self.history.items():  # an epoch resumed after its last step logs no training
            if name not in logs:
                values.append(float("nan"))
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary_model = self.folder / ".last.tmp.keras"
        self.model.save(temporary_model)
        temporary_model.replace(self.folder / "last.keras")
        state = {"epochs_completed": epoch + 1, "history": self.history}
        raw_weights = self.averaged_weights.raw_weights() if self.averaged_weights else None
        if raw_weights is not None:
            save_weights(raw_weights, self.folder / RAW_WEIGHTS_FILE)
        if self.early_stopping is not None:
            state["early_stopping"], best_weights = self.early_stopping.state()
            if best_weights is not None:
                save_weights(best_weights, self.folder / BEST_WEIGHTS_FILE)
        temporary_state = self.folder / ".state.tmp.json"
        temporary_state.write_text(json.dumps(state))
        temporary_state.replace(self.folder / "state.json")


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """``keras.callbacks.EarlyStopping`` whose patience counter and best weights survive a resume.

    Also across the ``model.fit`` calls of one training (:func:`fit` makes two after a kill mid-epoch):
    while ``continued`` is set, the end of a call hands its state to the next instead of
    restoring the best weights.

    Args:
        initial_state: ``state()`` of the interrupted run, or None.
        initial_best_weights: Its best weights, or None.
        **kwargs: Arguments of ``EarlyStopping``.
    """

    def __init__(self, initial_state=None, initial_best_weights=None, **kwargs):
        super().__init__(**kwargs)
        self.initial_state = initial_state
        self.initial_best_weights = initial_best_weights
        self.continued = False  # training.fit sets it while another model.fit call continues this training

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.initial_state:
            self.wait = self.initial_state["wait"]
            self.best = self.initial_state["best"]
            self.best_epoch = self.initial_state["best_epoch"]
            self.stopped_epoch = self.initial_state["stopped_epoch"]
            self.best_weights = self.initial_best_weights

    def on_train_end(self, logs=None):
        if self.continued and not self.model.stop_training:  # the next model.fit call goes on from here
            self.initial_state, self.initial_best_weights = self.state()
            return
        super().on_train_end(logs)  # with restore_best_weights: the best epoch's weights

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor not in (logs or {}):  # Keras would only warn, and select nothing
            raise errors.SeqTemplatesError(
                f"train.monitor={self.monitor} is not logged by this model; the epoch logged "
                f"{', '.join(sorted(logs or {})) or 'nothing'}. Set train.monitor to one of the val_ names.")
        super().on_epoch_end(epoch, logs)

    def state(self):
        """Returns ``(state dict, best weights or None)`` for the checkpoint."""
        best = None if self.best is None else float(self.best)
        return ({"wait": int(self.wait), "best": best, "best_epoch": int(self.best_epoch),
                 "stopped_epoch": int(self.stopped_epoch)}, self.best_weights)


class AveragedWeightsCallback(keras.callbacks.Callback):
    """Puts the optimizer's moving average of the weights (EMA) in the model between epochs.

    Validation, checkpoints and early stopping see the averaged weights. The next
    epoch continues from the raw weights, or, with ``restart_each_epoch``, from the
    averaged ones. Like ``keras.callbacks.SwapEMAWeights(swap_on_epoch=True)`` but
    the raw weights are kept as copies, so they come back bit for bit (the
    built-in swap adds and subtracts the two sets of weights, which rounds).
    At the end of ``fit`` Keras leaves the averaged weights in the model.

    Args:
        restart_each_epoch: Continue each epoch from the averaged weights.
        initial_raw_weights: On resume, the raw weights of the interrupted run
            (the model then holds the averaged ones, as saved).
    """

    def __init__(self, restart_each_epoch=False, initial_raw_weights=None):
        super().__init__()
        self.restart_each_epoch = restart_each_epoch
        self._raw_weights = initial_raw_weights

    def raw_weights(self):
        """The raw weights kept aside while the model holds the averaged ones, or None."""
        return self._raw_weights

    def _use_averaged_weights(self):
        if self._raw_weights is None:
            variables = self.model.trainable_variables
            self._raw_weights = [variable.numpy() for variable in variables]
            _inner_optimizer(self.model.optimizer).finalize_variable_values(variables)

    def _use_raw_weights(self):
        if self._raw_weights is not None:
            for variable, value in zip(self.model.trainable_variables, self._raw_weights):
                variable.assign(value)
            self._raw_weights = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.restart_each_epoch:
            self._raw_weights = None
        else:
            self._use_raw_weights()

    def on_test_begin(self, logs=None):
        self._use_averaged_weights()

    def on_epoch_end(self, epoch, logs=None):
        self._use_averaged_weights()


class InterruptAtBatchBoundary(keras.callbacks.Callback):
    """Raises ``KeyboardInterrupt`` between batches once Ctrl-C has been pressed.

    Made by :func:`deferred_interrupt`, which catches the signal. Raising here,
    in plain Python between two TensorFlow calls, keeps the interrupt a
    ``KeyboardInterrupt``; the last completed epoch stays checkpointed.
    """

    def __init__(self):
        super().__init__()
        self.requested = threading.Event()

    def _stop_if_requested(self, unused_step, logs=None):
        if self.requested.is_set():
            raise KeyboardInterrupt

    on_train_batch_end = _stop_if_requested
    on_test_batch_end = _stop_if_requested
    on_epoch_begin = _stop_if_requested


@contextlib.contextmanager
def deferred_interrupt():
    """Yields an :class:`InterruptAtBatchBoundary` for ``fit``; while active, Ctrl-C only flags it.

    The handler is installed only in the main thread and only over Python's
    default one, so a process started with SIGINT ignored (``nohup``, background
    jobs) keeps ignoring it. A second Ctrl-C gets the previous handler: it
    interrupts at once.
    """
    callback = InterruptAtBatchBoundary()
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield callback
        return
    previous_handler = signal.getsignal(signal.SIGINT)

    def request_stop(signal_number, frame):
        callback.requested.set()
        signal.signal(signal.SIGINT, previous_handler)
        print("\nInterrupted: stopping after this batch (Ctrl-C again stops at once).", file=sys.stderr,
              flush=True)

    signal.signal(signal.SIGINT, request_stop)
    try:
        yield callback
    finally:
        signal.signal(signal.SIGINT, previous_handler)


def load_checkpoint(run_directory, build_model=None, epochs=None):
    """Returns the :class:`Checkpoint` of an interrupted run, or None when it has none.

    The last epoch's checkpoint, brought forward to the step backup (:class:`StepBackup`) when
    one was saved after it, inside the next epoch: the backup's weights and optimizer state go
    into the checkpoint's model, and ``steps_completed`` says how many steps of that epoch they
    follow. A backup whose weights and metadata disagree (the process was killed between their
    two renames) is left aside, with a warning.

    Args:
        run_directory: The run directory (``.partial`` while the run is open).
        build_model: ``() -> compiled model`` for a run killed before its first epoch's
            checkpoint but after a step backup: the backup goes into the model it builds. None:
            such a run has no checkpoint.
        epochs: The epochs the resumed run trains (``train.epochs``); a backup inside a later
            epoch is left aside (the run ends on the last epoch's checkpoint). None: no limit.
    """
    folder = pathlib.Path(run_directory) / CHECKPOINT_FOLDER
    checkpoint = _epoch_checkpoint(folder)
    metadata = read_backup_metadata(folder / BACKUP_FOLDER)
    epochs_completed = checkpoint.epochs_completed if checkpoint is not None else 0
    if (metadata is None or metadata["epoch"] != epochs_completed  # none, or older than the epoch checkpoint
            or (epochs is not None and epochs_completed >= epochs)):
        return checkpoint
    if checkpoint is None:
        if build_model is None:
            return None
        checkpoint = Checkpoint(model=build_model(), epochs_completed=0, history={})
    model = checkpoint.model
    if not model.optimizer.built:  # a new model: its optimizer's variables exist once built
        model.optimizer.build(model.trainable_variables)
    model.load_weights(folder / BACKUP_FOLDER / StepBackup.WEIGHTS_FILE)
    if metadata.get("iterations") is not None and optimizer_iterations(model) != metadata["iterations"]:
        print(f"WARNING: the step backup in {folder / BACKUP_FOLDER} is left aside: its weights are at optimizer "
              f"step {optimizer_iterations(model)}, its metadata at step {metadata['iterations']} (the run was "
              "killed while saving it).", file=sys.stderr, flush=True)
        return _epoch_checkpoint(folder)
    checkpoint.steps_completed = int(metadata["batch"]) + 1
    checkpoint.raw_weights = None  # the model holds the raw weights the epoch was training
    return checkpoint


def _epoch_checkpoint(folder):
    """The :class:`Checkpoint` of the last completed epoch in a checkpoint folder, or None."""
    if not (folder / "last.keras").is_file() or not (folder / "state.json").is_file():
        return None
    state = json.loads((folder / "state.json").read_text())
    model = keras.saving.load_model(folder / "last.keras")
    early_stopping = state.get("early_stopping")
    return Checkpoint(model=model, epochs_completed=int(state["epochs_completed"]), history=state["history"],
                      raw_weights=load_weights(folder / RAW_WEIGHTS_FILE),
                      early_stopping=early_stopping,
                      best_weights=load_weights(folder / BEST_WEIGHTS_FILE) if early_stopping else None)


def read_backup_metadata(folder):
    """``training_metadata.json`` of a :class:`StepBackup` folder when it has weights beside it, else None.

    Returns:
        ``{"epoch": epoch in progress (0-based), "batch": its last backed-up batch (0-based),
        "iterations": the optimizer's step count then}`` (no ``iterations`` when plain
        ``keras.callbacks.BackupAndRestore`` wrote it), or None.
    """
    folder = pathlib.Path(folder)
    path = folder / StepBackup.METADATA_FILE
    if not path.is_file() or not (folder / StepBackup.WEIGHTS_FILE).is_file():
        return None
    try:
        metadata = json.loads(path.read_text())
        int(metadata["epoch"]), int(metadata["batch"])
    except (ValueError, KeyError, TypeError):
        return None
    return metadata


def optimizer_iterations(model):
    """The optimizer's step count (``model.optimizer.iterations``) as an int."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


class StepBackup(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` saving every ``save_freq`` training steps, for ``--resume``.

    Keras's files, in ``backup_dir``: ``latest.weights.h5`` (the weights with the optimizer
    state: step count, moments, weight average, loss scale) and ``training_metadata.json``
    (``epoch``: the 0-based epoch in progress; ``batch``: its last backed-up batch, 0-based).
    Three changes for a process that may be killed at any moment and resumed by
    :func:`load_checkpoint`:

    - both files are written to temporary names and renamed, and the metadata records the
      optimizer's ``iterations`` too: a kill while saving leaves the previous backup whole, and
      a kill between the two renames is recognized (the step counts differ);
    - ``batch`` counts from the start of the epoch also in an epoch resumed mid-way, and
      ``epoch`` is the epoch in progress also after a resume (Keras 3.15 counts both from 0 again);
    - restoring is :func:`load_checkpoint`'s job, before ``fit`` (the weight average and the
      skipped steps follow from it), so ``on_train_begin`` restores nothing. Keras's own restore
      would load the weights but train the interrupted epoch again from its first batch.

    As in Keras, the backup is deleted when ``fit`` ends (the last epoch's checkpoint is newer).

    Args:
        backup_dir: The folder (``checkpoints/backup`` in the run directory).
        save_freq: Training steps between backups.
        steps_skipped: Steps of the first epoch trained before a resume (left out of its dataset).
    """

    WEIGHTS_FILE = "latest.weights.h5"
    METADATA_FILE = "training_metadata.json"

    def __init__(self, backup_dir, save_freq, steps_skipped=0):
        super().__init__(backup_dir=str(backup_dir), save_freq=save_freq, delete_checkpoint=True)
        self.steps_skipped = steps_skipped
        self._last_batch_seen = steps_skipped - 1  # Keras's counter: the first batch counts as one

    def on_train_begin(self, logs=None):
        pass  # load_checkpoint restored the backup before fit

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch + self.steps_skipped, logs)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self.steps_skipped = 0

    def _save_model(self):
        folder = pathlib.Path(self.backup_dir)
        folder.mkdir(parents=True, exist_ok=True)
        temporary_weights = folder / ".latest.tmp.weights.h5"  # Keras saves weights only to *.weights.h5
        self.model.save_weights(str(temporary_weights), overwrite=True)
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen,
                    "iterations": optimizer_iterations(self.model)}
        temporary_metadata = folder / f".{self.METADATA_FILE}.tmp"
        temporary_metadata.write_text(json.dumps(metadata))
        temporary_weights.replace(folder / self.WEIGHTS_FILE)
        temporary_metadata.replace(folder / self.METADATA_FILE)


def wind_on(dataset, passes):
    """Starts and drops ``passes`` iterators over ``dataset``, drawing nothing.

    A dataset shuffled with a seed and ``reshuffle_each_iteration`` takes its next order at every
    new iterator: wound on by the epochs a resumed run completed before, its next pass has the
    order that epoch has in an uninterrupted run.
    """
    for _ in range(passes):
        iterator = iter(dataset)
        del iterator


class TimeBudget(keras.callbacks.Callback):
    """Stops training after the first batch that ends past ``max_minutes`` of training time.

    The epoch in progress is cut short, then validated and checkpointed as usual,
    so a time-budgeted run ends like one that ran out of epochs.

    Args:
        max_minutes: The budget in minutes (wall clock from the start of ``fit``).
    """

    def __init__(self, max_minutes):
        super().__init__()
        self.max_minutes = max_minutes
        self._started = None
        self.stopped = False

    def on_train_begin(self, logs=None):
        if self._started is None:  # the first of the model.fit calls of one training
            self._started = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        past = time.monotonic() - self._started > 60.0 * self.max_minutes
        # Workers stop after the same batch: the first worker past the budget stops them all.
        if distribute.agree(float(past), self.model.distribute_strategy, "MAX"):
            self.stopped = True
            self.model.stop_training = True


MINIMIZED_WORDS = ("loss", "error", "mae", "mse", "mape", "perplexity", "crossentropy", "divergence",
                   "hinge", "cosh", "bits")


def monitor_mode(train_config):
    """``min`` or ``max`` for ``train_config.monitor`` (``auto`` reads the name, see ``TrainConfig``)."""
    if train_config.monitor_mode != "auto":
        return train_config.monitor_mode
    return "min" if any(word in train_config.monitor for word in MINIMIZED_WORDS) else "max"


class ValidationScore(keras.callbacks.Callback):
    """Logs ``name`` = ``score(model)`` after every epoch, for ``train.monitor`` to select on.

    For a task metric Keras cannot compute batch by batch (entity F1, BLEU): ``score``
    decodes the validation split with the model as it is at the end of the epoch (the
    averaged weights under ``train.ema_momentum``). Pass it in ``fit``'s ``callbacks``: they
    run before early stopping and the checkpoint, which then see the score in the logs
    and in ``history.json``.

    Args:
        name: The logged name, e.g. ``val_entity_f1``.
        score: ``model -> float``.
    """

    def __init__(self, name, score):
        super().__init__()
        self.name = name
        self.score = score

    def on_epoch_end(self, epoch, logs=None):
        # Each worker of a multi-worker run scores the whole split with the same weights; their
        # mean is logged, so early stopping and the kept weights follow one value everywhere.
        value = distribute.agree(float(self.score(self.model)), self.model.distribute_strategy)
        print(f"Epoch {epoch + 1}: {self.name} {value:.4f}", flush=True)
        if logs is not None:
            logs[self.name] = value


def signature_score(name, build_signature, inputs, score):
    """A :class:`ValidationScore` that calls one of the app's serving signatures on validation inputs.

    The signature is built once per model (at the end of its first epoch) and reused, so
    every epoch decodes with the model's current weights without tracing again.

    Args:
        name: The logged name, e.g. ``val_chrf``.
        build_signature: ``model -> tf.function`` (the app's ``build_serving`` signature).
        inputs: ``{input name: values}`` for it (scalars go with every batch).
        score: ``outputs -> float``, outputs as ``export.batch_predictor`` returns them.
    """
    from seq_templates import export

    predictors = {}

    def score_model(model):
        if model not in predictors:
            predictors[model] = export.batch_predictor(build_signature(model), batch_size=256)
        return score(predictors[model](inputs))

    return ValidationScore(name, score_model)


def fit(model, train_dataset, validation_dataset, train_config, run_directory, checkpoint=None,
        callbacks=None):
    """Trains a compiled model and records its history.

    Args:
        model: A compiled ``keras.Model`` (``checkpoint.model`` when resuming).
        train_dataset: Batched training ``tf.data.Dataset``.
        validation_dataset: Batched validation dataset, or None. Early stopping and
            the best weights kept follow ``train_config.monitor`` on it.
        train_config: A :class:`seq_templates.config.TrainConfig`.
        run_directory: Where checkpoints, logs, ``history.json`` and plots go.
        checkpoint: The :class:`Checkpoint` to continue from, or None. Its first epoch
            leaves out the ``steps_completed`` batches trained before a step backup.
        callbacks: More Keras callbacks, run before the shared ones. A
            :class:`TimeBudget` is added here when ``train_config.max_minutes`` is set.

    Returns:
        The history: a dict of metric name to per-epoch values, including any
        epochs completed before a resume.
    """
    run_directory = pathlib.Path(run_directory)
    checkpoint = checkpoint or Checkpoint(model=model, epochs_completed=0, history={})
    callbacks = list(callbacks or [])
    if train_config.max_minutes is not None:
        callbacks.append(TimeBudget(train_config.max_minutes))
    averaged_weights = early_stopping = None
    if getattr(_inner_optimizer(model.optimizer), "use_ema", False):
        # Validate and checkpoint with the averaged weights (must run before the others).
        averaged_weights = AveragedWeightsCallback(train_config.ema_restart_each_epoch,
                                                   initial_raw_weights=checkpoint.raw_weights)
        callbacks.append(averaged_weights)
    if train_config.learning_rate_schedule != "constant":
        # Before the checkpoint, which records the epoch's learning rate from the logs.
        callbacks.append(keras.callbacks.LearningRateScheduler(
            lambda epoch: epoch_learning_rate(train_config, epoch)))
    if getattr(train_config, "warmup_steps", 0):  # after the schedule: it scales the epoch's rate
        callbacks.append(LinearWarmUp(train_config))
    if validation_dataset is not None and (train_config.early_stopping_patience > 0
                                           or train_config.restore_best_weights):
        # Before the checkpoint, which saves its state. Without patience it only keeps the best weights.
        patience = train_config.early_stopping_patience or train_config.epochs + 1
        early_stopping = ResumableEarlyStopping(
            initial_state=checkpoint.early_stopping, initial_best_weights=checkpoint.best_weights,
            monitor=train_config.monitor, mode=monitor_mode(train_config), patience=patience,
            restore_best_weights=train_config.restore_best_weights,
            verbose=1 if train_config.verbose != 0 else 0)
        callbacks.append(early_stopping)
    epoch_checkpoint = EpochCheckpoint(run_directory / CHECKPOINT_FOLDER, checkpoint.history,
                                       averaged_weights, early_stopping)
    callbacks.append(epoch_checkpoint)
    if train_config.backup_every_steps:
        callbacks.append(StepBackup(run_directory / CHECKPOINT_FOLDER / BACKUP_FOLDER, train_config.backup_every_steps,
                                    steps_skipped=checkpoint.steps_completed))
    if train_config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_directory / "logs")))
    stopped_early = bool((checkpoint.early_stopping or {}).get("stopped_epoch"))
    trains = checkpoint.epochs_completed < train_config.epochs and not stopped_early
    if trains:
        wind_on(train_dataset, checkpoint.epochs_completed)  # the order each epoch has in an uninterrupted run
    strategy = model.distribute_strategy
    # Killed mid-epoch: the rest of that epoch is a model.fit of its own, on a dataset without the steps trained
    # before the backup (Keras learns an epoch's length from the first epoch of a fit when the dataset does not
    # say it, as bucketed datasets do not); the later epochs are the next call.
    calls = [(checkpoint.epochs_completed, train_config.epochs, train_dataset)]
    if checkpoint.steps_completed:
        calls = [(checkpoint.epochs_completed, checkpoint.epochs_completed + 1,
                  train_dataset.skip(checkpoint.steps_completed)),
                 (checkpoint.epochs_completed + 1, train_config.epochs, train_dataset)]
    if distribute.is_distributed(strategy):  # each worker keeps its part of every (global) batch
        calls = [(first, last, distribute.shard_by_data(dataset, strategy.num_replicas_in_sync))
                 for first, last, dataset in calls]
        if validation_dataset is not None:
            validation_dataset = distribute.shard_by_data(validation_dataset, strategy.num_replicas_in_sync)
    if trains:
        with (deferred_interrupt() as interrupt, warnings.catch_warnings(),
              distribute.keras_corrections(strategy)):
            # Bucketed datasets have no known length before the first epoch ends; Keras warns about it.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            for index, (first_epoch, last_epoch, dataset) in enumerate(calls):
                if early_stopping is not None:
                    early_stopping.continued = index + 1 < len(calls)
                model.fit(
                    dataset,
                    validation_data=validation_dataset,
                    epochs=last_epoch,
                    initial_epoch=first_epoch,
                    callbacks=[interrupt, *callbacks],
                    verbose=resolve_verbosity(train_config.verbose),
                    shuffle=False,  # the tf.data pipeline shuffles before bucketing
                )
                if model.stop_training or last_epoch >= train_config.epochs:
                    break
    elif (early_stopping is not None and train_config.restore_best_weights
          and checkpoint.best_weights is not None):
        model.set_weights(checkpoint.best_weights)  # as EarlyStopping does when training ends
    history = epoch_checkpoint.history
    write_history(history, run_directory)
    return history


def _inner_optimizer(optimizer):
    """The optimizer a mixed-precision model's ``LossScaleOptimizer`` wraps (or ``optimizer`` itself)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def write_history(history, run_directory):
    """Writes ``history.json`` and ``plots/training_curves.png``."""
    run_directory = pathlib.Path(run_directory)
    temporary_path = run_directory / ".history.tmp.json"
    temporary_path.write_text(json.dumps(history, indent=2))
    temporary_path.replace(run_directory / "history.json")
    if history:
        plots.training_curves(history, run_directory / "plots" / "training_curves.png")


def remove_checkpoints(run_directory):
    """Deletes the checkpoint folder once the run is complete."""
    shutil.rmtree(pathlib.Path(run_directory) / CHECKPOINT_FOLDER, ignore_errors=True)
