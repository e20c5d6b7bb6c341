"""Reproducible splits: carve validation and test examples out of the training split.

A split is one of three kinds of data:

* rows: a tuple of aligned columns (texts and labels, token lists and tag lists,
  sources and targets);
* a corpus: one ``str`` (language modelling);
* a table: a ``pandas.DataFrame`` whose rows are in time order (forecasting).

:func:`carve` takes the missing validation and test splits out of train with one
of three strategies: ``shuffle`` (a seeded shuffle of the rows, each part kept in
its original order; :func:`add_missing_splits`), ``chronological`` or
``position`` (contiguous blocks: test is the end of the data, validation the
block just before it, train the rest; nothing is shared across a boundary).

A shuffle keeps related rows together (:func:`related_groups`): a row whose text (the
first column: a string or a token list) repeats another's, or is a contiguous run of
another row's words, goes to the same split as that row. Phrase corpora (SST-2 labels
every phrase of a sentence) and phrase-book pairs (the same sentence with several
translations) otherwise put parts of a validation example in train, and validation
scores what the model memorised.
"""

import collections
import random
import re

import pandas

from seq_templates import errors

STRATEGIES = ("shuffle", "chronological", "position")
WORD = re.compile(r"\w+")
MAX_SPAN_WORDS = 64  # rows of up to this many words give their runs of words to the rows inside them
MAX_GROUP_SHARE = 0.05  # a group over this share of the rows: too few texts to keep apart, rows go one by one
# Over this share of the rows inside a longer row: a corpus labelling the parts of its texts (SST-2:
# 87 %; sentence files with some short sentences repeated inside longer ones: 7 % or less), whose
# carved splits score whole texts only (:func:`add_missing_splits`).
PHRASE_CORPUS_SHARE = 0.5


def related_groups(column, max_span_words=MAX_SPAN_WORDS):
    """A group number per row: rows whose text repeats another's or lies inside it share a group.

    Texts are compared as lower-cased runs of word characters (``"Go."`` lies inside
    ``"Go away!"``). The longest texts are taken first; each claims every shorter text
    that is a contiguous run of its words (for texts of at most ``max_span_words``
    words; longer ones claim their repeats only) and that no longer text claimed.

    Args:
        column: The rows' texts (``str``) or token lists. Any other column (numbers,
            labels) gives every row its own group.
        max_span_words: The longest text whose runs of words are looked up.

    Returns:
        A list of group numbers, numbered in order of first appearance.
    """
    keys = []
    for value in column:
        if isinstance(value, str):
            keys.append(tuple(WORD.findall(value.lower())))
        elif isinstance(value, (list, tuple)) and all(isinstance(token, str) for token in value):
            keys.append(tuple(token.lower() for token in value))
        else:
            return list(range(len(column)))
    distinct, owner = set(keys), {}
    # Longest first, ties in text order: a set's own order changes with each process's hash seed.
    for key in sorted(distinct, key=lambda key: (-len(key), key)):
        if key in owner:
            continue
        owner[key] = key
        if len(key) <= max_span_words:
            for start in range(len(key)):
                for stop in range(start + 1, len(key) + 1):
                    span = key[start:stop]
                    if span in distinct and span not in owner:
                        owner[span] = key
    numbers = {}
    return [numbers.setdefault(owner[key], len(numbers)) for key in keys]


def rows_inside(column, groups):
    """The rows whose text has fewer words than the longest text of their group (a part of it)."""
    lengths = [len(WORD.findall(value.lower())) if isinstance(value, str) else len(value) for value in column]
    longest = collections.defaultdict(int)
    for group, length in zip(groups, lengths):
        longest[group] = max(longest[group], length)
    return {row for row, (group, length) in enumerate(zip(groups, lengths)) if length < longest[group]}


def groups_to_keep(column):
    """:func:`related_groups`, or one group per row when a group holds over
    :data:`MAX_GROUP_SHARE` of the rows (a few texts repeated: kept together, a split
    could miss whole classes), and a line that says which (None when no rows are related).
    """
    groups = related_groups(column)
    sizes = collections.Counter(groups)
    if len(sizes) == len(groups):
        return groups, None
    related = len(groups) - len(sizes)
    largest = max(sizes.values())
    if largest > MAX_GROUP_SHARE * len(groups):
        return list(range(len(groups))), (
            f"{related:,} of {len(groups):,} rows repeat or lie inside another row's text, {largest:,} "
            f"in one group (over {MAX_GROUP_SHARE:.0%}): rows are split one by one")
    return groups, (f"{related:,} of {len(groups):,} rows repeat or lie inside another row's text; "
                    f"each goes to the split of that row ({len(sizes):,} groups)")


def split_off(columns, fraction, seed, keep_related=True):
    """Splits aligned columns into ``(kept, taken)`` after a seeded shuffle of the rows.

    With ``keep_related``, rows are shuffled in :func:`groups_to_keep` (a group goes to
    one side whole), so ``taken`` may hold a few rows more than ``fraction``; with no
    related rows this is a plain shuffle of the rows.

    Args:
        columns: A tuple of equally long lists (e.g. ``(texts, labels)``).
        fraction: Share of the rows to take, rounded to the nearest row.
        seed: Shuffle seed: the same seed takes the same rows.
        keep_related: Whether related rows go to one side together (False for a
            subsample of one split, where nothing can leak).

    Returns:
        ``(kept, taken)``: two tuples of lists shaped like ``columns``, each in the
        original row order.
    """
    groups = groups_to_keep(columns[0])[0] if keep_related else list(range(len(columns[0])))
    kept_rows, taken_rows = split_rows(groups, fraction, seed)
    return pick_rows(columns, kept_rows), pick_rows(columns, taken_rows)


def split_rows(groups, fraction, seed):
    """``(kept rows, taken rows)``, each in row order: whole groups (one id per row) after a seeded shuffle."""
    rows_of_group = collections.defaultdict(list)
    for row, group in enumerate(groups):
        rows_of_group[group].append(row)
    order = sorted(rows_of_group)
    random.Random(seed).shuffle(order)
    count, taken_rows = int(round(len(groups) * fraction)), []
    for group in order:
        if len(taken_rows) >= count:
            break
        taken_rows.extend(rows_of_group[group])
    taken = set(taken_rows)
    return [row for row in range(len(groups)) if row not in taken], sorted(taken)


def pick_rows(columns, rows):
    """The ``rows`` of each aligned column, as a tuple of lists."""
    return tuple([column[row] for row in rows] for column in columns)


def add_missing_splits(splits, fractions, seed, setting_prefix="data."):
    """Carves each split named in ``fractions`` that ``splits`` lacks out of ``splits["train"]``.

    A **phrase corpus** (over :data:`PHRASE_CORPUS_SHARE` of the rows lie inside a longer row, as
    when every phrase of a sentence is labelled) gives its carved splits whole texts only: a
    carved group's parts are left out of both sides, so validation and test score what a user
    gives (whole texts), not mostly the short phrases a model learns from.

    Args:
        splits: Dict of split name to aligned columns; must hold ``"train"``.
        fractions: Dict of split name to the fraction of train to take, in the
            order to take them (e.g. ``{"test": 0.1, "validation": 0.1}``).
        seed: Shuffle seed.
        setting_prefix: Prefix of the settings named in errors.

    Returns:
        ``splits`` with the missing splits added and train reduced.

    Raises:
        SeqTemplatesError: A carved split would be empty.
    """
    if all(name in splits for name in fractions):
        return splits
    groups, said = groups_to_keep(splits["train"][0])  # once: a carve takes whole groups, the rest stay whole
    if said:
        print(f"Splits: {said}.", flush=True)
    inside = rows_inside(splits["train"][0], groups) if said else set()
    phrase_corpus = len(inside) > PHRASE_CORPUS_SHARE * len(groups)
    for name, fraction in fractions.items():
        if name in splits:
            continue
        kept_rows, taken_rows = split_rows(groups, fraction, seed)
        if phrase_corpus:
            whole = [row for row in taken_rows if row not in inside]
            print(f"Splits: {len(inside) / len(groups):.0%} of the rows lie inside a longer row (a phrase corpus); "
                  f"the {name} split scores its {len(whole):,} whole texts and leaves out the "
                  f"{len(taken_rows) - len(whole):,} phrases inside them.", flush=True)
            taken_rows = whole
        splits["train"], splits[name] = pick_rows(splits["train"], kept_rows), pick_rows(splits["train"], taken_rows)
        numbers = {}  # renumbered in order of first appearance, as related_groups numbers the rows left
        if phrase_corpus:  # the row numbers of the parts, in what train keeps
            position = {row: index for index, row in enumerate(kept_rows)}
            inside = {position[row] for row in inside if row in position}
        groups = [numbers.setdefault(groups[row], len(numbers)) for row in kept_rows]
        if not splits[name][0]:
            raise errors.SeqTemplatesError(
                f"The {name} split is empty; give {setting_prefix}{name}_path or a larger "
                f"{setting_prefix}{name}_fraction.")
    return splits


def take_at_most(columns, max_rows, seed):
    """Returns a seeded random subset of at most ``max_rows`` rows (all of them when None).

    A text (``str``, a language model's corpus) keeps its first ``max_rows`` characters.
    """
    if isinstance(columns, str):
        return columns[:max_rows] if max_rows else columns
    if not max_rows or max_rows >= len(columns[0]):
        return columns
    kept, _ = split_off(columns, 1.0 - max_rows / len(columns[0]), seed, keep_related=False)
    return kept


def strategy_for_recipe(recipe, default="shuffle"):
    """Returns the split strategy a dataset recipe asks for.

    The recipe's top-level ``split_strategy``; a recipe without one gets ``default``
    (the calling app's: a forecaster passes ``chronological``, a language model
    ``position``).

    Args:
        recipe: A recipe dict (see ``seq_templates.data.registry``).
        default: The strategy of a recipe that names none.

    Returns:
        One of :data:`STRATEGIES`.

    Raises:
        SeqTemplatesError: The recipe names an unknown strategy.
    """
    strategy = recipe.get("split_strategy") or default
    if strategy not in STRATEGIES:
        raise errors.SeqTemplatesError(
            f"datasets/{recipe.get('name')}.yaml: split_strategy expects one of "
            f"{', '.join(STRATEGIES)}, received '{strategy}'."
        )
    return strategy


def carve(splits, fractions, strategy, seed, setting_prefix="data."):
    """Adds the splits named in ``fractions`` that ``splits`` lacks, taken from train.

    A dict with an ``"all"`` split and no ``"train"`` has ``all`` renamed to train
    first. Fractions of splits that already exist are ignored.

    * ``shuffle``: rows only (tuples of aligned lists or a DataFrame): a seeded
      shuffle; each split takes its fraction of what train holds at that point,
      in the order of ``fractions`` (exactly :func:`add_missing_splits`).
    * ``chronological`` / ``position``: contiguous blocks of the data as given
      (rows, a DataFrame's rows, a string's characters): test is the last
      ``fractions["test"]`` of it, validation the ``fractions["validation"]``
      just before, train the rest; fractions are of the data before carving and
      ``seed`` is unused.

    Args:
        splits: Dict of split name to data: a tuple of aligned lists, a ``str``
            or a ``pandas.DataFrame``; all splits of one kind.
        fractions: Dict of split name to fraction, e.g.
            ``{"test": 0.1, "validation": 0.1}``.
        strategy: One of :data:`STRATEGIES`.
        seed: Shuffle seed (``shuffle`` only).
        setting_prefix: Prefix of the settings named in errors
            (``data.split_strategy``, ``data.test_fraction``, ``data.test_path``).

    Returns:
        A new dict with ``train`` and the carved splits (the input is not changed).

    Raises:
        SeqTemplatesError: For an unknown strategy, a fraction outside [0, 1),
            no train data, shuffling a corpus string, or a split (train included)
            left empty.
    """
    if strategy not in STRATEGIES:
        raise errors.SeqTemplatesError(
            f"{setting_prefix}split_strategy expects one of {', '.join(STRATEGIES)}, "
            f"received '{strategy}'."
        )
    splits = dict(splits)
    if "train" not in splits and "all" in splits:
        splits["train"] = splits.pop("all")
    if "train" not in splits:
        raise errors.SeqTemplatesError(
            f"No training data: the splits are {', '.join(splits) or 'none'}; give {setting_prefix}path."
        )
    missing = {name: fraction for name, fraction in fractions.items() if name not in splits}
    for name, fraction in missing.items():
        if fraction is None or not 0 <= fraction < 1:
            raise errors.SeqTemplatesError(
                f"{setting_prefix}{name}_fraction expects a number in [0, 1), received {fraction!r}."
            )
    if not missing:
        return splits
    if strategy == "shuffle":
        if isinstance(splits["train"], str):
            raise errors.SeqTemplatesError(
                f"Cannot shuffle a text corpus into splits; set {setting_prefix}split_strategy to "
                "position (validation and test cut from the end of the text)."
            )
        if isinstance(splits["train"], pandas.DataFrame):
            splits.update(_shuffle_frame(splits["train"], missing, seed, setting_prefix))
        else:
            splits = add_missing_splits(splits, missing, seed, setting_prefix)
    else:
        splits.update(_cut_blocks(splits["train"], missing))
    for name in ["train", *missing]:
        if _length(splits[name]) == 0:
            fix = (f"lower {' and '.join(f'{setting_prefix}{other}_fraction' for other in missing)}"
                   if name == "train" else
                   f"give {setting_prefix}{name}_path or a larger {setting_prefix}{name}_fraction")
            raise errors.SeqTemplatesError(f"The {name} split is empty; {fix}.")
    return splits


def _length(data):
    if isinstance(data, (str, pandas.DataFrame)):
        return len(data)
    return len(data[0])


def _take(data, start, stop):
    if isinstance(data, str):
        return data[start:stop]
    if isinstance(data, pandas.DataFrame):
        return data.iloc[start:stop].copy()
    return tuple(list(column[start:stop]) for column in data)


def _cut_blocks(data, missing):
    """Cuts test from the end, validation just before it, train the rest."""
    total = _length(data)
    order = [name for name in ("test", "validation") if name in missing]
    order += [name for name in missing if name not in order]
    parts, stop = {}, total
    for name in order:
        count = int(round(total * missing[name]))
        parts[name] = _take(data, max(stop - count, 0), stop)
        stop = max(stop - count, 0)
    parts["train"] = _take(data, 0, stop)
    return parts


def _shuffle_frame(frame, missing, seed, setting_prefix):
    """The seeded shuffle of :func:`add_missing_splits` on a DataFrame's rows."""
    rows = (list(range(len(frame))),)
    parts = add_missing_splits({"train": rows}, missing, seed, setting_prefix)
    return {name: frame.iloc[part[0]] for name, part in parts.items()}
