"""Every template's export (and every fixture app's, covering the other shapes) behind the REST API.

Each app is trained once per session with its quick settings (``trained_app_runs``).
Its own ``example_inputs`` drive the requests: status and metadata, predict in the
row and the columnar format through every signature the app lists, answers equal
to direct calls of the SavedModel's signatures, and batching under concurrency
with each caller getting exactly its own answer.
"""

import asyncio
import base64
import json
import warnings

import httpx
import numpy as np
import pytest
import tensorflow as tf

from seq_templates import config as config_module
from seq_templates import lifecycle
from seq_templates.serving import app as app_module
from seq_templates.serving import config_files
from seq_templates.serving import repository as repository_module
from seq_templates.serving import server
from tests.apps import test_app_contract


def _json_value(item):
    if isinstance(item, bytes):
        try:
            return item.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(item).decode("ascii")}
    return item


def _to_json(array):
    """A numpy input array as a JSON value (strings as text, or b64 when not UTF-8)."""
    array = np.asarray(array)
    if array.dtype.kind in ("O", "S"):
        return np.frompyfunc(_json_value, 1, 1)(array).tolist() if array.ndim else _json_value(array.item())
    return array.tolist()


class Served:
    """One app's run: its export loaded directly, its example requests, a repository serving it."""

    def __init__(self, name, app, run):
        self.name = name
        self.run = run
        base_path, version, model_name = server.resolve_model_path(run)
        assert version is None and base_path == run / "export" and model_name == app.TASK
        self.model_name = model_name
        self.repository = repository_module.Repository([config_files.ModelConfig(model_name, base_path)], 0)
        self.repository.refresh()
        self.loaded = tf.saved_model.load(str(base_path / "1"))
        config = config_module.load(app.CONFIG_SECTIONS, run / "config.yaml")
        examples = app.example_inputs(app.load_raw_data(config["data"]), config)
        self.inputs = {}  # signature name -> {input name: numpy array}
        for signature_name, values in examples.items():
            tensors = lifecycle.input_tensors(self.loaded.signatures[signature_name], values)
            self.inputs[signature_name] = {key: tensor.numpy() for key, tensor in tensors.items()}

    def direct(self, signature_name, inputs):
        function = self.loaded.signatures[signature_name]
        specs = function.structured_input_signature[1]
        outputs = function(**{key: tf.constant(value, dtype=specs[key].dtype) for key, value in inputs.items()})
        return {key: value.numpy() for key, value in outputs.items()}


@pytest.fixture(scope="module", params=sorted(test_app_contract.APPS))
def served(request, trained_app_runs):
    app, run = trained_app_runs(request.param)
    return Served(request.param, app, run)


@pytest.fixture(scope="module")
def client(served):
    with warnings.catch_warnings():  # starlette asks for httpx2, not released yet; httpx works
        warnings.simplefilter("ignore")
        from starlette import testclient
    with testclient.TestClient(app_module.build_app(served.repository), raise_server_exceptions=False) as test_client:
        yield test_client


def rows_of(inputs):
    return next((len(value) for value in inputs.values() if np.ndim(value)), None)


def columnar_body(signature_name, inputs):
    return {"signature_name": signature_name, "inputs": {key: _to_json(value) for key, value in inputs.items()}}


def row_body(signature_name, inputs):
    batched = [key for key, value in inputs.items() if np.ndim(value)]
    if len(inputs) == 1:
        instances = _to_json(next(iter(inputs.values())))
    else:
        instances = [{key: _to_json(value[index]) if key in batched else _to_json(value)
                      for key, value in inputs.items()} for index in range(rows_of(inputs))]
    return {"signature_name": signature_name, "instances": instances}


def assert_answers(answer, expected):
    """An answer's ``{output: JSON value}`` equals direct outputs (floats as float32 within rounding)."""
    assert set(answer) == set(expected)
    for key, array in expected.items():
        if array.dtype.kind == "f":
            np.testing.assert_allclose(np.asarray(answer[key], dtype=np.float64), array.astype(np.float64),
                                       rtol=1e-5, atol=1e-6, err_msg=key)
        elif array.dtype.kind in ("O", "S"):
            decoded = np.frompyfunc(lambda item: item.decode("utf-8", errors="replace"), 1, 1)(array)
            assert answer[key] == (decoded.tolist() if array.ndim else decoded), key
        else:
            assert answer[key] == array.tolist(), key


def columns_of(answer, expected_names):
    if "outputs" in answer:
        outputs = answer["outputs"]
        return outputs if len(expected_names) > 1 else {expected_names[0]: outputs}
    predictions = answer["predictions"]
    if len(expected_names) == 1:
        return {expected_names[0]: predictions}
    return {key: [row[key] for row in predictions] for key in expected_names}


def test_status_and_metadata(served, client):
    status = client.get(f"/v1/models/{served.model_name}").json()
    assert status == {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                                "status": {"error_code": "OK", "error_message": ""}}]}
    metadata = client.get(f"/v1/models/{served.model_name}/metadata").json()
    assert metadata["model_spec"]["version"] == "1"
    definitions = metadata["metadata"]["signature_def"]["signature_def"]
    assert "serving_default" in definitions and set(served.inputs) <= set(definitions)
    for signature_name, inputs in served.inputs.items():
        assert set(definitions[signature_name]["inputs"]) == set(inputs)
        outputs = served.loaded.signatures[signature_name].structured_outputs
        assert set(definitions[signature_name]["outputs"]) == set(outputs)


def test_predict_in_both_formats_answers_like_the_savedmodel(served, client):
    path = f"/v1/models/{served.model_name}:predict"
    for signature_name, inputs in served.inputs.items():
        expected = served.direct(signature_name, inputs)
        names = sorted(expected)
        columnar = client.post(path, json=columnar_body(signature_name, inputs))
        assert columnar.status_code == 200, columnar.text
        assert_answers(columns_of(columnar.json(), names), expected)
        rows = client.post(path, json=row_body(signature_name, inputs))
        assert rows.status_code == 200, rows.text
        assert_answers(columns_of(rows.json(), names), expected)
        if signature_name == "serving_default":  # the default signature needs no name
            body = row_body(signature_name, inputs)
            del body["signature_name"]
            assert client.post(path, json=body).json() == rows.json()


def test_concurrent_requests_with_batching_each_get_their_own_answer(served):
    parameters = config_files.BatchingParameters(max_batch_size=16, batch_timeout_micros=100_000, num_batch_threads=1)
    app = app_module.build_app(served.repository, parameters)
    requests = []  # (signature, inputs of 1-3 rows) from every signature's examples
    for signature_name, inputs in served.inputs.items():
        count = rows_of(inputs)
        start, size = 0, 1
        while start < count and len(requests) < 24:
            requests.append((signature_name, {key: value[start:start + size] if np.ndim(value) else value
                                              for key, value in inputs.items()}))
            start, size = start + size, size % 3 + 1

    async def send_all():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=120) as async_client:
            return await asyncio.gather(*(async_client.post(f"/v1/models/{served.model_name}:predict",
                                                            content=json.dumps(columnar_body(signature, inputs)))
                                          for signature, inputs in requests))

    answers = asyncio.run(send_all())
    for (signature_name, inputs), answer in zip(requests, answers):
        assert answer.status_code == 200, answer.text
        expected = served.direct(signature_name, inputs)
        assert_answers(columns_of(answer.json(), sorted(expected)), expected)
    statistics = app.state.batcher.statistics
    assert statistics["requests"] == len(requests) and statistics["merged_calls"] >= 1


# Decoding inputs out of limits.VALUE_RULES, per template: (signature, [(input, bad value, as the 400 writes it)]).
DECODING_CASES = {
    "translation": ("translate", [("beam_width", 0, "0"), ("beam_width", -1, "-1"), ("max_length", 0, "0"),
                                  ("length_penalty", -1.0, "-1")]),
    "text_generation": ("generate", [("temperature", -1.0, "-1"), ("top_k", -1, "-1"), ("top_p", 0.0, "0"),
                                     ("top_p", 1.5, "1.5"), ("max_length", 0, "0")]),
}


@pytest.mark.parametrize("name", sorted(DECODING_CASES))
def test_decoding_values_out_of_range_answer_400_naming_the_input(trained_app_runs, name):
    from seq_templates.serving import limits

    app, run = trained_app_runs(name)
    served = Served(name, app, run)
    signature_name, cases = DECODING_CASES[name]
    inputs = served.inputs[signature_name]
    signature = served.repository.find(served.model_name).resolve().signatures[signature_name]
    calls, call = [], signature.call
    signature.call = lambda values: calls.append(values) or call(values)
    path = f"/v1/models/{served.model_name}:predict"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette import testclient
    with testclient.TestClient(app_module.build_app(served.repository), raise_server_exceptions=False) as client:
        for input_name, value, shown in cases:
            meaning = limits.VALUE_RULES[input_name][3]
            bad = {**inputs, input_name: np.asarray(value, dtype=inputs[input_name].dtype)}
            for body in (columnar_body(signature_name, bad), row_body(signature_name, bad)):
                answer = client.post(path, json=body)
                assert answer.status_code == 400, answer.text
                expected = f"{input_name}={shown} is out of range: {input_name} must be {meaning}."
                assert answer.json()["error"] == expected
        assert calls == []  # refused before any model call
        good = client.post(path, json=columnar_body(signature_name, inputs))
        assert good.status_code == 200, good.text
        assert len(calls) == 1
