"""Configuration: precedence, type checks and the saved round trip."""

import dataclasses
import typing

import pytest

from seq_templates import config
from seq_templates import errors


@dataclasses.dataclass
class ModelSection:
    cell: str = dataclasses.field(default="lstm", metadata={"choices": ("lstm", "gru")})
    units: int = dataclasses.field(default=64, metadata={"minimum": 1})
    dropout_rate: float = 0.1
    bidirectional: bool = True
    vocabulary: typing.Optional[str] = None
    sizes: typing.List[int] = dataclasses.field(default_factory=lambda: [1, 2])


SECTIONS = {"model": ModelSection, "train": config.TrainConfig}


def test_defaults_then_files_left_to_right_then_set(tmp_path):
    first = tmp_path / "a.yaml"
    first.write_text("model:\n  units: 128\n  cell: gru\ntrain:\n  epochs: 7\n")
    second = tmp_path / "b.yaml"
    second.write_text("model:\n  units: 256\n")
    resolved = config.resolve(SECTIONS, [first, second], ["model.units=32", "train.learning_rate=0.01"])
    assert resolved["model"].units == 32
    assert resolved["model"].cell == "gru"
    assert resolved["train"].epochs == 7
    assert resolved["train"].learning_rate == 0.01
    assert resolved["train"].batch_size == config.TrainConfig().batch_size


def test_set_parses_yaml_values():
    resolved = config.resolve(SECTIONS, [], ["model.vocabulary=null", "model.sizes=[3, 4]",
                                             "model.bidirectional=false", "model.dropout_rate=1"])
    assert resolved["model"].vocabulary is None
    assert resolved["model"].sizes == [3, 4]
    assert resolved["model"].bidirectional is False
    assert resolved["model"].dropout_rate == 1.0 and isinstance(resolved["model"].dropout_rate, float)


def test_saved_config_round_trips(tmp_path):
    resolved = config.resolve(SECTIONS, [], ["model.units=12", "train.clipnorm=null"])
    config.save(resolved, tmp_path / "config.yaml")
    assert config.load(SECTIONS, tmp_path / "config.yaml") == resolved


@pytest.mark.parametrize("override, fragment", [
    ("model.unit=3", "unknown key 'model.unit'"),
    ("optimizer.lr=3", "unknown config section 'optimizer'"),
    ("model.units=many", "'model.units' expects an integer, received 'many'"),
    ("model.units=0", "at least 1"),
    ("model.cell=transformer", "expects one of lstm, gru"),
    ("model.bidirectional=3", "expects true or false"),
    ("units=3", "--set expects section.key=value"),
])
def test_bad_overrides_name_the_key_and_the_fix(override, fragment):
    with pytest.raises(errors.SeqTemplatesError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        config.resolve(SECTIONS, [], [override])


def test_bad_files_are_reported_with_their_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("model:\n  units: [1, 2\n")
    with pytest.raises(errors.SeqTemplatesError, match=r"broken.yaml: line \d+"):
        config.resolve(SECTIONS, [broken])
    with pytest.raises(errors.SeqTemplatesError, match="does not exist"):
        config.resolve(SECTIONS, [tmp_path / "missing.yaml"])
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(errors.SeqTemplatesError, match="expected a mapping"):
        config.resolve(SECTIONS, [listed])


def test_a_key_given_twice_is_an_error_naming_its_line(tmp_path):
    twice = tmp_path / "twice.yaml"
    twice.write_text("model:\n  units: 8\n  cell: gru\n  units: 16\n")
    with pytest.raises(errors.SeqTemplatesError, match=r"twice.yaml: line 4, column 3: invalid YAML \(the key "
                                                       r"'units' is given twice in one mapping; keep one\)"):
        config.resolve(SECTIONS, [twice])
    sections_twice = tmp_path / "sections.yaml"
    sections_twice.write_text("model:\n  units: 8\nmodel:\n  cell: gru\n")
    with pytest.raises(errors.SeqTemplatesError, match="the key 'model' is given twice"):
        config.resolve(SECTIONS, [sections_twice])


def test_a_number_given_for_a_text_setting_is_taken_as_its_digits():
    # README: data.text_column takes a column index; YAML reads `0` as a number.
    assert config.resolve(SECTIONS, [], ["model.vocabulary=0"])["model"].vocabulary == "0"
    with pytest.raises(errors.SeqTemplatesError, match="expects one of lstm, gru"):
        config.resolve(SECTIONS, [], ["model.cell=1"])
    with pytest.raises(errors.SeqTemplatesError, match="'model.vocabulary' expects"):
        config.resolve(SECTIONS, [], ["model.vocabulary=[1]"])


@pytest.mark.parametrize("boundaries, fragment", [
    ("[8, 4]", r"'train.bucket_boundaries' expects strictly increasing values, received \[8, 4\]; sort them and "
               r"drop repeats \(e.g. \[4, 8\]\)"),
    ("[8, 8, 16]", r"expects strictly increasing values, received \[8, 8, 16\]; sort them and drop repeats "
                   r"\(e.g. \[8, 16\]\)"),
    ("[0, 8]", r"'train.bucket_boundaries' expects values of at least 1, received \[0, 8\]"),
    ("[-4, 8]", r"expects values of at least 1, received \[-4, 8\]"),
])
def test_bucket_boundaries_must_be_increasing_lengths(boundaries, fragment):
    with pytest.raises(errors.SeqTemplatesError, match=fragment):
        config.resolve(SECTIONS, [], [f"train.bucket_boundaries={boundaries}"])


def test_bucket_boundaries_in_a_file_name_the_file(tmp_path):
    unsorted = tmp_path / "unsorted.yaml"
    unsorted.write_text("train:\n  bucket_boundaries: [16, 8, 32]\n")
    with pytest.raises(errors.SeqTemplatesError, match=r"unsorted.yaml: 'train.bucket_boundaries' expects strictly "
                                                       r"increasing values"):
        config.resolve(SECTIONS, [unsorted])


def test_increasing_bucket_boundaries_and_none_are_taken():
    assert config.resolve(SECTIONS, [], ["train.bucket_boundaries=[1, 4, 9]"])["train"].bucket_boundaries == [1, 4, 9]
    assert config.resolve(SECTIONS, [], ["train.bucket_boundaries=[]"])["train"].bucket_boundaries == []
