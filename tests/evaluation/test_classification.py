"""Classification metrics and the TF-IDF baseline."""

import pytest

from seq_templates.evaluation import baselines
from seq_templates.evaluation import classification


def test_metrics_match_hand_computed_values():
    true = ["a", "a", "b", "b", "c"]
    predicted = ["a", "b", "b", "b", "a"]
    metrics = classification.classification_metrics(true, predicted, ["a", "b", "c"])
    assert metrics["accuracy"] == pytest.approx(0.6)
    assert metrics["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert metrics["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert metrics["per_class"]["c"]["f1"] == 0.0
    expected_macro = (0.5 + 0.8 + 0.0) / 3
    assert metrics["macro_f1"] == pytest.approx(expected_macro)


def test_majority_class_and_baseline():
    assert classification.majority_class_accuracy(["x", "x", "y"], ["x", "y"]) == 0.5
    texts = ["good film", "great film", "bad film", "awful film"] * 5
    labels = ["pos", "pos", "neg", "neg"] * 5
    model = baselines.tfidf_logistic_regression(texts, labels)
    assert list(model.predict(["good", "awful"])) == ["pos", "neg"]
