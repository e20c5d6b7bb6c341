"""Versions: new folders served without a restart, a failed load reported while the previous one serves;
policies and labels."""

import shutil
import time

from seq_templates.serving import config_files
from tests.serving.conftest import client_for
from tests.serving.conftest import save_toy

WINDOW = {"signature_name": "window", "instances": [{"values": [1, 2, 3], "offset": 0}]}


def add_version(base, version, tmp_path, scale=None, broken=False):
    """Writes a version next to ``base`` and renames it in, as `seq-templates export` does."""
    staging = tmp_path / f"staging-{version}-{time.monotonic_ns()}"
    if broken:
        staging.mkdir()
        (staging / "saved_model.pb").write_bytes(b"this is not a SavedModel")
    else:
        save_toy(staging, scale=scale)
    staging.rename(base / str(version))


def wait_for(client, predicate, path="/v1/models/toy", timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = client.get(path).json()
        if predicate(answer):
            return answer
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting; last answer {answer}")


def states(status):
    return {item["version"]: (item["state"], item["status"]["error_code"]) for item in status["model_version_status"]}


def test_new_versions_are_served_and_a_failed_one_leaves_the_previous_serving(toy_base, tmp_path):
    with client_for({"toy": toy_base}, poll_interval_seconds=0.1) as client:
        assert client.post("/v1/models/toy:predict", json=WINDOW).json() == {"predictions": [6.0]}

        add_version(toy_base, 2, tmp_path, scale=2.0)
        status = wait_for(client, lambda answer: states(answer).get("2") == ("AVAILABLE", "OK")
                          and states(answer).get("1", ("",))[0] == "END")
        assert [item["version"] for item in status["model_version_status"]] == ["2", "1"]  # newest first
        assert client.post("/v1/models/toy:predict", json=WINDOW).json() == {"predictions": [12.0]}
        assert client.get("/v1/models/toy/metadata").json()["model_spec"]["version"] == "2"
        assert client.post("/v1/models/toy/versions/1:predict", json=WINDOW).status_code == 404  # unloaded

        add_version(toy_base, 3, tmp_path, broken=True)
        status = wait_for(client, lambda answer: states(answer).get("3") == ("END", "UNKNOWN"))
        failed = next(item for item in status["model_version_status"] if item["version"] == "3")
        assert "Failed to load version 3 of model toy" in failed["status"]["error_message"]
        assert states(status)["2"] == ("AVAILABLE", "OK")
        assert client.post("/v1/models/toy:predict", json=WINDOW).json() == {"predictions": [12.0]}
        assert client.get("/v1/models/toy/metadata").json()["model_spec"]["version"] == "2"

        shutil.rmtree(toy_base / "3")  # fixed: a version whose files change is tried again
        add_version(toy_base, 3, tmp_path, scale=3.0)
        wait_for(client, lambda answer: states(answer).get("3") == ("AVAILABLE", "OK"))
        assert client.post("/v1/models/toy:predict", json=WINDOW).json() == {"predictions": [18.0]}


def test_model_config_file_with_all_versions_and_labels(toy_base, tmp_path):
    add_version(toy_base, 2, tmp_path, scale=2.0)
    config = tmp_path / "models.config"
    config.write_text(f"""
        model_config_list {{
          config {{
            name: 'toy'
            base_path: '{toy_base}'
            model_platform: "tensorflow"
            model_version_policy {{ all {{}} }}
            version_labels {{ key: 'stable' value: 1 }}
            version_labels {{ key: 'canary' value: 2 }}
          }}
        }}""")
    (configured,) = config_files.read_model_config_file(config)
    assert configured.version_policy == "all" and configured.version_labels == {"stable": 1, "canary": 2}
    with client_for({"toy": toy_base}, version_policy="all", version_labels={"stable": 1, "canary": 2}) as client:
        assert states(client.get("/v1/models/toy").json()) == {"1": ("AVAILABLE", "OK"), "2": ("AVAILABLE", "OK")}
        predict = "/v1/models/toy{}:predict"
        assert client.post(predict.format(""), json=WINDOW).json() == {"predictions": [12.0]}  # newest by default
        assert client.post(predict.format("/versions/1"), json=WINDOW).json() == {"predictions": [6.0]}
        assert client.post(predict.format("/labels/stable"), json=WINDOW).json() == {"predictions": [6.0]}
        assert client.post(predict.format("/labels/canary"), json=WINDOW).json() == {"predictions": [12.0]}
        assert client.get("/v1/models/toy/labels/stable").json()["model_version_status"][0]["version"] == "1"
        assert client.get("/v1/models/toy/labels/stable/metadata").json()["model_spec"]["version"] == "1"


def test_specific_and_latest_n_policies(toy_base, tmp_path):
    for version in (2, 3):
        add_version(toy_base, version, tmp_path, scale=float(version))
    with client_for({"toy": toy_base}, version_policy="specific", versions=(2,)) as client:
        assert states(client.get("/v1/models/toy").json()) == {"2": ("AVAILABLE", "OK")}
    with client_for({"toy": toy_base}, version_policy="latest", num_versions=2) as client:
        assert states(client.get("/v1/models/toy").json()) == {"3": ("AVAILABLE", "OK"), "2": ("AVAILABLE", "OK")}
