"""PNG plots with matplotlib.

Figures are made with ``matplotlib.figure.Figure`` and drawn by the Agg canvas
directly: no ``pyplot`` state and no global backend switch, so importing this
module changes nothing for a caller that uses matplotlib itself.
"""

import pathlib

import matplotlib.figure


def _new_figure(rows=1, columns=1, figsize=(6.0, 4.0)):
    figure = matplotlib.figure.Figure(figsize=figsize)
    return figure, figure.subplots(rows, columns, squeeze=False)


def save(figure, path, dpi=110):
    """Writes ``figure`` as a PNG at ``path`` through a temporary name, so no half-written file is left.

    Args:
        figure: A ``matplotlib.figure.Figure``.
        path: The PNG file (its folder is created if needed).
        dpi: Resolution.

    Returns:
        The path as a ``pathlib.Path``.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary_path = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(temporary_path, dpi=dpi, bbox_inches="tight")
    temporary_path.replace(path)
    return path


def training_curves(history, path):
    """Plots each metric of a Keras history (train and validation) in its own panel.

    Args:
        history: Dict of metric name to per-epoch values (``val_`` prefixed for
            validation), as in ``history.json``.
        path: Output PNG path.

    Returns:
        The path written.
    """
    names = [name for name in history if not name.startswith("val_")
             and name not in ("learning_rate", "epoch_seconds")]
    figure, axes = _new_figure(1, max(len(names), 1), figsize=(4.5 * max(len(names), 1), 3.5))
    for axis, name in zip(axes[0], names):
        epochs = range(1, len(history[name]) + 1)
        axis.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], marker="o", label="validation")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend()
    return save(figure, path)


def confusion_matrix(matrix, label_names, path, title="Confusion matrix"):
    """Plots a confusion matrix (rows true, columns predicted) with counts in cells."""
    size = max(4.0, 0.6 * len(label_names) + 2)
    figure, axes = _new_figure(figsize=(size, size))
    axis = axes[0][0]
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    axis.set_xticks(range(len(label_names)), label_names, rotation=45, ha="right")
    axis.set_yticks(range(len(label_names)), label_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    peak = max((max(row) for row in matrix), default=0)
    for row_index, row in enumerate(matrix):
        for column_index, value in enumerate(row):
            axis.text(column_index, row_index, str(value), ha="center", va="center",
                      color="white" if value > peak / 2 else "black")
    return save(figure, path)


def forecast(history_times, history, future_times, truth, predicted, path, lower=None, upper=None,
             baseline=None, baseline_name="baseline", title="Forecast", value_name="value"):
    """Plots one forecast: the history before the origin, the truth after it, the forecast and its interval.

    Args:
        history_times: Times of the history values.
        history: Values before the origin.
        future_times: Times of the forecast steps.
        truth: True values at ``future_times``.
        predicted: Forecast values at ``future_times``.
        path: Output PNG path.
        lower: Lower bound of the prediction interval (or None).
        upper: Upper bound of the prediction interval (or None).
        baseline: A baseline forecast at ``future_times`` (or None).
        baseline_name: The baseline's legend label.
        title: Figure title.
        value_name: The y-axis label.

    Returns:
        The path written.
    """
    figure, axes = _new_figure(figsize=(8.0, 3.8))
    axis = axes[0][0]
    axis.plot(history_times, history, color="0.35", label="history")
    axis.plot(future_times, truth, color="black", marker=".", label="truth")
    if lower is not None and upper is not None:
        axis.fill_between(future_times, lower, upper, color="tab:blue", alpha=0.2, label="interval")
    axis.plot(future_times, predicted, color="tab:blue", marker=".", label="forecast")
    if baseline is not None:
        axis.plot(future_times, baseline, color="tab:orange", linestyle="--", label=baseline_name)
    axis.set_title(title)
    axis.set_ylabel(value_name)
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.autofmt_xdate()
    return save(figure, path)
