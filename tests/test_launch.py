"""``seq-templates launch``: worker processes with their TF_CONFIG, prefixed output, no orphans.

The workers here run a probe app (``seq-templates train probe_app.py``) that records its process,
its grandchild and its environment, then waits, fails or ignores Ctrl-C as the test asks: the
launcher's own behaviour without the minutes a real cluster takes (tests/test_multi_worker.py).
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

from seq_templates import launch
from tests.conftest import REPOSITORY
from tests.conftest import TEST_ENVIRONMENT

PROBE_APP = '''"""Launcher probe: records its pid, a grandchild's and its environment, then acts as told."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

TASK = "launcher_probe"
CONFIG_SECTIONS = {}


def _only_main_runs(*arguments, **keywords):
    raise AssertionError("the launcher tests call main() alone")


(load_raw_data, build_preprocessing, make_dataset, build_model, evaluate, build_serving,
 example_inputs) = (_only_main_runs,) * 7


def main(argv=None):
    folder = pathlib.Path(os.environ["PROBE_FOLDER"])
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    behaviour = os.environ["PROBE_BEHAVIOUR"]
    if behaviour == "ignore_interrupt" and index == 1:  # like a worker blocked in a collective operation
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    record = {"pid": os.getpid(), "child": child.pid, "tf_config": os.environ["TF_CONFIG"],
              "tmpdir": os.environ["TMPDIR"]}
    (folder / f"worker-{index}.json").write_text(json.dumps(record))
    print(f"worker {index} ready", flush=True)
    if behaviour == "fail" and index == 1:
        while not (folder / "worker-0.json").exists():
            time.sleep(0.1)
        print("worker 1 fails", flush=True)
        return 3
    if behaviour == "succeed":
        child.kill()
        child.wait()
        return 0
    time.sleep(300)
    return 0
'''


def _alive(pid):
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status


def _start(tmp_path, behaviour, workers=2):
    app = tmp_path / "probe_app.py"
    app.write_text(PROBE_APP)
    environment = {**os.environ, **TEST_ENVIRONMENT, "PROBE_FOLDER": str(tmp_path), "PROBE_BEHAVIOUR": behaviour}
    return subprocess.Popen([sys.executable, "-m", "seq_templates.cli", "launch", "--workers", str(workers), "--",
                             "train", str(app)], cwd=REPOSITORY, env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _records(tmp_path, workers=2, timeout=120):
    deadline = time.monotonic() + timeout
    paths = [tmp_path / f"worker-{index}.json" for index in range(workers)]
    while not all(path.is_file() for path in paths):
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.2)
    time.sleep(0.5)  # the files are written whole; give the prints a moment
    return [json.loads(path.read_text()) for path in paths]


def _assert_nothing_left(records):
    for record in records:
        assert not _alive(record["pid"]) and not _alive(record["child"]), record
        assert not pathlib.Path(record["tmpdir"]).exists()


def test_tf_configs_make_one_cluster_and_give_each_worker_its_index():
    ports = launch.free_ports(3)
    assert len(set(ports)) == 3
    configs = [json.loads(text) for text in launch.tf_configs(ports)]
    addresses = [f"127.0.0.1:{port}" for port in ports]
    assert [config["cluster"] for config in configs] == [{"worker": addresses}] * 3
    assert [config["task"] for config in configs] == [{"type": "worker", "index": index} for index in range(3)]
    for port in ports:  # free: each can be bound
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


@pytest.mark.parametrize("arguments, phrase", [
    (["--workers", "0", "--", "train", "sentiment"], "launch expects --workers of at least 1, received 0"),
    (["--workers", "2", "--", "serve", "runs/x"], "launch runs `seq-templates train ...` in every worker"),
    (["--workers", "2"], "received 'nothing'"),
])
def test_launch_refuses_what_it_cannot_run_in_one_line(cli_in_process, arguments, phrase):
    result = cli_in_process("launch", *arguments)
    assert result.returncode == 2
    assert phrase in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_workers_get_their_tf_config_and_prefixed_output_and_leave_nothing(tmp_path):
    process = _start(tmp_path, "succeed")
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stdout + stderr
    records = _records(tmp_path)
    indices = [json.loads(record["tf_config"])["task"]["index"] for record in records]
    clusters = {json.dumps(json.loads(record["tf_config"])["cluster"]) for record in records}
    assert indices == [0, 1] and len(clusters) == 1
    assert "[worker 0] worker 0 ready" in stdout.splitlines() and "[worker 1] worker 1 ready" in stdout.splitlines()
    _assert_nothing_left(records)


def test_a_failing_worker_stops_the_others_and_its_status_is_the_launchers(tmp_path):
    started = time.monotonic()
    process = _start(tmp_path, "fail")
    stdout, stderr = process.communicate(timeout=180)
    records = _records(tmp_path)
    assert process.returncode == 3, stdout + stderr
    assert "[worker 1] worker 1 fails" in stdout
    assert "[launch] worker 1 failed (exit status 3); stopping the others." in stdout
    assert time.monotonic() - started < 120
    _assert_nothing_left(records)  # worker 0 and both grandchildren too


def test_ctrl_c_stops_every_worker_even_one_that_ignores_it(tmp_path):
    process = _start(tmp_path, "ignore_interrupt")
    records = _records(tmp_path)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)  # SIGINT, then SIGTERM after GRACE_SECONDS
    assert process.returncode == launch.INTERRUPTED_EXIT, stdout + stderr
    assert "[launch] SIGINT: stopping every worker." in stdout
    _assert_nothing_left(records)
