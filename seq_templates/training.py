"""Training: seeds, optimizer, callbacks, checkpoint/resume and history.

:func:`fit` wraps ``model.fit`` with what every template needs: a progress bar
(or one line per epoch in scripted mode), early stopping and best-weights selection on
``train.monitor`` (validation loss unless the app logs its own score, :class:`ValidationScore`),
a checkpoint after every epoch (``checkpoints/last.keras`` + ``state.json``) so
``--resume`` continues an interrupted run, TensorBoard logs, and ``history.json``
plus ``plots/training_curves.png`` at the end. The checkpoint carries what a
resumed run needs to go on as if it had never stopped: the optimizer state (in
``last.keras``), the raw weights behind a weight moving average, and early
stopping's patience counter and best weights.

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
    """

    model: keras.Model
    epochs_completed: int
    history: dict
    raw_weights: typing.Optional[list] = None
    early_stopping: typing.Optional[dict] = None
    best_weights: typing.Optional[list] = None


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

    Args:
        initial_state: ``state()`` of the interrupted run, or None.
        initial_best_weights: Its best weights, or None.
        **kwargs: Arguments of ``EarlyStopping``.
    """

    def __init__(self, initial_state=None, initial_best_weights=None, **kwargs):
        super().__init__(**kwargs)
        self.initial_state = initial_state
        self.initial_best_weights = initial_best_weights

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.initial_state:
            self.wait = self.initial_state["wait"]
            self.best = self.initial_state["best"]
            self.best_epoch = self.initial_state["best_epoch"]
            self.stopped_epoch = self.initial_state["stopped_epoch"]
            self.best_weights = self.initial_best_weights

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


def load_checkpoint(run_directory):
    """Returns the :class:`Checkpoint` of an interrupted run, or None when it has none."""
    folder = pathlib.Path(run_directory) / CHECKPOINT_FOLDER
    if not (folder / "last.keras").is_file() or not (folder / "state.json").is_file():
        return None
    state = json.loads((folder / "state.json").read_text())
    model = keras.saving.load_model(folder / "last.keras")
    early_stopping = state.get("early_stopping")
    return Checkpoint(model=model, epochs_completed=int(state["epochs_completed"]), history=state["history"],
                      raw_weights=load_weights(folder / RAW_WEIGHTS_FILE),
                      early_stopping=early_stopping,
                      best_weights=load_weights(folder / BEST_WEIGHTS_FILE) if early_stopping else None)


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
        checkpoint: The :class:`Checkpoint` to continue from, or None.
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
    if train_config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_directory / "logs")))
    stopped_early = bool((checkpoint.early_stopping or {}).get("stopped_epoch"))
    strategy = model.distribute_strategy
    if distribute.is_distributed(strategy):  # each worker keeps its part of every (global) batch
        train_dataset = distribute.shard_by_data(train_dataset, strategy.num_replicas_in_sync)
        if validation_dataset is not None:
            validation_dataset = distribute.shard_by_data(validation_dataset, strategy.num_replicas_in_sync)
    if checkpoint.epochs_completed < train_config.epochs and not stopped_early:
        with (deferred_interrupt() as interrupt, warnings.catch_warnings(),
              distribute.keras_corrections(strategy)):
            # Bucketed datasets have no known length before the first epoch ends; Keras warns about it.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            model.fit(
                train_dataset,
                validation_data=validation_dataset,
                epochs=train_config.epochs,
                initial_epoch=checkpoint.epochs_completed,
                callbacks=[interrupt, *callbacks],
                verbose=resolve_verbosity(train_config.verbose),
                shuffle=False,  # the tf.data pipeline shuffles before bucketing
            )
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
