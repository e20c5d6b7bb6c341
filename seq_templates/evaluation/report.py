"""Honest reports: did the model beat its best simple baseline, on validation and on test, by how much?

An app names its headline figure in ``HEADLINE``: ``(metric name, "max" or "min", path of the
model's value, paths of the baselines' values)``, paths into what its ``evaluate`` returns,
dotted, ``*`` matching every key at that level (``baselines.*.mae``). :func:`versus_baseline`
reads them; :func:`describe` is the line printed, a ``WARNING`` when the model did not win.
"""

import math


def lookup(metrics, path):
    """``[(name, value)]`` for a dotted ``path`` into ``metrics`` (``*`` matches every key there).

    A name is the path with each ``*`` replaced by the key it matched, or, where the path passes
    a dict with a ``name`` (``baseline: {"name": "tfidf", ...}``), that name.
    """
    found = [("", metrics)]
    for part in path.split("."):
        step = []
        for name, value in found:
            if not isinstance(value, dict):
                continue
            keys = list(value) if part == "*" else [part] if part in value else []
            for key in keys:
                label = value.get("name") if isinstance(value.get("name"), str) else name
                step.append(((label + "." if label else "") + key if part == "*" else label or "", value[key]))
        found = step
    results = []
    for name, value in found:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            results.append((name or path.split(".")[0], float(value)))
    return results


def versus_baseline(metrics, headline):
    """Compares the model's headline figure with the best baseline's.

    Args:
        metrics: What the app's ``evaluate`` returned.
        headline: The app's ``HEADLINE``.

    Returns:
        ``{"metric", "model", "best_baseline", "baseline", "margin", "relative_margin", "beat"}``:
        ``margin`` is how much better the model is (negative: worse), in the metric's units;
        None when the metrics hold no such figures.
    """
    metric, mode, model_path, baseline_paths = headline
    model = lookup(metrics, model_path)
    baselines = [item for path in baseline_paths for item in lookup(metrics, path)]
    if not model or not baselines:
        return None
    model_value = model[0][1]
    better = max if mode == "max" else min
    best_name, best_value = better(baselines, key=lambda item: item[1])
    margin = model_value - best_value if mode == "max" else best_value - model_value
    return {"metric": metric, "model": model_value, "best_baseline": best_name, "baseline": best_value,
            "margin": margin, "relative_margin": margin / abs(best_value) if best_value else None,
            "beat": margin > 0}


def describe(split, comparison):
    """The printed line for one split: ``Validation: accuracy 0.84 beats tfidf (0.80) by 0.04``."""
    if comparison is None:
        return f"{split.capitalize()}: no baseline to compare with"
    figures = (f"{comparison['metric']} {comparison['model']:.4g} vs {comparison['best_baseline']} "
               f"{comparison['baseline']:.4g}")
    relative = comparison["relative_margin"]
    by = f"{abs(comparison['margin']):.4g}" + (f" ({abs(relative):.1%})" if relative is not None else "")
    if comparison["beat"]:
        return f"{split.capitalize()}: the model beats its best baseline: {figures}, better by {by}"
    return (f"WARNING: on {split} the model does not beat its best baseline: {figures}, worse by {by}; "
            "train longer (train.max_minutes), or see the app README's settings")
