"""Bounds an export records (assets.extra/request_limits.json): derived at export, taken as the model's
defaults, overridden by the model config file's request_limits and by serve flags, named in refusals."""


import pytest

from seq_templates import cli
from seq_templates.serving import config_files
from seq_templates.serving import limits
from tests.serving.conftest import client_for
from tests.serving.conftest import write_extra_assets

PREDICT = "/v1/models/toy:predict"
RECORDED = {"request_limits": {"max_generate_length": 5, "max_input_bytes": 20},
            "reasons": {"max_generate_length": "10 x the default max_length of sleep, 0.5"}}
RECORDED_WHERE = ("recorded by the export of model 'toy' in version 1's assets.extra/request_limits.json: 10 x the "
                  "default max_length of sleep, 0.5; seq-templates serve --max-generate-length or request_limits in "
                  "the model config file overrides it")


def steps(count):
    return {"signature_name": "sleep", "inputs": {"seconds": [0.0], "max_length": count}}


def test_an_exports_recorded_bounds_apply_and_the_400_names_the_export(toy_base):
    write_extra_assets(toy_base / "1", request_limits=RECORDED)
    with client_for({"toy": toy_base}) as client:  # the server's defaults: 2,000 steps, 100,000 bytes
        assert client.post(PREDICT, json=steps(5)).status_code == 200
        refused = client.post(PREDICT, json=steps(6))
        assert refused.status_code == 400
        assert refused.json()["error"] == f"Input 'max_length' asks for 6 steps; this server generates at most 5 " \
                                          f"({RECORDED_WHERE})."
        assert client.post(PREDICT, json={"instances": ["a" * 20]}).status_code == 200
        long = client.post(PREDICT, json={"instances": ["a" * 21]})
        assert long.status_code == 400 and "takes at most 20 per text (recorded by the export of model 'toy' " \
            "in version 1's assets.extra/request_limits.json; seq-templates serve --max-input-bytes" \
            in long.json()["error"]


def test_a_flag_given_or_the_model_config_wins_over_the_exports_bound(toy_base):
    write_extra_assets(toy_base / "1", request_limits=RECORDED)
    flag = limits.Limits(max_generate_length=8)
    with client_for({"toy": toy_base}, limits=flag, given_limits={"max_generate_length"}) as client:
        assert client.post(PREDICT, json=steps(8)).status_code == 200  # over the export's 5: the flag's 8 holds
        refused = client.post(PREDICT, json=steps(9))
        assert refused.status_code == 400
        assert refused.json()["error"].endswith("generates at most 8 (seq-templates serve --max-generate-length).")
        assert client.post(PREDICT, json={"instances": ["a" * 21]}).status_code == 400  # not given: the export's
    with client_for({"toy": toy_base}, limits=flag) as client:  # the same value as a built-in default: it loses
        assert "generates at most 5 (recorded by the export" in client.post(PREDICT, json=steps(6)).json()["error"]
    with client_for({"toy": toy_base}, request_limits={"max_generate_length": 7}) as client:
        assert client.post(PREDICT, json=steps(7)).status_code == 200
        refused = client.post(PREDICT, json=steps(8)).json()["error"]
        assert refused.endswith("generates at most 7 (request_limits { max_generate_length } of model 'toy' in the "
                                "model config file).")
    with client_for({"toy": toy_base}, limits=flag, given_limits={"max_generate_length"},
                    request_limits={"max_generate_length": 7}) as client:
        assert client.post(PREDICT, json=steps(8)).status_code == 200


def test_each_version_answers_with_the_bounds_its_own_export_records(toy_base):
    import shutil

    shutil.copytree(toy_base / "1", toy_base / "2")
    write_extra_assets(toy_base / "1", request_limits=RECORDED)  # version 2 records nothing
    with client_for({"toy": toy_base}, version_policy=config_files.ALL) as client:
        assert client.post(PREDICT, json=steps(6)).status_code == 200  # the newest, 2: the server's 2,000
        refused = client.post("/v1/models/toy/versions/1:predict", json=steps(6))
        assert refused.status_code == 400 and "generates at most 5 (recorded by the export" in refused.json()["error"]


@pytest.mark.parametrize("recorded, message", [
    ({"request_limits": {"max_rows": 0}}, "max_rows takes a whole number above 0, received 0"),
    ({"request_limits": {"max_rows": 2.5}}, "max_rows takes a whole number above 0, received 2.5"),
    ({"request_limits": {"deadline": 3}}, "'deadline' is not a bound; use max_input_bytes"),
    ([1, 2], 'expected {"request_limits": {bound: number}}'),
])
def test_a_bad_recorded_file_fails_the_load_and_serve_says_why_in_one_line(toy_base, capsys, recorded, message):
    write_extra_assets(toy_base / "1", request_limits=recorded)
    status = cli.main(["serve", str(toy_base), "--name", "toy", "--port", "0"])
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the load's logged warning
    assert status == 2 and error.startswith("error: Model 'toy': no version could be loaded"), error
    assert "assets.extra/request_limits.json: " + message in error


def test_an_export_records_what_its_defaults_and_settings_imply():
    assert limits.export_defaults({}) is None  # nothing to derive: no file
    generation = {"serving.json": {"defaults": {"generate": {"max_length": 40, "seed": 0}, "other": {"top_k": 3}}}}
    assert limits.export_defaults(generation) == {
        "request_limits": {"max_generate_length": 400},
        "reasons": {"max_generate_length": "10 x the default max_length of generate, 40"}}
    truncating = limits.export_defaults({"serving.json": {"notes": [], "reads_tokens": 50}})
    assert truncating["request_limits"] == {"max_input_bytes": 3200}
    assert "reads the first 50 tokens of each text (serving.json's reads_tokens)" in truncating["reasons"][
        "max_input_bytes"]
    assert limits.export_defaults({"serving.json": {"reads_tokens": 10 ** 6}})["request_limits"] == {
        "max_input_bytes": limits.Limits().max_input_bytes}  # never above the server's default
