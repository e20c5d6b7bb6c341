"""Readers on real files that ship with Python and installed packages (not the shared data folder)."""

import pathlib
import sys
import sysconfig

import pytest

from seq_templates import errors
from seq_templates.data import readers


def _first_existing(paths):
    for path in paths:
        if path.is_file():
            return path
    pytest.skip(f"none of {', '.join(map(str, paths))} is on this machine")


def _package_file(package_name, *parts):
    package = pytest.importorskip(package_name)
    return _first_existing([pathlib.Path(package.__file__).parent.joinpath(*parts)])


def test_python_license_as_plain_text():
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    path = _first_existing([stdlib / "LICENSE.txt", pathlib.Path(sys.base_prefix) / "LICENSE.txt",
                            pathlib.Path("/usr/share/common-licenses/Apache-2.0")])
    text = readers.read_plain_text(path)
    raw = path.read_bytes().decode("utf-8")
    assert text == raw.replace("\r\n", "\n").lstrip("\ufeff") and "\r" not in text
    assert "LICENSE" in text.upper() and len(text) > 5000


def test_iris_csv_from_scikit_learn_through_the_column_reader():
    path = _package_file("sklearn", "datasets", "data", "iris.csv")
    # First row is scikit-learn's own header: "150,4,setosa,versicolor,virginica".
    values = readers.read_columns(path, {"length": 0, "label": -1}, has_header=False)
    assert values["length"][0] == "150" and values["label"][0] == "virginica"
    assert len(values["label"]) == 151
    assert {label: values["label"][1:].count(label) for label in "012"} == {"0": 50, "1": 50, "2": 50}
    assert values["length"][1:3] == ["5.1", "4.9"]


def test_matplotlib_msft_csv_is_newest_first_and_reported_as_out_of_order():
    path = _package_file("matplotlib", "mpl-data", "sample_data", "msft.csv")
    first_lines = path.read_text().splitlines()[:3]
    assert first_lines[0].startswith("Date,Open,High,Low,Close,Volume")
    with pytest.raises(errors.SeqTemplatesError) as raised:
        readers.read_timeseries(path, time_column="Date", value_columns=["Close"])
    expected_time = first_lines[2].split(",")[0]
    assert f"msft.csv:3: time '{expected_time}' comes before '{first_lines[1].split(',')[0]}' on line 2" in str(
        raised.value)
