"""Seeded splits: disjoint, complete, reproducible, order-preserving."""

import pytest

from seq_templates import errors
from seq_templates.data import splits


def _columns(count=100):
    return [f"text {index}" for index in range(count)], [str(index % 3) for index in range(count)]


def test_split_off_is_disjoint_complete_aligned_and_reproducible():
    kept, taken = splits.split_off(_columns(), 0.2, seed=5)
    assert len(taken[0]) == 20 and len(kept[0]) == 80
    assert sorted(kept[0] + taken[0], key=lambda text: int(text.split()[1])) == _columns()[0]
    assert all(label == str(int(text.split()[1]) % 3) for text, label in zip(*taken))
    assert taken[0] == sorted(taken[0], key=lambda text: int(text.split()[1]))  # original order
    assert splits.split_off(_columns(), 0.2, seed=5) == (kept, taken)
    assert splits.split_off(_columns(), 0.2, seed=6)[1] != taken


def test_add_missing_splits_keeps_given_splits_and_names_the_fix_when_empty():
    given = {"train": _columns(50), "test": (["a"], ["0"])}
    result = splits.add_missing_splits(given, {"test": 0.5, "validation": 0.1}, seed=1)
    assert result["test"] == (["a"], ["0"])
    assert len(result["validation"][0]) == 5 and len(result["train"][0]) == 45
    with pytest.raises(errors.SeqTemplatesError, match="data.validation_fraction"):
        splits.add_missing_splits({"train": _columns(3)}, {"validation": 0.0}, seed=1)


def test_take_at_most():
    assert len(splits.take_at_most(_columns(), 30, seed=2)[0]) == 30
    assert splits.take_at_most(_columns(), None, seed=2) == _columns()
    assert splits.take_at_most(_columns(), 1000, seed=2) == _columns()
