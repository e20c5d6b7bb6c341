"""``seq-templates tune``: an Optuna study over an app's search space, every trial an ordinary run.

The search space is declared by the app, next to its configs, in ``search_space.yaml``: each
key a ``section.name`` of the app's configuration and each value either a list of choices or
``{low, high[, log][, step]}`` (an integer range when both bounds are integers, else a float
range). Each trial trains with the sampled values as ``--set`` overrides (the user's
``--config``/``--set`` and the auto settings fill the rest) into ``STUDY/trial-NNN``, a run
directory like any other, and scores the validation split's headline figure (the app's
``HEADLINE``, from ``metrics.json``'s ``versus_baseline``): the test split never steers the
search. TPE samples (seeded); the median pruner stops a trial whose ``train.monitor`` lags the
median of earlier trials at the same epoch (Optuna's Keras integration, ``KerasPruningCallback``).

The study lives in ``STUDY/study.db`` (SQLite): a ``tune`` killed at any moment continues with
the same command; trials that were running are run again with the same values, finished ones are
never repeated. At the end ``STUDY/best.yaml`` is the best trial's ``config.yaml`` (give it to
``--config``), and ``plots/optimization_history.png`` and ``plots/param_importances.png`` are drawn.

``--max-minutes`` is the whole study's training budget: each trial gets
``train.max_minutes = max_minutes * jobs / trials``. ``--jobs J`` runs J worker processes on the
same study (Optuna's storage coordinates them).

Optuna is an optional extra (``pip install seq-templates[tune]``; requirements.txt has it).
"""

import math
import os
import pathlib
import shutil
import subprocess
import sys

import yaml

from seq_templates import apps_loader
from seq_templates import config as config_module
from seq_templates import errors

SEARCH_SPACE_FILE = "search_space.yaml"
STUDY_FILE = "study.db"
INTERRUPTED = "interrupted"  # user attribute of a trial whose process was killed while it ran
WORKER_ENVIRONMENT = "SEQ_TEMPLATES_TUNE_WORKER"


def _optuna():
    try:
        import optuna
    except ImportError:
        raise errors.SeqTemplatesError(
            "seq-templates tune needs Optuna: pip install 'seq-templates[tune]' (or optuna optuna-integration)."
        ) from None
    return optuna


def read_search_space(app_file):
    """The app's ``search_space.yaml`` beside its file: ``{key: list of choices or range dict}``.

    Raises:
        SeqTemplatesError: No such file, or an entry that is neither a list nor a range.
    """
    path = pathlib.Path(app_file).parent / SEARCH_SPACE_FILE
    if not path.is_file():
        raise errors.SeqTemplatesError(f"{path} does not exist: an app declares what tune searches there "
                                       "(key: [choices] or key: {low: .., high: ..}).")
    space = config_module.safe_load(path.read_text(encoding="utf-8")) or {}
    for key, value in space.items():
        ranged = isinstance(value, dict) and {"low", "high"} <= set(value) and set(value) <= {"low", "high", "log",
                                                                                               "step"}
        if not ((isinstance(value, list) and value) or ranged) or "." not in str(key):
            raise errors.SeqTemplatesError(
                f"{path}: '{key}' expects section.name: [choices] or section.name: {{low, high[, log][, step]}}, "
                f"received {value!r}.")
    return space


def suggest(trial, space):
    """Samples every key of ``space`` with ``trial``; returns ``{key: value}``."""
    values = {}
    for key, value in space.items():
        if isinstance(value, list):
            values[key] = trial.suggest_categorical(key, value)
        elif all(isinstance(value[bound], int) and not isinstance(value[bound], bool) for bound in ("low", "high")):
            values[key] = trial.suggest_int(key, value["low"], value["high"], step=value.get("step", 1),
                                            log=bool(value.get("log", False)))
        else:
            values[key] = trial.suggest_float(key, float(value["low"]), float(value["high"]),
                                              step=value.get("step"), log=bool(value.get("log", False)))
    return values


def as_override(key, value):
    """``key=value`` with the value written as YAML (``--set`` reads it back the same)."""
    return f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"


def counted(trial):
    """Whether a trial counts towards ``--trials``: finished, pruned, or failed on its own."""
    state = trial.state.name
    return state in ("COMPLETE", "PRUNED") or (state == "FAIL" and not trial.user_attrs.get(INTERRUPTED))


def recover_interrupted(study):
    """Marks trials left running by a killed process as failed, and queues their values again."""
    optuna = _optuna()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        study.enqueue_trial(trial.params, skip_if_exists=False)
        print(f"Trial {trial.number} was interrupted; it runs again with the same values.", flush=True)


def tune(task, train_arguments, trials, max_minutes, study_dir, jobs=1, seed=42, worker_argv=None):
    """Runs (or continues) the study; returns the best trial's ``{"value", "params", "run"}``.

    Args:
        task: A template name or an app file.
        train_arguments: Arguments every trial's ``train`` gets (``--data``/``--dataset``,
            ``--config``, ``--set``).
        trials: Trials the study should hold when done (finished, pruned or failed).
        max_minutes: The whole study's training budget in minutes.
        study_dir: The study folder (``study.db``, ``trial-NNN/``, ``best.yaml``, ``plots/``).
        jobs: Worker processes.
        seed: The TPE sampler's seed.
        worker_argv: The ``seq-templates`` arguments that started this study (``["tune", ...]``):
            the other ``jobs - 1`` workers run them too.
    """
    optuna = _optuna()
    app = apps_loader.load_app(task)
    headline = getattr(app, "HEADLINE", None)
    if headline is None:
        raise errors.SeqTemplatesError(f"{app.__file__} has no HEADLINE: tune needs the figure to maximize "
                                       "or minimize (see seq_templates/evaluation/report.py).")
    space = read_search_space(app.__file__)
    study_dir = pathlib.Path(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    worker_number = int(os.environ.get(WORKER_ENVIRONMENT) or 0)  # 0: the process the user started
    worker = worker_number > 0
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=app.TASK, storage=f"sqlite:///{study_dir / STUDY_FILE}", load_if_exists=True,
        direction="maximize" if headline[1] == "max" else "minimize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))
    # A sampler seeded alike in every process would draw the same values again: a continued study
    # would repeat its first trials' values and parallel workers each other's. The seed moves on
    # with the trials already in the study and the worker's number; a new study with --seed is the same.
    study.sampler = optuna.samplers.TPESampler(
        seed=seed + len(study.get_trials(deepcopy=False)) + 1000 * worker_number)
    if not worker:
        recover_interrupted(study)
    minutes = max_minutes * jobs / trials
    print(f"Study {study_dir}: {sum(map(counted, study.get_trials(deepcopy=False)))} of {trials} trials done; "
          f"{minutes:.2f} training minutes per trial; searching {', '.join(space)}", flush=True)

    def objective(trial):
        from seq_templates import lifecycle

        import keras
        from optuna_integration import KerasPruningCallback

        values = suggest(trial, space)
        run = study_dir / f"trial-{trial.number:03d}"
        shutil.rmtree(run, ignore_errors=True)
        shutil.rmtree(run.with_name(run.name + ".partial"), ignore_errors=True)
        trial.set_user_attr("run", str(run))
        argv = [*train_arguments, *(argument for key, value in values.items() for argument in (
            "--set", as_override(key, value))), "--set", f"train.max_minutes={minutes:.4g}",
            "--output-dir", str(run)]
        print(f"Trial {trial.number}: {', '.join(as_override(key, value) for key, value in values.items())}",
              flush=True)
        keras.backend.clear_session()
        from seq_templates import train_arguments as arguments_module
        monitor = arguments_module.parse(argv, app.CONFIG_SECTIONS, app.TASK).config["train"].monitor
        shutil.rmtree(run.with_name(run.name + ".partial"), ignore_errors=True)
        lifecycle.train(app, argv, extra_callbacks=[KerasPruningCallback(trial, monitor)])
        comparison = _read_metrics(run).get("versus_baseline") or {}
        if comparison.get("test"):
            trial.set_user_attr("test", comparison["test"]["model"])
        if not comparison.get("validation"):
            raise errors.SeqTemplatesError(f"{run}/metrics.json has no validation figure to optimize.")
        return comparison["validation"]["model"]

    def stop_when_done(study, trial):
        if sum(map(counted, study.get_trials(deepcopy=False))) >= trials:
            study.stop()

    workers = []
    if not worker:
        command = [sys.executable, "-m", "seq_templates.cli", *worker_argv] if worker_argv else None
        for number in range(1, jobs if command else 1):
            workers.append(subprocess.Popen(command, env={**os.environ, WORKER_ENVIRONMENT: str(number)}))
    remaining = trials - sum(map(counted, study.get_trials(deepcopy=False)))
    if remaining > 0:
        study.optimize(objective, n_trials=remaining, callbacks=[stop_when_done],
                       catch=(errors.SeqTemplatesError, ValueError))
    for process in workers:
        process.wait()
    if worker:
        return None
    return report(study, study_dir)


def _read_metrics(run):
    import json

    path = pathlib.Path(run) / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def report(study, study_dir):
    """Writes ``best.yaml`` and the two plots; prints the best trial; returns its summary."""
    completed = [trial for trial in study.get_trials(deepcopy=False) if trial.state.name == "COMPLETE"]
    if not completed:
        raise errors.SeqTemplatesError(f"No trial of {study_dir} finished; see the trials' output above.")
    best = study.best_trial
    run = pathlib.Path(best.user_attrs["run"])
    header = (f"# seq-templates tune: the best of {len(completed)} finished trials (trial {best.number}, "
              f"validation {best.value:.4f}); train with --config {study_dir / 'best.yaml'}\n")
    temporary = study_dir / ".best.yaml.tmp"
    temporary.write_text(header + (run / "config.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    temporary.replace(study_dir / "best.yaml")
    _plots(study, study_dir / "plots")
    states = {}
    for trial in study.get_trials(deepcopy=False):
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    print(f"Best trial {best.number}: validation {best.value:.4f} (test {best.user_attrs.get('test', math.nan):.4f}); "
          + ", ".join(f"{key}={value}" for key, value in best.params.items()), flush=True)
    print(f"Trials: {', '.join(f'{count} {state}' for state, count in sorted(states.items()))}; best "
          f"configuration: {study_dir / 'best.yaml'}", flush=True)
    return {"value": best.value, "params": best.params, "run": str(run), "number": best.number}


def _plots(study, folder):
    """``optimization_history.png`` and, with two finished trials or more, ``param_importances.png``."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as optuna_plots

    folder.mkdir(parents=True, exist_ok=True)
    drawings = {"optimization_history.png": optuna_plots.plot_optimization_history}
    if sum(trial.state.name == "COMPLETE" for trial in study.get_trials(deepcopy=False)) >= 2:
        drawings["param_importances.png"] = optuna_plots.plot_param_importances
    for name, draw in drawings.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            try:
                axes = draw(study)
            except (ValueError, RuntimeError) as error:  # e.g. importances of a single-valued space
                print(f"No {name}: {error}", flush=True)
                continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        figure.tight_layout()
        figure.savefig(folder / name, dpi=110)
        import matplotlib.pyplot as pyplot
        pyplot.close(figure)
