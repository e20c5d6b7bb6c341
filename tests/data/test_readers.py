"""Readers: formats, columns, messy files, and errors that name file, line, column and setting."""

import math

import pandas
import pytest

from seq_templates import errors
from seq_templates.data import readers
from seq_templates.preprocessing import windows


def _write(folder, name, content):
    """Writes ``content`` (str as UTF-8, or bytes) exactly, without newline translation."""
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


# region formats
@pytest.mark.parametrize("name, expected", [
    ("a.csv", "csv"), ("a.TSV", "tsv"), ("a.jsonl", "jsonl"), ("a.json", "jsonl"), ("a.ndjson", "jsonl"),
    ("book.txt", "text"), ("a.parquet", "parquet"), ("a.conll", "conll"), ("a.iob", "conll"),
    ("a.bio", "conll"), ("a.tsv.gz", "tsv"),
])
def test_infer_format(name, expected):
    assert readers.infer_format(name) == expected


def test_unknown_extension_names_the_setting():
    with pytest.raises(errors.SeqTemplatesError, match=r"Cannot tell the format of 'a.xlsx'.*set data.format"):
        readers.infer_format("a.xlsx")
    with pytest.raises(errors.SeqTemplatesError, match=r"set reader.format"):
        readers.infer_format("a.xlsx", setting_prefix="reader.")
# endregion


# region text classification
def test_reads_tsv_csv_and_jsonl(tmp_path):
    (tmp_path / "a.tsv").write_text('sentence\tlabel\nit \'s "good" \t1\nbad\t0\n')
    (tmp_path / "a.csv").write_text('text,label\n"good, really",pos\nbad,neg\n')
    (tmp_path / "a.jsonl").write_text('{"text": "good", "label": 1}\n\n{"text": "bad", "label": 0}\n')
    assert readers.read_text_classification(tmp_path / "a.tsv", "sentence") == (
        ['it \'s "good"', "bad"], ["1", "0"])
    assert readers.read_text_classification(tmp_path / "a.csv") == (["good, really", "bad"], ["pos", "neg"])
    assert readers.read_text_classification(tmp_path / "a.jsonl") == (["good", "bad"], ["1", "0"])


def test_bom_crlf_and_no_final_newline(tmp_path):
    path = _write(tmp_path, "a.tsv", "\ufefftext\tlabel\r\ngood\t1\r\n\r\nbad\t0")
    assert readers.read_text_classification(path) == (["good", "bad"], ["1", "0"])
    path = _write(tmp_path, "a.jsonl", '\ufeff{"text": "good", "label": 1}\r\n{"text": "bad", "label": 0}')
    assert readers.read_text_classification(path) == (["good", "bad"], ["1", "0"])


def test_unicode_line_separators_inside_a_row_do_not_split_it(tmp_path):
    path = _write(tmp_path, "a.tsv", "text\tlabel\nfirst\u2028second\x0cthird\t1\nbad\t0\n")
    texts, labels = readers.read_text_classification(path)
    assert texts == ["first\u2028second\x0cthird", "bad"] and labels == ["1", "0"]


def test_line_numbers_count_physical_lines_of_quoted_fields(tmp_path):
    path = _write(tmp_path, "a.csv", 'text,label\n"two\nlines",1\nbad,\n')
    with pytest.raises(errors.SeqTemplatesError, match=r"a.csv:4:2: empty label"):
        readers.read_text_classification(path)


def test_headerless_files_take_column_indexes(tmp_path):
    (tmp_path / "a.tsv").write_text("1\tgood\n0\tbad\n")
    assert readers.read_text_classification(tmp_path / "a.tsv", 1, 0, has_header=False) == (
        ["good", "bad"], ["1", "0"])
    assert readers.read_text_classification(tmp_path / "a.tsv", -1, -2, has_header=False) == (
        ["good", "bad"], ["1", "0"])


def test_missing_column_lists_the_header_and_names_the_callers_setting(tmp_path):
    (tmp_path / "a.csv").write_text("review,stars\ngood,5\n")
    with pytest.raises(errors.SeqTemplatesError,
                       match=r"a.csv:1: no column 'text'.*'review', 'stars'. Set data.text_column"):
        readers.read_text_classification(tmp_path / "a.csv")
    with pytest.raises(errors.SeqTemplatesError, match=r"Set data.label_column to one of them"):
        readers.read_text_classification(tmp_path / "a.csv", text_column="review")
    with pytest.raises(errors.SeqTemplatesError, match=r"Set reader.text_column to one of them"):
        readers.read_text_classification(tmp_path / "a.csv", setting_prefix="reader.")


def test_non_utf8_bytes_are_located(tmp_path):
    (tmp_path / "a.tsv").write_bytes(b"text\tlabel\ngood\t1\ncaf\xe9 noir\t0\n")
    with pytest.raises(errors.SeqTemplatesError,
                       match=r"a.tsv:3:4: byte 0xe9 is not valid utf-8.*data.encoding"):
        readers.read_text_classification(tmp_path / "a.tsv")
    assert readers.read_text_classification(tmp_path / "a.tsv", encoding="latin-1")[0][1] == "café noir"


@pytest.mark.parametrize("content, fragment", [
    ("", "no examples found"),
    ("text\tlabel\n", "no examples found"),
    ("text\tlabel\ngood\n", r":2: expected at least 2 tab-separated fields, found 1"),
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


@pytest.mark.parametrize("line, fragment", [
    ('{"text": "good", "label": ""}', r"a.jsonl:2: the label under 'label' is \"\"; give one non-empty"),
    ('{"text": "good", "label": [1, 2]}', r"a.jsonl:2: the label under 'label' is \[1, 2\]"),
    ('{"text": ["good", "film"], "label": 1}',
     r"a.jsonl:2: the text under 'text' is \[\"good\", \"film\"\]; give one string"),
])
def test_jsonl_refuses_empty_and_non_scalar_labels_and_texts(tmp_path, line, fragment):
    (tmp_path / "a.jsonl").write_text('{"text": "fine", "label": 1}\n' + line + "\n")
    with pytest.raises(errors.SeqTemplatesError, match=fragment):
        readers.read_text_classification(tmp_path / "a.jsonl")


def test_a_header_read_as_an_example_is_warned_about(tmp_path, capsys):
    (tmp_path / "a.tsv").write_text("text\tlabel\ngood\t1\n")
    texts, _ = readers.read_text_classification(tmp_path / "a.tsv", 0, 1, has_header=False)
    assert texts == ["text", "good"]  # as asked, but said
    assert "looks like a header, but data.has_header is false" in capsys.readouterr().err
    readers.read_text_classification(tmp_path / "a.tsv", 0, 1)
    (tmp_path / "b.tsv").write_text("fine film\t1\nbad\t0\n")
    readers.read_text_classification(tmp_path / "b.tsv", 0, 1, has_header=False)
    assert capsys.readouterr().err == ""


def test_missing_file_unknown_extension_and_plain_text_file(tmp_path):
    with pytest.raises(errors.SeqTemplatesError, match="does not exist"):
        readers.read_text_classification(tmp_path / "none.csv")
    (tmp_path / "a.xlsx").write_text("x")
    with pytest.raises(errors.SeqTemplatesError, match="Cannot tell the format"):
        readers.read_text_classification(tmp_path / "a.xlsx")
    (tmp_path / "a.txt").write_text("text\tlabel\ngood\t1\n")
    with pytest.raises(errors.SeqTemplatesError,
                       match=r"a.txt: a .txt file is read as plain text.*data.format to tsv"):
        readers.read_text_classification(tmp_path / "a.txt")
    assert readers.read_text_classification(tmp_path / "a.txt", file_format="tsv") == (["good"], ["1"])


def test_labelled_folders_skip_other_folders(tmp_path):
    for label, text in (("pos", "great"), ("neg", "awful"), ("unsup", "meh")):
        (tmp_path / label).mkdir()
        (tmp_path / label / "0_1.txt").write_text(text + "\n")
    assert readers.read_labelled_folders(tmp_path, ["neg", "pos"]) == (["awful", "great"], ["neg", "pos"])


def test_read_columns_keeps_roles_aligned_and_optional_columns_none(tmp_path):
    path = _write(tmp_path, "a.csv", "id,text\n1,good\n2,\"bad, really\"\n")
    values = readers.read_columns(path, {"text": "text", "label": "label"}, optional_columns=("label",))
    assert values == {"text": ["good", "bad, really"], "label": [None, None]}
# endregion


# region CoNLL
MESSY_CONLL = (
    "\ufeff-DOCSTART- -X- -X- O\r\n"
    "\r\n"
    "EU NNP B-NP B-ORG\r\n"
    "rejects\tVBZ B-VP O\r\n"        # a tab among spaces: any whitespace separates
    "German  JJ\tB-NP   B-MISC\r\n"
    " \t \r\n"                       # whitespace-only line ends the sentence
    "\r\n"
    "\r\n"                           # several blank lines in a row are one break
    "Peter NNP B-NP B-PER\r\n"
    "-DOCSTART- -X- -X- O\r\n"       # a document start without a blank line before it
    "Blackburn NNP B-NP B-PER"       # no final newline
)


def test_conll_messy_file(tmp_path):
    path = _write(tmp_path, "a.conll", MESSY_CONLL)
    tokens, tags = readers.read_conll(path)
    assert tokens == [["EU", "rejects", "German"], ["Peter"], ["Blackburn"]]
    assert tags == [["B-ORG", "O", "B-MISC"], ["B-PER"], ["B-PER"]]
    assert readers.read_conll(path, token_column=-4, tag_column=1)[1][0] == ["NNP", "VBZ", "JJ"]


def test_conll_tab_separator_keeps_spaces_inside_tokens(tmp_path):
    path = _write(tmp_path, "a.conll", "New York\tB-LOC\nis\tO\n\nfine\tO\n")
    assert readers.read_conll(path, separator="\t") == ([["New York", "is"], ["fine"]], [["B-LOC", "O"], ["O"]])
    with pytest.raises(errors.SeqTemplatesError, match=r"a.conll:2: expected 3 columns \(as on line 1\), found 2"):
        readers.read_conll(path)  # whitespace splitting sees 3 columns on line 1
    path = _write(tmp_path, "b.conll", "EU  B-ORG\n")
    assert readers.read_conll(path, separator=" ") == ([["EU"]], [["B-ORG"]])  # two spaces: an empty column


def test_conll_ragged_row_names_both_lines(tmp_path):
    path = _write(tmp_path, "a.conll", "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nGerman JJ B-MISC\n")
    with pytest.raises(errors.SeqTemplatesError, match=r"a.conll:4: expected 4 columns \(as on line 1\), found 3"):
        readers.read_conll(path)


def test_conll_column_beyond_the_row_names_the_callers_setting(tmp_path):
    path = _write(tmp_path, "a.conll", "EU B-ORG\n")
    with pytest.raises(errors.SeqTemplatesError, match=r"a.conll:1: data.tag_column is 3 but the rows have 2"):
        readers.read_conll(path, tag_column=3)
    with pytest.raises(errors.SeqTemplatesError, match=r"reader.token_column is -3"):
        readers.read_conll(path, token_column=-3, setting_prefix="reader.")
    with pytest.raises(errors.SeqTemplatesError, match=r"data.tag_column expects a 0-based column number"):
        readers.read_conll(path, tag_column="ner")
    with pytest.raises(errors.SeqTemplatesError, match=r"data.separator expects"):
        readers.read_conll(path, separator=",")


@pytest.mark.parametrize("content", ["", "\n\n", " \t\n", "-DOCSTART- -X- -X- O\n\n"])
def test_conll_without_sentences(tmp_path, content):
    path = _write(tmp_path, "a.conll", content)
    with pytest.raises(errors.SeqTemplatesError, match=r"a.conll: no sentences found"):
        readers.read_conll(path)


def test_conll_latin1_bytes(tmp_path):
    path = _write(tmp_path, "a.conll", b"EU B-ORG\nM\xfcller B-PER\n")
    with pytest.raises(errors.SeqTemplatesError, match=r"a.conll:2:2: byte 0xfc is not valid utf-8"):
        readers.read_conll(path)
    assert readers.read_conll(path, encoding="latin-1")[0] == [["EU", "Müller"]]
# endregion


# region parallel TSV
def test_parallel_tsv_messy_file(tmp_path):
    path = _write(tmp_path, "spa.txt", (
        "\ufeffGo.\tVe.\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM)\r\n"
        "\r\n"
        "\"Hi,\" he said.\t\"Hola\", dijo.\r\n"
        "Run!\t¡Corre!"))
    sources, targets = readers.read_parallel_tsv(path)
    assert sources == ["Go.", "\"Hi,\" he said.", "Run!"]
    assert targets == ["Ve.", "\"Hola\", dijo.", "¡Corre!"]
    assert readers.read_parallel_tsv(path, source_column=1, target_column=0)[0] == targets


def test_parallel_tsv_errors(tmp_path):
    path = _write(tmp_path, "a.tsv", "Go.\tVe.\nRun! ¡Corre!\n")
    with pytest.raises(errors.SeqTemplatesError, match=r"a.tsv:2: expected at least 2 tab-separated fields, found 1"):
        readers.read_parallel_tsv(path)
    path = _write(tmp_path, "b.tsv", "Go.\tVe.\n \tVete.\n")
    with pytest.raises(errors.SeqTemplatesError, match=r"b.tsv:2:1: empty source"):
        readers.read_parallel_tsv(path)
    path = _write(tmp_path, "c.tsv", "Go.\t\n")
    with pytest.raises(errors.SeqTemplatesError, match=r"c.tsv:1:2: empty target"):
        readers.read_parallel_tsv(path)
    with pytest.raises(errors.SeqTemplatesError, match=r"no header.*Set data.source_column"):
        readers.read_parallel_tsv(path, source_column="English")
    with pytest.raises(errors.SeqTemplatesError, match=r"expected at least 3 tab-separated fields"):
        readers.read_parallel_tsv(path, target_column=2)
    with pytest.raises(errors.SeqTemplatesError, match=r"no sentence pairs found"):
        readers.read_parallel_tsv(_write(tmp_path, "d.tsv", "\n\n"))
# endregion


# region plain text
def test_plain_text_normalises_line_ends_and_removes_the_bom(tmp_path):
    path = _write(tmp_path, "book.txt", "\ufeffFirst Citizen:\r\nBefore we proceed\rany further.\n\nAll:")
    assert readers.read_plain_text(path) == "First Citizen:\nBefore we proceed\nany further.\n\nAll:"


@pytest.mark.parametrize("content", ["", " \n\t\r\n"])
def test_plain_text_empty_files(tmp_path, content):
    with pytest.raises(errors.SeqTemplatesError, match=r"book.txt: the file is empty or holds only whitespace"):
        readers.read_plain_text(_write(tmp_path, "book.txt", content))


def test_plain_text_latin1_bytes(tmp_path):
    path = _write(tmp_path, "book.txt", b"line one\nna\xefve\n")
    with pytest.raises(errors.SeqTemplatesError, match=r"book.txt:2:3: byte 0xef is not valid utf-8"):
        readers.read_plain_text(path)
    assert readers.read_plain_text(path, encoding="latin-1") == "line one\nnaïve\n"
# endregion


# region time series
def test_timeseries_like_the_airline_file(tmp_path):
    path = _write(tmp_path, "a.csv", '"Month","Passengers"\r\n"1949-01",112\r\n"1949-02",118\r\n"1949-03",132')
    frame = readers.read_timeseries(path, time_column="Month")
    assert isinstance(frame.index, pandas.DatetimeIndex) and frame.index.name == "time"
    assert list(frame.index.strftime("%Y-%m")) == ["1949-01", "1949-02", "1949-03"]
    assert list(frame.columns) == ["Passengers"] and frame["Passengers"].dtype == "float64"
    assert frame["Passengers"].tolist() == [112.0, 118.0, 132.0]


def test_timeseries_from_unit_columns_with_na_and_a_categorical_column(tmp_path):
    path = _write(tmp_path, "p.csv", (
        "No,year,month,day,hour,pm2.5,TEMP,cbwd\n"
        "1,2010,1,1,0,NA,-11,NW\n"
        "2,2010,1,1,1,NA,-12,cv\n"
        "3,2010,1,1,2,129,-11,NW\n"
        "\n"                                   # a blank line is skipped
        "4,2010,1,1,4,,-10,SE\n"))             # an hour missing: reported as a gap, not filled
    frame = readers.read_timeseries(path, time_columns=["year", "month", "day", "hour"],
                                    missing_values=["NA"])
    assert list(frame.columns) == ["No", "pm2.5", "TEMP", "cbwd"]
    assert [time.hour for time in frame.index] == [0, 1, 2, 4]
    assert frame["pm2.5"].isna().tolist() == [True, True, False, True]
    assert frame["pm2.5"].iloc[2] == 129.0 and frame["TEMP"].dtype == "float64"
    assert frame["cbwd"].tolist() == ["NW", "cv", "NW", "SE"]
    assert all(isinstance(value, str) for value in frame["cbwd"])
    chosen = readers.read_timeseries(path, time_columns=["year", "month", "day", "hour"],
                                     value_columns=["TEMP", "pm2.5"], missing_values=["NA"])
    assert list(chosen.columns) == ["TEMP", "pm2.5"]


def test_timeseries_from_date_and_time_columns_with_a_format(tmp_path):
    path = _write(tmp_path, "a.tsv", "Date\tTime\tload\n01/02/2020\t23:00\t1.5\n02/02/2020\t00:00\t2\n")
    frame = readers.read_timeseries(path, time_columns=["Date", "Time"], time_format="%d/%m/%Y %H:%M")
    assert list(frame.index.astype(str)) == ["2020-02-01 23:00:00", "2020-02-02 00:00:00"]


def test_timeseries_unsorted_and_duplicate_times(tmp_path):
    path = _write(tmp_path, "a.csv", "Month,Passengers\n1949-01,1\n1949-03,2\n\n1949-02,3\n")
    with pytest.raises(errors.SeqTemplatesError,
                       match=r"a.csv:5: time '1949-02' comes before '1949-03' on line 3.*sort the file"):
        readers.read_timeseries(path, time_column="Month")
    path = _write(tmp_path, "b.csv", "Month,Passengers\r\n1949-01,1\r\n1949-02,2\r\n1949-02,3")
    with pytest.raises(errors.SeqTemplatesError, match=r"b.csv:4: time '1949-02' repeats the one on line 3"):
        readers.read_timeseries(path, time_column="Month")


def test_timeseries_non_numeric_value_and_missing_markers(tmp_path):
    path = _write(tmp_path, "a.csv", "Date,Temp\n1981-01-01,20.7\n1981-01-02,17.9\n1981-01-03,?0.2\n")
    with pytest.raises(errors.SeqTemplatesError,
                       match=r"a.csv:4: column 'Temp' holds '\?0.2', not a number.*data.missing_values"):
        readers.read_timeseries(path, time_column="Date")
    frame = readers.read_timeseries(path, time_column="Date", missing_values=["?0.2"])
    assert math.isnan(frame["Temp"].iloc[2]) and frame["Temp"].iloc[1] == 17.9


def test_timeseries_bad_times(tmp_path):
    path = _write(tmp_path, "a.csv", "Month,Passengers\n1949-01,1\n1949-13,2\n")
    with pytest.raises(errors.SeqTemplatesError,
                       match=r"a.csv:3: cannot read the time '1949-13'.*data.time_format"):
        readers.read_timeseries(path, time_column="Month")
    path = _write(tmp_path, "b.csv", "Month,Passengers\n1949-01,1\n,2\n")
    with pytest.raises(errors.SeqTemplatesError, match=r"b.csv:3: cannot read the time ''"):
        readers.read_timeseries(path, time_column="Month")
    path = _write(tmp_path, "c.csv", "year,month,day,v\n2010,1,1,1\n2010,2,30,2\n")
    with pytest.raises(errors.SeqTemplatesError, match=r"c.csv:3: cannot read the time year=2010, month=2, day=30"):
        readers.read_timeseries(path, time_columns=["year", "month", "day"])


def _counted_years_csv(last_year, last_month):
    """Rows like the TSDL writing-paper file: quoted "YEAR-MONTH" with the year counted from 1 and not
    zero-padded, values with 3, 2, 1 or no decimals, CRLF line ends and no final newline."""
    months = [(year, month) for year in range(1, last_year + 1) for month in range(1, 13)
              if (year, month) <= (last_year, last_month)]
    values = ["1359.795", "1278.56", "1641.5", "1876"]
    rows = [f'"{year}-{month:02d}",{values[index % 4]}' for index, (year, month) in enumerate(months)]
    return '"Month","Sales"\r\n' + "\r\n".join(rows), months


def test_timeseries_counted_years_keep_the_file_order_and_read_as_months(tmp_path):
    content, months = _counted_years_csv(10, 2)  # "1-01" .. "9-12", then "10-01", "10-02"
    assert content.count("\r\n") == len(months) and not content.endswith("\n")
    path = _write(tmp_path, "paper.csv", content)
    frame = readers.read_timeseries(path, time_column="Month", year_offset=1900, time_format="%Y-%m")
    assert len(frame) == len(months) == 110
    assert list(frame.index.strftime("%Y-%m")) == [f"{1900 + year}-{month:02d}" for year, month in months]
    assert str(frame.index[107].date()) == "1909-12-01" and str(frame.index[108].date()) == "1910-01-01"
    assert windows.infer_frequency(frame.index) == "MS" and windows.season_length_for("MS") == 12
    assert frame["Sales"].tolist()[:4] == [1359.795, 1278.56, 1641.5, 1876.0] and frame["Sales"].dtype == "float64"
    inferred = readers.read_timeseries(path, time_column="Month", year_offset=1900)  # no format: the same
    assert inferred.index.equals(frame.index)
    units = _write(tmp_path, "units.csv", "year,month,Sales\r\n9,12,1\r\n10,1,2")
    assert list(readers.read_timeseries(units, time_columns=["year", "month"], year_offset=1900).index.strftime(
        "%Y-%m")) == ["1909-12", "1910-01"]


@pytest.mark.parametrize("bad_time, fragment", [
    ("x-03", r"paper.csv:4:1: cannot read the time 'x-03' in 'Month': with data.year_offset set, a time "
             r"starts with its year number"),
    ("1-13", r"paper.csv:4:1: cannot read the time '1-13' in 'Month' \(read as '1901-13' with "
             r"data.year_offset 1900 and data.time_format '%Y-%m'\); fix that row"),
])
def test_timeseries_counted_year_that_does_not_parse_is_one_line_naming_file_line_and_field(
        tmp_path, bad_time, fragment):
    content, _ = _counted_years_csv(1, 4)
    path = _write(tmp_path, "paper.csv", content.replace('"1-03"', f'"{bad_time}"'))
    with pytest.raises(errors.SeqTemplatesError, match=fragment) as raised:
        readers.read_timeseries(path, time_column="Month", year_offset=1900, time_format="%Y-%m")
    assert len(str(raised.value).splitlines()) == 1


def test_timeseries_counted_years_without_an_offset_are_refused_not_made_up(tmp_path):
    content, _ = _counted_years_csv(2, 3)  # pandas alone reads "1-02" as 2 January of year 1
    path = _write(tmp_path, "paper.csv", content)
    with pytest.raises(errors.SeqTemplatesError,
                       match=r"paper.csv:2:1: the time '1-01' in 'Month' has no calendar year; .*set "
                             r"reader.year_offset \(e.g. 1900") as raised:
        readers.read_timeseries(path, time_column="Month", setting_prefix="reader.")
    assert len(str(raised.value).splitlines()) == 1
    with pytest.raises(errors.SeqTemplatesError, match=r"data.time_format must start with %Y .*received '%m-%Y'"):
        readers.read_timeseries(path, time_column="Month", year_offset=1900, time_format="%m-%Y")
    with pytest.raises(errors.SeqTemplatesError, match=r"whole number of years for data.year_offset.*'1900'"):
        readers.read_timeseries(path, time_column="Month", year_offset="1900")


def test_timeseries_column_settings(tmp_path):
    path = _write(tmp_path, "a.csv", "Month,Passengers\n1949-01,1\n")
    with pytest.raises(errors.SeqTemplatesError,
                       match=r"a.csv:1: no column 'Date' for data.time_column; the file has 'Month', 'Passengers'"):
        readers.read_timeseries(path, time_column="Date")
    with pytest.raises(errors.SeqTemplatesError, match=r"no column 'Sales' for reader.value_columns"):
        readers.read_timeseries(path, time_column="Month", value_columns=["Sales"], setting_prefix="reader.")
    with pytest.raises(errors.SeqTemplatesError, match=r"set data.time_column .* or data.time_columns"):
        readers.read_timeseries(path)
    with pytest.raises(errors.SeqTemplatesError, match=r"no value columns besides the time"):
        readers.read_timeseries(path, time_column="Month", value_columns=[])


@pytest.mark.parametrize("content, fragment", [
    ("", r"a.csv: the file is empty"),
    ("Month,Passengers\n", r"a.csv: no rows found"),
    ("Month,Passengers\n1949-01,1\n1949-02,2,3\n", r"a.csv:3: expected 2 fields \(as in the header\), found 3"),
])
def test_timeseries_bad_files(tmp_path, content, fragment):
    with pytest.raises(errors.SeqTemplatesError, match=fragment):
        readers.read_timeseries(_write(tmp_path, "a.csv", content), time_column="Month")


def test_timeseries_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    table = pandas.DataFrame({"Month": ["1949-01", "1949-02", "1949-04"], "Passengers": [112, 118, 129],
                              "kind": ["a", "b", None]})
    table.to_parquet(tmp_path / "a.parquet")
    frame = readers.read_timeseries(tmp_path / "a.parquet", time_column="Month")
    assert frame["Passengers"].tolist() == [112.0, 118.0, 129.0] and frame["kind"].iloc[0] == "a"
    table.iloc[[0, 2, 1]].to_parquet(tmp_path / "b.parquet")
    with pytest.raises(errors.SeqTemplatesError, match=r"b.parquet: row 3: time '1949-02' comes before"):
        readers.read_timeseries(tmp_path / "b.parquet", time_column="Month")


def test_timeseries_parquet_without_an_engine_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "a.parquet").write_bytes(b"PAR1")

    def no_engine(*arguments, **keywords):
        raise ImportError("Unable to find a usable engine")

    monkeypatch.setattr(pandas, "read_parquet", no_engine)
    with pytest.raises(errors.SeqTemplatesError,
                       match=r"a.parquet: reading Parquet needs pyarrow; run `pip install pyarrow`"):
        readers.read_timeseries(tmp_path / "a.parquet", time_column="Month")
# endregion
