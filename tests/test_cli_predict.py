"""`seq-templates predict` on a signature with several inputs: --param and the export's defaults.

The command runs as ``cli.main`` in this process (``cli_in_process``): what is checked is its
answer, not the start of a fresh process (the last test and tests/test_cli.py check that)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf
from tensorflow.python.data.experimental.ops import testing as data_testing  # sleep(): a call that takes time

from seq_templates import export
from tests.conftest import REPOSITORY
from tests.conftest import TEST_ENVIRONMENT
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def scaled_length_export(tmp_path_factory):
    """An export whose `scale` signature returns len(text) * factor + offset, with recorded defaults."""
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts"),
                                  tf.TensorSpec([], tf.float32, name="factor"),
                                  tf.TensorSpec([None], tf.float32, name="offset")])
    def scale(texts, factor, offset):
        lengths = tf.cast(tf.strings.length(texts), tf.float32)
        return {"value": lengths * factor + offset}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts"),
                                  tf.TensorSpec([], tf.float32, name="factor")])
    def checked(texts, factor):
        with tf.control_dependencies([tf.debugging.assert_positive(factor, message="Expected factor > 0")]):
            return {"value": tf.cast(tf.strings.length(texts), tf.float32) * factor}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts"),
                                  tf.TensorSpec([], tf.int32, name="beam_width"),
                                  tf.TensorSpec([], tf.float32, name="top_p")])
    def decode(texts, beam_width, top_p):  # decoding inputs: the server's rules apply to them
        return {"value": tf.cast(tf.strings.length(texts) * beam_width, tf.float32) * top_p}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts"),
                                  tf.TensorSpec([], tf.string, name="marker")])
    def slow(texts, marker):  # writes `marker`, then takes two minutes (a long generation's stand-in)
        with tf.control_dependencies([tf.io.write_file(marker, "started")]):
            slept = tf.data.Dataset.range(1).apply(data_testing.sleep(120_000_000)).reduce(
                tf.constant(0, tf.int64), lambda total, item: total + item)
        return {"value": tf.cast(tf.strings.length(texts), tf.float32) + tf.cast(slept, tf.float32)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def serve(texts):
        return {"value": tf.cast(tf.strings.length(texts), tf.float32)}

    module.scale = scale
    root = tmp_path_factory.mktemp("export")
    tf.saved_model.save(module, str(root / "1"), signatures={"serving_default": serve, "scale": scale,
                                                           "checked": checked, "decode": decode,
                                                           "slow": slow})
    extra = root / "1" / export.ASSETS_EXTRA
    extra.mkdir()
    (extra / "serving.json").write_text(json.dumps({"defaults": {"scale": {"factor": 2.0, "offset": 1.0}}}))
    return root


def _values(completed):
    assert completed.returncode == 0, completed.stderr[-2000:]
    return [json.loads(line)["value"] for line in completed.stdout.strip().splitlines()]


def test_defaults_fill_the_inputs_not_given(scaled_length_export, cli_in_process):
    completed = cli_in_process("predict", scaled_length_export, "abc", "abcdef", "--signature", "scale")
    assert _values(completed) == [7.0, 13.0]


def test_param_overrides_a_default_for_every_example(scaled_length_export, cli_in_process):
    completed = cli_in_process("predict", scaled_length_export, "abc", "abcdef", "--signature", "scale",
                               "--param", "factor=10", "--param", "offset=0.5")
    assert _values(completed) == [30.5, 60.5]


def test_a_json_record_gives_its_own_values(scaled_length_export, cli_in_process):
    completed = cli_in_process("predict", scaled_length_export, '{"texts": "ab", "offset": 5}', "--signature", "scale")
    assert _values(completed) == [9.0]


@pytest.mark.parametrize("arguments, message", [
    (["--param", "temperature=1"], "has no input 'temperature'"),
    (["--param", "factor"], "expected NAME=VALUE"),
    (["--param", "factor=fast"], "is not valid JSON"),
])
def test_bad_params_are_one_line_errors(scaled_length_export, cli_in_process, arguments, message):
    completed = cli_in_process("predict", scaled_length_export, "abc", "--signature", "scale", *arguments)
    assert completed.returncode == 2
    assert message in completed.stderr and len(completed.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("arguments, message", [
    (["--param", "beam_width=0", "--param", "top_p=0.5"], "--param beam_width=0 is out of range: beam_width must "
                                                          "be at least 1 (1: greedy)"),
    (["--param", "beam_width=-1", "--param", "top_p=0.5"], "beam_width=-1 is out of range"),
    (["--param", "beam_width=2", "--param", "top_p=1.5"], "--param top_p=1.5 is out of range: top_p must be in (0, 1]"),
    (["--param", "beam_width=2", "--param", "top_p=0"], "top_p=0 is out of range"),
])
def test_decoding_values_out_of_range_are_one_line_errors(scaled_length_export, cli_in_process, arguments, message):
    completed = cli_in_process("predict", scaled_length_export, "abc", "--signature", "decode", *arguments)
    assert completed.returncode == 2
    assert message in completed.stderr and len(completed.stderr.strip().splitlines()) == 1
    assert _values(cli_in_process("predict", scaled_length_export, "abc", "--signature", "decode",
                                  "--param", "beam_width=2", "--param", "top_p=0.5")) == [3.0]


@pytest.mark.parametrize("arguments, message", [
    (["abc", "--param", "factor=NaN"], "--param factor: input 'factor' holds NaN, which is not a finite number; "
                                       "give finite float32 values"),
    (["abc", "--param", "factor=-Infinity"], "input 'factor' holds -Infinity, which is not a finite number"),
    (['{"texts": "ab", "offset": NaN}'], "INPUT 1: input 'offset' holds NaN, which is not a finite number"),
    (["abc", '{"texts": "ab", "offset": Infinity}'], "INPUT 2: input 'offset' holds Infinity"),
])
def test_a_non_finite_number_is_a_one_line_error(scaled_length_export, cli_in_process, arguments, message):
    completed = cli_in_process("predict", scaled_length_export, *arguments, "--signature", "scale")
    assert completed.returncode == 2, completed.stdout[-2000:]
    assert completed.stdout == ""  # nothing answered, not even for the finite examples
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], completed.stderr[-2000:]


def test_a_value_the_graph_rejects_is_a_one_line_error(scaled_length_export, cli_in_process):
    # A fresh process: TensorFlow's own log of the failed op must not reach stderr either.
    completed = run_cli("predict", scaled_length_export, "abc", "--signature", "checked", "--param", "factor=-1")
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert "Expected factor > 0" in completed.stderr and len(completed.stderr.strip().splitlines()) == 1
    assert _values(cli_in_process("predict", scaled_length_export, "abc", "--signature", "checked",
                                  "--param", "factor=2")) == [6.0]


def test_ctrl_c_stops_a_long_call_at_once(scaled_length_export, tmp_path):
    marker = tmp_path / "started"
    command = [sys.executable, "-m", "seq_templates.cli", "predict", str(scaled_length_export), "abc",
               "--signature", "slow", "--param", f"marker={marker}"]
    process = subprocess.Popen(command, env={**os.environ, **TEST_ENVIRONMENT}, cwd=REPOSITORY, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 180
    while not marker.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert marker.exists(), process.communicate(timeout=60)[1][-2000:]
    interrupted = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - interrupted < 10  # not the two minutes the call takes
    assert process.returncode == 130 and stderr.strip().splitlines()[-1] == "interrupted.", stderr[-2000:]
    assert "Traceback" not in stderr
