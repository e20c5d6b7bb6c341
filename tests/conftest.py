"""Shared fixtures: an isolated cache, the shared real datasets, tiny data files, CLI runner."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
TEST_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Every test uses a fresh cache folder instead of ~/.cache/seq_templates."""
    cache = tmp_path_factory.mktemp("seq_templates_cache")
    os.environ["SEQ_TEMPLATES_CACHE"] = str(cache)
    os.environ.update(TEST_ENVIRONMENT)
    return cache


@pytest.fixture(scope="session")
def shared_data():
    """The folder of real datasets ($SEQ_TEMPLATES_DATA), or skip with the reason."""
    configured = os.environ.get("SEQ_TEMPLATES_DATA")
    if not configured:
        pytest.skip("SEQ_TEMPLATES_DATA is not set (point it at ../shared/data to run real-data tests)")
    folder = pathlib.Path(configured)
    if not folder.is_dir():
        pytest.skip(f"SEQ_TEMPLATES_DATA={configured} is not a folder")
    return folder


def sentiment_app_with_callbacks(docstring, callbacks_code):
    """The source of an app file: the sentiment template whose ``training_callbacks`` ``callbacks_code``
    defines (with ``json``, ``os``, ``signal``, ``sys`` and ``keras`` imported)."""
    return (f'"""{docstring}"""\n' + """
import json
import os
import signal
import sys

import keras

from seq_templates import apps_loader
from seq_templates import lifecycle

_sentiment = apps_loader.load_app("sentiment")
TASK, CONFIG_SECTIONS = _sentiment.TASK, _sentiment.CONFIG_SECTIONS
(load_raw_data, build_preprocessing, make_dataset, build_model, evaluate, build_serving,
 example_inputs) = (_sentiment.load_raw_data, _sentiment.build_preprocessing, _sentiment.make_dataset,
                    _sentiment.build_model, _sentiment.evaluate, _sentiment.build_serving,
                    _sentiment.example_inputs)
""" + callbacks_code + """

def main(argv=None):
    return lifecycle.train(sys.modules[__name__], argv)
""")


def write_sentiment_file(path, rows, header="text\tlabel"):
    """Writes a small TSV of (text, label) rows."""
    lines = [header] + [f"{text}\t{label}" for text, label in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_sentiment_file(tmp_path_factory):
    """A 400-row TSV drawn from the generated sentiment data (word order matters)."""
    from seq_templates.data import synthetic

    texts, labels = synthetic.sentiment_splits(num_train=400, num_validation=0, num_test=0, seed=7)["train"]
    return write_sentiment_file(tmp_path_factory.mktemp("data") / "tiny.tsv", zip(texts, labels))


def interrupt_training(arguments, partial_folder, after_epochs=2, timeout=300):
    """Starts `seq-templates ARGUMENTS`, sends Ctrl-C once ``after_epochs`` epochs are checkpointed.

    Returns:
        ``(returncode, stderr)`` of the interrupted process.
    """
    command = [sys.executable, "-m", "seq_templates.cli", *map(str, arguments)]
    # A test runner started in the background may pass SIGINT on as ignored; restore it for the child.
    process = subprocess.Popen(command, env={**os.environ, **TEST_ENVIRONMENT}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=REPOSITORY,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    state_file = pathlib.Path(partial_folder) / "checkpoints" / "state.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if state_file.is_file() and json.loads(state_file.read_text())["epochs_completed"] >= after_epochs:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


@pytest.fixture
def cli_in_process(capfd):
    """Runs ``seq-templates ARGUMENTS`` as ``seq_templates.cli.main(ARGUMENTS)`` in the test's process.

    For answers that need no fresh process (bad input, predict on an export): it saves a
    TensorFlow start-up per call. ``run_cli`` stays the check of the installed command itself.
    Returns a function ``run(*arguments) -> CompletedProcess`` with the exit status and what the
    call wrote to file descriptors 1 and 2.
    """
    from seq_templates import cli

    def run(*arguments):
        capfd.readouterr()
        status = cli.main([str(argument) for argument in arguments])
        captured = capfd.readouterr()
        return subprocess.CompletedProcess(arguments, status, captured.out, captured.err)

    return run


def run_cli(*arguments, cwd=None, environment=None, timeout=600):
    """Runs the `seq-templates` command in a subprocess; returns the CompletedProcess."""
    command = [sys.executable, "-m", "seq_templates.cli", *map(str, arguments)]
    env = dict(os.environ)
    env.update(TEST_ENVIRONMENT)
    env.update(environment or {})
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def trained_app_runs(tmp_path_factory):
    """Trains an app (a bundled template or a fixture app) once per test session with its quick settings.

    Returns a function ``train(name) -> (app module, run directory)``, named as in
    ``tests/apps/test_app_contract.py``'s ``APPS``, trained with its ``QUICK`` overrides. The run
    directory is shared by every test that asks for it, in every pytest-xdist worker of the session
    (the first worker to ask trains it, under a file lock; the others wait and reuse it): copy what
    you change.
    """
    import fcntl
    import shutil

    from seq_templates import apps_loader
    from tests.apps import test_app_contract

    runs = {}
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "trained_app_runs"
    shared.mkdir(exist_ok=True)

    def train(name):
        if name not in test_app_contract.QUICK:
            pytest.skip(f"{name} has no quick settings in tests/apps/test_app_contract.py QUICK yet")
        if name not in runs:
            app = apps_loader.load_app(str(test_app_contract.APPS[name]))
            folder = shared / name
            with open(shared / f"{name}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
                if not (folder / "trained").exists():
                    shutil.rmtree(folder, ignore_errors=True)
                    folder.mkdir()
                    overrides = sum((["--set", item] for item in test_app_contract.QUICK[name]["overrides"]), [])
                    assert app.main(["--output-dir", str(folder / "run"), *overrides]) == 0
                    (folder / "trained").write_text("")
            runs[name] = (app, folder / "run")
        return runs[name]

    return train
