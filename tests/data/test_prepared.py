"""``seq-templates prepare``: data larger than memory as sharded TFRecords that ``train`` streams.

Through the CLI (prepare, then train on the prepared folder, then the export), the prepared
folder's files and ``prepared.json``, and the streaming readers beside the in-memory ones.
"""

import json
import random
import tempfile

import pytest
import tensorflow as tf

from seq_templates.data import prepared
from seq_templates.data import readers
from seq_templates.preprocessing import bucketing

POSITIVE = "good great wonderful fine superb lovely".split()
NEGATIVE = "bad awful terrible poor boring dull".split()
FILLER = "the movie was a film plot acting and it really".split()


def write_reviews(path, rows, seed=0, sorted_by_label=True, rare_label_rows=3):
    """A CSV of generated (text, label) rows, sorted by label (the hard case for a streamed shuffle)."""
    generator = random.Random(seed)
    examples = []
    for index in range(rows):
        label = "pos" if index % 2 else "neg"
        words = [generator.choice(FILLER) for _ in range(generator.randint(3, 10))]
        words.insert(generator.randint(0, len(words)), generator.choice(POSITIVE if label == "pos" else NEGATIVE))
        examples.append((" ".join(words) + f" n{index}", label))
    examples += [(f"a neutral remark number {index}", "neutral") for index in range(rare_label_rows)]
    if sorted_by_label:
        examples.sort(key=lambda example: example[1])
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("\ufefftext,label\r\n")  # a byte-order mark and CRLF line ends, as files come
        for text, label in examples:
            handle.write(f'"{text}",{label}\r\n')
    return examples


def train_from_prepared(cli_in_process, task, folder, run, manifest, *settings):
    """``train TASK --data FOLDER --set ...``; checks it streamed every training row; returns its metrics."""
    result = cli_in_process("train", task, "--data", folder, "--output-dir", run,
                            *(argument for setting in settings for argument in ("--set", setting)))
    assert result.returncode == 0, result.stderr
    assert f"{manifest['splits']['train']['rows']:,} training rows" in result.stdout
    return json.loads((run / "metrics.json").read_text())


def test_prepare_then_train_streams_every_row_and_exports(tmp_path, cli_in_process):
    source = tmp_path / "reviews.csv"
    examples = write_reviews(source, 3000)
    output = tmp_path / "prepared"
    result = cli_in_process("prepare", "sentiment", "--data", source, "--output", output, "--shard-mb", "0.03",
                            "--sample-rows", "500")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((output / "prepared.json").read_text())
    counts = {name: split["rows"] for name, split in manifest["splits"].items()}
    assert sum(counts.values()) == len(examples)
    assert len(manifest["splits"]["train"]["shards"]) >= 4  # 3,000 rows of ~50 bytes at 0.03 MB a shard
    # every row is in exactly one split; the sample is of training rows and holds the rare label
    split_texts = {name: set(prepared.read_columns([str(output / shard) for shard in split["shards"]],
                                                    manifest["columns"])[0])
                   for name, split in manifest["splits"].items()}
    assert set.union(*split_texts.values()) == {text for text, _ in examples}
    assert sum(map(len, split_texts.values())) == len(examples)
    sample_texts, sample_labels = prepared.read_columns([str(output / "sample-train.tfrecord")],
                                                         manifest["columns"])
    assert set(sample_texts) <= split_texts["train"]
    assert "neutral" in sample_labels or not any(text.startswith("a neutral") for text in split_texts["train"])

    # the shards are mixed: each holds both labels although the file is sorted by label
    for shard in manifest["splits"]["train"]["shards"]:
        _, shard_labels = prepared.read_columns([str(output / shard)], manifest["columns"])
        assert {"pos", "neg"} <= set(shard_labels)

    run = tmp_path / "run"
    result = cli_in_process("train", "sentiment", "--data", output, "--output-dir", run,
                            "--set", "train.epochs=2", "--set", "train.auto_settings=false",
                            "--set", "train.learning_rate=0.01", "--set", "model.units=8",
                            "--set", "model.embedding_dim=8", "--set", "train.batch_size=64")
    assert result.returncode == 0, result.stderr
    assert f"{counts['train']:,} training rows" in result.stdout
    history = json.loads((run / "history.json").read_text())
    assert len(history["accuracy"]) == 2
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["model"]["accuracy"] > 0.9  # the label word decides; the stream trained on it
    assert metrics["num_examples"] == counts["test"]
    answer = cli_in_process("predict", run, "a wonderful superb film")
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout.splitlines()[0])["label"] == "pos"


def test_streamed_split_yields_every_training_row_each_epoch(tmp_path):
    source = tmp_path / "reviews.csv"
    write_reviews(source, 700, rare_label_rows=0)
    output = tmp_path / "prepared"
    size, lines = prepared.measure(str(source))
    prepared.prepare(str(output), ("text", "label"), {"train": readers.stream_text_classification(str(source))},
                     estimated_rows=lines, fractions={"test": 0.1, "validation": 0.1}, source_bytes=size,
                     shard_megabytes=0.01, sample_rows=50, task="sentiment")
    splits = prepared.load(str(output), "sentiment")
    train = splits["train"]
    assert isinstance(train, prepared.PreparedSplit) and len(train[0]) == 50 and train.rows > 500
    assert prepared.rows(train) == train.rows and prepared.rows(splits["test"]) == len(splits["test"][0])
    dataset = bucketing.sequence_dataset(
        prepared.examples(train), lambda batch: ({"chars": tf.strings.unicode_decode(batch[0], "UTF-8")}, batch[1]),
        batch_size=32, boundaries=[], shuffle=True, seed=1)
    for _ in range(2):  # each epoch reads all the shards, in a new order
        labels = [label for _, batch_labels in dataset for label in batch_labels.numpy()]
        assert len(labels) == train.rows


def test_held_out_splits_are_capped_and_keep_repeats_together(tmp_path):
    rows = [(f"text {index % 400}", "pos" if index % 2 else "neg") for index in range(4000)]  # each text 10 times
    output = tmp_path / "prepared"
    manifest = prepared.prepare(str(output), ("text", "label"), {"train": iter(rows)}, estimated_rows=len(rows),
                                fractions={"test": 0.2, "validation": 0.2}, max_heldout_rows=200, sample_rows=10)
    texts = {name: set(prepared.read_columns([str(output / shard) for shard in split["shards"]], ["text", "label"])[0])
             for name, split in manifest["splits"].items()}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["validation"]
    assert 100 <= manifest["splits"]["test"]["rows"] <= 400  # about 200: 200 / 4,000 of the rows, whole repeats


def test_prepare_writes_through_tf_io_gfile_paths():
    output = "ram://seq_templates_prepared_test"
    rows = [(f"row {index}", str(index % 3)) for index in range(300)]
    prepared.prepare(output, ("text", "label"), {"train": iter(rows)}, estimated_rows=300,
                     fractions={"test": 0.1, "validation": 0.1}, task="sentiment")
    assert prepared.is_prepared(output)
    splits = prepared.load(output, "sentiment")
    assert splits["train"].rows + len(splits["validation"][0]) + len(splits["test"][0]) == 300
    tf.io.gfile.rmtree(output)


@pytest.mark.parametrize("content, expected", [
    ("text,label\nfine,pos\n\"broken,pos\n", "reviews.csv:3: malformed row"),
    ("text,label\nfine,pos\nno label here,\n", "reviews.csv:3:2: empty label"),
    (b"text,label\nfine,pos\nb\xffd,neg\n", "reviews.csv:3:2: byte 0xff is not valid utf-8"),
])
def test_bad_rows_stop_prepare_with_one_line_and_nothing_written(tmp_path, cli_in_process, content, expected):
    source = tmp_path / "reviews.csv"
    (source.write_bytes if isinstance(content, bytes) else source.write_text)(content)
    output = tmp_path / "prepared"
    result = cli_in_process("prepare", "sentiment", "--data", source, "--output", output)
    assert result.returncode == 2
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not output.exists()


def test_prepare_refuses_a_used_folder_and_other_templates(tmp_path, cli_in_process):
    source = tmp_path / "reviews.csv"
    write_reviews(source, 200)
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    result = cli_in_process("prepare", "sentiment", "--data", source, "--output", used)
    assert result.returncode == 2 and "already holds files" in result.stderr
    assert (used / "keep.txt").read_text() == "mine"
    result = cli_in_process("prepare", "sentiment", "--data", source, "--output", used / "keep.txt")
    assert result.returncode == 2 and "is a file" in result.stderr
    assert (used / "keep.txt").read_text() == "mine"
    result = cli_in_process("prepare", "sentiment", "--data", source, "--output", "/proc/no_folder_here")
    assert result.returncode == 2 and "Cannot create" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = cli_in_process("prepare", "forecasting", "--data", source, "--output", tmp_path / "series")
    assert result.returncode == 2 and "set data.time_column" in result.stderr  # a series needs its times
    assert not (tmp_path / "series").exists() and len(result.stderr.strip().splitlines()) == 1
    result = cli_in_process("prepare", "ner", "--data", source, "--output", tmp_path / "ner")
    assert result.returncode == 2 and "reviews.csv:2: expected 1 columns" in result.stderr
    assert not (tmp_path / "ner").exists()

    output = tmp_path / "prepared"
    assert cli_in_process("prepare", "sentiment", "--data", source, "--output", output).returncode == 0
    result = cli_in_process("train", "ner", "--data", output, "--output-dir", tmp_path / "run")
    assert result.returncode == 2 and "was prepared for the sentiment template, not ner" in result.stderr
    result = cli_in_process("train", "forecasting", "--data", output, "--output-dir", tmp_path / "run")
    assert result.returncode == 2 and "was prepared for the sentiment template, not forecasting" in result.stderr
    result = cli_in_process("train", "sentiment", "--data", output, "--output-dir", tmp_path / "run",
                            "--set", "data.max_train_samples=10")
    assert result.returncode == 2 and "data.max_train_samples" in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name, content", [
    ("a.csv", "\ufefftext,label\r\n\"a, b\nc\",pos\r\nhi,neg\nlast,pos"),
    ("a.tsv", "text\tlabel\r\nsay \"hi\"\tpos\n\nx\tneg\n"),
    ("a.jsonl", "{\"text\": \"x\", \"label\": 1}\r\n\n{\"text\": \"y\", \"label\": \"neg\"}"),
])
def test_streaming_reader_reads_what_the_in_memory_reader_reads(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8"))
    in_memory = list(zip(*readers.read_text_classification(path)))
    assert list(readers.stream_text_classification(str(path))) == in_memory
    lines = list(readers.stream_lines(str(path), chunk_bytes=3))  # lines whole across chunk boundaries
    assert "".join(lines) == content.removeprefix("\ufeff")


def test_the_sample_covers_every_label_but_not_free_text(tmp_path):
    labelled = [(f"common {index}", "common") for index in range(3000)] + [("the one rare row", "rare")]
    held_out = {"validation": [("a", "common")], "test": [("b", "common")]}
    prepared.prepare(str(tmp_path / "labels"), ("text", "label"), {"train": iter(labelled), **held_out},
                     sample_rows=20)
    texts, label_values = prepared.load(str(tmp_path / "labels"), None)["train"]
    assert len(texts) == 21 and "rare" in label_values  # the reservoir (20) and the rare label's row
    pairs = [(f"source {index}", f"target {index}") for index in range(3000)]  # a free-text last column
    prepared.prepare(str(tmp_path / "pairs"), ("source", "target"), {"train": iter(pairs), **held_out},
                     sample_rows=20)
    assert len(prepared.load(str(tmp_path / "pairs"), None)["train"][0]) == 20


PEOPLE = "Anna Boris Chen Dana Emil Farah".split()
PLACES = "Paris Lima Oslo Cairo Quito Perth".split()


def write_conll(path, sentences, seed=0, rare_tag_sentences=2):
    """A CoNLL file (BOM, CRLF, -DOCSTART-) of generated sentences: a person and a place each."""
    generator = random.Random(seed)
    rows = []
    for index in range(sentences):
        person, place = generator.choice(PEOPLE), generator.choice(PLACES)
        rows.append([(person, "B-PER"), ("went", "O"), ("to", "O"), (place, "B-LOC"), (f"n{index}", "O")])
    rows += [[("the", "O"), ("Nobel", "B-MISC"), ("prize", "I-MISC"), (f"m{index}", "O")]
             for index in range(rare_tag_sentences)]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("\ufeff-DOCSTART- O\r\n\r\n")
        for sentence in rows:
            handle.write("".join(f"{token} {tag}\r\n" for token, tag in sentence) + "\r\n\r\n")
    return rows


def test_ner_prepares_sentences_as_lists_and_trains_from_them(tmp_path, cli_in_process):
    source = tmp_path / "train.conll"
    sentences = write_conll(source, 1500)
    assert list(zip(*readers.read_conll(source))) == [
        (tokens, tags) for tokens, tags, _ in readers.stream_conll(str(source))]
    output = tmp_path / "prepared"
    result = cli_in_process("prepare", "ner", "--data", source, "--output", output, "--shard-mb", "0.01",
                            "--sample-rows", "100")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((output / "prepared.json").read_text())
    assert manifest["columns"] == ["tokens", "tags"] and manifest["list_columns"] == ["tokens", "tags"]
    assert len(manifest["splits"]["train"]["shards"]) >= 4
    read = {name: prepared.read_columns([str(output / shard) for shard in split["shards"]], manifest["columns"],
                                        manifest["list_columns"])
            for name, split in manifest["splits"].items()}
    written = sorted((" ".join(tokens), " ".join(tags)) for columns in read.values()
                     for tokens, tags in zip(*columns))
    assert written == sorted((" ".join(token for token, _ in sentence), " ".join(tag for _, tag in sentence))
                             for sentence in sentences)  # every sentence once, tokens and tags aligned
    sample_tokens, sample_tags = prepared.read_columns([str(output / "sample-train.tfrecord")],
                                                       manifest["columns"], manifest["list_columns"])
    in_train = any("I-MISC" in tags for tags in read["train"][1])
    assert not in_train or any("I-MISC" in tags for tags in sample_tags)  # the sample holds every tag

    run = tmp_path / "run"
    metrics = train_from_prepared(cli_in_process, "ner", output, run, manifest, "train.epochs=3",
                                  "train.auto_settings=false", "model.units=16", "model.char_features=false",
                                  "train.learning_rate=0.01", "data.repair_tags=true")
    assert metrics["model"]["micro"]["f1"] > 0.9  # names and places from their words, learnt from the stream
    answer = cli_in_process("predict", run, "Chen went to Oslo today")
    assert answer.returncode == 0, answer.stderr
    assert "PER" in answer.stdout and "LOC" in answer.stdout


def test_translation_prepares_cleaned_pairs_and_trains_from_them(tmp_path, cli_in_process):
    source = tmp_path / "pairs.txt"
    generator = random.Random(0)
    numbers = "one two three four five six seven eight nine".split()
    numeros = "uno dos tres cuatro cinco seis siete ocho nueve".split()
    lines = []
    for index in range(900):
        picked = [generator.randrange(9) for _ in range(generator.randint(1, 3))]
        lines.append(f"{' '.join(numbers[i] for i in picked)}\t{' '.join(numeros[i] for i in picked)}"
                     f"\tCC-BY 2.0 (France) Attribution: tatoeba.org #{index}")
    lines.append("this pair is far too long to keep at all\tx")  # over data.max_words=5
    source.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    in_memory = list(zip(*readers.read_parallel_tsv(source)))
    streamed = list(readers.stream_parallel_tsv(str(source), reverse=True, max_words=5))
    assert streamed == [(target, source_text) for source_text, target in in_memory[:-1]]

    output = tmp_path / "prepared"
    result = cli_in_process("prepare", "translation", "--data", source, "--output", output,
                            "--set", "data.max_words=5", "--shard-mb", "0.01")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((output / "prepared.json").read_text())
    assert manifest["columns"] == ["source", "target"] and manifest["list_columns"] == []
    assert sum(split["rows"] for split in manifest["splits"].values()) == 900  # the long pair dropped
    run = tmp_path / "run"
    metrics = train_from_prepared(cli_in_process, "translation", output, run, manifest, "train.epochs=1",
                                  "train.auto_settings=false", "model.units=16", "model.embedding_dim=8",
                                  "model.attention_units=16")
    assert metrics["num_examples"] == manifest["splits"]["test"]["rows"]
    answer = cli_in_process("predict", run, "two three")
    assert answer.returncode == 0, answer.stderr
    assert "translation" in json.loads(answer.stdout.splitlines()[0])


def test_streamed_windows_are_the_in_memory_windows_of_each_piece():
    from seq_templates.preprocessing import language_model

    ids = tf.data.Dataset.from_tensor_slices(tf.constant(["abcdefghij\n", "klm\n", "nopqrstuvw\n"]))
    lookup = tf.keras.layers.StringLookup(vocabulary=list("abcdefghijklmnopqrstuvw\n"), mask_token="")
    dataset = language_model.corpus_dataset(ids.map(lambda piece: (piece,)), lookup, "char", "none",
                                            sequence_length=4, batch_size=100, stride=3)
    (inputs, targets), = [(batch["token_ids"].numpy(), batch_targets.numpy()) for batch, batch_targets in dataset]
    expected = []
    for piece in ("abcdefghij\n", "klm\n", "nopqrstuvw\n"):  # "klm\n" is shorter than a window of 5
        piece_ids = lookup(tf.strings.unicode_split(piece, "UTF-8")).numpy()
        piece_inputs, _ = language_model.window_arrays(piece_ids, 4, 3)
        expected.extend(piece_inputs.tolist())
    assert inputs.tolist() == expected and targets[:, :-1].tolist() == inputs[:, 1:].tolist()
    with pytest.raises(Exception, match="train.stateful"):
        language_model.corpus_dataset(ids, lookup, "char", "none", 4, 2, stateful=True)


def test_text_generation_prepares_pieces_and_trains_from_them(tmp_path, cli_in_process):
    source = tmp_path / "corpus.txt"
    generator = random.Random(0)
    words = "the cat sat on a mat and then it ran to the door".split()
    lines = [" ".join(generator.choice(words) for _ in range(generator.randint(4, 12))) for _ in range(3000)]
    source.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    pieces = [piece for piece, in readers.stream_text_pieces(str(source), piece_characters=1000)]
    assert "".join(pieces) == readers.read_plain_text(source) and all(piece.endswith("\n") for piece in pieces)
    output = tmp_path / "prepared"
    result = cli_in_process("prepare", "text_generation", "--data", source, "--output", output,
                            "--shard-mb", "0.02", "--set", "data.validation_fraction=0.1",
                            "--set", "data.test_fraction=0.1", "--sample-rows", "10")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((output / "prepared.json").read_text())
    assert manifest["sample"]["rows"] == 10  # free text: no piece added for coverage
    assert len(manifest["splits"]["train"]["shards"]) >= 4
    run = tmp_path / "run"
    metrics = train_from_prepared(cli_in_process, "text_generation", output, run, manifest, "train.epochs=2",
                                  "train.auto_settings=false", "model.units=32", "data.sequence_length=12",
                                  "data.tokenization=word")  # words: evaluation reads the sample by lines
    assert metrics["model"]["loss"] < metrics["baseline"]["loss"] + 0.5  # it learnt from the stream
    result = cli_in_process("train", "text_generation", "--data", output, "--output-dir", tmp_path / "stateful",
                            "--set", "train.stateful=true", "--set", "train.auto_settings=false")
    assert result.returncode == 2 and "train.stateful" in result.stderr
    result = cli_in_process("train", "text_generation", "--data", output, "--output-dir", tmp_path / "long",
                            "--set", "data.sequence_length=2000", "--set", "train.auto_settings=false")
    assert result.returncode == 2 and "data.sequence_length" in result.stderr  # longer than any ~1 KB piece


def test_prepare_names_every_template_that_streams_and_only_those():
    from seq_templates import apps_loader
    from seq_templates import cli

    apps = {task: apps_loader.load_app(task) for task in apps_loader.list_templates()}
    streaming = {task for task, app in apps.items() if hasattr(app, "stream_examples")}
    writing = {task for task, app in apps.items() if hasattr(app, "prepare_data")}  # a series: its own records
    assert streaming | writing == set(cli.PREPARED_TEMPLATES) and not streaming & writing
    assert writing == {"forecasting"}
    for task in streaming:  # each names its columns for the records
        assert apps[task].PREPARED_COLUMNS


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-16-le", "latin-1"])
@pytest.mark.parametrize("chunk_bytes", [1, 3, 64])
def test_stream_lines_keeps_every_line_end_across_chunks_in_any_encoding(tmp_path, encoding, chunk_bytes):
    content = "l1\rl2\r\nl3\r\rl4\nl\u00e9\r"
    path = tmp_path / "lines.txt"
    path.write_bytes(content.encode(encoding))
    lines = list(readers.stream_lines(str(path), encoding=encoding, chunk_bytes=chunk_bytes))
    assert lines == ["l1\r", "l2\r\n", "l3\r", "\r", "l4\n", "l\u00e9\r"]


def test_conll_reads_alike_streamed_and_whole_in_utf16(tmp_path):
    path = tmp_path / "tags.conll"
    path.write_bytes("EU B-ORG\nrejects O\n\nGerman B-MISC\ncall O\n".encode("utf-16"))
    assert list(zip(*readers.read_conll(path, encoding="utf-16"))) == [
        (tokens, tags) for tokens, tags, _ in readers.stream_conll(str(path), encoding="utf-16")]
    path.write_bytes("ok O\nfine O\n".encode("utf-16-le") + b"\x00\xd8\x41\x00")
    with pytest.raises(Exception, match=r"tags.conll:3: bytes not valid in utf-16-le"):
        list(readers.stream_conll(str(path), encoding="utf-16-le"))


def test_a_file_cache_goes_with_its_dataset(tmp_path, monkeypatch):
    import gc

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where mkdtemp makes the cache's folder
    dataset = bucketing.file_cache(tf.data.Dataset.range(5).map(lambda value: value * 2))
    assert list(dataset.as_numpy_iterator()) == [0, 2, 4, 6, 8] == list(dataset.as_numpy_iterator())
    folders = list(tmp_path.glob("seq_templates_stream_cache_*"))
    assert len(folders) == 1 and any(folders[0].iterdir())  # written by the first pass
    del dataset
    gc.collect()
    assert not folders[0].exists()


def test_held_out_caps_count_rows_not_lines(tmp_path):
    sentences = [([f"word{index}_{position}" for position in range(10)], ["O"] * 10) for index in range(4000)]
    conll = "".join("".join(f"{token} {tag}\n" for token, tag in zip(*sentence)) + "\n" for sentence in sentences)
    manifest = prepared.prepare(str(tmp_path / "sentences"), ("tokens", "tags"), {"train": iter(sentences)},
                                estimated_rows=conll.count("\n") + 1, source_bytes=len(conll.encode("utf-8")),
                                fractions={"test": 0.5, "validation": 0.5}, max_heldout_rows=200, sample_rows=10)
    for name in ("validation", "test"):  # about 200 sentences each, not 200 of the 44,000 lines' worth
        assert 100 <= manifest["splits"][name]["rows"] <= 400, manifest["splits"][name]
    assert manifest["splits"]["train"]["rows"] + sum(
        manifest["splits"][name]["rows"] for name in ("validation", "test")) == 4000
