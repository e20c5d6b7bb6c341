"""Serving under abuse: do well-behaved clients keep their latency when one client attacks? (issue 19)

Starts ``seq-templates serve`` (batching off, default bounds) on a sentiment export and a
text-generation export, both quick runs trained here unless given, and measures:

1. 8 well-behaved clients (one-sentence sentiment requests, back to back) alone: p50, p99;
2. the same 8 beside two abusive clients, one sending 15 MB strings (under the 16 MiB body
   limit; each answered 400 by ``--max-input-bytes``), one sending ``generate`` calls with
   ``max_length`` at the ``--max-generate-length`` cap (answered 200, each a long call);
3. the server's peak RSS (``VmHWM``) over both;
4. SIGTERM with a capped generation in flight: seconds from the signal to exit, against
   ``--drain-timeout-seconds`` + 2 s, and the exit status.

Targets: the well-behaved p99 within 3x of (1), 0 errors for them, peak RSS under 2 GB,
exit within the drain timeout + 2 s. The load generator shares the machine's cores with the
server (figures are conservative). Writes its section of docs/benchmarks.md.

Usage:
    python benchmarks/serving_abuse.py [--sentiment-run RUN] [--generation-run RUN] [--seconds 10]
"""

import argparse
import asyncio
import datetime
import json
import os
import pathlib
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time

import httpx

import report  # noqa: E402  (benchmarks/report.py, beside this script)
import serving  # noqa: E402  (benchmarks/serving.py: the load clients)

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
BEGIN_MARKER = "<!-- serving abuse benchmark: begin -->"
END_MARKER = "<!-- serving abuse benchmark: end -->"
GENERATION_OVERRIDES = ["train.epochs=2", "model.units=64", "data.sequence_length=50", "data.window_stride=10",
                        "train.tensorboard=false", "train.verbose=0"]
DRAIN_SECONDS = 5.0


def train_generation_run(folder):
    run = pathlib.Path(folder) / "text_generation"
    command = [sys.executable, "-m", "seq_templates.cli", "train", "text_generation", "--output-dir", str(run)]
    command += sum((["--set", item] for item in GENERATION_OVERRIDES), [])
    subprocess.run(command, check=True, cwd=REPOSITORY, stdout=subprocess.DEVNULL)
    return run


def peak_rss_megabytes(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def abuse(base, stop_at, counts, cap):
    """Two abusive clients until ``stop_at``: 15 MB strings, and generations at the cap."""
    huge = json.dumps({"instances": ["a " * 7_500_000]}).encode()

    def strings():
        with httpx.Client(timeout=120) as client:
            while time.perf_counter() < stop_at:
                answer = client.post(f"{base}/sentiment:predict", content=huge)
                counts["huge_" + str(answer.status_code)] = counts.get("huge_" + str(answer.status_code), 0) + 1

    def generations():
        body = {"signature_name": "generate", "inputs": {"prompt": ["To be"], "max_length": cap, "temperature": 1.0,
                                                        "top_k": 0, "top_p": 1.0, "seed": 1}}
        with httpx.Client(timeout=120) as client:
            while time.perf_counter() < stop_at:
                answer = client.post(f"{base}/text_generation:predict", json=body)
                counts["generate_" + str(answer.status_code)] = counts.get("generate_" + str(answer.status_code), 0) + 1

    threads = [threading.Thread(target=strings), threading.Thread(target=generations)]
    for thread in threads:
        thread.start()
    return threads


def measure(sentiment_run, generation_run, seconds, clients):
    port = serving.free_port()
    command = [sys.executable, "-m", "seq_templates.cli", "serve", str(sentiment_run), "--name", "sentiment",
               "--model", f"text_generation={generation_run}/export", "--port", str(port),
               "--drain-timeout-seconds", f"{DRAIN_SECONDS:g}"]
    process = subprocess.Popen(command, cwd=REPOSITORY, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}/v1/models"
    cap = 2000  # --max-generate-length's default
    try:
        serving.wait_until_listening(process, port)  # it listens once every model has loaded
        alone = asyncio.run(serving._load(port, "sentiment", clients, seconds, 10 ** 9))
        counts = {}
        threads = abuse(base, time.perf_counter() + seconds + 1.0, counts, cap)
        attacked = asyncio.run(serving._load(port, "sentiment", clients, seconds, 10 ** 9))
        for thread in threads:
            thread.join()
        rss = peak_rss_megabytes(process.pid)
        # SIGTERM with a generation at the cap in flight.
        in_flight = {}

        def long_generation():
            body = {"signature_name": "generate", "inputs": {"prompt": ["To be"] * 64, "max_length": cap,
                                                            "temperature": 1.0, "top_k": 0, "top_p": 1.0, "seed": 2}}
            try:
                in_flight["status"] = httpx.post(f"{base}/text_generation:predict", json=body, timeout=300).status_code
            except httpx.TransportError as error:
                in_flight["status"] = type(error).__name__

        thread = threading.Thread(target=long_generation)
        thread.start()
        time.sleep(1.0)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=120)
        exit_seconds = time.monotonic() - signalled
        thread.join(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    stopped = [line for line in stdout.splitlines() if line.startswith("Stopped")]
    return {"alone": alone, "attacked": attacked, "abuse_answers": counts, "peak_rss_mb": rss,
            "exit_seconds": exit_seconds, "exit_status": process.returncode, "stopped": stopped[-1] if stopped else "",
            "in_flight_status": in_flight.get("status")}


def format_section(command, result, clients):
    alone, attacked = result["alone"], result["attacked"]
    ratio = attacked["p99_ms"] / alone["p99_ms"]
    errors = alone["errors"] + attacked["errors"]
    lines = [BEGIN_MARKER, "## Serving under abuse (`seq-templates serve`, default bounds)", "",
             f"Command: `{command}`  ",
             f"Date: {datetime.date.today().isoformat()}; machine: {os.cpu_count()} CPU cores, {platform.machine()}, "
             f"Python {platform.python_version()}; clients and server share the cores.", "",
             "| load | requests | p50 (ms) | p99 (ms) | errors |", "|---|---:|---:|---:|---:|",
             f"| {clients} well-behaved clients alone | {alone['requests']} | {alone['p50_ms']:.2f} | "
             f"{alone['p99_ms']:.2f} | {alone['errors']} |",
             f"| the same, beside a 15 MB-string client and a max_length=2000 client | {attacked['requests']} | "
             f"{attacked['p50_ms']:.2f} | {attacked['p99_ms']:.2f} | {attacked['errors']} |", "",
             f"Abusive answers: {json.dumps(result['abuse_answers'])} (status codes).", "",
             "| target | measured | met |", "|---|---|---|",
             f"| well-behaved p99 within 3x | {ratio:.2f}x | {'yes' if ratio <= 3 else 'no'} |",
             f"| 0 errors for well-behaved clients | {errors} | {'yes' if errors == 0 else 'no'} |",
             f"| peak server RSS under 2 GB | {result['peak_rss_mb']:.0f} MB | "
             f"{'yes' if result['peak_rss_mb'] < 2048 else 'no'} |",
             f"| SIGTERM with a capped generation in flight: exit within drain ({DRAIN_SECONDS:g} s) + 2 s | "
             f"{result['exit_seconds']:.1f} s, status {result['exit_status']}, the request got "
             f"{result['in_flight_status']}; \"{result['stopped']}\" | "
             f"{'yes' if result['exit_seconds'] <= DRAIN_SECONDS + 2 else 'no'} |", END_MARKER]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentiment-run", metavar="RUN", help="default: train a quick one")
    parser.add_argument("--generation-run", metavar="RUN", help="default: train a quick one")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--output", default=str(REPOSITORY / "docs" / "benchmarks.md"))
    parser.add_argument("--no-write", action="store_true")
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="serving-abuse-") as folder:
        sentiment_run = pathlib.Path(arguments.sentiment_run or serving.train_quick_run(folder))
        generation_run = pathlib.Path(arguments.generation_run or train_generation_run(folder))
        result = measure(sentiment_run, generation_run, arguments.seconds, arguments.clients)
    print(json.dumps(result, indent=2, default=str))
    section = format_section("python benchmarks/serving_abuse.py " + " ".join(argv or sys.argv[1:]), result,
                             arguments.clients)
    print(section)
    if not arguments.no_write:
        report.write_section(arguments.output, section, BEGIN_MARKER, END_MARKER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
