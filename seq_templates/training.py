"""Training: seeds, optimizer, callbacks, checkpoint/resume and history.

:func:`fit` wraps ``model.fit`` with what every template needs: a progress bar
(or one line per epoch in scripted mode), early stopping on validation loss,
a checkpoint after every epoch (``checkpoints/last.keras`` + ``state.json``) so
``--resume`` continues an interrupted run, TensorBoard logs, and ``history.json``
plus ``plots/training_curves.png`` at the end.

Ctrl-C during training stops at the next batch boundary (a second Ctrl-C stops
at once): a ``KeyboardInterrupt`` delivered while TensorFlow is executing a
function can surface as a TensorFlow error instead, with a traceback.
"""

import contextlib
import json
import math
import pathlib
import shutil
import signal
import sys
import threading
import warnings

import keras

from seq_templates.evaluation import plots

CHECKPOINT_FOLDER = "checkpoints"


def set_seed(seed):
    """Seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``)."""
    keras.utils.set_random_seed(seed)


def build_optimizer(train_config):
    """Returns Adam with the configured learning rate, clipping by norm and optional weight EMA."""
    return keras.optimizers.Adam(learning_rate=train_config.learning_rate,
                                 clipnorm=train_config.clipnorm,
                                 use_ema=train_config.ema_momentum is not None,
                                 ema_momentum=train_config.ema_momentum or 0.99)


def epoch_learning_rate(train_config, epoch):
    """The learning rate of a 0-based epoch under ``train_config.learning_rate_schedule``."""
    if train_config.learning_rate_schedule == "cosine":
        return train_config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * epoch / train_config.epochs))
    return train_config.learning_rate


def resolve_verbosity(verbose):
    """Keras verbosity: the configured value, else a bar on a terminal and a line per epoch otherwise."""
    if verbose is not None:
        return verbose
    return 1 if sys.stdout.isatty() else 2


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the model and the history so far after every epoch (temp file, then rename).

    Args:
        folder: Checkpoint folder.
        previous_history: History of epochs completed before a resume.
    """

    def __init__(self, folder, previous_history=None):
        super().__init__()
        self.folder = pathlib.Path(folder)
        self.history = {name: list(values) for name, values in (previous_history or {}).items()}

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary_model = self.folder / ".last.tmp.keras"
        self.model.save(temporary_model)
        temporary_model.replace(self.folder / "last.keras")
        temporary_state = self.folder / ".state.tmp.json"
        temporary_state.write_text(json.dumps({"epochs_completed": epoch + 1, "history": self.history}))
        temporary_state.replace(self.folder / "state.json")


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
    """

    def __init__(self, restart_each_epoch=False):
        super().__init__()
        self.restart_each_epoch = restart_each_epoch
        self._raw_weights = None

    def _use_averaged_weights(self):
        if self._raw_weights is None:
            variables = self.model.trainable_variables
            self._raw_weights = [variable.numpy() for variable in variables]
            self.model.optimizer.finalize_variable_values(variables)

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
    """Returns ``(model, epochs_completed, history)`` from a run's checkpoint, or None."""
    folder = pathlib.Path(run_directory) / CHECKPOINT_FOLDER
    if not (folder / "last.keras").is_file() or not (folder / "state.json").is_file():
        return None
    state = json.loads((folder / "state.json").read_text())
    model = keras.saving.load_model(folder / "last.keras")
    return model, int(state["epochs_completed"]), state["history"]


def fit(model, train_dataset, validation_dataset, train_config, run_directory, initial_epoch=0,
        previous_history=None):
    """Trains a compiled model and records its history.

    Args:
        model: A compiled ``keras.Model``.
        train_dataset: Batched training ``tf.data.Dataset``.
        validation_dataset: Batched validation dataset (early stopping watches
            ``val_loss``), or None.
        train_config: A :class:`seq_templates.config.TrainConfig`.
        run_directory: Where checkpoints, logs, ``history.json`` and plots go.
        initial_epoch: Epochs already completed (when resuming).
        previous_history: History of those epochs (when resuming).

    Returns:
        The history: a dict of metric name to per-epoch values, including any
        epochs completed before a resume.
    """
    run_directory = pathlib.Path(run_directory)
    callbacks = []
    if getattr(model.optimizer, "use_ema", False):
        # Validate and checkpoint with the averaged weights (must run before the others).
        callbacks.append(AveragedWeightsCallback(train_config.ema_restart_each_epoch))
    if train_config.learning_rate_schedule != "constant":
        # Before the checkpoint, which records the epoch's learning rate from the logs.
        callbacks.append(keras.callbacks.LearningRateScheduler(
            lambda epoch: epoch_learning_rate(train_config, epoch)))
    checkpoint = EpochCheckpoint(run_directory / CHECKPOINT_FOLDER, previous_history)
    callbacks.append(checkpoint)
    if validation_dataset is not None and train_config.early_stopping_patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=train_config.early_stopping_patience,
            restore_best_weights=True, verbose=1,
        ))
    if train_config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_directory / "logs")))
    # Bucketed datasets have no known length before the first epoch ends; Keras warns about it.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    if initial_epoch < train_config.epochs:
        with deferred_interrupt() as interrupt:
            model.fit(
                train_dataset,
                validation_data=validation_dataset,
                epochs=train_config.epochs,
                initial_epoch=initial_epoch,
                callbacks=[interrupt, *callbacks],
                verbose=resolve_verbosity(train_config.verbose),
                shuffle=False,  # the tf.data pipeline shuffles before bucketing
            )
    history = checkpoint.history
    write_history(history, run_directory)
    return history


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
