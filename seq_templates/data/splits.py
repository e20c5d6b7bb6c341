"""Reproducible splits: carve validation and test examples out of the training split.

Every template stores a split as a tuple of aligned columns (texts and labels,
token lists and tag lists, sources and targets); these functions shuffle the row
numbers with a seed and keep each part in its original order.
"""

import random

from seq_templates import errors


def split_off(columns, fraction, seed):
    """Splits aligned columns into ``(kept, taken)`` after a seeded shuffle of the rows.

    Args:
        columns: A tuple of equally long lists (e.g. ``(texts, labels)``).
        fraction: Share of the rows to take, rounded to the nearest row.
        seed: Shuffle seed: the same seed takes the same rows.

    Returns:
        ``(kept, taken)``: two tuples of lists shaped like ``columns``, each in the
        original row order.
    """
    order = list(range(len(columns[0])))
    random.Random(seed).shuffle(order)
    count = int(round(len(order) * fraction))
    taken_rows, kept_rows = sorted(order[:count]), sorted(order[count:])
    pick = lambda rows: tuple([column[row] for row in rows] for column in columns)  # noqa: E731
    return pick(kept_rows), pick(taken_rows)


def add_missing_splits(splits, fractions, seed):
    """Carves each split named in ``fractions`` that ``splits`` lacks out of ``splits["train"]``.

    Args:
        splits: Dict of split name to aligned columns; must hold ``"train"``.
        fractions: Dict of split name to the fraction of train to take, in the
            order to take them (e.g. ``{"test": 0.1, "validation": 0.1}``).
        seed: Shuffle seed.

    Returns:
        ``splits`` with the missing splits added and train reduced.

    Raises:
        SeqTemplatesError: A carved split would be empty.
    """
    for name, fraction in fractions.items():
        if name in splits:
            continue
        splits["train"], splits[name] = split_off(splits["train"], fraction, seed)
        if not splits[name][0]:
            raise errors.SeqTemplatesError(
                f"The {name} split is empty; give data.{name}_path or a larger data.{name}_fraction.")
    return splits


def take_at_most(columns, max_rows, seed):
    """Returns a seeded random subset of at most ``max_rows`` rows (all of them when None)."""
    if not max_rows or max_rows >= len(columns[0]):
        return columns
    kept, _ = split_off(columns, 1.0 - max_rows / len(columns[0]), seed)
    return kept
