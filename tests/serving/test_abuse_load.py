"""Load with one abusive client among well-behaved ones, against `seq-templates serve` on loopback (slow).

The server process serves the toy export (tests/serving/conftest.py) with its default bounds. Four
well-behaved clients send one-text requests back to back for a few seconds alone, then as long
beside one abusive client that sends, in turn, a 15 MB string (under the 16 MiB body limit, over
``--max-input-bytes``), a generation at the ``--max-generate-length`` cap and one over it. The
well-behaved clients must keep their p99 within 3x of the figure alone with no error, the abusive
one gets only 400s (200 for the capped generation), and the server's peak RSS stays under 2 GB.
benchmarks/serving_abuse.py measures the same on trained models.
"""

import json
import signal
import threading
import time

import pytest

from seq_templates.serving import limits
from tests.serving import load_clients
from tests.serving.test_server_process import free_port
from tests.serving.test_server_process import start_server
from tests.serving.test_server_process import toy_export  # noqa: F401 - the fixture
from tests.serving.test_server_process import wait_until_ready

CLIENTS = 4
SECONDS = 5.0
PATH = "/v1/models/toy:predict"
TEXTS = ["a gripping , beautifully acted film", "the plot is thin", "not bad at all", "an instant classic",
         "dull , dull , dull", "warm , funny and surprisingly moving"]
# The toy's generate sleeps this long per step: a generation at the cap (2,000 steps) holds a model thread
# 0.3 s, about what the quick text-generation model takes for it (docs/benchmarks.md, serving under abuse).
SECONDS_PER_STEP = 0.00015
PEAK_RSS_MEGABYTES = 2048


def generation(max_length):
    return json.dumps({"signature_name": "generate", "inputs": {
        "prompt": ["abuse"], "max_length": max_length, "seed": 1, "letters": 25,  # letters=25: no row ends early
        "seconds_per_step": SECONDS_PER_STEP}}).encode()


@pytest.mark.slow
def test_an_abusive_client_leaves_the_others_their_latency_and_the_server_its_memory(toy_export):  # noqa: F811
    cap = limits.Limits().max_generate_length
    abusive_bodies = {"huge_string": json.dumps({"instances": ["a " * 7_500_000]}).encode(),  # 15 MB
                      "at_cap": generation(cap), "over_cap": generation(cap + 1)}
    bodies = [json.dumps({"instances": [text]}).encode() for text in TEXTS]
    port = free_port()
    process = start_server(toy_export, "--name", "toy", "--port", port)
    try:
        wait_until_ready(process, f"http://127.0.0.1:{port}/healthz")
        alone = load_clients.well_behaved_load(port, PATH, bodies, CLIENTS, SECONDS)
        answers = {}
        abuser = threading.Thread(target=load_clients.abusive_client, args=(
            f"http://127.0.0.1:{port}{PATH}", abusive_bodies, time.perf_counter() + SECONDS + 1.0, answers))
        abuser.start()
        beside = load_clients.well_behaved_load(port, PATH, bodies, CLIENTS, SECONDS)
        abuser.join(timeout=180)
        peak = load_clients.peak_rss_megabytes(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    summary = (f"alone {alone}; beside the abusive client {beside}; its answers {answers}; "
               f"peak RSS {peak:.0f} MB")
    print(summary)
    assert not abuser.is_alive()
    assert alone["errors"] == 0 and beside["errors"] == 0, summary
    assert alone["requests"] > 100 and beside["requests"] > 100, summary
    assert set(answers) == {"huge_string 400", "at_cap 200", "over_cap 400"}, summary
    assert beside["p99_ms"] <= 3 * alone["p99_ms"], summary
    assert peak < PEAK_RSS_MEGABYTES, summary
    assert process.returncode == 0, stderr[-3000:]
