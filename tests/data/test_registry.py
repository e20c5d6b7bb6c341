"""The dataset registry: recipes, resolution order, checksums and offline failures."""

import inspect
import math
import time

import pandas
import pytest

from seq_templates import errors
from seq_templates.data import readers
from seq_templates.data import download
from seq_templates.data import registry
from seq_templates.data import splits
from seq_templates.preprocessing import windows

SHARED_FOLDERS = ("sst2", "conll2003", "tiny_shakespeare", "spa_eng", "airline_passengers",
                  "daily_min_temperatures", "monthly_sunspots", "beijing_pm25", "nietzsche",
                  "monthly_champagne_sales", "monthly_mean_temp", "daily_max_temperatures", "ara_eng",
                  "mit_restaurant", "wikigold", "monthly_writing_paper_sales")


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


# region recipes
def test_every_recipe_has_a_split_strategy_and_reader_options_its_reader_accepts():
    for recipe in registry.list_recipes():
        assert recipe.get("split_strategy") in splits.STRATEGIES, recipe["name"]
        reader = registry.reader_for_format(recipe["format"])
        parameters = inspect.signature(reader).parameters
        for key in recipe.get("reader") or {}:
            assert key in parameters and key not in ("path", "setting_prefix"), (recipe["name"], key)
        registry.reader_options(recipe)  # raises on a key the reader does not take
    forecasting = [recipe for recipe in registry.list_recipes() if recipe["task"] == "forecasting"]
    assert len(forecasting) >= 4 and all(recipe["split_strategy"] == "chronological" for recipe in forecasting)
    assert registry.get_recipe("spa_eng")["split_strategy"] == "shuffle"
    assert "shuffle_before_split" not in registry.get_recipe("spa_eng")["reader"]


def test_tiny_shakespeare_recipe():
    recipe = registry.get_recipe("tiny_shakespeare")
    assert (recipe["task"], recipe["format"], recipe["split_strategy"]) == ("text_generation", "text", "position")
    assert recipe["splits"] == {"all": "input.txt"}
    assert recipe["sha256"]["input.txt"] == "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
    assert recipe["download"]["url"] == (
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt")
    assert recipe["download"]["archive"] is False and recipe["tfds"] == {"name": "tiny_shakespeare"}


def _private_registry(tmp_path, monkeypatch, name, recipe_text, files):
    """A recipe folder and a data folder of our own, so a test can write broken recipes and files."""
    recipes = tmp_path / "datasets"
    recipes.mkdir(exist_ok=True)
    (recipes / f"{name}.yaml").write_text(f"name: {name}\n{recipe_text}", encoding="utf-8")
    data = tmp_path / "data" / name
    data.mkdir(parents=True, exist_ok=True)
    for file_name, content in files.items():
        (data / file_name).write_bytes(content.encode("utf-8"))
    monkeypatch.setattr(registry, "recipe_directory", lambda: recipes)
    monkeypatch.setenv("SEQ_TEMPLATES_DATA", str(tmp_path / "data"))


def test_read_concatenates_the_files_of_a_split(tmp_path, monkeypatch):
    _private_registry(tmp_path, monkeypatch, "pairs", (
        "task: translation\nformat: parallel_tsv\nsplit_strategy: shuffle\nreader: {}\n"
        "splits:\n  all: [a.txt, b.txt]\n  test: c.txt\n"),
        {"a.txt": "Go.\tVe.\n", "b.txt": "Run!\t¡Corre!\nHi.\tHola.", "c.txt": "Yes.\tSí.\n"})
    data, recipe = registry.read("pairs")
    assert data == {"all": (["Go.", "Run!", "Hi."], ["Ve.", "¡Corre!", "Hola."]), "test": (["Yes."], ["Sí."])}
    assert recipe["name"] == "pairs"
    _private_registry(tmp_path, monkeypatch, "book", (
        "task: text_generation\nformat: text\nsplit_strategy: position\nsplits:\n  all: [a.txt, b.txt]\n"),
        {"a.txt": "no final newline", "b.txt": "second\r\n"})
    assert registry.read("book")[0] == {"all": "no final newline\nsecond\n"}


def test_a_packed_archive_in_the_data_folder_is_unpacked_into_the_cache(tmp_path, monkeypatch):
    import zipfile

    recipe = ("task: translation\nformat: parallel_tsv\nsplit_strategy: shuffle\nreader: {}\n"
              "splits:\n  all: pairs.txt\npacked:\n  file: pairs.zip\n  folder: inner\n")
    _private_registry(tmp_path, monkeypatch, "zipped", recipe, {})
    monkeypatch.setenv("SEQ_TEMPLATES_CACHE", str(tmp_path / "cache"))
    archive = tmp_path / "data" / "zipped" / "pairs.zip"
    with zipfile.ZipFile(archive, "w") as writer:
        writer.writestr("inner/pairs.txt", "Go.\tVa !\nHi.\tSalut.\n")
        writer.writestr("inner/_about.txt", "about")
    assert registry.availability(registry.get_recipe("zipped")) == "local (SEQ_TEMPLATES_DATA, packed)"
    assert registry.read("zipped")[0] == {"all": (["Go.", "Hi."], ["Va !", "Salut."])}
    assert (tmp_path / "cache" / "zipped" / "pairs.txt").is_file() and archive.is_file()  # the zip stays

    _private_registry(tmp_path, monkeypatch, "wrong", recipe.replace("folder: inner", "folder: other"), {})
    (tmp_path / "data" / "wrong" / "pairs.zip").write_bytes(archive.read_bytes())
    with pytest.raises(errors.SeqTemplatesError, match=r"pairs\.zip: holds no other/pairs\.txt.*datasets/wrong\.yaml"):
        registry.resolve("wrong")
    _private_registry(tmp_path, monkeypatch, "tampered", recipe + f"  sha256: '{'0' * 64}'\n", {})
    (tmp_path / "data" / "tampered" / "pairs.zip").write_bytes(archive.read_bytes())
    with pytest.raises(errors.SeqTemplatesError, match=r"pairs\.zip: sha256 does not match"):
        registry.resolve("tampered")


def test_read_time_series_files_must_follow_each_other(tmp_path, monkeypatch):
    recipe = ("task: forecasting\nformat: timeseries_csv\nsplit_strategy: chronological\n"
              "reader: {time_column: Month}\nsplits:\n  all: [a.csv, b.csv]\n")
    _private_registry(tmp_path, monkeypatch, "series", recipe,
                      {"a.csv": "Month,v\n2000-01,1\n2000-02,2\n", "b.csv": "Month,v\n2000-03,3\n"})
    frame = registry.read("series")[0]["all"]
    assert frame["v"].tolist() == [1.0, 2.0, 3.0] and frame.index.is_monotonic_increasing
    (tmp_path / "data" / "series" / "b.csv").write_text("Month,v\n2000-02,3\n")
    with pytest.raises(errors.SeqTemplatesError, match=r"b.csv: its first time .* does not come after.*a.csv"):
        registry.read("series")


def test_read_errors_name_the_recipe_setting_and_file(tmp_path, monkeypatch):
    _private_registry(tmp_path, monkeypatch, "tags", (
        "task: ner\nformat: conll\nsplit_strategy: shuffle\nreader: {tag_column: 3}\nsplits:\n  train: a.txt\n"),
        {"a.txt": "EU B-ORG\n"})
    with pytest.raises(errors.SeqTemplatesError) as raised:
        registry.read("tags")
    message = str(raised.value)
    assert "a.txt:1: reader.tag_column is 3" in message and "check datasets/tags.yaml" in message
    assert "data." not in message
    _private_registry(tmp_path, monkeypatch, "tags", (
        "task: ner\nformat: conll\nsplit_strategy: shuffle\nreader: {tag_colum: 1}\nsplits:\n  train: a.txt\n"),
        {"a.txt": "EU B-ORG\n"})
    with pytest.raises(errors.SeqTemplatesError,
                       match=r"datasets/tags.yaml: reader option 'tag_colum' is not a setting of read_conll"):
        registry.read("tags")
    _private_registry(tmp_path, monkeypatch, "tags", (
        "task: ner\nformat: xml\nsplits:\n  train: a.txt\n"), {"a.txt": "EU B-ORG\n"})
    with pytest.raises(errors.SeqTemplatesError, match=r"datasets/tags.yaml: Recipe format 'xml' is not one of"):
        registry.read("tags")
# endregion


# region real data
def _shared_folder(shared_data, name):
    if not (shared_data / name).is_dir():
        pytest.skip(f"{shared_data / name} is missing")
    return shared_data / name


def test_conll2003_sentences(shared_data):
    _shared_folder(shared_data, "conll2003")
    data, recipe = registry.read("conll2003")
    assert {name: len(tokens) for name, (tokens, tags) in data.items()} == {
        "train": 14041, "validation": 3250, "test": 3453}
    tokens, tags = data["train"]
    assert sum(map(len, tokens)) == 203621 and [len(sentence) for sentence in tokens] == list(map(len, tags))
    assert tokens[0][:2] == ["EU", "rejects"] and tags[0][:2] == ["B-ORG", "O"]
    assert {tag for sentence in tags for tag in sentence} == {
        "O", *(f"{prefix}-{kind}" for prefix in "BI" for kind in ("PER", "ORG", "LOC", "MISC"))}
    assert not any(sentence[0] == "-DOCSTART-" for sentence in tokens)


def test_spa_eng_pairs(shared_data):
    _shared_folder(shared_data, "spa_eng")
    data, recipe = registry.read("spa_eng")
    sources, targets = data["all"]
    assert len(sources) == len(targets) == 118964 and len(recipe["splits"]["all"]) == 3
    assert (sources[0], targets[0]) == ("Go.", "Ve.") and sources[39655] == "He looked left and right."
    assert all(sources) and all(targets)
    carved = splits.carve(data, {"test": 0.1, "validation": 0.1}, splits.strategy_for_recipe(recipe), seed=1)
    assert sum(len(part[0]) for part in carved.values()) == 118964
    assert max(map(len, carved["test"][0])) > 100  # shuffled: the long sentences of part 3 reach test


def test_ara_eng_pairs_leave_the_attribution_column_out(shared_data):
    _shared_folder(shared_data, "ara_eng")
    sources, targets = registry.read("ara_eng")[0]["all"]
    assert len(sources) == len(targets) == 12176 and (sources[0], targets[0]) == ("Hi.", "مرحبًا.")
    assert not any("tatoeba.org" in text for text in sources + targets)


def test_fra_eng_pairs_come_from_the_zip_as_released(shared_data):
    _shared_folder(shared_data, "fra_eng")
    assert registry.resolve("fra_eng").source == "data_dir"
    sources, targets = registry.read("fra_eng")[0]["all"]
    assert len(sources) == len(targets) == 142787 and (sources[0], targets[0]) == ("Go.", "Va !")


def test_aclimdb_reviews_come_from_the_tarball_with_val_as_test(shared_data):
    _shared_folder(shared_data, "aclimdb")
    data, recipe = registry.read("aclimdb")
    (train_texts, train_labels), (test_texts, test_labels) = data["train"], data["test"]
    assert len(train_texts) == 20000 and len(test_texts) == 5000
    assert sorted(set(train_labels)) == ["neg", "pos"] and test_labels.count("pos") == 2500  # the app names them
    assert max(len(text.split()) for text in test_texts) > 1000  # whole reviews, not sentences


def test_mit_restaurant_reads_tag_before_token(shared_data):
    _shared_folder(shared_data, "mit_restaurant")
    data = registry.read("mit_restaurant")[0]
    assert {name: len(tokens) for name, (tokens, _) in data.items()} == {"train": 7660, "validation": 815,
                                                                      "test": 706}
    assert data["train"][0][0][:3] == ["2", "start", "restaurants"] and data["train"][1][0][:3] == [
        "B-Rating", "I-Rating", "O"]


def test_wikigold_reads_space_separated_io_tags_without_docstart(shared_data):
    _shared_folder(shared_data, "wikigold")
    tokens, tags = registry.read("wikigold")[0]["all"]
    assert len(tokens) == 1696 and sum(map(len, tokens)) == 39007 and (tokens[0][0], tags[0][0]) == ("010", "I-MISC")
    assert not any(tag.startswith("B-") for sentence in tags for tag in sentence)
    assert registry.get_recipe("wikigold")["tag_scheme"] == "iob1"  # the NER app reads IO tags as IOB1


def test_tiny_shakespeare_text(shared_data):
    _shared_folder(shared_data, "tiny_shakespeare")
    data, recipe = registry.read("tiny_shakespeare")
    text = data["all"]
    assert len(text) == 1115394 and len(set(text)) == 65 and text.startswith("First Citizen:\n")
    carved = splits.carve(data, {"validation": 0.1}, recipe["split_strategy"], seed=1)
    assert carved["train"] + carved["validation"] == text and carved["validation"].endswith("art waking.\n")


def test_univariate_series(shared_data):
    expected = {"airline_passengers": (144, "1949-01-01", "1960-12-01"),
                "daily_min_temperatures": (3650, "1981-01-01", "1990-12-31"),
                "monthly_sunspots": (2820, "1749-01-01", "1983-12-01"),
                "monthly_champagne_sales": (105, "1964-01-01", "1972-09-01"),
                "monthly_mean_temp": (240, "1920-01-01", "1939-12-01"),
                "daily_max_temperatures": (3650, "1981-01-01", "1990-12-31")}
    read_any = False
    for name, (rows, first, last) in expected.items():
        if not (shared_data / name).is_dir():
            continue
        read_any = True
        frame = registry.read(name)[0]["all"]
        assert len(frame) == rows and frame.index.name == "time", name
        assert str(frame.index[0].date()) == first and str(frame.index[-1].date()) == last
        assert frame.shape[1] == 1 and frame.iloc[:, 0].dtype == "float64" and not frame.isna().any().any()
    if not read_any:
        pytest.skip("no univariate series in the shared folder")


def test_monthly_writing_paper_sales_counted_years_read_as_147_months_in_file_order(shared_data):
    folder = _shared_folder(shared_data, "monthly_writing_paper_sales")
    recipe = registry.get_recipe("monthly_writing_paper_sales")
    file = folder / "monthly-writing-paper-sales.csv"
    assert download.sha256_of(file) == recipe["sha256"][file.name] == recipe["download"]["sha256"]
    assert registry.resolve("monthly_writing_paper_sales").source == "data_dir"  # checksum verified
    frame = registry.read("monthly_writing_paper_sales")[0]["all"]
    last_row = file.read_bytes().decode("ascii").split("\r\n")[-1]  # no final newline
    assert last_row.startswith('"13-03",')
    assert len(frame) == 147 and list(frame.columns) == ["Sales"] and not frame.isna().any().any()
    assert frame["Sales"].iloc[0] == 1359.795 and frame["Sales"].iloc[-1] == float(last_row.split(",")[1])
    assert frame.loc["1909-05-01", "Sales"] == 1876.0  # "9-05",1876: the one value without decimals
    assert (str(frame.index[0].date()), str(frame.index[-1].date())) == ("1901-01-01", "1913-03-01")
    assert windows.infer_frequency(frame.index) == "MS" and windows.season_length_for("MS") == 12
    assert frame.index.equals(pandas.date_range("1901-01-01", periods=147, freq="MS", name="time"))


def test_daily_temperatures_gaps_are_reported_not_filled(shared_data):
    _shared_folder(shared_data, "daily_min_temperatures")
    frame = registry.read("daily_min_temperatures")[0]["all"]
    steps = frame.index.to_series().diff().dt.days
    assert sorted(str(time.date()) for time in frame.index[(steps == 2).to_numpy()]) == ["1985-01-01", "1989-01-01"]


def test_nietzsche_text_loses_its_byte_order_mark_and_crlf(shared_data):
    _shared_folder(shared_data, "nietzsche")
    text = registry.read("nietzsche")[0]["all"]
    assert len(text) == 600901 and text.startswith("PREFACE\n\n\nSUPPOSING that Truth is a woman")
    assert "\r" not in text and "\ufeff" not in text and text.endswith("the indications of sinfulness.")


def test_beijing_pm25(shared_data):
    _shared_folder(shared_data, "beijing_pm25")
    frame = registry.read("beijing_pm25")[0]["all"]
    assert len(frame) == 43824 and frame.index.name == "time"
    assert str(frame.index[0]) == "2010-01-01 00:00:00" and str(frame.index[-1]) == "2014-12-31 23:00:00"
    assert (frame.index[1:] - frame.index[:-1]).unique().tolist() == [pandas.Timedelta(hours=1)]
    assert int(frame["pm2.5"].isna().sum()) == 2067 and frame["pm2.5"].iloc[:24].isna().all()
    assert frame["TEMP"].dtype == "float64" and not frame.drop(columns=["pm2.5"]).isna().any().any()
    assert frame["cbwd"].value_counts().to_dict() == {"SE": 15290, "NW": 14150, "cv": 9387, "NE": 4997}
    assert all(isinstance(value, str) for value in frame["cbwd"].iloc[:100])
    carved = splits.carve({"all": frame}, {"test": 0.1, "validation": 0.1}, "chronological", seed=0)
    assert carved["train"].index[-1] < carved["validation"].index[0] < carved["test"].index[0]
    assert sum(len(part) for part in carved.values()) == 43824 and not math.isnan(carved["test"]["TEMP"].sum())


def test_sst2_through_read(shared_data):
    _shared_folder(shared_data, "sst2")
    data, recipe = registry.read("sst2")
    assert {name: len(texts) for name, (texts, labels) in data.items()} == {"train": 67349, "test": 872}
# endregion
