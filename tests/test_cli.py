"""The `seq-templates` command end to end, and its answers to bad input."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tests.conftest import TEST_ENVIRONMENT
from tests.conftest import interrupt_training
from tests.conftest import run_cli
from tests.conftest import write_sentiment_file

QUICK = ["--set", "train.epochs=1", "--set", "model.units=8", "--set", "model.embedding_dim=8",
         "--set", "train.tensorboard=false"]


def test_list_shows_templates_and_datasets():
    completed = run_cli("list")
    assert completed.returncode == 0, completed.stderr
    assert "sentiment" in completed.stdout
    for name in ("sst2", "imdb", "conll2003", "synthetic_sentiment"):
        assert name in completed.stdout


@pytest.mark.parametrize("verb", ["train", "evaluate", "predict", "export", "new", "list", "serve"])
def test_every_verb_has_help(verb):
    completed = run_cli(verb, "--help")
    assert completed.returncode == 0 and "usage:" in completed.stdout


def test_train_help_for_a_task_shows_the_options():
    completed = run_cli("train", "sentiment", "--help")
    assert completed.returncode == 0
    for option in ("--data", "--dataset", "--output-dir", "--config", "--set", "--resume", "--no-preset"):
        assert option in completed.stdout


def test_train_export_predict_evaluate_end_to_end(tmp_path, tiny_sentiment_file, cli_in_process):
    run = tmp_path / "run"
    trained = run_cli("train", "sentiment", "--data", tiny_sentiment_file, "--output-dir", run, *QUICK,
                      "--set", "data.serving_max_length=50")
    assert trained.returncode == 0, trained.stderr[-3000:]
    serving = json.loads((run / "export" / "1" / "assets.extra" / "serving.json").read_text())
    assert serving == {"named_outputs": {"probabilities": "labels.txt"}, "reads_tokens": 50,
                       "notes": ["this export reads the first 50 tokens of each input (data.serving_max_length)"]}
    assert "Exported SavedModel" in trained.stdout and (run / "export" / "1" / "saved_model.pb").is_file()
    assert " - loss: " in trained.stdout and "\r" not in trained.stdout  # a line per epoch, no bar

    # The installed command trained; the later verbs run as its main() here (no TensorFlow start-up).
    exported = cli_in_process("export", run)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert (run / "export" / "2" / "saved_model.pb").is_file()

    predicted = cli_in_process("predict", run / "export", "the plot was good", "the plot was not good")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert "reads the first 50 tokens" in predicted.stderr  # an explicit serving cut is reported
    records = [json.loads(line) for line in predicted.stdout.strip().splitlines()]
    assert [record["input"] for record in records] == ["the plot was good", "the plot was not good"]
    for record in records:
        assert record["label"] in ("negative", "positive")
        assert set(record["probabilities"]) == {"negative", "positive"}
        assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)

    trained_metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").unlink()
    evaluated = cli_in_process("evaluate", run)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    evaluated_metrics = json.loads((run / "metrics.json").read_text())
    # The export, scored again from the CLI, answers exactly as the model did at the end of training.
    assert evaluated_metrics["num_examples"] == trained_metrics["num_examples"] == 40
    assert evaluated_metrics["model"] == trained_metrics["model"]
    assert evaluated_metrics["baseline"]["accuracy"] == trained_metrics["baseline"]["accuracy"]


def test_new_copies_an_app_that_trains_from_its_own_file(tmp_path, tiny_sentiment_file, cli_in_process):
    created = cli_in_process("new", "sentiment", tmp_path / "my_app")
    assert created.returncode == 0, created.stderr
    app_file = tmp_path / "my_app" / "sentiment_app.py"
    assert app_file.is_file() and (tmp_path / "my_app" / "configs" / "default.yaml").is_file()
    again = cli_in_process("new", "sentiment", tmp_path / "my_app")
    _assert_one_line_error(again, "not empty")
    (tmp_path / "a_file.txt").write_text("mine")
    onto_a_file = cli_in_process("new", "sentiment", tmp_path / "a_file.txt")
    _assert_one_line_error(onto_a_file, "is a file")
    assert (tmp_path / "a_file.txt").read_text() == "mine"
    app_file.write_text(app_file.read_text().replace('name=f"{TASK}_{model_config.cell}"',
                                                     'name="edited_model"'))
    trained = subprocess.run(
        [sys.executable, app_file, "--data", tiny_sentiment_file, "--output-dir", tmp_path / "run", *QUICK],
        capture_output=True, text=True, env={**os.environ, **TEST_ENVIRONMENT}, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "edited_model" in trained.stdout


def _assert_one_line_error(completed, *fragments):
    assert completed.returncode == 2, completed.stdout[-2000:] + completed.stderr[-2000:]
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), completed.stderr[-2000:]
    assert "Traceback" not in completed.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _bad_input_cases(tmp_path, tiny_sentiment_file):
    write_sentiment_file(tmp_path / "wrong_column.tsv", [("good", "1")] * 5, header="review\tlabel")
    (tmp_path / "empty.tsv").write_text("")
    (tmp_path / "latin1.tsv").write_bytes(b"text\tlabel\ngood\t1\ncaf\xe9\t0\n")
    data = ["--data", tiny_sentiment_file]
    return [
        (["--data", tmp_path / "missing.tsv"], ["missing.tsv", "does not exist"]),
        (["--data", tmp_path / "wrong_column.tsv"], ["no column 'text'", "data.text_column"]),
        (["--data", tmp_path / "empty.tsv"], ["empty.tsv", "no examples"]),
        (["--data", tmp_path / "latin1.tsv"], ["latin1.tsv:3:4", "data.encoding"]),
        (data + ["--set", "train.epoch=3"], ["unknown key 'train.epoch'"]),
        (data + ["--set", "train.epochs=three"], ["'train.epochs' expects an integer, received 'three'"]),
        (data + ["--set", "model.cell=transformer"], ["model.cell", "simple_rnn, lstm, gru"]),
        (data + ["--config", tmp_path / "none.yaml"], ["none.yaml", "does not exist"]),
        (data + ["--config", "nosuchconfig"], ["'nosuchconfig'", "one of: default"]),
        (data + ["--set", "data.standardize=stem"], ["data.standardize", "tokenize_and_lower"]),
        (["--dataset", "nope"], ["Unknown dataset 'nope'"]),
        # Values that used to fail only when the model was built, or train silently:
        (data + ["--set", "model.dropout_rate=1.5"], ["'model.dropout_rate' expects a value below 1.0"]),
        (data + ["--set", "data.token_dropout_rate=1.5"], ["'data.token_dropout_rate' expects a value below 1.0"]),
        (data + ["--set", "train.ema_momentum=1"], ["'train.ema_momentum' expects a value below 1.0"]),
        (data + ["--set", "train.bucket_boundaries=[8,4]"],
         ["'train.bucket_boundaries' expects strictly increasing values, received [8, 4]", "sort them"]),
        # A dataset of another template's format (a TypeError traceback before):
        (["--dataset", "conll2003"], ["'conll2003' holds ner data (format conll)", "seq-templates train ner"]),
    ]


def test_bad_inputs_give_one_line_exit_2_and_leave_nothing(tmp_path, tiny_sentiment_file, cli_in_process):
    for index, (arguments, fragments) in enumerate(_bad_input_cases(tmp_path, tiny_sentiment_file)):
        output_dir = tmp_path / "runs" / f"bad{index}"
        run = run_cli if index == 0 else cli_in_process  # the installed command once, then its main()
        completed = run("train", "sentiment", *arguments, "--output-dir", output_dir, *QUICK)
        _assert_one_line_error(completed, *fragments)
        assert not output_dir.exists() and not output_dir.with_name(output_dir.name + ".partial").exists()


def test_other_verbs_reject_bad_paths_in_one_line(tmp_path, cli_in_process):
    _assert_one_line_error(cli_in_process("predict", tmp_path, "text"), "No SavedModel found")
    _assert_one_line_error(cli_in_process("evaluate", tmp_path), "not a run directory")
    _assert_one_line_error(cli_in_process("train", "nosuchtask"), "Unknown template 'nosuchtask'")
    _assert_one_line_error(cli_in_process("new", "nosuchtask", tmp_path / "x"), "Unknown template")


def test_an_existing_output_dir_is_never_overwritten(tmp_path, tiny_sentiment_file, cli_in_process):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    completed = cli_in_process("train", "sentiment", "--data", tiny_sentiment_file, "--output-dir",
                               tmp_path / "taken", *QUICK)
    _assert_one_line_error(completed, "already exists")
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path, tiny_sentiment_file, cli_in_process):
    run = tmp_path / "run"
    partial = tmp_path / "run.partial"
    returncode, stderr = interrupt_training(
        ["train", "sentiment", "--data", tiny_sentiment_file, "--output-dir", run, "--set", "train.epochs=40",
         "--set", "train.early_stopping_patience=0", "--set", "model.units=8", "--set", "train.tensorboard=false"],
        partial)
    assert returncode == 130, stderr[-2000:]
    state_file = partial / "checkpoints" / "state.json"
    assert "--resume" in stderr and "Traceback" not in stderr and not run.exists() and partial.is_dir()
    completed_before = json.loads(state_file.read_text())["epochs_completed"]

    # The interrupted run was the installed command; its resumes run as its main() here.
    refused = cli_in_process("train", "sentiment", "--output-dir", run, "--resume", "--set", "train.epochs=4",
                             "--set", "model.units=16", "--set", "data.max_tokens=50")
    _assert_one_line_error(refused, "--resume cannot change data.max_tokens, model.units")
    assert partial.is_dir() and not run.exists()
    _assert_one_line_error(cli_in_process("export", partial), f"'{partial}' is an unfinished run",
                           f"seq-templates train sentiment --resume --output-dir {run}")
    other_task = cli_in_process("train", "ner", "--output-dir", run, "--resume")
    _assert_one_line_error(other_task, "is an interrupted sentiment run; continue it with seq-templates train "
                                       "sentiment --resume")

    resumed = cli_in_process("train", "sentiment", "--output-dir", run, "--resume", "--set", "train.epochs=4",
                             "--set", "train.early_stopping_patience=0")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming after epoch {completed_before}" in resumed.stdout
    assert "Resuming with changed settings: train.epochs=4" in resumed.stdout
    resumes = json.loads((run / "run.json").read_text())["resumed"]
    assert resumes[0]["changed"] == {"train.epochs": 4}
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == max(4, completed_before)
    assert not partial.exists() and (run / "export" / "1").is_dir()


def test_path_mistakes_and_damaged_runs_give_one_line(tmp_path, tiny_sentiment_file, cli_in_process):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    completed = cli_in_process("train", "sentiment", "--data", tiny_sentiment_file, "--output-dir",
                               a_file / "sub", *QUICK)
    _assert_one_line_error(completed, "Cannot create the run directory", "a_file/sub.partial")
    unwritable = cli_in_process("train", "sentiment", "--data", tiny_sentiment_file, "--output-dir", "/proc/x", *QUICK)
    _assert_one_line_error(unwritable, "Cannot create the run directory '/proc/x.partial'",
                           "choose another --output-dir")
    assert not pathlib.Path("/proc/x").exists() and not pathlib.Path("/proc/x.partial").exists()
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "run.json").write_text("{not json")
    _assert_one_line_error(cli_in_process("evaluate", damaged), "run.json: not a readable run.json")
    _assert_one_line_error(cli_in_process("export", damaged), "the run directory is damaged")
    (damaged / "run.json").write_text("[]")
    _assert_one_line_error(cli_in_process("evaluate", damaged), "run.json: names no task")
    refused = run_cli("serve", damaged, "--port", "99999")
    assert refused.returncode == 2 and "expects a port from 0 to 65535" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_export_mistakes_give_one_line_and_write_nothing(tmp_path, tiny_sentiment_file, cli_in_process):
    run = tmp_path / "run"
    trained = cli_in_process("train", "sentiment", "--data", tiny_sentiment_file, "--output-dir", run, *QUICK)
    assert trained.returncode == 0, trained.stderr[-3000:]
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    _assert_one_line_error(cli_in_process("export", run, "--export-dir", a_file),
                           f"'{a_file}' is a file, not a folder of export versions; give --export-dir a folder")
    assert a_file.read_text() == "mine"
    # A run that stopped after model.keras was written, before its folder was renamed (a crash in evaluation):
    unfinished = tmp_path / "crashed.partial"
    shutil.copytree(run, unfinished)
    _assert_one_line_error(cli_in_process("export", unfinished), f"'{unfinished}' is an unfinished run",
                           f"seq-templates train sentiment --resume --output-dir {tmp_path / 'crashed'}")
    no_model = tmp_path / "no_model"
    shutil.copytree(run, no_model)
    (no_model / "model.keras").unlink()
    _assert_one_line_error(cli_in_process("export", no_model), f"'{no_model}' has no model.keras")
    for folder in (run, unfinished, no_model):
        assert sorted(item.name for item in (folder / "export").iterdir()) == ["1"]  # no version, no temp folder


def test_other_templates_refuse_each_others_datasets(cli_in_process):
    for task, dataset, owner in (("ner", "sst2", "sentiment"), ("translation", "tiny_shakespeare", "text_generation"),
                                 ("forecasting", "sst2", "sentiment")):
        _assert_one_line_error(cli_in_process("train", task, "--dataset", dataset),
                               f"holds {owner} data", f"seq-templates train {owner} --dataset {dataset}")


def test_a_crash_before_the_first_checkpoint_leaves_nothing_and_after_it_keeps_the_run(tmp_path, capsys):
    from seq_templates import run_directory

    with pytest.raises(RuntimeError):
        with run_directory.open_run(tmp_path / "first") as work:
            (work / "config.yaml").write_text("written")
            raise RuntimeError("a bug while building the model")
    assert not (tmp_path / "first.partial").exists()
    assert "nothing is kept" in capsys.readouterr().err
    with pytest.raises(KeyboardInterrupt):
        with run_directory.open_run(tmp_path / "second") as work:
            (work / "checkpoints").mkdir()
            (work / "checkpoints" / "state.json").write_text("{}")
            raise KeyboardInterrupt
    assert (tmp_path / "second.partial" / "checkpoints" / "state.json").is_file()
    assert f"continue it with --resume --output-dir {tmp_path / 'second'}" in capsys.readouterr().err
