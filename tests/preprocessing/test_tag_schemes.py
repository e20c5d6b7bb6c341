"""Tag schemes: spans as conlleval reads them, conversions between IOB1/IOB2/BIOES, scheme checks."""

import random

import pytest
from seqeval.metrics import sequence_labeling

from seq_templates import errors
from seq_templates.preprocessing import tag_schemes

# One sentence in the three schemes: two adjacent LOC entities, a one-word PER, a three-word ORG.
IOB1 = ["I-LOC", "B-LOC", "I-LOC", "O", "I-PER", "O", "I-ORG", "I-ORG", "I-ORG", "I-MISC"]
IOB2 = ["B-LOC", "B-LOC", "I-LOC", "O", "B-PER", "O", "B-ORG", "I-ORG", "I-ORG", "B-MISC"]
BIOES = ["S-LOC", "B-LOC", "E-LOC", "O", "S-PER", "O", "B-ORG", "I-ORG", "E-ORG", "S-MISC"]
SPANS = [("LOC", 0, 0), ("LOC", 1, 2), ("PER", 4, 4), ("ORG", 6, 8), ("MISC", 9, 9)]
BY_SCHEME = {"iob1": IOB1, "iob2": IOB2, "bioes": BIOES}


@pytest.mark.parametrize("scheme", tag_schemes.SCHEMES)
def test_spans_are_the_same_in_every_scheme(scheme):
    assert tag_schemes.entity_spans(BY_SCHEME[scheme]) == SPANS
    assert tag_schemes.check(BY_SCHEME[scheme], scheme) is None


@pytest.mark.parametrize("source", tag_schemes.SCHEMES)
@pytest.mark.parametrize("target", tag_schemes.SCHEMES)
def test_conversions_are_exact(source, target):
    assert tag_schemes.convert(BY_SCHEME[source], source, target) == BY_SCHEME[target]


def test_spans_match_seqeval_default_mode_on_random_and_broken_sequences():
    generator = random.Random(3)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-LOC", "S-PER", "I-ORG"]
    for _ in range(500):
        sentence = [generator.choice(tags) for _ in range(generator.randint(1, 12))]
        expected = [(kind, start, end) for kind, start, end in sequence_labeling.get_entities(sentence)]
        assert sorted(tag_schemes.entity_spans(sentence)) == sorted(expected), sentence


@pytest.mark.parametrize("tags, scheme, index, fragment", [
    (["O", "I-PER"], "iob2", 1, "IOB2 starts entities with B-"),
    (["B-PER", "I-LOC"], "iob2", 1, "follows 'B-PER'"),
    (["O", "B-PER"], "iob1", 1, "IOB1 uses B- only"),
    (["B-PER", "O"], "bioes", 1, "BIOES ends entities with E-"),
    (["O", "E-PER"], "bioes", 1, "BIOES needs B- or I-"),
    (["B-PER"], "bioes", 0, "ends inside an entity"),
    (["S-PER"], "iob2", 0, "is not a IOB2 tag"),
    (["PER"], "iob2", 0, "expected O or B/I-TYPE"),
])
def test_check_finds_the_first_scheme_break(tags, scheme, index, fragment):
    found_index, reason = tag_schemes.check(tags, scheme)
    assert found_index == index and fragment in reason


def test_repair_reads_breaks_as_conlleval_does():
    assert tag_schemes.repair(["O", "I-PER", "I-PER", "I-LOC"], "iob2") == ["O", "B-PER", "I-PER", "B-LOC"]
    assert tag_schemes.repair(["B-PER", "O"], "bioes") == ["S-PER", "O"]


def test_unknown_scheme_is_a_user_error():
    with pytest.raises(errors.SeqTemplatesError, match="Unknown tag scheme 'iob3'"):
        tag_schemes.check(["O"], "iob3")
    with pytest.raises(errors.SeqTemplatesError, match="Unknown tag scheme"):
        tag_schemes.convert(["O"], "iob2", "bilou")


def test_check_and_convert_names_the_file_line_and_setting(tmp_path):
    path = tmp_path / "train.txt"
    tokens, tags, lines = [["EU", "rejects"], ["the", "U.N."]], [["B-ORG", "O"], ["O", "I-ORG"]], [[1, 2], [4, 5]]
    with pytest.raises(errors.SeqTemplatesError, match=r"train.txt:5: 'I-ORG' follows 'O'.*set data.repair_tags=true"):
        tag_schemes.check_and_convert(path, tokens, tags, lines, "iob2", setting_prefix="data.")
    assert tag_schemes.check_and_convert(path, tokens, tags, lines, "iob2", "bioes", repair_tags=True) == [
        ["S-ORG", "O"], ["O", "S-ORG"]]
    with pytest.raises(errors.SeqTemplatesError, match=r"train.txt:2: the token column is empty.*reader.token_column"):
        tag_schemes.check_and_convert(path, [["EU", ""]], [["B-ORG", "O"]], [[1, 2]], "iob2",
                                      setting_prefix="reader.")


def test_check_known_tags_rejects_a_tag_training_lacks():
    splits = {"train": ([["a", "b"]], [["B-PER", "O"]]), "validation": ([["b"]], [["O"]]),
              "test": ([["c", "d"]], [["O", "B-LOC"]])}
    with pytest.raises(errors.SeqTemplatesError, match="test split has labels not seen in training: 'B-LOC'"):
        tag_schemes.check_known_tags(splits, "data.tag_column")
    splits["test"] = ([["c"]], [["B-PER"]])
    tag_schemes.check_known_tags(splits, "data.tag_column")
    with pytest.raises(errors.SeqTemplatesError, match="check data.tag_column"):
        tag_schemes.check_known_tags({**splits, "train": ([["a"]], [["O"]])}, "data.tag_column")


def test_entities_give_readable_spans():
    assert tag_schemes.entities(["Peter", "Blackburn", "in", "Paris"], ["B-PER", "I-PER", "O", "B-LOC"]) == [
        {"text": "Peter Blackburn", "type": "PER", "start": 0, "end": 2},
        {"text": "Paris", "type": "LOC", "start": 3, "end": 4}]
    assert tag_schemes.entities(None, None) == []
