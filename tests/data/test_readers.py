"""Readers: formats, columns, and errors that name file, line and column."""

import pytest

from seq_templates import errors
from seq_templates.data import readers


def test_reads_tsv_csv_and_jsonl(tmp_path):
    (tmp_path / "a.tsv").write_text('sentence\tlabel\nit \'s "good" \t1\nbad\t0\n')
    (tmp_path / "a.csv").write_text('text,label\n"good, really",pos\nbad,neg\n')
    (tmp_path / "a.jsonl").write_text('{"text": "good", "label": 1}\n\n{"text": "bad", "label": 0}\n')
    assert readers.read_text_classification(tmp_path / "a.tsv", "sentence") == (
        ['it \'s "good"', "bad"], ["1", "0"])
    assert readers.read_text_classification(tmp_path / "a.csv") == (["good, really", "bad"], ["pos", "neg"])
    assert readers.read_text_classification(tmp_path / "a.jsonl") == (["good", "bad"], ["1", "0"])


def test_headerless_files_take_column_indexes(tmp_path):
    (tmp_path / "a.tsv").write_text("1\tgood\n0\tbad\n")
    assert readers.read_text_classification(tmp_path / "a.tsv", 1, 0, has_header=False) == (
        ["good", "bad"], ["1", "0"])


def test_missing_column_lists_the_header(tmp_path):
    (tmp_path / "a.csv").write_text("review,stars\ngood,5\n")
    with pytest.raises(errors.SeqTemplatesError, match=r"a.csv:1: no column 'text'.*'review', 'stars'"):
        readers.read_text_classification(tmp_path / "a.csv")


def test_non_utf8_bytes_are_located(tmp_path):
    (tmp_path / "a.tsv").write_bytes(b"text\tlabel\ngood\t1\ncaf\xe9 noir\t0\n")
    with pytest.raises(errors.SeqTemplatesError, match=r"a.tsv:3:4: byte 0xe9 is not valid utf-8"):
        readers.read_text_classification(tmp_path / "a.tsv")
    assert readers.read_text_classification(tmp_path / "a.tsv", encoding="latin-1")[0][1] == "café noir"


@pytest.mark.parametrize("content, fragment", [
    ("", "no examples found"),
    ("text\tlabel\n", "no examples found"),
    ("text\tlabel\ngood\n", r":2: expected at least 2 fields"),
    ("text\tlabel\ngood\t\n", r":2:2: empty label"),
])
def test_bad_tsv_files(tmp_path, content, fragment):
    (tmp_path / "a.tsv").write_text(content)
    with pytest.raises(errors.SeqTemplatesError, match=fragment):
        readers.read_text_classification(tmp_path / "a.tsv")


def test_bad_jsonl_line(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "good", "label": 1}\n{"text": "bad", label: 0}\n')
    with pytest.raises(errors.SeqTemplatesError, match=r"a.jsonl:2:\d+: invalid JSON"):
        readers.read_text_classification(tmp_path / "a.jsonl")


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(errors.SeqTemplatesError, match="does not exist"):
        readers.read_text_classification(tmp_path / "none.csv")
    (tmp_path / "a.xlsx").write_text("x")
    with pytest.raises(errors.SeqTemplatesError, match="Cannot tell the format"):
        readers.read_text_classification(tmp_path / "a.xlsx")


def test_labelled_folders_skip_other_folders(tmp_path):
    for label, text in (("pos", "great"), ("neg", "awful"), ("unsup", "meh")):
        (tmp_path / label).mkdir()
        (tmp_path / label / "0_1.txt").write_text(text + "\n")
    assert readers.read_labelled_folders(tmp_path, ["neg", "pos"]) == (["awful", "great"], ["neg", "pos"])
