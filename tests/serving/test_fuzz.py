"""Property-based fuzzing of request bodies and paths: never a 5xx, never a dead server."""

import json
import shutil
import warnings

import hypothesis
import pytest
from hypothesis import strategies

from seq_templates.serving import app as app_module
from seq_templates.serving import limits
from tests.serving.conftest import make_repository
from tests.serving.conftest import save_toy

SIGNATURES = ["serving_default", "window", "echo_bytes", "types", "checked", "centered", "total_only", "nope", ""]
INPUT_NAMES = ["text", "values", "offset", "data_bytes", "flag", "count", "value", "small", "b64", "x"]

scalars = (strategies.none() | strategies.booleans() | strategies.integers(-2 ** 70, 2 ** 70)
           | strategies.floats(allow_nan=True, allow_infinity=True) | strategies.text(max_size=20)
           | strategies.sampled_from(INPUT_NAMES)
           | strategies.text(strategies.characters(categories=["Cs"]), min_size=1, max_size=2))  # lone surrogates
base64_objects = strategies.fixed_dictionaries({"b64": strategies.text(max_size=12)})
json_values = strategies.recursive(
    scalars | base64_objects,
    lambda children: strategies.lists(children, max_size=4)
    | strategies.dictionaries(strategies.sampled_from(INPUT_NAMES) | strategies.text(max_size=5), children, max_size=3),
    max_leaves=20)
requests = strategies.fixed_dictionaries({}, optional={
    "signature_name": strategies.sampled_from(SIGNATURES) | json_values,
    "instances": json_values,
    "inputs": json_values,
})
bodies = (requests.map(lambda body: json.dumps(body).encode())
          | json_values.map(lambda value: json.dumps(value).encode())
          | strategies.binary(max_size=64))


@pytest.fixture(scope="module")
def fuzzed_client(tmp_path_factory, trained_app_runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette import testclient
    base = tmp_path_factory.mktemp("fuzz")
    save_toy(base / "toy" / "1")
    _, sentiment_run = trained_app_runs("sentiment")
    shutil.copytree(sentiment_run / "export" / "1", base / "sentiment" / "1")
    repository = make_repository({"toy": base / "toy", "sentiment": base / "sentiment"})
    app = app_module.build_app(repository, max_body_bytes=4096)
    with testclient.TestClient(app, raise_server_exceptions=False) as client:
        yield client


# What an attacker sends: lists nested past any tensor's rank, integer literals past Python's digit limit,
# strings and batches past the server's bounds.
abusive_bodies = (
    strategies.integers(33, 2000).map(lambda depth: b'{"instances": ' + b"[" * depth + b'"a"' + b"]" * depth + b"}")
    | strategies.integers(300, 6000).map(lambda digits: b'{"instances": [' + b"9" * digits + b"]}")
    | strategies.integers(9_000, 300_000).map(lambda size: json.dumps({"instances": ["a " * (size // 2)]}).encode())
    | strategies.integers(90, 3000).map(lambda rows: json.dumps({"instances": ["a"] * rows}).encode())
    | strategies.integers(1, 10 ** 9).map(lambda steps: json.dumps(
        {"signature_name": "sleep", "inputs": {"seconds": [0.0], "max_length": steps}}).encode()))


@pytest.fixture(scope="module")
def bounded_client(fuzzed_client):
    """The fuzzed repository behind an app with a 1 MiB body limit and small bounds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette import testclient
    bounds = limits.Limits(max_input_bytes=8_000, max_rows=80, max_generate_length=100)
    app = app_module.build_app(fuzzed_client.app.state.repository, max_body_bytes=2 ** 20, limits=bounds)
    with testclient.TestClient(app, raise_server_exceptions=False) as client:
        yield client


def assert_answered(answer):
    assert answer.status_code < 500, answer.text
    document = answer.json()
    assert set(document) in ({"error"}, {"predictions"}, {"outputs"}, {"model_version_status"},
                             {"model_spec", "metadata"}), document


@hypothesis.settings(max_examples=250, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(body=bodies, model=strategies.sampled_from(["toy", "sentiment"]))
def test_fuzzed_predict_bodies_never_answer_5xx(fuzzed_client, body, model):
    assert_answered(fuzzed_client.post(f"/v1/models/{model}:predict", content=body))


@hypothesis.settings(max_examples=100, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(signature=strategies.sampled_from(SIGNATURES[:-2]),
                  instances=strategies.lists(json_values, min_size=1, max_size=4))
def test_fuzzed_instances_for_each_signature_never_answer_5xx(fuzzed_client, signature, instances):
    body = {"signature_name": signature, "instances": instances}
    assert_answered(fuzzed_client.post("/v1/models/toy:predict", content=json.dumps(body)))


@hypothesis.settings(max_examples=100, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(method=strategies.sampled_from(["GET", "POST", "PUT", "DELETE"]),
                  path=strategies.lists(strategies.sampled_from(
                      ["v1", "models", "toy", "sentiment", "versions", "labels", "1", "x", "metadata", ":predict",
                       "99999999999999999999", "%2F", ""]), max_size=6)
                  .map(lambda parts: "/" + "/".join(parts)).filter(lambda path: not path.startswith("//")))
def test_fuzzed_paths_never_answer_5xx(fuzzed_client, method, path):
    assert_answered(fuzzed_client.request(method, path, content=b'{"instances": ["a"]}'))


@hypothesis.settings(max_examples=60, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(body=abusive_bodies, model=strategies.sampled_from(["toy", "sentiment"]))
def test_abusive_bodies_answer_4xx(bounded_client, body, model):
    answer = bounded_client.post(f"/v1/models/{model}:predict", content=body)
    assert 400 <= answer.status_code < 500 or (answer.status_code == 200 and b"sleep" in body), answer.text[:300]
    assert_answered(answer)


def test_the_server_still_answers_after_fuzzing(fuzzed_client):
    answer = fuzzed_client.post("/v1/models/sentiment:predict", json={"instances": ["a fine film"]})
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 1
