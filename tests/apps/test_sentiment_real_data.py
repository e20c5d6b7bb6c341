"""Slow: the sentiment template on real SST-2 through the CLI (run with `pytest -m slow`)."""

import json

import pytest

from tests.conftest import REPOSITORY
from tests.conftest import run_cli


@pytest.mark.slow
def test_sst2_one_epoch_beats_chance_by_far(shared_data, tmp_path):
    if not (shared_data / "sst2").is_dir():
        pytest.skip("sst2 is not in SEQ_TEMPLATES_DATA")
    run = tmp_path / "sst2"
    completed = run_cli("train", "sentiment", "--dataset", "sst2",  # the auto settings (no preset)
                        "--set", "train.epochs=1", "--set", "train.tensorboard=false",
                        "--output-dir", run, cwd=REPOSITORY)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "model.num_layers 2" in completed.stdout  # the classifier stack of 300 k+ training tokens
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_examples"] == 872
    assert metrics["model"]["accuracy"] > 0.78
    predicted = run_cli("predict", run, "a gripping , beautiful film", "a dull , lifeless mess")
    labels = [json.loads(line)["label"] for line in predicted.stdout.strip().splitlines()]
    assert labels == ["positive", "negative"]
