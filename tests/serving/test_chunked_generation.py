"""Generation in bounded chunks: a long max_length runs as several model calls, answers like one, and a
deadline or the shutdown stops it between two, freeing its model thread."""

import asyncio
import json
import threading
import time

import pytest

from seq_templates.serving import chunking
from seq_templates.serving import limits
from tests.serving.conftest import client_for
from tests.serving.conftest import write_extra_assets

PREDICT = "/v1/models/toy:predict"


def count_calls(client, model, signature_name):
    """Wraps a served signature's call to record each call's ``(rows, max_length)``."""
    signature = client.repository.find(model).resolve().signatures[signature_name]
    calls, call = [], signature.call

    def recording(inputs):
        calls.append((len(inputs["prompt"]), int(inputs["max_length"])))
        return call(inputs)

    signature.call = recording
    return calls


def toy_generate(max_length, letters=26, seed=11, seconds_per_step=0.0, prompts=("ab", "", "c", "d")):
    return {"signature_name": "generate", "inputs": {"prompt": list(prompts), "max_length": max_length,
                                                     "seed": seed, "letters": letters,
                                                     "seconds_per_step": seconds_per_step}}


@pytest.fixture
def resumable_toy(toy_base):
    write_extra_assets(toy_base / "1", serving={"resumable": ["generate", "sleep"]})  # sleep does not fit
    return toy_base


def test_a_row_that_ends_leaves_the_next_chunks_and_the_answer_has_one_calls_shape(resumable_toy):
    with client_for({"toy": resumable_toy}, limits=limits.Limits(generate_chunk_length=5)) as client:
        calls = count_calls(client, "toy", "generate")
        answer = client.post(PREDICT, json=toy_generate(60))
        assert answer.status_code == 200, answer.text
        outputs = answer.json()["outputs"]
        assert set(outputs) == {"text", "continuation", "num_generated"} and len(calls) > 1
        assert all(length <= 5 for _, length in calls) and calls[0] == (4, 5)
        rows = [count for count, _ in calls]
        assert rows == sorted(rows, reverse=True) and rows[-1] < 4  # rows that wrote their "z" stopped
        for prompt, text, continuation, count in zip(["ab", "", "c", "d"], outputs["text"], outputs["continuation"],
                                                     outputs["num_generated"]):
            assert text == prompt + continuation and count == len(continuation) <= 60
            assert continuation.endswith("z") or count == 60  # a row stops early only at its end token
        assert client.post(PREDICT, json=toy_generate(60)).json() == answer.json()  # seeded: the same text
        assert client.post(PREDICT, json=toy_generate(60, seed=12)).json() != answer.json()
        row_format = {"signature_name": "generate", "instances": [
            {"prompt": prompt, "max_length": 60, "seed": 11, "letters": 26, "seconds_per_step": 0.0}
            for prompt in ["ab", "", "c", "d"]]}
        assert client.post(PREDICT, json=row_format).json() == {"predictions": [
            dict(zip(outputs, values)) for values in zip(*outputs.values())]}


def test_a_signature_not_declared_or_not_fitting_runs_in_one_call(toy_base, resumable_toy):
    with client_for({"toy": resumable_toy}, limits=limits.Limits(generate_chunk_length=5)) as client:
        signatures = client.repository.find("toy").resolve().signatures
        assert signatures["generate"].resumable and not signatures["sleep"].resumable  # its outputs are others
        sleep_calls = []
        call = signatures["sleep"].call
        signatures["sleep"].call = lambda inputs: sleep_calls.append(inputs) or call(inputs)
        answer = client.post(PREDICT, json={"signature_name": "sleep", "inputs": {"seconds": [0.0], "max_length": 9}})
        assert answer.status_code == 200 and len(sleep_calls) == 1
    (resumable_toy / "1" / "assets.extra" / "serving.json").unlink()  # an export that declares nothing
    with client_for({"toy": resumable_toy}, limits=limits.Limits(generate_chunk_length=5)) as client:
        calls = count_calls(client, "toy", "generate")
        assert client.post(PREDICT, json=toy_generate(60)).status_code == 200 and calls == [(4, 60)]


def test_a_deadline_stops_a_chunked_generation_and_its_thread_serves_the_next_request(resumable_toy):
    bounds = limits.Limits(request_timeout_seconds=2.0, generate_chunk_length=5)
    with client_for({"toy": resumable_toy}, limits=bounds, num_threads=1) as client:  # one model thread
        calls = count_calls(client, "toy", "generate")
        long = client.post(PREDICT, json=toy_generate(500, letters=25, seconds_per_step=0.02))  # 10 s in one call
        assert long.status_code == 504 and "not answered within 2 s" in long.json()["error"]
        # The next request needs the one model thread within its own 2 s: free within a chunk (0.1 s), where a
        # generation run in one call would hold it 8 s more.
        assert client.post(PREDICT, json={"instances": ["next"]}).status_code == 200
        started = len(calls)
        time.sleep(0.3)
        assert len(calls) == started and started < 500 // 5  # no chunk started after the 504


def test_the_shutdown_stops_a_chunked_generation_between_two_chunks(resumable_toy):
    bounds = limits.Limits(request_timeout_seconds=3.0, generate_chunk_length=5)
    with client_for({"toy": resumable_toy}, limits=bounds, num_threads=1) as client:
        state = client.app_under_test.state
        calls = count_calls(client, "toy", "generate")
        timer = threading.Timer(0.5, lambda: setattr(state, "drain_deadline", time.monotonic()))
        timer.start()  # SIGTERM's drain timeout passes while the generation runs
        answer = client.post(PREDICT, json=toy_generate(500, letters=25, seconds_per_step=0.02))
        timer.join()
        assert answer.status_code == 503 and "shutting down" in answer.json()["error"] and state.cut_short == 1
        state.drain_deadline = None  # the server back: the next request has the one model thread within 3 s
        assert client.post(PREDICT, json={"instances": ["next"]}).status_code == 200
        assert len(calls) < 500 // 5


async def asgi_post(app, document, disconnect_after=None):
    """POSTs ``document`` to the toy's predict straight through ASGI, as a server hands a request over.

    The client goes away (``http.disconnect``) ``disconnect_after`` seconds after the request
    was sent, or never. Returns ``(HTTP status, answer)``.
    """
    body = json.dumps(document).encode()
    gone, delivered = asyncio.Event(), False
    if disconnect_after is not None:
        asyncio.get_running_loop().call_later(disconnect_after, gone.set)

    async def receive():
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    messages = []

    async def send(message):
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": PREDICT, "raw_path": PREDICT.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
             "server": ("testserver", 80), "client": ("testclient", 50000)}
    await app(scope, receive, send)
    status = next(message["status"] for message in messages if message["type"] == "http.response.start")
    return status, json.loads(b"".join(message.get("body", b"") for message in messages
                                       if message["type"] == "http.response.body"))


def test_a_client_that_disconnects_stops_its_chunked_generation_after_the_current_chunk(resumable_toy):
    from seq_templates.serving import app as app_module
    from tests.serving.conftest import make_repository

    served = make_repository({"toy": resumable_toy})
    bounds = limits.Limits(request_timeout_seconds=30.0, generate_chunk_length=5)
    app = app_module.build_app(served, num_threads=1, limits=bounds)  # one model thread
    signature = served.find("toy").resolve().signatures["generate"]
    calls, call = [], signature.call  # (started, ended) of each chunk's model call

    def timed(inputs):
        started = time.monotonic()
        try:
            return call(inputs)
        finally:
            calls.append((started, time.monotonic()))

    signature.call = timed

    async def scenario():
        sent = time.monotonic()
        # 500 steps at 0.02 s: 100 chunks of 0.1 s, 10 s in all; the client leaves after 0.5 s.
        status, answer = await asgi_post(app, toy_generate(500, letters=25, seconds_per_step=0.02),
                                         disconnect_after=0.5)
        answered = time.monotonic()
        await asyncio.sleep(0.5)  # a chunk still running would end, and a next one start, by now
        next_sent = time.monotonic()
        next_status, _ = await asgi_post(app, {"instances": ["next"]})
        return sent + 0.5, status, answer, answered, next_status, time.monotonic() - next_sent

    gone, status, answer, answered, next_status, next_seconds = asyncio.run(scenario())
    assert status == 499 and answer == {"error": "The client closed the connection; its request was dropped."}
    assert answered - gone < 1.0  # noticed within a chunk or two, not after the 10 s the generation takes
    assert 2 <= len(calls) < 500 // 5 / 2
    # The chunk running when the client left finishes (at most one more begun while it was being noticed) and
    # is the last: none starts after the answer, and the one model thread is idle a chunk later.
    assert sum(started > gone for started, _ in calls) <= 1
    assert all(started < answered for started, _ in calls)
    assert max(ended for _, ended in calls) < answered + 0.3
    assert next_status == 200 and next_seconds < 1.0  # the one model thread is free for the next request


def test_chunk_seeds_are_deterministic_distinct_and_keep_the_first():
    seeds = [int(chunking.chunk_seed(7, index)) for index in range(50)]
    assert seeds[0] == 7 and len(set(seeds)) == 50 and all(seed >= 0 for seed in seeds)
    assert seeds == [int(chunking.chunk_seed(7, index)) for index in range(50)]
    assert int(chunking.chunk_seed(-3, 1)) >= 0 and 0 <= int(chunking.chunk_seed(2 ** 62, 5, "int32")) < 2 ** 31


GENERATE = {"signature_name": "generate", "inputs": {"prompt": ["To be", "", "ROMEO:"], "max_length": 40,
                                                     "temperature": 0.0, "top_k": 0, "top_p": 1.0, "seed": 3}}


def test_a_text_generation_export_generates_in_chunks_like_one_call(trained_app_runs):
    _, run = trained_app_runs("text_generation")
    with client_for({"text_generation": run / "export"}, limits=limits.Limits(generate_chunk_length=7)) as chunked, \
            client_for({"text_generation": run / "export"}) as whole:
        path = "/v1/models/text_generation:predict"
        calls = count_calls(chunked, "text_generation", "generate")
        greedy = chunked.post(path, json=GENERATE)
        assert greedy.status_code == 200, greedy.text
        assert calls == [(3, 7)] * 5 + [(3, 5)]
        assert greedy.json() == whole.post(path, json=GENERATE).json()  # the text re-read: the same tokens
        sampled = {**GENERATE, "inputs": {**GENERATE["inputs"], "temperature": 1.0}}
        first = chunked.post(path, json=sampled).json()["outputs"]
        assert chunked.post(path, json=sampled).json()["outputs"] == first  # seeded: the same text twice
        assert first["num_generated"] == [40] * 3
        assert [text[:len(prompt)] for text, prompt in zip(first["text"], ["To be", "", "ROMEO:"])] == \
            ["To be", "", "ROMEO:"]
        assert all(text.endswith(continuation) for text, continuation in zip(first["text"], first["continuation"]))
        one_call = whole.post(path, json=sampled).json()["outputs"]
        assert [text[:7] for text in first["continuation"]] == [text[:7] for text in one_call["continuation"]]


def test_a_text_generation_export_records_its_generation_bound(trained_app_runs):
    _, run = trained_app_runs("text_generation")
    recorded = json.loads((run / "export" / "1" / "assets.extra" / "request_limits.json").read_text())
    assert recorded == {"request_limits": {"max_generate_length": 400},  # 10 x model.max_length=40 (QUICK)
                        "reasons": {"max_generate_length": "10 x the default max_length of generate, 40"}}
    with client_for({"text_generation": run / "export"}) as client:  # the server's default would be 2,000
        body = {**GENERATE, "inputs": {**GENERATE["inputs"], "prompt": ["To be"], "max_length": 401}}
        refused = client.post("/v1/models/text_generation:predict", json=body)
        assert refused.status_code == 400 and "generates at most 400 (recorded by the export of model " \
            "'text_generation' in version 1's assets.extra/request_limits.json" in refused.json()["error"]


@pytest.mark.parametrize("tokenization, resumable", [("char", ["generate"]), ("word", [])])
def test_text_generation_declares_generate_resumable_at_character_level_only(tokenization, resumable):
    from seq_templates import apps_loader
    from seq_templates import config as config_module

    app = apps_loader.load_app("text_generation")
    config = config_module.resolve(app.CONFIG_SECTIONS, [], [
        f"data.tokenization={tokenization}", "data.sequence_length=8", "model.units=8", "model.embedding_dim=4"])
    raw = app.load_raw_data(config["data"])
    preprocessing = app.build_preprocessing(config, raw["train"])
    _, _, assets = app.build_serving(app.build_model(config, preprocessing), preprocessing, config)
    assert assets["serving.json"]["resumable"] == resumable  # word level: one call, its text re-read may differ
