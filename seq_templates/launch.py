"""``seq-templates launch --workers N -- train TASK ...``: a local cluster for development and CI.

Starts N ``seq-templates train`` processes on this machine, each with its ``TF_CONFIG``
(``{"cluster": {"worker": [127.0.0.1:PORT, ...]}, "task": {"type": "worker", "index": i}}``, free
loopback ports), so ``train.strategy=auto`` trains them as one ``MultiWorkerMirroredStrategy`` run
(worker 0 is the chief and writes the run directory). Their output comes line by line, each line
prefixed with ``[worker i]``.

When a worker fails, the others are stopped (a worker left alone would wait for its peers forever)
and the launcher exits with the first failure's status. Ctrl-C or SIGTERM stops every worker too.
Each worker runs in its own process group, and stopping one stops its whole group; each has its
own temporary folder (``TMPDIR``) inside the launcher's, removed at the end: nothing is left behind,
even by a worker that was killed. Stopping sends SIGINT (Ctrl-C: a worker stops after the batch in
progress), then SIGTERM and SIGKILL to what is still running after :data:`GRACE_SECONDS` each.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from seq_templates import errors

GRACE_SECONDS = 10.0
INTERRUPTED_EXIT = 130
VERBS = ("train",)


def add_arguments(verbs):
    """Adds the ``launch`` verb to the CLI's sub-parsers; its handler is the parser's ``run`` default."""
    import argparse

    launch = verbs.add_parser(
        "launch", help="train with N local worker processes (multi-worker, for development and CI)",
        description="Start N `seq-templates train` workers on this machine, each with its TF_CONFIG on a free "
                    "127.0.0.1 port (worker 0 writes the run directory); prefix their output with [worker i]; "
                    "stop them all when one fails or on Ctrl-C. Example: seq-templates launch --workers 2 -- "
                    "train sentiment --output-dir runs/two. See docs/scaling.md.")
    launch.add_argument("--workers", type=int, required=True, metavar="N", help="worker processes to start")
    launch.add_argument("command", nargs=argparse.REMAINDER, metavar="-- train TASK ...",
                        help="the seq-templates command every worker runs")
    launch.set_defaults(run=run)


def run(arguments):
    """The ``launch`` verb: :func:`launch` with the parsed arguments; returns the exit status."""
    command = list(arguments.command)
    if command[:1] == ["--"]:
        command = command[1:]
    return launch(arguments.workers, command)


def free_ports(count, host="127.0.0.1"):
    """``count`` distinct TCP ports free on ``host`` now (each bound, read and released)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_configs(ports, host="127.0.0.1"):
    """The ``TF_CONFIG`` JSON of each worker of a cluster on ``host``'s ``ports`` (worker 0 first)."""
    workers = [f"{host}:{port}" for port in ports]
    return [json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
            for index in range(len(workers))]


def launch(num_workers, command, output=None):
    """Runs ``seq-templates COMMAND`` in ``num_workers`` local worker processes until all end.

    Args:
        num_workers: Worker processes (at least 1).
        command: The ``seq-templates`` arguments, e.g. ``["train", "sentiment", "--set", ...]``.
        output: Where the prefixed lines go (default ``sys.stdout``).

    Returns:
        0 when every worker succeeded; else the exit status of the first that failed (130 after
        Ctrl-C, 143 after SIGTERM, when no worker had failed before).

    Raises:
        SeqTemplatesError: Fewer than one worker, or a command other than ``train``.
    """
    output = output or sys.stdout
    if num_workers < 1:
        raise errors.SeqTemplatesError(f"launch expects --workers of at least 1, received {num_workers}.")
    if not command or command[0] not in VERBS:
        raise errors.SeqTemplatesError(
            f"launch runs `seq-templates train ...` in every worker, received {' '.join(command) or 'nothing'!r}; "
            "e.g. seq-templates launch --workers 2 -- train sentiment --output-dir runs/two.")
    configs = tf_configs(free_ports(num_workers))
    print(f"Launching {num_workers} workers: {json.loads(configs[0])['cluster']['worker']}", file=output, flush=True)
    lock = threading.Lock()
    workers, readers = [], []
    stop_signal = {}  # the signal that asked the launcher to stop, if one did

    def on_signal(signal_number, frame):
        stop_signal.setdefault("number", signal_number)

    previous_handlers = {number: signal.signal(number, on_signal) for number in (signal.SIGINT, signal.SIGTERM)}
    scratch = tempfile.TemporaryDirectory(prefix="seq-templates-launch-")
    try:
        for index, tf_config in enumerate(configs):
            temporary = os.path.join(scratch.name, f"worker-{index}")
            os.mkdir(temporary)
            environment = {**os.environ, "TF_CONFIG": tf_config, "PYTHONUNBUFFERED": "1", "TMPDIR": temporary}
            process = subprocess.Popen([sys.executable, "-m", "seq_templates.cli", *command], env=environment,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       start_new_session=True)  # its own process group, stopped as one
            workers.append(process)
            reader = threading.Thread(target=_relay, args=(process.stdout, f"[worker {index}] ", output, lock),
                                      daemon=True)
            reader.start()
            readers.append(reader)
        status = _wait(workers, stop_signal, output, lock)
    finally:
        _stop(workers, output, lock)
        for reader in readers:
            reader.join(timeout=5)
        scratch.cleanup()
        for number, handler in previous_handlers.items():
            signal.signal(number, handler)
    return status


def _relay(stream, prefix, output, lock):
    """Copies a worker's output lines to ``output`` with its prefix (a ``\\r`` progress bar counts as a line)."""
    for raw_line in iter(stream.readline, b""):
        for line in raw_line.decode("utf-8", "replace").replace("\r", "\n").splitlines():
            if line.strip():
                with lock:
                    print(prefix + line, file=output, flush=True)
    stream.close()


def _say(message, output, lock):
    with lock:
        print(f"[launch] {message}", file=output, flush=True)


def _wait(workers, stop_signal, output, lock):
    """Waits until every worker succeeded, one failed or a signal came; returns the exit status."""
    while True:
        if "number" in stop_signal:
            name = signal.Signals(stop_signal["number"]).name
            _say(f"{name}: stopping every worker.", output, lock)
            return INTERRUPTED_EXIT if stop_signal["number"] == signal.SIGINT else 128 + stop_signal["number"]
        for index, process in enumerate(workers):
            status = process.poll()
            if status not in (None, 0):
                status = status if status > 0 else 128 - status  # killed by a signal: 128 + its number
                _say(f"worker {index} failed (exit status {status}); stopping the others.", output, lock)
                return status
        if all(process.poll() == 0 for process in workers):
            return 0
        time.sleep(0.1)


def _stop(workers, output, lock):
    """Stops every worker's process group, the workers and what they started: SIGINT, then SIGTERM, then
    SIGKILL, each after :data:`GRACE_SECONDS` for the workers to end (a group whose worker has ended, with
    a process it left behind, gets the next signal at once)."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if not [process for process in workers if _signal_group(process.pid, number)]:
            break  # every group is empty
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline and any(process.poll() is None for process in workers):
            time.sleep(0.1)
    for process in workers:
        process.wait()


def _signal_group(group, number):
    """Sends ``number`` to process group ``group``; False when no process is left in it."""
    try:
        os.killpg(group, number)
    except ProcessLookupError:
        return False
    return True
