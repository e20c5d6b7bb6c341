"""`seq-templates predict RUN --input-file F --output-file G`: streamed batch scoring.

The streamed file holds exactly the JSON lines `predict` prints for the same inputs; memory does not
grow with the input file; a bad line, Ctrl-C or SIGTERM leaves no G (and no temporary file), and a G
that was there before is left as it was. Real answers come from the quick sentiment and forecasting
runs (``trained_app_runs``); the rest from a toy export whose answers are string lengths.
"""

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from seq_templates import batch_predict
from seq_templates.data import synthetic
from tests import length_export as length_export_module
from tests.conftest import REPOSITORY
from tests.conftest import TEST_ENVIRONMENT


@pytest.fixture(scope="module")
def length_export(tmp_path_factory):
    """An export answering ``len(text)``; ``scale`` takes records (texts, factor, offset) with defaults;
    ``slow`` takes 0.1 s a call."""
    return length_export_module.save_length_export(tmp_path_factory.mktemp("length_export"), slow=True)


sentences = length_export_module.sentences
write_lines = length_export_module.write_lines


def test_streamed_answers_are_the_printed_ones_line_for_line(trained_app_runs, cli_in_process, tmp_path):
    _, run = trained_app_runs("sentiment")
    lines = sentences(3000)
    lines[10:10] = ["", "   ", "it isn't good — not at all…", "ünïcödé wörds , ça va"]  # blank lines are skipped
    inputs = write_lines(tmp_path / "inputs.txt", lines, ending="\r\n")
    output = tmp_path / "answers.jsonl"
    arguments = ["predict", run, "first INPUT", "--input-file", inputs, "--batch-size", "256"]
    printed = cli_in_process(*arguments)
    assert printed.returncode == 0, printed.stderr[-2000:]
    streamed = cli_in_process(*arguments, "--output-file", output)
    assert streamed.returncode == 0, streamed.stderr[-2000:]
    assert streamed.stdout == ""
    assert output.read_text(encoding="utf-8") == printed.stdout  # the same bytes, in the same order
    records = [json.loads(line) for line in printed.stdout.splitlines()]
    assert len(records) == 1 + 3002 and records[0]["input"] == "first INPUT"
    assert records[11]["input"] == "it isn't good — not at all…"
    assert set(records[1]) == {"input", "label", "probabilities"}
    last = streamed.stderr.strip().splitlines()[-1]
    assert last.startswith("predict: 3,003 inputs in ") and last.endswith(f"wrote {output}"), streamed.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["answers.jsonl", "inputs.txt"]


def test_a_forecasting_series_file_streams_as_it_prints(trained_app_runs, cli_in_process, tmp_path):
    _, run = trained_app_runs("forecasting")
    series = synthetic.write_timeseries_csv(tmp_path / "recent") / "series.csv"  # the training data's format
    printed = cli_in_process("predict", run, "--input-file", series)
    assert printed.returncode == 0, printed.stderr[-2000:]
    output = tmp_path / "forecast.jsonl"
    streamed = cli_in_process("predict", run, "--input-file", series, "--output-file", output)
    assert streamed.returncode == 0, streamed.stderr[-2000:]
    assert output.read_text(encoding="utf-8") == printed.stdout
    (record,) = [json.loads(line) for line in printed.stdout.splitlines()]
    assert record["input"]["last_time"].startswith("2024-04-09") and record["forecast"]  # described by the app


MEMORY_PROBE = textwrap.dedent("""
    import contextlib, json, os, sys, tracemalloc
    import tensorflow
    from seq_templates import cli
    export, folder = sys.argv[1], sys.argv[2]
    peaks = {}
    for count in (1000, 10000):
        inputs = os.path.join(folder, f"inputs-{count}.txt")
        for mode in ("streamed", "printed"):
            arguments = ["predict", export, "--input-file", inputs, "--batch-size", "100"]
            if mode == "streamed":
                arguments += ["--output-file", os.path.join(folder, f"answers-{count}.jsonl")]
            tracemalloc.start()
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                assert cli.main(arguments) == 0
            peaks[f"{mode}_{count}"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    print(json.dumps(peaks))
""")


def test_memory_does_not_grow_with_the_input_file(length_export, tmp_path):
    line = "a long review that goes on and on about the film , " * 20  # 1,040 characters
    for count in (1000, 10000):
        write_lines(tmp_path / f"inputs-{count}.txt", [f"{index} {line}" for index in range(count)])
    probe = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(length_export), str(tmp_path)],
                           env={**os.environ, **TEST_ENVIRONMENT}, cwd=REPOSITORY, capture_output=True,
                           text=True, timeout=600)
    assert probe.returncode == 0, probe.stderr[-3000:]
    peaks = json.loads(probe.stdout.strip().splitlines()[-1])
    megabyte = 2 ** 20
    printed_growth = peaks["printed_10000"] - peaks["printed_1000"]
    streamed_growth = peaks["streamed_10000"] - peaks["streamed_1000"]
    # The probe sees a file held in memory grow (10 MB more text): the in-memory path's peak grows by that much ...
    assert printed_growth > 8 * megabyte, peaks
    # ... while the streamed peak stays within a batch's worth of the small file's (a 100-line batch is 104 kB).
    assert streamed_growth < 1 * megabyte, peaks
    assert peaks["streamed_10000"] < peaks["printed_10000"] / 2, peaks
    assert sum(1 for _ in open(tmp_path / "answers-10000.jsonl", encoding="utf-8")) == 10000


@pytest.mark.parametrize("signature, bad_line, message", [
    ("serving_default", b"caf\xe9 au lait\n", ":2500:4: byte 0xe9 is not valid UTF-8"),
    ("scale", b'{"texts": "ab", "offset": NaN}\n', ":2500: input 'offset' holds NaN, which is not a finite number"),
])
def test_a_bad_line_in_the_middle_leaves_no_output(length_export, cli_in_process, tmp_path, signature, bad_line,
                                                   message):
    folder = tmp_path / "out"
    folder.mkdir()
    inputs = tmp_path / "inputs.txt"
    good = [f"sentence number {index}".encode() for index in range(4000)]
    inputs.write_bytes(b"\n".join(good[:2499]) + b"\n" + bad_line + b"\n".join(good[2499:]) + b"\n")
    output = folder / "answers.jsonl"
    output.write_text("the answers of an earlier run\n")
    completed = cli_in_process("predict", length_export, "--signature", signature, "--input-file", inputs,
                               "--output-file", output, "--batch-size", "100")
    assert completed.returncode == 2, completed.stderr[-2000:]
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {inputs}:2500") and message in lines[0], lines
    assert [path.name for path in folder.iterdir()] == ["answers.jsonl"]  # no temporary file left behind
    assert output.read_text() == "the answers of an earlier run\n"  # 24 batches were answered, none written to it


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_leaves_no_output(length_export, tmp_path, signal_number):
    inputs = write_lines(tmp_path / "inputs.txt", [f"sentence number {index}" for index in range(3000)])
    folder = tmp_path / "out"
    folder.mkdir()
    command = [sys.executable, "-m", "seq_templates.cli", "predict", str(length_export), "--signature", "slow",
               "--input-file", str(inputs), "--output-file", str(folder / "answers.jsonl"), "--batch-size", "10"]
    process = subprocess.Popen(command, env={**os.environ, **TEST_ENVIRONMENT}, cwd=REPOSITORY, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 180
    written = []
    while not written and time.monotonic() < deadline and process.poll() is None:
        written = [path for path in folder.glob(".answers.jsonl.*.tmp") if path.stat().st_size > 0]
        time.sleep(0.1)
    assert written, process.communicate(timeout=60)[1][-2000:]  # answers were being written when stopped
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and stderr.strip().splitlines()[-1] == "interrupted.", stderr[-2000:]
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("arguments, message", [
    (["--batch-size", "0"], "--batch-size 0: expected a number of inputs per call of at least 1"),
    (["--output-file", "{tmp}/missing/answers.jsonl"], "the folder '{tmp}/missing' does not exist"),
    (["--output-file", "{tmp}"], "is a folder; give a file name in it"),
    (["--output-file", "{tmp}/inputs.txt"], "is the input file; write the answers to another file"),
    (["--output-file", "{tmp}/answers.jsonl", "--input-file", "{tmp}/blank.txt"], "No inputs"),
])
def test_output_mistakes_are_one_line_errors(length_export, cli_in_process, tmp_path, arguments, message):
    inputs = write_lines(tmp_path / "inputs.txt", ["one", "two"])
    write_lines(tmp_path / "blank.txt", ["", "  "])
    arguments = [argument.replace("{tmp}", str(tmp_path)) for argument in arguments]
    if "--input-file" not in arguments:
        arguments += ["--input-file", str(inputs)]
    completed = cli_in_process("predict", length_export, *arguments)
    assert completed.returncode == 2, completed.stderr[-2000:]
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and message.replace("{tmp}", str(tmp_path)) in lines[0], lines
    assert inputs.read_text() == "one\ntwo\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["blank.txt", "inputs.txt"]


def test_a_per_request_input_must_agree_across_batches(length_export, cli_in_process, tmp_path):
    records = [json.dumps({"texts": "abc", "factor": 1.0})] * 5 + [json.dumps({"texts": "abc", "factor": 3.0})]
    inputs = write_lines(tmp_path / "inputs.txt", records)
    output = tmp_path / "answers.jsonl"
    completed = cli_in_process("predict", length_export, "--signature", "scale", "--input-file", inputs,
                               "--output-file", output, "--batch-size", "2")
    assert completed.returncode == 2 and "Input 'factor' takes one value for the whole request" in completed.stderr
    assert not output.exists()
    same = write_lines(tmp_path / "same.txt", records[:5])
    assert cli_in_process("predict", length_export, "--signature", "scale", "--input-file", same,
                          "--output-file", output, "--batch-size", "2").returncode == 0
    assert [json.loads(line)["value"] for line in output.read_text().splitlines()] == [4.0] * 5  # 3 * 1 + 1


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_writes_a_line_every_interval_when_not_a_terminal():
    stream, clock = io.StringIO(), FakeClock()
    progress = batch_predict.Progress(stream, interval_seconds=10.0, clock=clock)
    for step in range(1, 26):
        clock.now += 1.0
        progress.update(step * 100, fraction=step / 50)
    progress.finish(2500, "answers.jsonl")
    lines = stream.getvalue().splitlines()
    assert lines[:2] == ["predict:  20% 1,000 inputs, 100 inputs/s, 0:00:10 (about 0:00:40 left)",
                         "predict:  40% 2,000 inputs, 100 inputs/s, 0:00:20 (about 0:00:30 left)"]
    assert lines[2:] == ["predict: 2,500 inputs in 0:00:25 (100 inputs/s); wrote answers.jsonl"]
    assert "\r" not in stream.getvalue()


def test_progress_redraws_one_line_on_a_terminal():
    stream, clock = Terminal(), FakeClock()
    progress = batch_predict.Progress(stream, clock=clock)
    for step in range(1, 4):
        clock.now += 1.0
        progress.update(step * 10)
    progress.finish(30, "answers.jsonl")
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("wrote answers.jsonl\n")
    assert text.count("\rpredict: ") == 3 and "\rpredict: 30 inputs, 10 inputs/s, 0:00:03" in text
