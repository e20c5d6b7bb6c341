"""Language-model metrics: unknown-token mapping, the n-gram baseline, scores to a summary."""

import math

import numpy as np
import pytest

from seq_templates.evaluation import language_model as lm_metrics


def test_map_unknown_keeps_the_most_frequent_training_tokens():
    splits = {"train": list("aaabbc"), "test": list("abcd")}
    mapped = lm_metrics.map_unknown(splits, 2)
    assert mapped == {"train": ["a", "a", "a", "b", "b", "[UNK]"], "test": ["a", "b", "[UNK]", "[UNK]"]}


def test_ngram_baseline_is_chosen_on_validation_and_scores_test_after_its_first_token():
    text = list("abcabcabcabcabcabc")
    splits = {"train": text, "validation": list("abcabc"), "test": list("abcabx")}
    metrics, choice = lm_metrics.ngram_baseline(splits, 10)
    assert choice["order"] >= 2 and metrics["num_tokens"] == 5
    known = lm_metrics.map_unknown(splits, 10)
    model = lm_metrics.AddKNgramModel(choice["order"], choice["k"], 4).fit(known["train"])
    expected = model.negative_log_likelihood(known["test"], skip_first=1) / 5
    assert metrics["loss"] == pytest.approx(expected)
    assert metrics["perplexity"] == pytest.approx(math.exp(expected))


def test_score_summary_sums_log_probabilities_and_counts():
    metrics = lm_metrics.score_summary({"log_probability": np.array([-2.0, -4.0, 0.0]),
                                        "num_scored": np.array([2, 1, 0])})
    assert metrics["loss"] == pytest.approx(2.0) and metrics["num_tokens"] == 3
    assert metrics["bits_per_token"] == pytest.approx(2.0 / math.log(2))
