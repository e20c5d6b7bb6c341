"""Small datasets the project generates itself, so every template runs offline.

The sentiment set is built so that word order matters. Each review is made of
clauses such as ``the plot was not good`` whose polarity flips with ``not``, and
reviews with two clauses of opposite polarity take the polarity of the clause
that the connective puts last in meaning (``X but Y`` -> Y, ``although X , Y``
-> Y, ``Y , although X`` -> Y). Both clause orders use the same words, so a
bag-of-words model cannot tell many pairs apart while a recurrent model can.

The date set (translation) pairs human-readable dates in 17 formats
(``3rd of March 2021``, ``Wed 3 Mar 2021``, ``03.03.2021``, in lower, title or
upper case) with their ISO form (``2021-03-03``).
"""

import datetime
import math
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


def _write_text(path, text):
    """Writes UTF-8 text via a temp file beside ``path`` and a rename, so no half-written file is left."""
    temporary_path = path.with_name(f".{path.name}.tmp")
    temporary_path.write_text(text, encoding="utf-8")
    temporary_path.replace(path)

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
        _write_text(directory / f"{name}.tsv", "\n".join(lines) + "\n")
    return directory


# region Text generation: a small generated play
SPEAKERS = ("KING", "QUEEN", "FOOL", "NURSE", "CAPTAIN", "HERALD")
PLAY_SUBJECTS = ("the king", "my lord", "the old fool", "a gentle maid", "the captain", "thy brother",
                 "the queen", "a poor soldier")
PLAY_VERBS = ("doth love", "hath seen", "shall find", "will not trust", "did betray", "must answer",
              "would follow", "cannot forget")
PLAY_OBJECTS = ("the crown", "my heart", "the night", "this sword", "thy father", "the sea",
                "her honour", "the morning")
ENDINGS = (".", ".", "!", "?", ", and so it ends.", ", i swear it.")


def play_text(num_speeches=1200, seed=1234):
    """Generates a small play: speaker names in capitals, each followed by one to three lines.

    Lines follow a tiny grammar (subject, verb, object, ending) and a speaker
    tends to answer the one before, so a character model has structure to learn
    at several ranges (spelling, line shape, who speaks next).

    Args:
        num_speeches: Number of speeches.
        seed: Seed of the generator; the same seed gives the same text.

    Returns:
        The text, ``\n``-separated, ending with a newline.
    """
    generator = random.Random(seed)
    speaker = generator.choice(SPEAKERS)
    speeches = []
    for _ in range(num_speeches):
        lines = []
        for _ in range(generator.choice((1, 1, 2, 3))):
            line = (f"{generator.choice(PLAY_SUBJECTS)} {generator.choice(PLAY_VERBS)} "
                    f"{generator.choice(PLAY_OBJECTS)}{generator.choice(ENDINGS)}")
            lines.append(line[0].upper() + line[1:])
        speeches.append(f"{speaker}:\n" + "\n".join(lines) + "\n")
        speaker = SPEAKERS[(SPEAKERS.index(speaker) + generator.choice((1, 1, 2))) % len(SPEAKERS)]
    return "\n".join(speeches)


def write_play_text(directory, seed=1234):
    """Writes ``play.txt`` (see :func:`play_text`) to a temp name and renames it.

    Returns:
        The folder as a ``pathlib.Path``.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _write_text(directory / "play.txt", play_text(seed=seed))
    return directory
# endregion


# region Translation: human-readable dates to ISO dates
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# {d} day, {dd} two-digit day, {o} ordinal day (3rd), {m} month name, {b} short month name, {mm} two-digit
# month, {y} year, {w} weekday, {a} short weekday.
DATE_FORMATS = (
    "{o} of {m} {y}", "the {o} of {m}, {y}", "{m} {d}, {y}", "{m} {o}, {y}", "{m} the {o}, {y}",
    "{d} {m} {y}", "{d} {b} {y}", "{b} {d} {y}", "{b}. {d}, {y}", "{w}, {m} {d}, {y}", "{a} {d} {b} {y}",
    "{w} {o} {m} {y}", "{dd}.{mm}.{y}", "{d}/{mm}/{y}", "{y}/{mm}/{dd}", "{d}-{b}-{y}", "{d} {m}, {y}",
)


def ordinal(number):
    """``1`` -> ``1st``, ``2`` -> ``2nd``, ``11`` -> ``11th``, ``23`` -> ``23rd``."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def date_example(generator, first_year=1950, last_year=2049):
    """One ``(human-readable date, ISO date)`` pair, e.g. ``("3rd of March 2021", "2021-03-03")``.

    Day-first numeric forms (``03.03.2021``, ``3/03/2021``) are the only numeric ones besides
    ``2021/03/03``, so no input is ambiguous. Letter case varies (lower, title, upper).
    """
    date = datetime.date(first_year, 1, 1) + datetime.timedelta(
        days=generator.randrange((datetime.date(last_year, 12, 31) - datetime.date(first_year, 1, 1)).days + 1))
    month, weekday = MONTH_NAMES[date.month - 1], WEEKDAY_NAMES[date.weekday()]
    text = generator.choice(DATE_FORMATS).format(
        d=date.day, dd=f"{date.day:02d}", o=ordinal(date.day), m=month, b=month[:3], mm=f"{date.month:02d}",
        y=date.year, w=weekday, a=weekday[:3])
    text = generator.choice((text, text, text.lower(), text.upper()))
    return text, date.isoformat()


def date_splits(num_train=20000, num_validation=1000, num_test=1000, seed=1234):
    """Generates the offline date-translation dataset: ``{split: (texts, iso_dates)}``."""
    generator = random.Random(seed)
    splits = {}
    for name, size in (("train", num_train), ("validation", num_validation), ("test", num_test)):
        pairs = [date_example(generator) for _ in range(size)]
        splits[name] = ([text for text, _ in pairs], [iso for _, iso in pairs])
    return splits


def write_dates_tsv(directory, seed=1234):
    """Writes ``train.tsv``, ``validation.tsv`` and ``test.tsv`` (``text<TAB>iso date``, no header).

    Returns:
        The folder as a ``pathlib.Path``.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, (texts, dates) in date_splits(seed=seed).items():
        _write_text(directory / f"{name}.tsv", "".join(f"{text}\t{date}\n" for text, date in zip(texts, dates)))
    return directory
# endregion


# region forecasting: an hourly series with a covariate
def timeseries_rows(num_steps=2400, seed=1234):
    """Generates an hourly series: trend + daily and weekly seasonality + AR(1) noise, with a covariate.

    ``temperature`` follows its own daily cycle with noise, and ``value`` rises
    with it, so a model that reads the covariate can do better than one that
    does not.

    Args:
        num_steps: Hours to generate (from 2024-01-01 00:00).
        seed: Seed of the generator; the same seed gives the same series.

    Returns:
        A list of ``(time string, value, temperature)`` rows in time order.
    """
    generator = random.Random(seed)
    start = datetime.datetime(2024, 1, 1)
    rows, noise = [], 0.0
    for step in range(num_steps):
        temperature = 15.0 + 5.0 * math.sin(2 * math.pi * (step - 9) / 24) + generator.gauss(0.0, 1.0)
        noise = 0.7 * noise + generator.gauss(0.0, 0.5)
        value = (20.0 + 0.004 * step + 3.0 * math.sin(2 * math.pi * step / 24)
                 + 1.5 * math.sin(2 * math.pi * step / 168) + 0.3 * (temperature - 15.0) + noise)
        rows.append(((start + datetime.timedelta(hours=step)).strftime("%Y-%m-%d %H:%M"),
                     round(value, 4), round(temperature, 3)))
    return rows


def write_timeseries_csv(directory, seed=1234):
    """Writes ``series.csv`` (``time,value,temperature``, hourly) for the offline forecasting default.

    Args:
        directory: Destination folder (created if needed).
        seed: Seed of the generator.

    Returns:
        The folder as a ``pathlib.Path``.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["time,value,temperature"] + [f"{time},{value},{temperature}"
                                          for time, value, temperature in timeseries_rows(seed=seed)]
    _write_text(directory / "series.csv", "\n".join(lines) + "\n")
    return directory
# endregion


# Named entities (tagging): sentences with people, places and organisations in IOB2, some names
# several words long; the same word can be a person or a place ("Jordan", "Florence"), so the
# words around a name decide its type.
FIRST_NAMES = ("Anna", "Jordan", "Maria", "Tom", "Florence", "Ahmed", "Chen", "Olga", "Pierre", "Sofia",
               "David", "Amara", "Kenji", "Lucia", "Victoria", "Ivan")
LAST_NAMES = ("Smith", "Garcia", "Novak", "Okafor", "Tanaka", "Rossi", "Berg", "Kowalski", "Dubois", "Silva")
PLACES = ("Paris", "Berlin", "Jordan", "Florence", "New York", "Lagos", "Tokyo", "Buenos Aires", "Oslo", "Cairo",
          "Georgia", "San Francisco", "Lima", "Hong Kong", "Sydney")
ORGANISATIONS = ("Acme Corp", "United Nations", "Reuters", "Siemens", "World Bank", "Real Madrid",
                 "Toyota", "European Union", "Greenpeace", "Barclays Bank", "NASA", "Oxford University")
NATIONALITIES = ("German", "French", "Japanese", "British", "Brazilian", "Nigerian", "Italian")
NER_TEMPLATES = (
    "{PER} met {PER} in {LOC} on Monday .", "{PER} works for {ORG} in {LOC} .",
    "{ORG} said on Tuesday that profits rose {NUM} percent .", "{PER} flew from {LOC} to {LOC} .",
    "The {MISC} minister visited {ORG} headquarters in {LOC} .", "Shares in {ORG} fell {NUM} percent in {LOC} .",
    "{PER} , a spokesman for {ORG} , declined to comment .", "{LOC} beat {LOC} {NUM} - {NUM} in the final .",
    "{PER} scored twice as {ORG} won in {LOC} .", "Police in {LOC} arrested {NUM} people , {PER} said .",
    "{MISC} exports to {LOC} rose last year .", "{ORG} and {ORG} agreed to merge .",
    "{PER} told {ORG} that {LOC} would join .", "{PER} and {PER} left {LOC} for {LOC} .",
)


def _ner_slot(generator, kind):
    """Returns (tokens, entity type or None) for a template slot."""
    if kind == "PER":
        first, last = generator.choice(FIRST_NAMES), generator.choice(LAST_NAMES)
        return ([first, last] if generator.random() < 0.6 else [generator.choice((first, last))]), "PER"
    if kind == "LOC":
        return generator.choice(PLACES).split(), "LOC"
    if kind == "ORG":
        return generator.choice(ORGANISATIONS).split(), "ORG"
    if kind == "MISC":
        return [generator.choice(NATIONALITIES)], "MISC"
    return [str(generator.randint(1, 99))], None


def ner_sentence(generator):
    """Draws one sentence: ``(tokens, IOB2 tags)``."""
    tokens, tags = [], []
    for word in generator.choice(NER_TEMPLATES).split():
        if word.startswith("{"):
            words, entity_type = _ner_slot(generator, word.strip("{}"))
            tokens.extend(words)
            tags.extend(["O"] * len(words) if entity_type is None
                        else [f"B-{entity_type}"] + [f"I-{entity_type}"] * (len(words) - 1))
        else:
            tokens.append(word)
            tags.append("O")
    return tokens, tags


def ner_splits(num_train=3000, num_validation=500, num_test=500, seed=1234):
    """Generates the offline NER dataset: ``{"train"|"validation"|"test": (token_lists, tag_lists)}``."""
    generator = random.Random(seed)
    splits = {}
    for name, size in (("train", num_train), ("validation", num_validation), ("test", num_test)):
        sentences = [ner_sentence(generator) for _ in range(size)]
        splits[name] = ([tokens for tokens, _ in sentences], [tags for _, tags in sentences])
    return splits


def write_ner_conll(directory, seed=1234):
    """Writes ``train.txt``, ``validation.txt`` and ``test.txt`` as CoNLL columns (``token tag``, IOB2).

    Args:
        directory: Destination folder (created if needed).
        seed: Seed of the generator.

    Returns:
        The folder as a ``pathlib.Path``.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, (token_lists, tag_lists) in ner_splits(seed=seed).items():
        blocks = ["\n".join(f"{token} {tag}" for token, tag in zip(tokens, tags))
                  for tokens, tags in zip(token_lists, tag_lists)]
        _write_text(directory / f"{name}.txt", "\n\n".join(blocks) + "\n")
    return directory


GENERATORS = {"sentiment": write_sentiment_tsv, "dates": write_dates_tsv, "play_text": write_play_text,
              "timeseries": write_timeseries_csv, "ner": write_ner_conll}
