"""Server-side batching: concurrent requests merged into one model call, every caller getting its own answer."""

import asyncio
import json

import httpx
import pytest

from seq_templates.serving import app as app_module
from seq_templates.serving import config_files
from tests.serving.conftest import make_repository

PREDICT = "/v1/models/toy:predict"
# A long timeout makes merging certain in tests: every request sent at once lands in one batch.
MERGING = config_files.BatchingParameters(max_batch_size=8, batch_timeout_micros=200_000, num_batch_threads=1)


def post_concurrently(app, bodies, path=PREDICT):
    """Sends every body at once to the app; returns the (status, JSON) answers in order."""
    async def send_all():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(*(client.post(path, content=json.dumps(body)) for body in bodies))
        return [(answer.status_code, answer.json()) for answer in answers]

    return asyncio.run(send_all())


def answers_without_batching(repository, bodies):
    return post_concurrently(app_module.build_app(repository), bodies)


@pytest.fixture
def toy_repository(toy_base):
    return make_repository({"toy": toy_base})


def test_requests_merge_and_padded_sequences_are_cut_back_for_each_caller(toy_repository):
    texts = ["a", "b c d e f g h", "", "one two", "x y z", "long " * 9, "q", "r s"]
    bodies = [{"instances": [text]} if index % 2 else {"inputs": {"text": [text, text + " w"]}}
              for index, text in enumerate(texts)]
    app = app_module.build_app(toy_repository, MERGING)
    batched = post_concurrently(app, bodies)
    assert batched == answers_without_batching(toy_repository, bodies)  # same widths, same values, same format
    assert all(status == 200 for status, _ in batched)
    statistics = app.state.batcher.statistics
    assert statistics["merged_calls"] >= 1 and statistics["requests"] == len(bodies)
    assert batched[1][1]["predictions"][0]["tokens"] == ["b", "c", "d", "e", "f", "g", "h"]
    assert batched[0][1]["outputs"]["tokens"] == [["a", ""], ["a", "w"]]  # not padded to the batch's longest


def test_requests_with_different_scalar_inputs_never_share_a_call(toy_repository):
    bodies = [{"signature_name": "window", "inputs": {"values": [[index, 1, 1]], "offset": float(index % 3)}}
              for index in range(9)]
    app = app_module.build_app(toy_repository, MERGING)
    batched = post_concurrently(app, bodies)
    assert [answer["outputs"] for _, answer in batched] == [[index + 2.0 + index % 3] for index in range(9)]
    assert app.state.batcher.statistics["merged_calls"] >= 1  # those with equal offsets did merge


def test_a_request_larger_than_max_batch_size_runs_alone(toy_repository):
    app = app_module.build_app(toy_repository, MERGING)
    bodies = [{"instances": [f"word{index}" for index in range(20)]}, {"instances": ["a b"]}]
    assert post_concurrently(app, bodies) == answers_without_batching(toy_repository, bodies)


def test_a_failing_request_does_not_fail_the_requests_merged_with_it(toy_repository):
    app = app_module.build_app(toy_repository, MERGING)
    bodies = [{"signature_name": "checked", "instances": [value]} for value in (4.0, 9.0, -1.0, 16.0)]
    answers = post_concurrently(app, bodies)
    assert [status for status, _ in answers] == [200, 200, 400, 200]
    assert [answer.get("predictions") for _, answer in answers] == [[2.0], [3.0], None, [4.0]]


def test_outputs_without_a_batch_dimension_are_not_merged(toy_repository):
    app = app_module.build_app(toy_repository, MERGING)
    bodies = [{"signature_name": "total_only", "inputs": ["x"] * count} for count in (1, 2, 3)]
    assert [answer for _, answer in post_concurrently(app, bodies)] == [{"outputs": 1}, {"outputs": 2},
                                                                         {"outputs": 3}]
    assert not toy_repository.find("toy").resolve().signatures["total_only"].batchable


def test_a_signature_whose_rows_depend_on_the_batch_is_served_unmerged(toy_repository):
    app = app_module.build_app(toy_repository, MERGING)
    bodies = [{"signature_name": "centered", "inputs": [float(value), float(value) + 2]} for value in range(4)]
    first = post_concurrently(app, bodies)
    assert [answer["outputs"] for _, answer in first] == [[-1.0, 1.0]] * 4  # the answers alone, not merged ones
    signature = toy_repository.find("toy").resolve().signatures["centered"]
    assert not signature.batchable and not signature.merging_verified
    assert post_concurrently(app, bodies) == first


def test_a_full_queue_answers_429(toy_repository):
    parameters = config_files.BatchingParameters(max_batch_size=1, batch_timeout_micros=200_000,
                                                 num_batch_threads=1, max_enqueued_batches=2)
    app = app_module.build_app(toy_repository, parameters)
    statuses = [status for status, _ in post_concurrently(app, [{"instances": [str(index)]} for index in range(8)])]
    assert 429 in statuses and 200 in statuses and set(statuses) <= {200, 429}
