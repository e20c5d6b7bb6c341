"""Classification metrics with scikit-learn: accuracy, macro-F1, per-class report, confusion."""

import numpy as np
from sklearn import metrics


def classification_metrics(true_labels, predicted_labels, label_names):
    """Computes the standard classification report.

    Args:
        true_labels: Sequence of true label strings.
        predicted_labels: Sequence of predicted label strings.
        label_names: All labels, in the order used for the report and matrix.

    Returns:
        A JSON-serializable dict with ``accuracy``, ``macro_f1``, ``per_class``
        (precision, recall, f1, support per label) and ``confusion_matrix``
        (rows true, columns predicted, in ``label_names`` order).
    """
    true_labels = list(true_labels)
    predicted_labels = list(predicted_labels)
    label_names = list(label_names)
    report = metrics.classification_report(
        true_labels, predicted_labels, labels=label_names, output_dict=True, zero_division=0
    )
    per_class = {
        name: {key: float(report[name][key]) for key in ("precision", "recall", "f1-score", "support")}
        for name in label_names
    }
    for values in per_class.values():
        values["f1"] = values.pop("f1-score")
        values["support"] = int(values["support"])
    matrix = metrics.confusion_matrix(true_labels, predicted_labels, labels=label_names)
    return {
        "accuracy": float(metrics.accuracy_score(true_labels, predicted_labels)),
        "macro_f1": float(metrics.f1_score(true_labels, predicted_labels, labels=label_names,
                                           average="macro", zero_division=0)),
        "per_class": per_class,
        "confusion_matrix": np.asarray(matrix).tolist(),
        "labels": label_names,
    }


def majority_class_accuracy(train_labels, test_labels):
    """Accuracy of always predicting the most frequent training label."""
    values, counts = np.unique(np.asarray(list(train_labels)), return_counts=True)
    majority = values[np.argmax(counts)]
    return float(np.mean(np.asarray(list(test_labels)) == majority))
