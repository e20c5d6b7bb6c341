"""The model beside its best baseline: paths into an app's metrics, the comparison and its line."""

from seq_templates.evaluation import report


def test_lookup_names_baselines_by_their_name_or_key():
    metrics = {"model": {"accuracy": 0.9}, "baseline": {"name": "tfidf", "accuracy": 0.8},
               "majority_class_accuracy": 0.5,
               "baselines": {"naive": {"mae": 3.0}, "ets": {"mae": 2.0}, "broken": {"mae": float("nan")}}}
    assert report.lookup(metrics, "model.accuracy") == [("model", 0.9)]
    assert report.lookup(metrics, "baseline.accuracy") == [("tfidf", 0.8)]
    assert report.lookup(metrics, "majority_class_accuracy") == [("majority_class_accuracy", 0.5)]
    assert report.lookup(metrics, "baselines.*.mae") == [("naive", 3.0), ("ets", 2.0)]  # NaN left out
    assert report.lookup(metrics, "model.missing") == []


def test_versus_baseline_takes_the_best_baseline_in_the_metrics_direction():
    metrics = {"model": {"mae": 2.5}, "baselines": {"naive": {"mae": 3.0}, "ets": {"mae": 2.0}}}
    comparison = report.versus_baseline(metrics, ("mae", "min", "model.mae", ("baselines.*.mae",)))
    assert comparison["best_baseline"] == "ets" and comparison["baseline"] == 2.0
    assert comparison["margin"] == -0.5 and not comparison["beat"]
    line = report.describe("test", comparison)
    assert line.startswith("WARNING: on test the model does not beat") and "ets 2" in line

    metrics = {"model": {"accuracy": 0.9}, "baseline": {"name": "tfidf", "accuracy": 0.8},
               "majority_class_accuracy": 0.5}
    comparison = report.versus_baseline(
        metrics, ("accuracy", "max", "model.accuracy", ("baseline.accuracy", "majority_class_accuracy")))
    assert comparison["best_baseline"] == "tfidf" and comparison["beat"]
    assert abs(comparison["margin"] - 0.1) < 1e-9
    assert report.describe("validation", comparison).startswith("Validation: the model beats its best")


def test_versus_baseline_is_none_without_figures():
    assert report.versus_baseline({"model": {}}, ("bleu", "max", "model.bleu", ("baseline.bleu",))) is None
    assert "no baseline" in report.describe("test", None)
