"""Splits: disjoint, complete, reproducible, order-preserving, for rows, corpora and tables."""

import pandas
import pytest

from seq_templates import errors
from seq_templates.data import registry
from seq_templates.data import splits

FRACTIONS = {"test": 0.1, "validation": 0.2}


def _columns(count=100):
    return [f"text {index}" for index in range(count)], [str(index % 3) for index in range(count)]


def _frame(count=50):
    index = pandas.date_range("2020-01-01", periods=count, freq="h", name="time")
    return pandas.DataFrame({"value": [float(number) for number in range(count)]}, index=index)


def _corpus():
    return "".join(f"line {index}\n" for index in range(100))


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


# region carve
def test_shuffle_on_rows_equals_add_missing_splits_and_handles_all():
    carved = splits.carve({"all": _columns()}, FRACTIONS, "shuffle", seed=3)
    expected = splits.add_missing_splits({"train": _columns()}, FRACTIONS, seed=3)
    assert carved == expected and "all" not in carved
    together = carved["train"][0] + carved["validation"][0] + carved["test"][0]
    assert sorted(together) == sorted(_columns()[0]) and len(set(together)) == 100
    assert carved["validation"][0] != _columns()[0][70:90]  # not a contiguous block


@pytest.mark.parametrize("strategy", ["chronological", "position"])
def test_contiguous_strategies_on_rows(strategy):
    texts, labels = _columns()
    carved = splits.carve({"all": (texts, labels)}, FRACTIONS, strategy, seed=3)
    assert carved["test"] == (texts[90:], labels[90:])
    assert carved["validation"] == (texts[70:90], labels[70:90])
    assert carved["train"] == (texts[:70], labels[:70])


@pytest.mark.parametrize("strategy", ["chronological", "position"])
def test_contiguous_strategies_on_a_corpus_cut_by_characters(strategy):
    corpus = _corpus()
    carved = splits.carve({"all": corpus}, FRACTIONS, strategy, seed=3)
    size = len(corpus)
    assert len(carved["test"]) == round(size * 0.1) and len(carved["validation"]) == round(size * 0.2)
    assert carved["train"] + carved["validation"] + carved["test"] == corpus
    assert corpus.endswith(carved["test"]) and corpus.startswith(carved["train"])


def test_shuffle_refuses_a_corpus_and_names_the_setting():
    with pytest.raises(errors.SeqTemplatesError, match=r"set data.split_strategy to position"):
        splits.carve({"all": _corpus()}, FRACTIONS, "shuffle", seed=3)


@pytest.mark.parametrize("strategy", ["chronological", "position"])
def test_contiguous_strategies_on_a_table(strategy):
    frame = _frame()
    carved = splits.carve({"all": frame}, FRACTIONS, strategy, seed=3)
    assert carved["test"].index.equals(frame.index[45:])
    assert carved["validation"].index.equals(frame.index[35:45])
    assert carved["train"].index.equals(frame.index[:35])
    assert carved["train"].index.max() < carved["validation"].index.min()
    assert carved["validation"].index.max() < carved["test"].index.min()


def test_shuffle_on_a_table_is_seeded_disjoint_complete_and_time_ordered():
    frame = _frame()
    carved = splits.carve({"train": frame}, FRACTIONS, "shuffle", seed=3)
    parts = [carved[name].index for name in ("train", "validation", "test")]
    assert [len(part) for part in parts] == [36, 9, 5]  # test 10% of 50, validation 20% of the rest
    assert sorted(parts[0].append(parts[1]).append(parts[2])) == list(frame.index)
    assert all(part.is_monotonic_increasing for part in parts)
    assert not parts[2].equals(frame.index[45:])
    again = splits.carve({"train": frame}, FRACTIONS, "shuffle", seed=3)
    assert again["test"].index.equals(parts[2])


def test_existing_splits_are_kept_and_their_fractions_ignored():
    texts, labels = _columns()
    given = {"train": (texts, labels), "test": (["x"], ["0"])}
    carved = splits.carve(given, FRACTIONS, "chronological", seed=3)
    assert carved["test"] == (["x"], ["0"])
    assert carved["validation"] == (texts[80:], labels[80:]) and carved["train"] == (texts[:80], labels[:80])
    assert given["train"] == (texts, labels) and "validation" not in given  # the input is not changed
    whole = {"train": _corpus(), "validation": "v", "test": "t"}
    assert splits.carve(whole, FRACTIONS, "position", seed=3) == whole


@pytest.mark.parametrize("strategy", splits.STRATEGIES)
def test_empty_split_names_fraction_and_path(strategy):
    data = _frame(4) if strategy == "shuffle" else _corpus()[:4]
    with pytest.raises(errors.SeqTemplatesError,
                       match=r"The validation split is empty; give data.validation_path or a larger "
                             r"data.validation_fraction"):
        splits.carve({"all": data}, {"test": 0.5, "validation": 0.1}, strategy, seed=1)


def test_train_left_empty_and_bad_settings():
    with pytest.raises(errors.SeqTemplatesError, match=r"The train split is empty; lower data.test_fraction"):
        splits.carve({"all": _columns(4)}, {"test": 0.9}, "chronological", seed=1)
    with pytest.raises(errors.SeqTemplatesError, match=r"data.split_strategy expects one of shuffle"):
        splits.carve({"all": _columns()}, FRACTIONS, "random", seed=1)
    with pytest.raises(errors.SeqTemplatesError, match=r"data.test_fraction expects a number in \[0, 1\)"):
        splits.carve({"all": _columns()}, {"test": 1.5}, "shuffle", seed=1)
    with pytest.raises(errors.SeqTemplatesError, match=r"No training data"):
        splits.carve({"test": _columns()}, FRACTIONS, "shuffle", seed=1)
# endregion


def test_strategy_for_recipe():
    expected = {"airline_passengers": "chronological", "daily_min_temperatures": "chronological",
                "monthly_sunspots": "chronological", "beijing_pm25": "chronological",
                "tiny_shakespeare": "position", "spa_eng": "shuffle", "conll2003": "shuffle",
                "sst2": "shuffle", "imdb": "shuffle", "synthetic_sentiment": "shuffle"}
    for name, strategy in expected.items():
        assert splits.strategy_for_recipe(registry.get_recipe(name)) == strategy
    assert splits.strategy_for_recipe({"name": "x", "task": "forecasting"}) == "shuffle"
    assert splits.strategy_for_recipe({"name": "x"}, default="chronological") == "chronological"
    assert splits.strategy_for_recipe({"name": "x", "split_strategy": "position"}, default="shuffle") == "position"
    with pytest.raises(errors.SeqTemplatesError, match=r"datasets/x.yaml: split_strategy expects"):
        splits.strategy_for_recipe({"name": "x", "split_strategy": "random"})


def test_phrases_of_one_sentence_and_repeats_go_to_the_same_split():
    # Two "sentences", each with its phrases (as SST-2 labels them), and a repeated pair text.
    sentences = [f"film {index} was a slow and quiet delight {index}" for index in range(40)]
    texts, labels = [], []
    for index, sentence in enumerate(sentences):
        words = sentence.split()
        for phrase in (sentence, " ".join(words[:4]), " ".join(words[-3:]), sentence.upper() + "!"):
            texts.append(phrase)
            labels.append(index)  # the sentence each row came from
    kept, taken = splits.split_off((texts, labels), 0.25, seed=7)
    assert set(kept[1]).isdisjoint(taken[1])  # no sentence on both sides
    assert len(taken[0]) == 40  # ten whole sentences of four rows
    assert len(kept[0]) + len(taken[0]) == len(texts)


def test_a_phrase_corpus_validates_on_whole_texts_only(capsys):
    # Every sentence with three of its phrases (75 % of the rows lie inside a longer one), as SST-2 labels them.
    texts, labels = [], []
    for index in range(40):
        words = [f"word{index}x{position}" for position in range(9)]
        for phrase in (" ".join(words), " ".join(words[:4]), " ".join(words[-3:]), " ".join(words[2:6])):
            texts.append(phrase)
            labels.append(index)
    carved = splits.add_missing_splits({"train": (texts, labels)}, {"validation": 0.25}, seed=7)
    validation_texts, validation_sentences = carved["validation"]
    assert len(validation_texts) == 10 and all(len(text.split()) == 9 for text in validation_texts)
    assert set(validation_sentences).isdisjoint(carved["train"][1])  # the left-out phrases are not trained on
    assert len(carved["train"][0]) == 120
    assert "75% of the rows lie inside a longer row (a phrase corpus); the validation split scores its 10 whole " \
           "texts and leaves out the 30 phrases inside them" in capsys.readouterr().out
    # A sentence file with a few sentences inside longer ones is no phrase corpus: its splits keep every row.
    sentences = [f"go away {index}" for index in range(30)] + ["go away"] * 3
    carved = splits.add_missing_splits({"train": (sentences, list(range(33)))}, {"validation": 0.2}, seed=1)
    assert len(carved["train"][0]) + len(carved["validation"][0]) == 33


def test_related_groups_reads_token_lists_and_leaves_other_columns_alone():
    tokens = [["EU", "rejects", "German", "call"], ["german", "call"], ["Peter", "Blackburn"]]
    assert splits.related_groups(tokens) == [0, 0, 1]
    assert splits.related_groups([3, 3, 4]) == [0, 1, 2]
    # A long text gives only its repeats: its runs of words are not looked up.
    long_text = " ".join(f"w{index}" for index in range(70))
    assert splits.related_groups([long_text, "w1 w2", long_text], max_span_words=64) == [0, 1, 0]


def test_a_few_texts_repeated_are_split_row_by_row(capsys):
    # Three texts, 30 times each: kept together, one split would hold all of a class.
    rows = [("good", "positive"), ("bad", "negative"), ("okay", "neutral")] * 30
    carved = splits.add_missing_splits({"train": tuple(map(list, zip(*rows)))}, {"validation": 0.2}, seed=0)
    assert set(carved["train"][1]) == set(carved["validation"][1]) == {"positive", "negative", "neutral"}
    assert "30 in one group (over 5%): rows are split one by one" in capsys.readouterr().out


def test_related_groups_are_the_same_in_every_process():
    """A text inside two longer ones goes with the same one whatever the process's hash seed."""
    import os
    import subprocess
    import sys

    script = ("from seq_templates.data import splits; texts = [t for i in range(40) for t in "
              "(f'alpha{i} shared{i}', f'beta{i} shared{i}', f'shared{i}')]; print(splits.related_groups(texts))")
    answers = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in range(4)}
    assert len(answers) == 1
