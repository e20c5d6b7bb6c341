"""Training: checkpoints per epoch, history and plots, weight EMA, resume state."""

import json
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq_templates import config
from seq_templates import training


def tiny_problem(train_config):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    model.compile(optimizer=training.build_optimizer(train_config), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    features = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    labels = (features[:, 0] > 0).astype("int64")
    dataset = tf.data.Dataset.from_tensor_slices((features, labels)).batch(16)
    return model, dataset


@pytest.mark.parametrize("ema_momentum", [None, 0.9])
def test_fit_writes_checkpoints_history_and_curves(tmp_path, ema_momentum):
    train_config = config.TrainConfig(epochs=3, tensorboard=False, verbose=0, early_stopping_patience=0,
                                      restore_best_weights=False, ema_momentum=ema_momentum, learning_rate=0.05)
    model, dataset = tiny_problem(train_config)
    assert model.optimizer.use_ema == (ema_momentum is not None)
    history = training.fit(model, dataset, dataset, train_config, tmp_path)
    assert len(history["loss"]) == 3 and len(history["val_loss"]) == 3
    assert json.loads((tmp_path / "history.json").read_text()) == history
    assert (tmp_path / "plots" / "training_curves.png").stat().st_size > 1000
    checkpoint = training.load_checkpoint(tmp_path)
    assert checkpoint.epochs_completed == 3 and checkpoint.history == history
    np.testing.assert_allclose(checkpoint.model.predict(np.ones((2, 3)), verbose=0),
                               model.predict(np.ones((2, 3)), verbose=0), atol=1e-6)


def test_fit_continues_from_initial_epoch(tmp_path):
    train_config = config.TrainConfig(epochs=2, tensorboard=False, verbose=0, early_stopping_patience=0)
    model, dataset = tiny_problem(train_config)
    training.fit(model, dataset, None, train_config, tmp_path)
    checkpoint = training.load_checkpoint(tmp_path)
    longer = config.TrainConfig(epochs=4, tensorboard=False, verbose=0, early_stopping_patience=0)
    history = training.fit(checkpoint.model, dataset, None, longer, tmp_path, checkpoint=checkpoint)
    assert len(history["loss"]) == 4
    training.remove_checkpoints(tmp_path)
    assert training.load_checkpoint(tmp_path) is None


def test_max_minutes_stops_any_fit_after_the_batch_that_passes_it(tmp_path):
    """train.max_minutes is shared: fit cuts the epoch short, validates and checkpoints it as usual."""
    train_config = config.TrainConfig(epochs=5, tensorboard=False, verbose=0, early_stopping_patience=0,
                                      max_minutes=0.0)
    model, dataset = tiny_problem(train_config)
    history = training.fit(model, dataset, dataset, train_config, tmp_path)
    assert len(history["loss"]) == 1 and len(history["val_loss"]) == 1
    assert training.load_checkpoint(tmp_path).epochs_completed == 1
    unlimited = config.TrainConfig(epochs=3, tensorboard=False, verbose=0, early_stopping_patience=0)
    assert len(training.fit(tiny_problem(unlimited)[0], dataset, None, unlimited, tmp_path / "all")["loss"]) == 3


def _train_config(**overrides):
    options = dict(epochs=3, tensorboard=False, verbose=0, early_stopping_patience=0, ema_momentum=0.8,
                   learning_rate=0.05, restore_best_weights=False)
    return config.TrainConfig(**{**options, **overrides})


def test_validating_with_averaged_weights_leaves_training_unchanged(tmp_path):
    train_config = _train_config()
    validated, dataset = tiny_problem(train_config)
    training.fit(validated, dataset, dataset, train_config, tmp_path)
    plain, dataset = tiny_problem(train_config)
    plain.fit(dataset, epochs=3, verbose=0)  # Keras puts the averaged weights in at the end
    for left, right in zip(validated.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(left, right)
    averages = [variable.numpy() for variable in validated.optimizer._model_variables_moving_average]
    for weight, average in zip(validated.trainable_variables, averages):
        np.testing.assert_array_equal(weight.numpy(), average)


def test_restart_each_epoch_continues_from_the_averaged_weights(tmp_path):
    train_config = _train_config(ema_restart_each_epoch=True)
    restarted, dataset = tiny_problem(train_config)
    training.fit(restarted, dataset, dataset, train_config, tmp_path)
    epoch_by_epoch, dataset = tiny_problem(train_config)
    for _ in range(3):
        epoch_by_epoch.fit(dataset, epochs=1, verbose=0)  # each fit ends on the averaged weights
    for left, right in zip(restarted.get_weights(), epoch_by_epoch.get_weights()):
        np.testing.assert_array_equal(left, right)
    without_restart, dataset = tiny_problem(train_config)
    training.fit(without_restart, dataset, None, _train_config(), tmp_path / "other")
    assert not all(np.array_equal(left, right) for left, right
                   in zip(restarted.get_weights(), without_restart.get_weights()))


def test_cosine_schedule_sets_each_epochs_learning_rate(tmp_path):
    train_config = _train_config(epochs=4, ema_momentum=None, learning_rate_schedule="cosine")
    model, dataset = tiny_problem(train_config)
    history = training.fit(model, dataset, None, train_config, tmp_path)
    np.testing.assert_allclose(history["learning_rate"], [0.05, 0.05 * 0.5 * (1 + np.cos(np.pi / 4)),
                                                          0.025, 0.05 * 0.5 * (1 + np.cos(3 * np.pi / 4))],
                               rtol=1e-6)
    constant = _train_config(epochs=2, ema_momentum=None)
    model, dataset = tiny_problem(constant)
    assert training.fit(model, dataset, None, constant, tmp_path / "constant")["learning_rate"] == [
        pytest.approx(0.05)] * 2


def test_warm_up_raises_the_learning_rate_step_by_step_then_follows_the_schedule(tmp_path):
    seen = []

    class RecordRate(keras.callbacks.Callback):  # runs after the warm-up: the rate each step trains at
        def on_train_batch_end(self, batch, logs=None):
            seen.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    warm = _train_config(epochs=3, ema_momentum=None, warmup_steps=6, learning_rate_schedule="cosine")
    model, dataset = tiny_problem(warm)  # 4 steps per epoch
    training.fit(model, dataset, None, warm, tmp_path, callbacks=[RecordRate()])
    epoch_rates = [0.05 * 0.5 * (1 + np.cos(np.pi * epoch / 3)) for epoch in range(3)]
    expected = [epoch_rates[step // 4] * min(1.0, (step + 1) / 6) for step in range(12)]
    np.testing.assert_allclose(seen, expected, rtol=1e-6)


def test_ctrl_c_during_fit_stops_at_the_next_batch_boundary():
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not handled by Python's default handler in this process")
    model, dataset = tiny_problem(_train_config())
    finished_batches = []

    class PressCtrlC(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 1:
                signal.raise_signal(signal.SIGINT)

        def on_train_batch_end(self, batch, logs=None):
            finished_batches.append(batch)

    with pytest.raises(KeyboardInterrupt):
        with training.deferred_interrupt() as interrupt:
            model.fit(dataset, epochs=2, callbacks=[PressCtrlC(), interrupt], verbose=0)
    assert finished_batches == [0, 1]  # the batch under way when Ctrl-C came finished
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class StopAfterEpoch(keras.callbacks.Callback):
    """Interrupts training (as Ctrl-C does) once ``epochs`` epochs are checkpointed."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt


def _interrupted_then_resumed(tmp_path, train_config, validation=True, stop_after=2):
    """Trains with an interruption after ``stop_after`` epochs and a resume; returns (model, history)."""
    model, dataset = tiny_problem(train_config)
    original_fit = model.fit

    def fit_with_interruption(*arguments, callbacks=(), **keywords):
        # after the checkpoint callback, so the interrupted epoch is saved as Ctrl-C would find it
        return original_fit(*arguments, callbacks=[*callbacks, StopAfterEpoch(stop_after)], **keywords)

    model.fit = fit_with_interruption
    with pytest.raises(KeyboardInterrupt):
        training.fit(model, dataset, dataset if validation else None, train_config, tmp_path)
    checkpoint = training.load_checkpoint(tmp_path)
    assert checkpoint.epochs_completed == stop_after
    history = training.fit(checkpoint.model, dataset, dataset if validation else None, train_config, tmp_path,
                           checkpoint=checkpoint)
    return checkpoint.model, history


@pytest.mark.parametrize("restart_each_epoch", [False, True])
def test_weight_averaging_survives_a_resume(tmp_path, restart_each_epoch):
    train_config = _train_config(epochs=4, ema_restart_each_epoch=restart_each_epoch)
    resumed, history = _interrupted_then_resumed(tmp_path / "resumed", train_config)
    straight, dataset = tiny_problem(train_config)
    straight_history = training.fit(straight, dataset, dataset, train_config, tmp_path / "straight")
    for left, right in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(left, right, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(history["val_loss"], straight_history["val_loss"], rtol=1e-6)


def test_early_stopping_patience_and_best_weights_survive_a_resume(tmp_path):
    # A learning rate this large makes validation loss bounce: best at epoch 4, interrupted after
    # epoch 5 with one epoch of patience used; the resumed run must stop after epoch 6 with epoch 4's weights.
    train_config = _train_config(epochs=8, ema_momentum=None, learning_rate=3.0, early_stopping_patience=2)
    resumed, history = _interrupted_then_resumed(tmp_path / "resumed", train_config, stop_after=5)
    straight, dataset = tiny_problem(train_config)
    straight_history = training.fit(straight, dataset, dataset, train_config, tmp_path / "straight")
    assert len(history["loss"]) == len(straight_history["loss"]) < 8  # stopped at the same epoch
    for left, right in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(left, right, rtol=1e-6, atol=1e-7)


class KilledAt(Exception):
    """What :class:`KillAtBatch` raises: the process's memory is lost, the files it wrote are kept."""


class KillAtBatch(keras.callbacks.Callback):
    """Stops training at once after batch ``batch`` of epoch ``epoch``, as SIGKILL would (no clean-up runs)."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch = epoch, batch

    def on_epoch_begin(self, epoch, logs=None):
        self.current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.current_epoch, batch) == (self.epoch, self.batch):
            raise KilledAt


# Optimizer steps an epoch of shuffled_problem counts: its 4 batches, and the step that finds the dataset
# exhausted (Keras 3.15 increments `iterations` there, with no update, for a dataset of unknown length).
COUNTED_STEPS = 5


def shuffled_problem(train_config):
    """``tiny_problem`` with a training dataset reshuffled at every pass (seeded), 4 batches an epoch, and
    the validation dataset apart (a pass over the training dataset would draw the next order)."""
    model, dataset = tiny_problem(train_config)
    return model, dataset.unbatch().shuffle(64, seed=3, reshuffle_each_iteration=True).batch(16), dataset


@pytest.mark.parametrize("kill_epoch, kill_batch", [(0, 2), (2, 1)])
def test_a_run_killed_mid_epoch_resumes_from_its_step_backup_as_if_never_killed(tmp_path, kill_epoch, kill_batch):
    """Weights, optimizer steps, weight average, cosine schedule and warm-up, early stopping and data order."""
    train_config = _train_config(epochs=4, backup_every_steps=1, learning_rate_schedule="cosine", warmup_steps=3,
                                 early_stopping_patience=3, restore_best_weights=True)
    model, dataset, validation = shuffled_problem(train_config)
    original_fit = model.fit

    def fit_then_die(*arguments, callbacks=(), **keywords):  # after the backup callback: the batch is backed up
        return original_fit(*arguments, callbacks=[*callbacks, KillAtBatch(kill_epoch, kill_batch)], **keywords)

    model.fit = fit_then_die
    with pytest.raises(KilledAt):
        training.fit(model, dataset, validation, train_config, tmp_path / "killed")
    metadata = json.loads((tmp_path / "killed" / "checkpoints" / "backup" / "training_metadata.json").read_text())
    steps_before = COUNTED_STEPS * kill_epoch + kill_batch + 1
    assert metadata == {"epoch": kill_epoch, "batch": kill_batch, "iterations": steps_before}
    checkpoint = training.load_checkpoint(tmp_path / "killed", lambda: shuffled_problem(train_config)[0],
                                          epochs=train_config.epochs)
    assert (checkpoint.epochs_completed, checkpoint.steps_completed) == (kill_epoch, kill_batch + 1)
    assert training.optimizer_iterations(checkpoint.model) == steps_before
    _, dataset, validation = shuffled_problem(train_config)  # a new process's: its first pass is epoch 0's order
    history = training.fit(checkpoint.model, dataset, validation, train_config, tmp_path / "killed",
                           checkpoint=checkpoint)
    assert not (tmp_path / "killed" / "checkpoints" / "backup").exists()  # deleted when fit ends, as in Keras

    straight, dataset, validation = shuffled_problem(train_config)
    straight_history = training.fit(straight, dataset, validation, train_config, tmp_path / "straight")
    assert (training.optimizer_iterations(checkpoint.model) == training.optimizer_iterations(straight)
            == 4 * COUNTED_STEPS)
    for left, right in zip(checkpoint.model.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(left, right, rtol=1e-5, atol=1e-6)
    for name in ("val_loss", "learning_rate"):
        np.testing.assert_allclose(history[name], straight_history[name], rtol=1e-5)
    assert len(history["loss"]) == 4


def test_a_backup_older_than_the_epoch_checkpoint_or_torn_while_saving_is_left_aside(tmp_path, capsys):
    train_config = _train_config(epochs=2, backup_every_steps=2)
    model, dataset = tiny_problem(train_config)
    original_fit = model.fit
    model.fit = lambda *arguments, callbacks=(), **keywords: original_fit(
        *arguments, callbacks=[*callbacks, KillAtBatch(1, 2)], **keywords)
    with pytest.raises(KilledAt):
        training.fit(model, dataset, dataset, train_config, tmp_path)
    backup = tmp_path / "checkpoints" / "backup"
    metadata = json.loads((backup / "training_metadata.json").read_text())
    assert metadata == {"epoch": 1, "batch": 1, "iterations": 6}  # batch 2 is not a multiple of 2 steps
    assert training.load_checkpoint(tmp_path, epochs=1).steps_completed == 0  # no epoch 2 to train
    (backup / "training_metadata.json").write_text(json.dumps({**metadata, "iterations": 5}))  # torn
    checkpoint = training.load_checkpoint(tmp_path)
    assert (checkpoint.epochs_completed, checkpoint.steps_completed) == (1, 0)
    assert training.optimizer_iterations(checkpoint.model) == 4
    assert "step backup" in capsys.readouterr().err
    (backup / "training_metadata.json").write_text(json.dumps({**metadata, "epoch": 0}))  # before the epoch's end
    assert training.load_checkpoint(tmp_path).steps_completed == 0


def test_monitor_mode_auto_reads_the_name():
    for monitor, mode in (("val_loss", "min"), ("val_mae", "min"), ("val_accuracy", "max"),
                          ("val_entity_f1", "max"), ("val_perplexity", "min")):
        assert training.monitor_mode(config.TrainConfig(monitor=monitor)) == mode
    assert training.monitor_mode(config.TrainConfig(monitor="val_loss", monitor_mode="max")) == "max"


class _ScriptedScore:
    """A validation score that follows a script, and remembers the weights each epoch was scored with."""

    def __init__(self, values):
        self.values, self.weights = list(values), []

    def __call__(self, model):
        self.weights.append([np.array(weight) for weight in model.get_weights()])
        return self.values[len(self.weights) - 1]


@pytest.mark.parametrize("patience", [0, 1])
def test_an_app_score_selects_the_kept_weights(tmp_path, patience):
    """train.monitor on an app's own score (mode max): the best epoch's weights are kept, not the last;
    with patience 1 training stops after the first epoch that does not improve on it."""
    train_config = _train_config(epochs=4, ema_momentum=None, monitor="val_score", monitor_mode="max",
                                 early_stopping_patience=patience, restore_best_weights=True)
    model, dataset = tiny_problem(train_config)
    score = _ScriptedScore([0.1, 0.7, 0.3, 0.2])
    history = training.fit(model, dataset, dataset, train_config, tmp_path,
                           callbacks=[training.ValidationScore("val_score", score)])
    assert history["val_score"] == [0.1, 0.7, 0.3, 0.2][:4 if patience == 0 else 3]
    assert int(np.argmin(history["val_loss"])) != 1  # the loss would have chosen another epoch
    for kept, best in zip(model.get_weights(), score.weights[1]):
        np.testing.assert_array_equal(kept, best)


def test_restore_best_weights_false_keeps_the_last_epoch(tmp_path):
    train_config = _train_config(epochs=3, ema_momentum=None, monitor="val_score", monitor_mode="max")
    model, dataset = tiny_problem(train_config)
    score = _ScriptedScore([0.9, 0.1, 0.2])
    training.fit(model, dataset, dataset, train_config, tmp_path,
                 callbacks=[training.ValidationScore("val_score", score)])
    for kept, last in zip(model.get_weights(), score.weights[-1]):
        np.testing.assert_array_equal(kept, last)



def test_a_monitor_nobody_logs_is_a_user_error(tmp_path):
    """Selection on a name the epochs do not log would keep the last epoch without a word; it is an error."""
    from seq_templates import errors

    train_config = _train_config(epochs=2, ema_momentum=None, monitor="val_acc", restore_best_weights=True)
    model, dataset = tiny_problem(train_config)
    with pytest.raises(errors.SeqTemplatesError, match=r"train.monitor=val_acc is not logged.*val_accuracy"):
        training.fit(model, dataset, dataset, train_config, tmp_path)


def test_seconds_per_token_times_training_by_the_tokens_each_batch_holds():
    assert training.padded_tokens({"ids": tf.zeros((4, 7)), "chars": tf.zeros((4, 7, 3))}) == 28
    assert training.padded_tokens(tf.ragged.constant([[1, 2, 3], [4]])) == 6  # 2 rows x 3 steps
    assert training.padded_tokens(tf.zeros((5,))) == 5
    inputs = keras.Input(shape=(None, 2))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GRU(4)(inputs)))
    model.compile(optimizer="adam", loss="mse")
    lengths = [3, 9, 5, 12, 4, 7]
    dataset = tf.data.Dataset.from_generator(
        lambda: ((np.ones((8, length, 2), "float32"), np.zeros((8, 1), "float32")) for length in lengths),
        output_signature=(tf.TensorSpec((None, None, 2)), tf.TensorSpec((None, 1))))
    seconds = training.seconds_per_token(model, dataset, steps=3, warmup=2)
    assert 0 < seconds < 1
    assert model.optimizer.iterations.numpy() == 5  # it trained on the batches it timed
