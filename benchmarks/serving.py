"""Serving load benchmark: `seq-templates serve` on loopback under 1, 8 and 32 concurrent clients.

Runs the sentiment export (``--run RUN``, or a quick one trained here) and
writes its section of docs/benchmarks.md:

1. the direct in-process call of the SavedModel's ``serving_default`` on one
   sentence (p50, p99), the baseline the server's overhead is measured against;
2. the server as a separate process (``python -m seq_templates.cli serve``),
   batching off, then on; for each, a bounded load run per client count: every
   client keeps one HTTP/1.1 keep-alive connection and sends one-sentence row
   requests back to back for ``--seconds`` seconds (each load run stops by
   itself), recording latency, throughput and errors (any answer that is not 200
   with one prediction);
3. SIGTERM, and the server's exit status.

Targets (issue 10): overhead over the direct call <= 2 ms at p50 for one sentence;
with batching on, throughput at 32 clients >= 3x batching off; zero errors.

The load generator is a minimal asyncio HTTP client in this process, so client
and server share the machine's cores: figures are conservative on a busy machine.
"""

import argparse
import asyncio
import datetime
import json
import os
import pathlib
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import report  # noqa: E402  (benchmarks/report.py, beside this script)

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
BEGIN_MARKER = "<!-- serving benchmark: begin -->"
END_MARKER = "<!-- serving benchmark: end -->"
QUICK_OVERRIDES = ["train.epochs=6", "train.batch_size=32", "data.max_train_samples=3000", "model.units=32",
                   "model.embedding_dim=32", "train.learning_rate=0.003", "train.tensorboard=false", "train.verbose=0"]
SENTENCES = ["a gripping , beautifully acted film", "the plot is thin and the jokes fall flat",
             "not bad at all", "i wanted to like it , but it drags", "an instant classic", "dull , dull , dull",
             "warm , funny and surprisingly moving", "it is neither good nor memorable"]


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def train_quick_run(folder):
    """Trains the sentiment template with the contract tests' quick settings; returns the run directory."""
    run = pathlib.Path(folder) / "sentiment"
    command = [sys.executable, "-m", "seq_templates.cli", "train", "sentiment", "--output-dir", str(run)]
    command += sum((["--set", item] for item in QUICK_OVERRIDES), [])
    subprocess.run(command, check=True, cwd=REPOSITORY, stdout=subprocess.DEVNULL)
    return run


def direct_call_latency(version_path, calls):
    """p50 and p99 (ms) of the SavedModel's serving_default called in process on one sentence."""
    import tensorflow as tf

    function = tf.saved_model.load(str(version_path)).signatures["serving_default"]
    latencies = []
    for index in range(calls + 20):
        text = tf.constant([SENTENCES[index % len(SENTENCES)]])
        started = time.perf_counter()
        outputs = function(text=text)
        {name: value.numpy() for name, value in outputs.items()}
        if index >= 20:  # after warm-up
            latencies.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99), "calls": calls}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _client(port, path, bodies, offset, stop_at, latencies, errors, limit):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    index = offset
    try:
        while time.perf_counter() < stop_at and len(latencies) + errors[0] < limit:
            body = bodies[index % len(bodies)]
            index += 1
            request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            started = time.perf_counter()
            writer.write(request)
            status = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            payload = await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            if not status.startswith(b"HTTP/1.1 200") or len(json.loads(payload)["predictions"]) != 1:
                errors[0] += 1
    except (OSError, asyncio.IncompleteReadError, ValueError, KeyError):
        errors[0] += 1
    finally:
        writer.close()


async def _load(port, model, clients, seconds, limit):
    bodies = [json.dumps({"instances": [sentence]}).encode() for sentence in SENTENCES]
    latencies, errors = [], [0]
    path = f"/v1/models/{model}:predict"
    # a short warm-up with the same clients, not recorded
    warm_stop = time.perf_counter() + 0.5
    await asyncio.gather(*(_client(port, path, bodies, index, warm_stop, [], [0], limit) for index in range(clients)))
    started = time.perf_counter()
    await asyncio.gather(*(_client(port, path, bodies, index, started + seconds, latencies, errors, limit)
                           for index in range(clients)))
    elapsed = time.perf_counter() - started
    return {"clients": clients, "requests": len(latencies), "seconds": elapsed,
            "throughput": len(latencies) / elapsed, "p50_ms": percentile(latencies, 0.5),
            "p99_ms": percentile(latencies, 0.99), "errors": errors[0]}


def wait_until_listening(process, port, timeout=180):
    """Returns once the server process accepts connections on ``port``; raises if it exits or times out."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {process.stderr.read()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start within {timeout} s") from None
            time.sleep(0.2)


def serve_and_load(run, port, batching, client_counts, seconds, limit):
    """Starts the server, runs one load per client count, stops it with SIGTERM; returns the results."""
    command = [sys.executable, "-m", "seq_templates.cli", "serve", str(run), "--name", "sentiment",
               "--port", str(port)]
    command += batching
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(command, cwd=REPOSITORY, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_until_listening(process, port)
        results = [asyncio.run(_load(port, "sentiment", clients, seconds, limit)) for clients in client_counts]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
    return results, process.returncode


def format_section(command, run, direct, modes, exit_statuses, batching_flags):
    off, on = modes["off"], modes["on"]
    overhead = off[0]["p50_ms"] - direct["p50_ms"]
    ratio = on[-1]["throughput"] / off[-1]["throughput"]
    errors = sum(result["errors"] for results in modes.values() for result in results)
    lines = [BEGIN_MARKER, "## Serving (`seq-templates serve`, sentiment export)", "",
             f"Command: `{command}`  ",
             f"Date: {datetime.date.today().isoformat()}; machine: {os.cpu_count()} CPU cores, {platform.machine()}, "
             f"Python {platform.python_version()}; the load generator (asyncio, one keep-alive connection per client, "
             "one-sentence row requests back to back) runs on the same cores as the server, and other work may have "
             "shared the machine: figures are conservative.  ",
             f"Export: `{run}` (serving_default: text -> label, probabilities).", "",
             f"Direct in-process call of the SavedModel on one sentence: p50 {direct['p50_ms']:.2f} ms, "
             f"p99 {direct['p99_ms']:.2f} ms ({direct['calls']} calls).", "",
             "| batching | clients | requests | throughput (req/s) | p50 (ms) | p99 (ms) | errors |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for mode, results in modes.items():
        for result in results:
            lines.append(f"| {mode} | {result['clients']} | {result['requests']} | {result['throughput']:.0f} | "
                         f"{result['p50_ms']:.2f} | {result['p99_ms']:.2f} | {result['errors']} |")
    lines += ["", f"Batching on: `{' '.join(batching_flags)}`.", "",
              "| target | measured | met |", "|---|---|---|",
              f"| server overhead at p50, one sentence, 1 client, batching off: <= 2 ms | {overhead:.2f} ms "
              f"({off[0]['p50_ms']:.2f} - {direct['p50_ms']:.2f}) | {'yes' if overhead <= 2 else 'no'} |",
              f"| throughput at 32 clients, batching on / off: >= 3x | {ratio:.1f}x ({on[-1]['throughput']:.0f} / "
              f"{off[-1]['throughput']:.0f} req/s; p99 {on[-1]['p99_ms']:.1f} ms on, {off[-1]['p99_ms']:.1f} ms off) | "
              f"{'yes' if ratio >= 3 else 'no'} |",
              f"| errors: 0 | {errors} | {'yes' if errors == 0 else 'no'} |",
              f"| SIGTERM: the server exits cleanly | exit status {exit_statuses['off']} (off), "
              f"{exit_statuses['on']} (on) | {'yes' if set(exit_statuses.values()) == {0} else 'no'} |",
              END_MARKER]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", metavar="RUN", help="a sentiment run directory (default: train a quick one)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load run")
    parser.add_argument("--max-requests", type=int, default=200_000, help="a load run also stops after this many")
    parser.add_argument("--direct-calls", type=int, default=500)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-timeout-ms", type=float, default=2.0)
    parser.add_argument("--num-batch-threads", type=int, default=2)
    parser.add_argument("--output", default=str(REPOSITORY / "docs" / "benchmarks.md"))
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    arguments = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory(prefix="serving-benchmark-") as folder:
        run = pathlib.Path(arguments.run) if arguments.run else train_quick_run(folder)
        sys.path.insert(0, str(REPOSITORY))
        from seq_templates import export

        direct = direct_call_latency(export.find_version(run), arguments.direct_calls)
        print(f"direct: {direct}", flush=True)
        batching_flags = ["--enable-batching", "--max-batch-size", str(arguments.max_batch_size),
                          "--batch-timeout-ms", f"{arguments.batch_timeout_ms:g}",
                          "--num-batch-threads", str(arguments.num_batch_threads)]
        modes, exit_statuses = {}, {}
        for mode, flags in (("off", []), ("on", batching_flags)):
            modes[mode], exit_statuses[mode] = serve_and_load(run, free_port(), flags, arguments.clients,
                                                              arguments.seconds, arguments.max_requests)
            for result in modes[mode]:
                print(f"batching {mode}: {result}", flush=True)
        command = "flock /tmp/seq_cpu.lock python benchmarks/serving.py " + " ".join(argv or sys.argv[1:])
        section = format_section(command.strip(), arguments.run or "a quick sentiment run trained by the benchmark "
                                 f"({' '.join(QUICK_OVERRIDES)})", direct, modes, exit_statuses, batching_flags)
    print(section)
    if not arguments.no_write:
        report.write_section(arguments.output, section, BEGIN_MARKER, END_MARKER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
