"""Serving under abuse: do well-behaved clients keep their latency when one client attacks? (issue 19)

Starts ``seq-templates serve`` (batching off, default bounds) on a sentiment export and a
text-generation export, both quick runs trained here unless given, and measures:

1. 8 well-behaved clients (one-sentence sentiment requests, back to back) alone: p50, p99;
2. the same 8 beside two abusive clients, one sending 15 MB strings (under the 16 MiB body
   limit; each answered 400 by ``--max-input-bytes``), one sending ``generate`` calls with
   ``max_length`` at the ``--max-generate-length`` cap (answered 200, each a long call);
3. the server's peak RSS (``VmHWM``) over both;
4. SIGTERM with a generation in flight, twice, each on a fresh server of the generation model
   (``--max-generate-length`` raised so both lengths are allowed): one sized to end within the
   drain (about 0.4 x ``--drain-timeout-seconds``, timed whole: answered 200, exit status 0) and one sized to
   outlast it (about 3 x: the client gets a JSON 503, exit status 1); for each, the seconds from
   the signal to exit. The lengths follow a timed generation of one chunk, so both hold on a
   faster or slower machine. A generation over ``--generate-chunk-length`` (1,000 steps) runs as
   several model calls (seq_templates/serving/chunking.py): the drain stops the long one at its
   deadline, the chunk then running finishes in its model thread, and the process exits at once.

Targets: the well-behaved p99 within 3x of (1), 0 errors for them, peak RSS under 2 GB,
both SIGTERM cases as said above and each exit within the drain timeout + 2 s. The load
generator shares the machine's cores with the server (figures are conservative). Writes its
section of docs/benchmarks.md.

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
SIGTERM_ROWS = 64  # prompts of each generation in the SIGTERM cases
PROBE_STEPS = 1000  # the timed generation that sizes them: one chunk
SHORTER, LONGER = 0.4, 3.0  # each case's generation, in drain timeouts (from the timed one)


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


def start_server(arguments, port):
    """Starts ``seq-templates serve ARGUMENTS`` on ``port`` with the drain timeout; returns once it listens."""
    command = [sys.executable, "-m", "seq_templates.cli", "serve", *map(str, arguments), "--port", str(port),
               "--drain-timeout-seconds", f"{DRAIN_SECONDS:g}"]
    process = subprocess.Popen(command, cwd=REPOSITORY, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        serving.wait_until_listening(process, port)  # it listens once every model has loaded
    except BaseException:
        stop(process)
        raise
    return process


def stop(process):
    """Kills a server still running (after a failure); its output is read and dropped."""
    if process.poll() is None:
        process.kill()
        process.communicate()


def measure(sentiment_run, generation_run, seconds, clients):
    port = serving.free_port()
    process = start_server([sentiment_run, "--name", "sentiment", "--model",
                            f"text_generation={generation_run}/export"], port)
    base = f"http://127.0.0.1:{port}/v1/models"
    cap = 2000  # the export's recorded max_generate_length (10 x model.max_length 200), the server's default too
    try:
        alone = asyncio.run(serving._load(port, "sentiment", clients, seconds, 10 ** 9))
        counts = {}
        threads = abuse(base, time.perf_counter() + seconds + 1.0, counts, cap)
        attacked = asyncio.run(serving._load(port, "sentiment", clients, seconds, 10 ** 9))
        for thread in threads:
            thread.join()
        rss = peak_rss_megabytes(process.pid)
        process.send_signal(signal.SIGTERM)  # nothing in flight: the SIGTERM cases run on their own servers
        process.communicate(timeout=120)
    finally:
        stop(process)
    return {"alone": alone, "attacked": attacked, "abuse_answers": counts, "peak_rss_mb": rss}


def generation_body(steps, seed):
    return {"signature_name": "generate", "inputs": {"prompt": ["To be"] * SIGTERM_ROWS, "max_length": steps,
                                                    "temperature": 1.0, "top_k": 0, "top_p": 1.0, "seed": seed}}


def sigterm_during(process, base, steps, signal_after):
    """Sends a generation of ``steps`` steps, SIGTERMs the server ``signal_after`` s later; returns what happened."""
    in_flight = {}

    def generation():
        try:
            answer = httpx.post(f"{base}/text_generation:predict", json=generation_body(steps, seed=2), timeout=300)
            in_flight["status"] = answer.status_code
            in_flight["json_error"] = (answer.headers.get("content-type") == "application/json"
                                       and "error" in answer.json())
        except httpx.TransportError as error:
            in_flight["status"] = type(error).__name__
        in_flight["answered"] = time.monotonic()

    thread = threading.Thread(target=generation)
    started = time.monotonic()
    thread.start()
    time.sleep(signal_after)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    stdout, _ = process.communicate(timeout=120)
    exit_seconds = time.monotonic() - signalled
    thread.join(timeout=30)
    stopped = [line for line in stdout.splitlines() if line.startswith("Stopped")]
    answered = in_flight.get("answered")
    return {"rows": SIGTERM_ROWS, "steps": steps, "signal_after_seconds": signal_after,
            "in_flight_at_signal": answered is None or answered > signalled,
            "request_seconds": None if answered is None else answered - started,
            "exit_seconds": exit_seconds, "exit_status": process.returncode,
            "in_flight_status": in_flight.get("status"), "json_error": in_flight.get("json_error", False),
            "stopped": stopped[-1] if stopped else ""}


def measure_sigterm(generation_run):
    """SIGTERM with a generation in flight: one shorter than the drain, one longer, each on a fresh server.

    Both servers serve the generation model alone with ``--max-generate-length`` raised (a flag given
    wins over the export's recorded 2,000), so the longer generation is allowed.
    """
    arguments = [generation_run, "--name", "text_generation", "--max-generate-length", 10 ** 7]
    port = serving.free_port()
    process = start_server(arguments, port)
    base = f"http://127.0.0.1:{port}/v1/models"
    try:  # time one chunk of a generation (after a warm-up call) to size both cases on this machine
        httpx.post(f"{base}/text_generation:predict", json=generation_body(10, seed=1), timeout=120).raise_for_status()
        started = time.perf_counter()
        httpx.post(f"{base}/text_generation:predict", json=generation_body(PROBE_STEPS, seed=1),
                   timeout=600).raise_for_status()
        seconds_per_step = (time.perf_counter() - started) / PROBE_STEPS
        shorter_steps = max(1, int(SHORTER * DRAIN_SECONDS / seconds_per_step))
        longer_steps = int(LONGER * DRAIN_SECONDS / seconds_per_step) + 1
        # A generation of several chunks costs more per step than one chunk (each continues the text
        # so far): time the shorter one whole, and shorten it until it takes about SHORTER drains.
        for _ in range(4):
            started = time.perf_counter()
            httpx.post(f"{base}/text_generation:predict", json=generation_body(shorter_steps, seed=1),
                       timeout=600).raise_for_status()
            shorter_seconds = time.perf_counter() - started
            if shorter_seconds <= 1.25 * SHORTER * DRAIN_SECONDS:
                break
            shorter_steps = max(1, int(shorter_steps * SHORTER * DRAIN_SECONDS / shorter_seconds))
        shorter = sigterm_during(process, base, shorter_steps, min(1.0, SHORTER * DRAIN_SECONDS / 4))
        shorter["seconds_alone"] = shorter_seconds
    finally:
        stop(process)
    port = serving.free_port()
    process = start_server(arguments, port)
    try:
        longer = sigterm_during(process, f"http://127.0.0.1:{port}/v1/models", longer_steps, 1.0)
    finally:
        stop(process)
    shorter["met"] = (shorter["in_flight_status"] == 200 and shorter["exit_status"] == 0
                      and shorter["exit_seconds"] <= DRAIN_SECONDS + 2)
    longer["met"] = (longer["in_flight_status"] == 503 and longer["json_error"] and longer["exit_status"] == 1
                     and longer["exit_seconds"] <= DRAIN_SECONDS + 2)
    return {"seconds_per_step": seconds_per_step, "shorter": shorter, "longer": longer}


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
             *(sigterm_row(result["sigterm"], case) for case in ("shorter", "longer")), "",
             f"SIGTERM cases: {SIGTERM_ROWS} prompts per generation, sized from one timed chunk "
             f"({result['sigterm']['seconds_per_step'] * 1000:.2f} ms per step); SIGTERM "
             f"{result['sigterm']['shorter']['signal_after_seconds']:.1f} s and "
             f"{result['sigterm']['longer']['signal_after_seconds']:.1f} s after the request.", END_MARKER]
    return "\n".join(lines)


def sigterm_row(sigterm, case):
    """One SIGTERM case's row of the targets table."""
    row = sigterm[case]
    expected = ("answered 200, exit 0" if case == "shorter" else "the client gets a JSON 503, exit 1")
    took = (f"the request took {row['request_seconds']:.1f} s" if row["request_seconds"] is not None
            else "no answer")
    return (f"| SIGTERM with a generation {case} than the drain in flight ({row['rows']} x {row['steps']:,} steps, "
            f"about {row.get('seconds_alone', row['steps'] * sigterm['seconds_per_step']):.1f} s alone"
            f"{'' if 'seconds_alone' in row else ', from the timed chunk'}): {expected}, within the drain "
            f"({DRAIN_SECONDS:g} s) + 2 s | {row['exit_seconds']:.1f} s, status {row['exit_status']}, the request "
            f"got {row['in_flight_status']}{' (JSON error)' if row['json_error'] else ''} ({took}; "
            f"{'in flight' if row['in_flight_at_signal'] else 'answered before'} at SIGTERM); "
            f"\"{row['stopped']}\" | {'yes' if row['met'] else 'no'} |")


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
        result["sigterm"] = measure_sigterm(generation_run)
    print(json.dumps(result, indent=2, default=str))
    section = format_section("python benchmarks/serving_abuse.py " + " ".join(argv or sys.argv[1:]), result,
                             arguments.clients)
    print(section)
    if not arguments.no_write:
        report.write_section(arguments.output, section, BEGIN_MARKER, END_MARKER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
