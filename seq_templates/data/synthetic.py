"""Small datasets the project generates itself, so every template runs offline.

The sentiment set is built so that word order matters. Each review is made of
clauses such as ``the plot was not good`` whose polarity flips with ``not``, and
reviews with two clauses of opposite polarity take the polarity of the clause
that the connective puts last in meaning (``X but Y`` -> Y, ``although X , Y``
-> Y, ``Y , although X`` -> Y). Both clause orders use the same words, so a
bag-of-words model cannot tell many pairs apart while a recurrent model can.
"""

import pathlib
import random

POSITIVE_WORDS = (
    "good", "great", "excellent", "wonderful", "brilliant", "superb", "enjoyable",
    "delightful", "charming", "moving", "clever", "gripping", "fun", "beautiful",
)
NEGATIVE_WORDS = (
    "bad", "awful", "terrible", "boring", "dull", "weak", "clumsy", "tedious",
    "forgettable", "painful", "bland", "messy", "lifeless", "predictable",
)
ASPECTS = (
    "the plot", "the acting", "the story", "the script", "the cast", "the music",
    "the ending", "the dialogue", "the pacing", "the soundtrack", "the direction",
    "the film", "the movie", "the visuals", "the lead", "the humour",
)
INTENSIFIERS = ("", "", "", "really ", "very ", "quite ", "truly ")
VERBS = ("was", "is", "felt", "seemed")

LABEL_NAMES = ("negative", "positive")


def _clause(generator, polarity):
    """A clause with the given polarity (1 positive, 0 negative)."""
    negated = generator.random() < 0.4
    word_polarity = 1 - polarity if negated else polarity
    word = generator.choice(POSITIVE_WORDS if word_polarity else NEGATIVE_WORDS)
    negation = "not " if negated else ""
    return (
        f"{generator.choice(ASPECTS)} {generator.choice(VERBS)} {negation}"
        f"{generator.choice(INTENSIFIERS)}{word}"
    )


def sentiment_example(generator):
    """Draws one (text, label) pair; ``label`` is ``negative`` or ``positive``."""
    polarity = generator.randint(0, 1)
    form = generator.random()
    if form < 0.3:
        text = _clause(generator, polarity)
    else:
        main_clause = _clause(generator, polarity)
        other_clause = _clause(generator, 1 - polarity)
        if form < 0.55:
            text = f"{other_clause} but {main_clause}"
        elif form < 0.8:
            text = f"although {other_clause} , {main_clause}"
        else:
            text = f"{main_clause} , although {other_clause}"
    return text, LABEL_NAMES[polarity]


def sentiment_splits(num_train=6000, num_validation=1000, num_test=1000, seed=1234):
    """Generates the offline sentiment dataset.

    Args:
        num_train: Training examples.
        num_validation: Validation examples.
        num_test: Test examples.
        seed: Seed of the generator; the same seed gives the same data.

    Returns:
        A dict ``{"train": (texts, labels), "validation": ..., "test": ...}``.
    """
    generator = random.Random(seed)
    splits = {}
    for name, size in (("train", num_train), ("validation", num_validation), ("test", num_test)):
        pairs = [sentiment_example(generator) for _ in range(size)]
        splits[name] = ([text for text, _ in pairs], [label for _, label in pairs])
    return splits


def write_sentiment_tsv(directory, seed=1234):
    """Writes ``train.tsv``, ``validation.tsv`` and ``test.tsv`` (``text<TAB>label``).

    Files are written to a temp name and renamed, so a reader never sees half a file.

    Args:
        directory: Destination folder (created if needed).
        seed: Seed of the generator.

    Returns:
        The folder as a ``pathlib.Path``.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, (texts, labels) in sentiment_splits(seed=seed).items():
        lines = ["text\tlabel"] + [f"{text}\t{label}" for text, label in zip(texts, labels)]
        temporary_path = directory / f".{name}.tsv.tmp"
        temporary_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        temporary_path.replace(directory / f"{name}.tsv")
    return directory


GENERATORS = {"sentiment": write_sentiment_tsv}
