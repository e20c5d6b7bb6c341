"""`seq-templates serve` end to end: a real uvicorn process on a free port, several models, SIGTERM, bad options."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from seq_templates import cli
from tests.conftest import REPOSITORY
from tests.conftest import TEST_ENVIRONMENT
from tests.serving.conftest import save_toy


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(*arguments):
    command = [sys.executable, "-m", "seq_templates.cli", "serve", *map(str, arguments)]
    environment = dict(os.environ, **TEST_ENVIRONMENT)
    return subprocess.Popen(command, cwd=REPOSITORY, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_until_ready(process, url, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}: {process.stderr.read()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server did not answer {url} within {timeout} s")


@pytest.fixture
def toy_export(tmp_path):
    return save_toy(tmp_path / "toy" / "1").parent


def test_serve_several_models_then_sigterm_finishes_the_request_in_flight(trained_app_runs, toy_export):
    _, sentiment_run = trained_app_runs("sentiment")
    port = free_port()
    process = start_server(sentiment_run, "--model", f"toy={toy_export}", "--port", port, "--enable-batching",
                           "--batch-timeout-ms", "1500", "--max-batch-size", "64")
    base = f"http://127.0.0.1:{port}/v1/models"
    try:
        wait_until_ready(process, f"{base}/sentiment")  # the run's template names the model
        assert httpx.get(f"{base}/toy", timeout=10).json()["model_version_status"][0]["state"] == "AVAILABLE"
        answer = httpx.post(f"{base}/sentiment:predict", json={"instances": ["a wonderful film", "dull"]}, timeout=30)
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2
        assert set(answer.json()["predictions"][0]) == {"label", "probabilities"}

        in_flight = {}

        def slow_request():  # waits in the batcher for 1.5 s: still in flight when SIGTERM arrives
            in_flight["answer"] = httpx.post(f"{base}/toy:predict", json={"instances": ["still answered"]}, timeout=60)

        thread = threading.Thread(target=slow_request)
        thread.start()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        thread.join(timeout=60)
        assert in_flight["answer"].status_code == 200
        assert in_flight["answer"].json()["predictions"][0]["upper"] == "STILL ANSWERED"
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr[-3000:]
        assert "Serving 'sentiment' (version 1)" in stdout and "Batching: on (max_batch_size 64" in stdout
        assert "Stopped" in stdout
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{base}/toy", timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_sigterm_with_a_long_call_in_flight_answers_503_and_exits_within_the_drain_timeout(toy_export):
    port = free_port()
    process = start_server(toy_export, "--name", "toy", "--port", port, "--drain-timeout-seconds", "1")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, f"{base}/healthz")
        assert httpx.head(f"{base}/v1/models/toy", timeout=10).status_code == 200  # curl -I health checks
        in_flight = {}

        def long_request():  # 60 s of model time: far past the drain timeout
            in_flight["answer"] = httpx.post(f"{base}/v1/models/toy:predict", timeout=90, json={
                "signature_name": "sleep", "inputs": {"seconds": [60.0], "max_length": 1}})

        thread = threading.Thread(target=long_request)
        thread.start()
        time.sleep(1.0)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
        assert time.monotonic() - signalled <= 1 + 2 + 1  # the drain timeout + 2 s, and a second of slack here
        thread.join(timeout=10)
        assert in_flight["answer"].status_code == 503
        assert "drain timeout passed" in in_flight["answer"].json()["error"]
        assert process.returncode == 1, stderr[-3000:]
        assert "Stopped after the 1-second drain timeout: 1 request(s) in flight were answered 503" in stdout
        assert "every request in flight was answered" not in stdout
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_while_it_drains_new_work_is_refused_and_a_request_already_sent_is_answered(toy_export):
    port = free_port()
    process = start_server(toy_export, "--name", "toy", "--port", port, "--drain-timeout-seconds", "3")
    base = f"http://127.0.0.1:{port}"
    predict = f"{base}/v1/models/toy:predict"
    try:
        wait_until_ready(process, f"{base}/healthz")
        body = json.dumps({"instances": ["sent before"]}).encode()
        early = socket.create_connection(("127.0.0.1", port))  # its headers before SIGTERM, its body after
        early.sendall(b"POST /v1/models/toy:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body))
        in_flight = {}

        def long_request():  # 60 s of model time: keeps the server draining for the whole drain timeout
            in_flight["answer"] = httpx.post(predict, timeout=90, json={
                "signature_name": "sleep", "inputs": {"seconds": [60.0], "max_length": 1}})

        thread = threading.Thread(target=long_request)
        thread.start()
        time.sleep(1.0)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        early.sendall(body)
        early.settimeout(10)
        reply = b""
        while chunk := early.recv(65536):
            reply += chunk
        early.close()
        assert reply.startswith(b"HTTP/1.1 200 ") and b'"upper":"SENT BEFORE"' in reply, reply[:500]
        assert b"connection: close" in reply.lower()  # the last answer on that connection
        # New work during the drain: refused at the door (the listener is closed), or, in the moment before
        # it closes, answered with a JSON 503 by the app; never served, never left hanging.
        answers, refused = [], False
        while not refused and time.monotonic() - signalled < 2.5:
            try:
                answers.append(httpx.post(predict, json={"instances": ["sent after"]}, timeout=2))
            except httpx.ConnectError:
                refused = True
            time.sleep(0.05)
        assert refused, [answer.text for answer in answers]
        for answer in answers:
            assert answer.status_code == 503 and answer.headers["content-type"] == "application/json"
            assert answer.json() == {"error": "The server is shutting down."}
        stdout, stderr = process.communicate(timeout=30)
        thread.join(timeout=10)
        assert in_flight["answer"].status_code == 503 and process.returncode == 1, stderr[-3000:]
        assert "1 request(s) in flight were answered 503" in stdout  # the long one; the early one was answered
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_a_request_that_reaches_the_app_while_it_drains_gets_a_json_503(toy_export):
    from tests.serving.conftest import client_for

    with client_for({"toy": toy_export}) as client:
        state = client.app_under_test.state
        assert client.get("/healthz").status_code == 200
        state.drain_deadline = time.monotonic() + 30  # as SIGTERM sets it (server.run); the drain has begun
        for method, path, body in [("POST", "/v1/models/toy:predict", {"instances": ["a"]}),
                                   ("GET", "/v1/models/toy", None), ("GET", "/healthz", None)]:
            answer = client.request(method, path, json=body)
            assert answer.status_code == 503 and answer.headers["content-type"] == "application/json"
            assert answer.json() == {"error": "The server is shutting down."}
        assert client.head("/healthz").status_code == 503  # a load balancer's health check moves on
        assert state.in_flight == 0 and state.cut_short == 0  # refused at the door: none was cut short
        state.drain_deadline = None


def test_a_client_that_disconnects_drops_its_queued_request(toy_export, tmp_path):
    port = free_port()
    process = start_server(toy_export, "--name", "toy", "--port", port, "--model-threads", "1")
    base = f"http://127.0.0.1:{port}/v1/models/toy:predict"
    marker = tmp_path / "ran"
    try:
        wait_until_ready(process, f"http://127.0.0.1:{port}/healthz")
        busy = threading.Thread(target=lambda: httpx.post(base, timeout=60, json={  # holds the one model thread
            "signature_name": "sleep", "inputs": {"seconds": [4.0], "max_length": 1}}))
        busy.start()
        time.sleep(0.5)
        with pytest.raises(httpx.TimeoutException):  # queued behind it; the client gives up after 1 s
            httpx.post(base, timeout=1, json={"signature_name": "touch", "instances": [str(marker)]})
        busy.join(timeout=60)
        time.sleep(1.0)
        assert not marker.exists()  # the dropped request never ran
        assert httpx.post(base, timeout=30, json={"signature_name": "touch", "instances": [str(marker)]}).status_code \
            == 200 and marker.exists()  # the same request from a client that waits does
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)


@pytest.mark.parametrize("arguments, message", [
    (["/nonexistent/run"], "No SavedModel versions found at '/nonexistent/run'"),
    ([], "Nothing to serve"),
    (["--model", "just-a-name"], "expected NAME=PATH"),
    (["--model-config-file", "/nonexistent/models.config"], "does not exist"),
    (["--model", "a/b={toy}"], "must be non-empty without '/' or ':'"),
    (["{toy}", "--max-batch-size", "8"], "add --enable-batching"),
    (["{toy}", "--model", "toy={toy}"], "given twice"),
    (["{toy}", "--max-rows", "0"], "--max-rows must be above 0"),
    (["{toy}", "--generate-chunk-length", "0"], "--generate-chunk-length must be above 0"),
    (["{toy}", "--model-threads", "0"], "--model-threads must be at least 1"),
    (["{toy}", "--drain-timeout-seconds", "-1"], "--drain-timeout-seconds must be above 0"),
])
def test_bad_options_print_one_line_and_exit_2(toy_export, capsys, arguments, message):
    status = cli.main(["serve", *[argument.format(toy=toy_export) for argument in arguments]])
    stderr = capsys.readouterr().err
    assert status == 2, stderr[-2000:]
    assert message in stderr and stderr.strip().count("\n") == 0


def test_a_busy_port_is_a_user_error(toy_export, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        status = cli.main(["serve", str(toy_export), "--port", str(taken.getsockname()[1])])
    stderr = capsys.readouterr().err
    assert status == 2 and "Could not listen on 127.0.0.1" in stderr and stderr.strip().count("\n") == 0


def test_batching_parameters_and_models_config_files(tmp_path, toy_export):
    from seq_templates import errors
    from seq_templates.serving import config_files

    parameters = tmp_path / "batching.txt"
    parameters.write_text("max_batch_size { value: 16 }\nbatch_timeout_micros { value: 500 }  # half a millisecond\n"
                          "num_batch_threads { value: 3 }\n")
    assert config_files.read_batching_parameters_file(parameters) == config_files.BatchingParameters(
        max_batch_size=16, batch_timeout_micros=500, num_batch_threads=3)
    parameters.write_text("max_batch_size { value: 16 }\npad_variable_length_inputs: true\n")
    with pytest.raises(errors.SeqTemplatesError, match=r"batching.txt:2: field 'pad_variable_length_inputs' is not"):
        config_files.read_batching_parameters_file(parameters)
    models = tmp_path / "models.config"
    models.write_text("model_config_list {\n  config {\n    name: 'toy'\n    base_path: '%s'\n"
                      "    model_version_policy { specific { versions: 1 versions: 3 } }\n  }\n"
                      "  config { name: 'other' base_path: '/x' model_platform: 'tensorflow' }\n}\n" % toy_export)
    toy, other = config_files.read_model_config_file(models)
    assert (toy.name, toy.base_path, toy.version_policy, toy.versions) == ("toy", toy_export, "specific", (1, 3))
    assert (other.name, other.version_policy, other.num_versions) == ("other", "latest", 1)
    for text, problem in [("model_config_list { config { name: 'a' } }", "lacks base_path"),
                          ("model_config_list { config { name: 'a' base_path: '/x' model_platform: 'onnx' } }",
                           "model_platform 'onnx' is not supported"),
                          ("model_config_list { config { name: 'a' base_path: '/x' }", "never closed"),
                          ("model_config_list { config { name 'a' base_path: '/x' colour: 'red' } }",
                           "field 'colour' is not supported")]:
        models.write_text(text)
        with pytest.raises(errors.SeqTemplatesError, match=problem):
            config_files.read_model_config_file(models)
