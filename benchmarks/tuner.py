"""The tuner on real data, killed with SIGKILL part-way and started again (issue 18's tuner benchmark).

Runs ``seq-templates tune TASK --dataset NAME --trials N --max-minutes M --study-dir DIR`` in a
fresh process, sends it SIGKILL once ``--kill-after-minutes`` have passed and a trial has finished
while another runs, then runs the same command again to the end. It checks that the finished trials
were kept as they were (none run again) and that the study holds ``N`` counted trials, and prints the
best trial's validation and test figures beside the preset's test figure and the floor
(the preset's figure minus 0.005). The study folder keeps both processes' logs.

Usage:
    python benchmarks/tuner.py                                   # sentiment on sst2, 8 trials, 60 minutes
    python benchmarks/tuner.py --kill-after-minutes 0            # no kill: one uninterrupted study
"""

import argparse
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

PRESET = {("sentiment", "sst2"): 0.8291}  # docs/benchmarks.md: the preset's median test (dev) accuracy
FLOOR_MARGIN = 0.005


def trial_states(study_dir, task):
    """``{trial number: state name}`` of the study in ``study_dir`` (empty before it exists)."""
    import optuna

    if not (study_dir / "study.db").is_file():
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=task, storage=f"sqlite:///{study_dir / 'study.db'}")
    except KeyError:  # the database exists, the study not yet
        return {}
    return {trial.number: trial.state.name for trial in study.get_trials(deepcopy=False)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="sentiment")
    parser.add_argument("--dataset", default="sst2")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--max-minutes", type=float, default=60.0)
    parser.add_argument("--kill-after-minutes", type=float, default=25.0, help="0: no kill")
    parser.add_argument("--study-dir", default="runs/tune-benchmark")
    arguments = parser.parse_args(argv)

    study_dir = pathlib.Path(arguments.study_dir)
    if study_dir.exists():
        shutil.rmtree(study_dir)
    study_dir.mkdir(parents=True)
    command = [sys.executable, "-m", "seq_templates.cli", "tune", arguments.task, "--dataset", arguments.dataset,
               "--trials", str(arguments.trials), "--max-minutes", str(arguments.max_minutes),
               "--study-dir", str(study_dir)]
    result = {"command": " ".join(command[2:]), "trials": arguments.trials, "max_minutes": arguments.max_minutes}
    started = time.monotonic()
    with open(study_dir.with_name(study_dir.name + "-first.log"), "w", encoding="utf-8") as log:
        first = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
        kill_at = started + 60 * arguments.kill_after_minutes if arguments.kill_after_minutes > 0 else None
        while first.poll() is None:
            states = trial_states(study_dir, arguments.task)
            if kill_at and time.monotonic() >= kill_at and "RUNNING" in states.values() and any(
                    state in ("COMPLETE", "PRUNED") for state in states.values()):
                first.send_signal(signal.SIGKILL)
                first.wait()
                result["killed_after_minutes"] = round((time.monotonic() - started) / 60, 2)
                break
            time.sleep(5)
    before = trial_states(study_dir, arguments.task)
    finished = {number: state for number, state in before.items() if state in ("COMPLETE", "PRUNED")}
    result["before_restart"] = before
    if "killed_after_minutes" in result:
        with open(study_dir.with_name(study_dir.name + "-restart.log"), "w", encoding="utf-8") as log:
            result["restart_status"] = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                                                      env=dict(os.environ)).returncode
    after = trial_states(study_dir, arguments.task)
    result["after"] = after
    result["wall_minutes"] = round((time.monotonic() - started) / 60, 2)
    result["finished_trials_kept"] = all(after.get(number) == state for number, state in finished.items())
    result["counted_trials"] = sum(state in ("COMPLETE", "PRUNED") for state in after.values())

    import optuna

    study = optuna.load_study(study_name=arguments.task, storage=f"sqlite:///{study_dir / 'study.db'}")
    best = study.best_trial
    result["best"] = {"number": best.number, "validation": best.value, "test": best.user_attrs.get("test"),
                      "params": best.params}
    preset = PRESET.get((arguments.task, arguments.dataset))
    if preset is not None and best.user_attrs.get("test") is not None:
        result["preset_test"] = preset
        result["floor"] = round(preset - FLOOR_MARGIN, 4)
        result["floor_met"] = best.user_attrs["test"] >= preset - FLOOR_MARGIN
    print(json.dumps(result, indent=2))
    (study_dir / "benchmark.json").write_text(json.dumps(result, indent=2))
    return 0 if result["finished_trials_kept"] and result["counted_trials"] >= arguments.trials else 1


if __name__ == "__main__":
    sys.exit(main())
