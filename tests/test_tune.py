"""``seq-templates tune``: a study of ordinary runs, continued after a kill, ending in a usable config."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml

from tests import conftest

pytest.importorskip("optuna")
pytest.importorskip("optuna_integration")

QUICK = ("--set", "train.epochs=2", "--set", "data.max_train_samples=200", "--set", "train.verbose=0",
         "--set", "train.tensorboard=false")


def trial_states(study_dir):
    """``{trial number: state}`` read from the study's SQLite file."""
    with sqlite3.connect(study_dir / "study.db") as connection:
        return dict(connection.execute("SELECT number, state FROM trials ORDER BY number"))


def trial_values(study_dir):
    """``[{parameter: value}]`` of the study's trials, in trial order."""
    with sqlite3.connect(study_dir / "study.db") as connection:
        rows = connection.execute("SELECT trial_id, param_name, param_value FROM trial_params ORDER BY trial_id")
        values = {}
        for trial_id, name, value in rows:
            values.setdefault(trial_id, {})[name] = value
    return [values[trial_id] for trial_id in sorted(values)]


def test_tune_runs_trials_as_run_directories_and_writes_the_best_config(tmp_path, cli_in_process):
    study = tmp_path / "study"
    first = cli_in_process("tune", "sentiment", "--trials", 1, "--max-minutes", 0.25, "--study-dir", study, *QUICK)
    assert first.returncode == 0, first.stderr
    # Continued to two trials: the second draws its own values (a sampler seeded as before drew trial 0's again)
    result = cli_in_process("tune", "sentiment", "--trials", 2, "--max-minutes", 0.5, "--study-dir", study, *QUICK)
    assert result.returncode == 0, result.stderr
    values = trial_values(study)
    assert len(values) == 2 and values[0] != values[1], values
    assert "Best trial" in result.stdout
    states = trial_states(study)
    assert len(states) == 2 and set(states.values()) <= {"COMPLETE", "PRUNED"}
    assert (study / "trial-000" / "metrics.json").is_file()
    best = yaml.safe_load((study / "best.yaml").read_text())
    assert set(best) == {"data", "model", "train"}
    assert (study / "plots" / "optimization_history.png").stat().st_size > 0
    # the same command again: the study is done, nothing is repeated
    again = cli_in_process("tune", "sentiment", "--trials", 2, "--max-minutes", 0.5, "--study-dir", study, *QUICK)
    assert again.returncode == 0 and "2 of 2 trials done" in again.stdout
    assert trial_states(study) == states


def test_tune_refuses_bad_arguments_in_one_line(tmp_path, cli_in_process):
    result = cli_in_process("tune", "sentiment", "--trials", 0, "--study-dir", tmp_path / "s")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--trials" in result.stderr
    app = tmp_path / "my_app" / "sentiment_app.py"
    assert cli_in_process("new", "sentiment", tmp_path / "my_app").returncode == 0
    (app.parent / "search_space.yaml").write_text("model.units: 7\n")
    result = cli_in_process("tune", app, "--trials", 1, "--study-dir", tmp_path / "s")
    assert result.returncode == 2 and "search_space.yaml" in result.stderr and "model.units" in result.stderr


@pytest.mark.slow
def test_a_killed_tune_continues_without_repeating_finished_trials(tmp_path):
    study = tmp_path / "study"
    command = [sys.executable, "-m", "seq_templates.cli", "tune", "sentiment", "--trials", "3", "--max-minutes",
               "0.6", "--study-dir", str(study), *QUICK]
    environment = {**os.environ, **conftest.TEST_ENVIRONMENT}
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        states = trial_states(study) if (study / "study.db").is_file() else {}
        if "COMPLETE" in states.values() and "RUNNING" in states.values():
            break
        time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = trial_states(study)
    finished = {number for number, state in before.items() if state in ("COMPLETE", "PRUNED")}
    assert finished, before
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "was interrupted; it runs again with the same values" in result.stdout
    after = trial_states(study)
    assert {number: after[number] for number in finished} == {number: before[number] for number in finished}
    counted = [state for state in after.values() if state in ("COMPLETE", "PRUNED")]
    assert len(counted) == 3  # the interrupted trial ran again; no finished one was repeated
