"""TF Serving's REST API on a tiny hand-made export: answers, JSON encodings and every failure's 4xx/5xx."""

import base64
import json
import time

import numpy as np
import pytest

from tests.serving.conftest import client_for

PREDICT = "/v1/models/toy:predict"


def test_status_is_shaped_as_tf_serving_shapes_it(toy_client):
    expected = {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}}]}
    for path in ("/v1/models/toy", "/v1/models/toy/versions/1", "/V1/MODELS/toy"):
        answer = toy_client.get(path)
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
        assert answer.json() == expected


def test_metadata_lists_the_signature_defs_of_saved_model_pb(toy_client, toy_version):
    from tensorflow.core.protobuf import saved_model_pb2

    metadata = toy_client.get("/v1/models/toy/metadata").json()
    assert metadata["model_spec"] == {"name": "toy", "signature_name": "", "version": "1"}
    assert toy_client.get("/v1/models/toy/versions/1/metadata").json() == metadata
    definitions = metadata["metadata"]["signature_def"]["signature_def"]
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((toy_version / "saved_model.pb").read_bytes())
    assert set(definitions) == set(saved_model.meta_graphs[0].signature_def)
    window = definitions["window"]
    assert window["method_name"] == "tensorflow/serving/predict"
    assert window["inputs"]["values"]["dtype"] == "DT_FLOAT"
    assert window["inputs"]["values"]["tensor_shape"] == {
        "dim": [{"size": "-1", "name": ""}, {"size": "3", "name": ""}], "unknown_rank": False}
    assert window["inputs"]["offset"]["tensor_shape"]["dim"] == []
    assert window["outputs"]["total"]["dtype"] == "DT_FLOAT" and window["inputs"]["values"]["name"]


def test_row_and_columnar_predict_with_several_outputs(toy_client):
    rows = toy_client.post(PREDICT, json={"instances": ["a b c", "d"]})
    assert rows.status_code == 200
    assert rows.json() == {"predictions": [{"length": 3, "tokens": ["a", "b", "c"], "upper": "A B C"},
                                           {"length": 1, "tokens": ["d", "", ""], "upper": "D"}]}
    columns = toy_client.post(PREDICT, json={"inputs": {"text": ["a b c", "d"]}})
    assert columns.json() == {"outputs": {"length": [3, 1], "tokens": [["a", "b", "c"], ["d", "", ""]],
                                          "upper": ["A B C", "D"]}}
    assert toy_client.post(PREDICT, json={"inputs": ["a b c", "d"]}).json() == columns.json()  # a plain value
    keyed = toy_client.post(PREDICT, json={"instances": [{"text": "a b c"}, {"text": "d"}]})
    assert keyed.json() == rows.json()
    for path in ("/v1/models/toy/versions/1:predict", "/v1/MODELS/toy:PREDICT"):
        assert toy_client.post(path, json={"instances": ["d"]}).json()["predictions"][0]["upper"] == "D"


def test_named_signature_one_output_and_scalar_input(toy_client):
    window = {"signature_name": "window", "instances": [{"values": [1, 2, 3], "offset": 0.5},
                                                        {"values": [0.25, 0, 0], "offset": 0.5}]}
    assert toy_client.post(PREDICT, json=window).json() == {"predictions": [6.5, 0.75]}  # one output: bare values
    columnar = {"signature_name": "window", "inputs": {"values": [[1, 2, 3]], "offset": 0.5}}
    assert toy_client.post(PREDICT, json=columnar).json() == {"outputs": [6.5]}
    differing = {"signature_name": "window", "instances": [{"values": [1, 2, 3], "offset": 0.5},
                                                           {"values": [1, 2, 3], "offset": 1.5}]}
    answer = toy_client.post(PREDICT, json=differing)
    assert answer.status_code == 400 and "takes one value per request" in answer.json()["error"]


def test_floats_are_written_as_the_shortest_float32_decimal(toy_client):
    body = {"signature_name": "window", "inputs": {"values": [[0.1, 0.2, 0.0], [1e20, 0, 0], [3, 0, 0]], "offset": 0}}
    text = toy_client.post(PREDICT, json=body).text
    assert json.loads(text) == {"outputs": [0.3, 1e20, 3.0]}
    assert "0.30000001" not in text and "3.0" in text  # float32 0.3, not its double expansion; whole numbers keep .0
    total = np.array(json.loads(text)["outputs"], dtype=np.float32)
    np.testing.assert_array_equal(total, np.array([0.1, 0.2, 0.0], np.float32).sum(keepdims=True).tolist() +
                                  [np.float32(1e20), np.float32(3)])


def test_bytes_in_b64_and_outputs_named_bytes_answered_in_b64(toy_client):
    raw = bytes(range(256))
    body = {"signature_name": "echo_bytes", "instances": [{"b64": base64.b64encode(raw).decode()}, "text é"]}
    predictions = toy_client.post(PREDICT, json=body).json()["predictions"]
    assert base64.b64decode(predictions[0]["data_bytes"]["b64"]) == raw and predictions[0]["size"] == 256
    assert base64.b64decode(predictions[1]["data_bytes"]["b64"]) == "text é".encode()
    unpadded = {"signature_name": "echo_bytes", "inputs": {"data_bytes": [{"b64": "aGk"}]}}
    assert toy_client.post(PREDICT, json=unpadded).json()["outputs"]["size"] == [2]


def test_integers_booleans_and_doubles_keep_their_types(toy_client):
    body = {"signature_name": "types",
            "instances": [{"flag": True, "count": 2 ** 40, "value": 0.1, "small": -3},
                          {"flag": False, "count": -1, "value": 1e300, "small": 2 ** 31 - 1}]}
    assert toy_client.post(PREDICT, json=body).json() == {"predictions": [
        {"count": 2 ** 40, "flag": True, "small": -3, "value": 0.1},
        {"count": -1, "flag": False, "small": 2 ** 31 - 1, "value": 1e300}]}


BAD_REQUESTS = [
    # (body, signature, expected HTTP status, a part of TF Serving's message)
    (b"", None, 400, "JSON Parse error: The document is empty"),
    (b"instances = [1, 2]", None, 400, "JSON Parse error"),
    (b'{"instances": ["a"', None, 400, "JSON Parse error"),
    (b"[1, 2]", None, 400, "Is not object"),
    (b"\xff\xfe\x00", None, 400, "JSON Parse error"),
    ({"signature_name": 100, "instances": ["a"]}, None, 400, "'signature_name' key must be a string value."),
    ({"signature_name": "nope", "instances": ["a"]}, None, 400, 'Serving signature name: "nope" not found'),
    ({"instances": ["a"], "inputs": ["a"]}, None, 400, "expecting only one of 'inputs' or 'instances'"),
    ({"examples": ["a"]}, None, 400, "Missing 'inputs' or 'instances' key"),
    ({"instances": "a"}, None, 400, "'instances' to be an list/array"),
    ({"instances": []}, None, 400, "No values in 'instances' array"),
    ({"inputs": {"text": []}}, None, 400, "Empty batch"),
    ({"instances": [1]}, None, 400, "is not of expected type: string"),
    (b'{"instances": ["\\ud800"]}', None, 400, "is not valid UTF-8 text"),
    (b"[" * 100000 + b"]" * 100000, None, 400, "nested too deeply"),
    ({"instances": [None]}, None, 400, "Type: Null is not of expected type: string"),
    ({"instances": [{"txt": "a"}]}, None, 400, "does not have named input: txt"),
    ({"instances": [{"text": "a", "extra": 1}]}, None, 400, "does not have named input: extra"),
    ({"inputs": {"txt": ["a"]}}, None, 400, "Missing named input: text in 'inputs' object."),
    ({"inputs": {"text": ["a"], "extra": [1]}}, None, 400, "Sent extra: {extra}"),
    ({"instances": [["a"], "b"]}, None, 400, "Expecting shape [1] but got: []"),
    ({"instances": [{"b64": "%%%"}]}, "echo_bytes", 400, "Unable to base64 decode"),
    ({"instances": [{"b64": "aGk=", "x": 1}]}, "echo_bytes", 400, "does not have named input"),
    ({"inputs": [{"b63": "aGk="}]}, "echo_bytes", 400, "not formatted correctly for base64 data"),
    ({"instances": [{"values": [1, 2], "offset": 0}]}, "window", 400, "expects a tensor of shape [-1,3]"),
    ({"instances": [{"values": [1, 2, 3], "offset": 0}, {"values": [1, 2], "offset": 0}]}, "window", 400,
     "Expecting tensor size: 3 but got: 2"),
    ({"inputs": {"values": [[1, 2, 3], [1, 2]], "offset": 0}}, "window", 400, "Encountered list at unexpected size"),
    ({"inputs": {"values": [[1, [2], 3]], "offset": 0}}, "window", 400, "Encountered list at unexpected level"),
    ({"inputs": {"values": [[1, "2", 3]], "offset": 0}}, "window", 400, "Type: String is not of expected type: float"),
    ({"inputs": {"values": [[1, True, 3]], "offset": 0}}, "window", 400, "Type: True is not of expected type: float"),
    ({"inputs": {"values": [[1, 2, 3]], "offset": 2 ** 40}}, "window", 400, "without loss of precision"),
    ({"inputs": {"values": [[1, 2, 3]], "offset": 1e39}}, "window", 400, "without loss of precision"),
    ({"inputs": {"values": [[1, 2, 3]], "offset": [0]}}, "window", 400, "expects a tensor of shape []"),
    # Non-finite numbers (json.loads reads the literals NaN, Infinity, -Infinity, and 1e400 as infinity):
    (b'{"signature_name": "window", "inputs": {"values": [[1, NaN, 3]], "offset": 0}}', None, 400,
     "JSON Value: NaN in input 'values' is not a finite number; send finite float values"),
    (b'{"signature_name": "window", "instances": [{"values": [1, 2, 3], "offset": Infinity}]}', None, 400,
     "key: offset of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: Infinity in input 'offset' is not a "
     "finite number"),
    (b'{"signature_name": "window", "instances": [{"values": [1, 2, 3], "offset": 0}, '
     b'{"values": [-Infinity, 2, 3], "offset": 0}]}', None, 400,
     "element: 1 key: values of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: -Infinity in input 'values'"),
    (b'{"signature_name": "window", "inputs": {"values": [[1e400, 2, 3]], "offset": 0}}', None, 400,
     "JSON Value: Infinity in input 'values' is not a finite number"),
    (b'{"signature_name": "checked", "instances": [NaN]}', None, 400,
     "element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: NaN in input 'values' is not a finite"),
    (b'{"signature_name": "types", "inputs": {"flag": [true], "count": [1], "value": [NaN], "small": [1]}}', None,
     400, "JSON Value: NaN in input 'value' is not a finite number; send finite double values"),
    ({"instances": [[1, 2, 3]]}, "window", 400, "instances is a plain list, but expecting list of objects"),
    ({"inputs": [[1, 2, 3]]}, "window", 400, "inputs is a plain value/list, but expecting an object"),
    ({"instances": [{"flag": 1, "count": 1, "value": 1, "small": 1}]}, "types", 400, "not of expected type: bool"),
    ({"instances": [{"flag": True, "count": 1.5, "value": 1, "small": 1}]}, "types", 400,
     "not of expected type: int64"),
    ({"instances": [{"flag": True, "count": 2 ** 63, "value": 1, "small": 1}]}, "types", 400,
     "not of expected type: int64"),
    ({"instances": [{"flag": True, "count": 1, "value": 1, "small": 2 ** 31}]}, "types", 400,
     "not of expected type: int32"),
    ({"instances": ["a"]}, "total_only", 400, "Tensor name: count has no shape information"),
]


@pytest.mark.parametrize("body, signature, status, message", BAD_REQUESTS,
                         ids=[f"{index}-{case[3][:30]}" for index, case in enumerate(BAD_REQUESTS)])
def test_bad_requests_answer_4xx_with_tf_servings_message(toy_client, body, signature, status, message):
    if isinstance(body, dict):
        body = json.dumps(dict(body, **({"signature_name": signature} if signature else {}))).encode()
    answer = toy_client.post(PREDICT, content=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert message in answer.json()["error"]


@pytest.mark.parametrize("method, path, status, message", [
    ("POST", "/v1/models/nope:predict", 404, "Servable not found for request: Latest(nope)"),
    ("POST", "/v1/models/nope/versions/3:predict", 404, "Servable not found for request: Specific(nope, 3)"),
    ("POST", "/v1/models/toy/versions/7:predict", 404, "Servable not found for request: Specific(toy, 7)"),
    ("POST", "/v1/models/toy/labels/stable:predict", 400, "Unrecognized servable version label: stable"),
    ("POST", "/v1/models/toy/versions/99999999999999999999:predict", 400, "Failed to convert version"),
    ("POST", "/v1/models/toy:classify", 400, "use :predict"),
    ("POST", "/v1/models/toy/version/1:predict", 400, "Malformed request: POST /v1/models/toy/version/1:predict"),
    ("GET", "/v1/models/toy:predict", 400, "Malformed request: GET"),
    ("PUT", "/v1/models/toy", 400, "Malformed request: PUT"),
    ("GET", "/v1/models", 400, "Missing model name in request."),
    ("GET", "/v1/models/nope", 404, "Could not find any versions of model nope"),
    ("GET", "/v1/models/toy/versions/5", 404, "Could not find version 5 of model toy"),
    ("GET", "/v1/models/toy/versions/5/metadata", 404, "Servable not found for request: Specific(toy, 5)"),
    ("GET", "/v1/models/nope/metadata", 404, "Servable not found for request: Latest(nope)"),
    ("GET", "/index.html", 404, "Malformed request"),
])
def test_unknown_models_versions_labels_and_paths(toy_client, method, path, status, message):
    answer = toy_client.request(method, path, json={"instances": ["a"]} if method == "POST" else None)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]


def test_a_failing_model_call_answers_500_and_the_server_keeps_serving(toy_client):
    for _ in range(3):
        answer = toy_client.post(PREDICT, json={"signature_name": "fail", "instances": ["x"]})
        assert answer.status_code == 500
        assert "The model call failed: NotFoundError" in answer.json()["error"]
        assert "nonexistent-seq-templates-folder" in answer.json()["error"]
        assert toy_client.post(PREDICT, json={"instances": ["still here"]}).status_code == 200


def test_a_body_over_the_limit_answers_413(toy_base):
    with client_for({"toy": toy_base}, max_body_bytes=1000) as client:
        small = client.post(PREDICT, json={"instances": ["a" * 900]})
        assert small.status_code == 200
        large = client.post(PREDICT, json={"instances": ["a" * 1000]})
        assert large.status_code == 413 and "limit of 1000 bytes" in large.json()["error"]

        def chunks():  # no Content-Length: the limit is checked while reading
            for _ in range(20):
                yield b" " * 100
        streamed = client.post(PREDICT, content=chunks())
        assert streamed.status_code == 413
        assert client.post(PREDICT, json={"instances": ["b"]}).status_code == 200


@pytest.mark.parametrize("body, message", [
    (b'{"instances": ' + b"[" * 70 + b'"a"' + b"]" * 70 + b"}", "nested 69 lists deep; a tensor has at most 32"),
    (b'{"inputs": {"text": ' + b"[" * 40 + b'"a"' + b"]" * 40 + b"}}", "nested 40 lists deep"),
    (b'{"instances": [' + b"7" * 5000 + b"]}", "Number too big to convert"),
])
def test_deep_nesting_and_huge_numbers_answer_400(toy_client, body, message):
    answer = toy_client.post(PREDICT, content=body)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]


def test_head_and_health_answer_200_while_a_model_is_available(toy_client):
    head = toy_client.head("/v1/models/toy")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == "application/json"
    assert toy_client.head("/v1/models/nope").status_code == 404
    health = toy_client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "models": {"toy": ["1"]}}
    assert toy_client.head("/healthz").status_code == 200


def test_health_answers_503_without_an_available_model(tmp_path):
    with client_for({"empty": tmp_path / "no_versions_yet"}) as client:
        answer = client.get("/healthz")
        assert answer.status_code == 503 and "No model version is available" in answer.json()["error"]


def test_requests_over_a_bound_answer_400_naming_the_flag(toy_base):
    from seq_templates.serving import limits

    bounds = limits.Limits(max_input_bytes=100, max_rows=3, max_generate_length=50)
    with client_for({"toy": toy_base}, limits=bounds) as client:
        assert client.post(PREDICT, json={"instances": ["a" * 100]}).status_code == 200
        cases = [({"instances": ["a" * 101]}, "a text of 101 bytes; this server takes at most 100 per text "
                                              "(seq-templates serve --max-input-bytes)"),
                 # Six times the bound, even fully escaped: refused before the body is parsed.
                 ({"instances": ["ok", "a" * 601]}, "a text of over 601 bytes of JSON; this server takes at most 100"),
                 ({"instances": ["\u00e9" * 90]}, "a text of 180 bytes"),  # 540 bytes of JSON: parsed, then refused
                 ({"instances": ["a"] * 4}, "has 4 rows; this server takes at most 3 per request"),
                 ({"signature_name": "sleep", "inputs": {"seconds": [0.0], "max_length": 51}},
                  "asks for 51 steps; this server generates at most 50 (seq-templates serve --max-generate-length)"),
                 ({"signature_name": "sleep", "inputs": {"seconds": [0.0], "max_length": 0}},
                  "max_length=0 is out of range: max_length must be at least 1")]
        for body, message in cases:
            answer = client.post(PREDICT, json=body)
            assert answer.status_code == 400 and message in answer.json()["error"], answer.text
        good = client.post(PREDICT, json={"signature_name": "sleep", "inputs": {"seconds": [0.0], "max_length": 50}})
        assert good.status_code == 200


def test_each_model_keeps_its_own_request_limits_and_a_flag_given_wins(toy_base, tmp_path):
    import warnings

    from seq_templates.serving import app as app_module
    from seq_templates.serving import config_files
    from seq_templates.serving import limits
    from seq_templates.serving import repository

    config = tmp_path / "models.config"
    config.write_text(f"""model_config_list {{
          config {{ name: 'toy' base_path: '{toy_base}' }}
          config {{ name: 'tight' base_path: '{toy_base}'
                   request_limits {{ max_input_bytes: 10 max_generate_length: 5 max_rows: 2 }} }}
        }}""")
    configs = config_files.read_model_config_file(config)
    assert configs[1].request_limits == {"max_input_bytes": 10, "max_generate_length": 5, "max_rows": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette import testclient

    for given, tight_rows in (((), 2), ({"max_rows"}, 3)):  # --max-rows 3 given: it wins over the model's 2
        served = repository.Repository(configs, 0.0)
        served.refresh()
        app = app_module.build_app(served, limits=limits.Limits(max_rows=3), given_limits=given)
        with testclient.TestClient(app, raise_server_exceptions=False) as client:
            assert client.post(PREDICT, json={"instances": ["a" * 50]}).status_code == 200  # toy: the server's
            long = client.post("/v1/models/tight:predict", json={"instances": ["a" * 11]})
            assert long.status_code == 400 and "takes at most 10 per text (request_limits { max_input_bytes } of " \
                "model 'tight' in the model config file)" in long.json()["error"]
            steps = client.post("/v1/models/tight:predict",
                                json={"signature_name": "sleep", "inputs": {"seconds": [0.0], "max_length": 6}})
            assert steps.status_code == 400 and "generates at most 5" in steps.json()["error"]
            rows = client.post("/v1/models/tight:predict", json={"instances": ["a"] * 3})
            assert rows.status_code == (200 if tight_rows == 3 else 400), rows.text
            if given:
                assert client.post("/v1/models/tight:predict", json={"instances": ["a"] * 4}).json()["error"].endswith(
                    "(seq-templates serve --max-rows).")


@pytest.mark.parametrize("bad, message", [
    ("request_limits { max_rows: 0 }", "max_rows takes a whole number above 0, received '0'"),
    ("request_limits { max_rows: 2.5 }", "max_rows takes a whole number above 0"),
    ("request_limits { deadline: 3 }", "field 'deadline' is not supported here; use max_input_bytes"),
])
def test_a_bad_request_limits_block_names_its_line(bad, message, tmp_path):
    from seq_templates import errors
    from seq_templates.serving import config_files

    config = tmp_path / "models.config"
    config.write_text(f"model_config_list {{\n config {{ name: 'a' base_path: '/x'\n {bad} }}\n}}\n")
    with pytest.raises(errors.SeqTemplatesError, match=f"models.config:3: {message}"):
        config_files.read_model_config_file(config)


def test_a_request_past_its_deadline_answers_504_and_the_server_keeps_serving(toy_base):
    from seq_templates.serving import limits

    with client_for({"toy": toy_base}, limits=limits.Limits(request_timeout_seconds=0.3)) as client:
        started = time.monotonic()
        late = client.post(PREDICT, json={"signature_name": "sleep", "inputs": {"seconds": [3.0], "max_length": 1}})
        assert late.status_code == 504 and "not answered within 0.3 s" in late.json()["error"]
        assert time.monotonic() - started < 2.5
        assert client.post(PREDICT, json={"instances": ["next"]}).status_code == 200
