"""The dataset registry: recipes, resolution order, checksums and offline failures."""

import os
import time

import pytest

from seq_templates import errors
from seq_templates.data import readers
from seq_templates.data import registry

SHARED_FOLDERS = ("sst2", "conll2003", "tiny_shakespeare", "spa_eng", "airline_passengers",
                  "daily_min_temperatures", "monthly_sunspots", "beijing_pm25")


def test_every_shared_folder_has_a_recipe_and_imdb_has_download_and_tfds():
    names = {recipe["name"] for recipe in registry.list_recipes()}
    assert set(SHARED_FOLDERS) | {"imdb", "synthetic_sentiment"} <= names
    imdb = registry.get_recipe("imdb")
    assert imdb["download"]["url"].endswith("aclImdb_v1.tar.gz") and len(imdb["download"]["sha256"]) == 64
    assert imdb["tfds"]["name"] == "imdb_reviews"


def test_unknown_name_lists_known_ones():
    with pytest.raises(errors.SeqTemplatesError, match="Unknown dataset 'nope'.*sst2"):
        registry.get_recipe("nope")


def test_shared_datasets_resolve_from_the_data_folder(shared_data):
    for name in SHARED_FOLDERS:
        if not (shared_data / name).is_dir():
            continue
        resolved = registry.resolve(name)
        assert resolved.source == "data_dir"
        assert all(path.is_file() for paths in resolved.splits.values() for path in paths)
    if (shared_data / "sst2").is_dir():
        resolved = registry.resolve("sst2")
        recipe = resolved.recipe
        texts, labels = readers.read_text_classification(resolved.splits["test"][0], file_format="tsv",
                                                         **recipe["reader"])
        assert len(texts) == 872 and set(labels) == {"0", "1"} and not texts[0].endswith(" ")


def test_generated_dataset_is_deterministic_and_cached(isolated_cache):
    first = registry.resolve("synthetic_sentiment")
    assert first.source == "generated" and first.root.parent == isolated_cache
    content = first.splits["train"][0].read_text()
    first.splits["train"][0].unlink()
    again = registry.resolve("synthetic_sentiment")
    assert again.splits["train"][0].read_text() == content


def test_checksum_mismatch_is_reported(tmp_path, monkeypatch):
    folder = tmp_path / "sst2"
    folder.mkdir()
    (folder / "train.tsv").write_text("sentence\tlabel\nfine \t1\n")
    (folder / "dev.tsv").write_text("sentence\tlabel\nfine \t1\n")
    monkeypatch.setenv("SEQ_TEMPLATES_DATA", str(tmp_path))
    with pytest.raises(errors.SeqTemplatesError, match="sha256 does not match"):
        registry.resolve("sst2")


def test_imdb_fails_fast_and_clearly_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQ_TEMPLATES_DATA", str(tmp_path / "nothing"))
    monkeypatch.setenv("SEQ_TEMPLATES_CACHE", str(tmp_path / "cache"))
    # A closed local port stands in for "no network", whatever this machine can reach.
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    started = time.monotonic()
    with pytest.raises(errors.SeqTemplatesError) as raised:
        registry.resolve("imdb")
    message = str(raised.value)
    assert "Dataset 'imdb' is not available" in message
    assert "aclImdb_v1.tar.gz failed" in message and "--data PATH" in message
    assert time.monotonic() - started < 60
    leftovers = [path for path in (tmp_path / "cache").rglob("*") if path.is_file()]
    assert leftovers == []
