"""`python -m seq_templates.beam`: the Apache Beam pipeline (RunInference) on the DirectRunner.

It writes the JSON lines `seq-templates predict` writes for the same inputs (in another order), reads
a run through a URI as a remote worker would (``file://``), and without apache-beam says how to install
it. Answers come from the quick sentiment run (``trained_app_runs``) and a toy export of lengths.
"""

import json
import os
import subprocess
import sys

import pytest

from tests import length_export as length_export_module
from tests.conftest import REPOSITORY
from tests.conftest import TEST_ENVIRONMENT

BEAM_MISSING = "apache-beam is not installed (the optional extra: pip install '.[beam]')"


@pytest.fixture(scope="module")
def beam():
    pytest.importorskip("apache_beam", reason=BEAM_MISSING)
    from seq_templates import beam

    return beam


@pytest.fixture(scope="module")
def length_export(tmp_path_factory):
    """An export answering ``len(text)`` (serving_default) and ``len(texts) * factor + offset`` (scale, whose
    factor and offset have recorded defaults)."""
    return length_export_module.save_length_export(tmp_path_factory.mktemp("length_export"))


sentences = length_export_module.sentences
write_lines = length_export_module.write_lines


def by_input(text):
    return sorted((json.loads(line) for line in text.splitlines()), key=lambda record: json.dumps(record["input"]))


def test_direct_runner_answers_as_predict_does(beam, trained_app_runs, cli_in_process, tmp_path):
    _, run = trained_app_runs("sentiment")
    lines = sentences(1500, seed=3) + ["", "ünïcödé wörds , ça va"]
    inputs = write_lines(tmp_path / "inputs.txt", lines)
    output = tmp_path / "beam.jsonl"
    assert beam.main(["--run", str(run), "--input", str(inputs), "--output", str(output), "--batch-size", "128",
                      "--runner", "DirectRunner"]) == 0
    printed = cli_in_process("predict", run, "--input-file", inputs)
    assert printed.returncode == 0, printed.stderr[-2000:]
    expected, answered = by_input(printed.stdout), by_input(output.read_text(encoding="utf-8"))
    assert len(answered) == 1501 and [record["input"] for record in answered] == [
        record["input"] for record in expected]
    for got, want in zip(answered, expected):
        assert got["label"] == want["label"] or abs(got["probabilities"]["positive"] - 0.5) < 1e-4
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)  # other batches, same numbers
    assert sorted(path.name for path in tmp_path.iterdir()) == ["beam.jsonl", "inputs.txt"]


def test_a_run_behind_a_uri_is_copied_to_each_worker(beam, length_export, tmp_path):
    inputs = write_lines(tmp_path / "inputs.txt", ["\ufeffabc", json.dumps({"texts": "abcd", "offset": 0.5}), "  "])
    output = tmp_path / "answers.jsonl"
    assert beam.main(["--run", length_export.as_uri(), "--input", str(inputs), "--output", str(output),
                      "--signature", "scale", "--param", "factor=10"]) == 0
    answered = by_input(output.read_text(encoding="utf-8"))
    assert answered == [{"input": "abc", "value": 31.0}, {"input": '{"texts": "abcd", "offset": 0.5}', "value": 40.5}]
    copy = beam.local_copy(length_export.as_uri(), tmp_path / "copy")
    assert {"assets.extra", "saved_model.pb", "variables"} <= {path.name for path in (copy / "export" / "1").iterdir()}


def test_mistakes_are_one_line_errors_before_the_pipeline_runs(beam, length_export, tmp_path, capsys):
    from seq_templates import cli

    inputs = write_lines(tmp_path / "inputs.txt", ["abc"])
    cases = [(["--output", str(tmp_path / "answers.jsonl"), "--signature", "nope"], "has no signature 'nope'"),
             (["--output", str(tmp_path / "missing" / "answers.jsonl")], "does not exist; create it first"),
             (["--output", str(tmp_path / "answers.jsonl"), "--signature", "scale", "--param", "size=3"],
              "--param size: the signature has no input 'size'"),
             (["--output", str(tmp_path / "answers.jsonl"), "--batch-size", "0"], "--batch-size 0: expected")]
    for arguments, message in cases:
        capsys.readouterr()
        status = cli.run_main(beam.main, ["--run", str(length_export), "--input", str(inputs), *arguments])
        lines = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert sorted(path.name for path in tmp_path.iterdir()) == ["inputs.txt"]


def test_without_apache_beam_the_module_imports_and_says_how_to_install(tmp_path):
    script = ("import sys; sys.modules['apache_beam'] = None\n"  # `import apache_beam` raises ImportError
              "from seq_templates import beam, cli\n"
              "sys.exit(cli.run_main(beam.main, ['--run', 'r', '--input', 'i', '--output', 'o']))")
    completed = subprocess.run([sys.executable, "-c", script], env={**os.environ, **TEST_ENVIRONMENT},
                               cwd=REPOSITORY, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert completed.stderr.strip() == ("error: apache-beam is not installed; install the extra: "
                                        "pip install 'seq-templates[beam]'.")
