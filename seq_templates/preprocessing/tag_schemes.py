"""Entity tag schemes: IOB1, IOB2 (BIO) and BIOES; spans, validation and conversion.

- ``iob1`` (the original CoNLL-2003 files): ``I-X`` inside an entity, also its
  first word; ``B-X`` only starts an entity right after another ``X`` entity.
- ``iob2`` (BIO; the shared CoNLL-2003 copy): every entity starts with ``B-X``.
- ``bioes``: ``S-X`` single-word entities, ``B-X``/``I-X``/``E-X`` longer ones.

:func:`entity_spans` reads entities the way the ``conlleval`` script does (any
scheme, and also tag sequences that break their scheme, e.g. a model's output);
:func:`convert` writes spans back in any scheme. A tag that breaks the declared
scheme in *data* (``I-PER`` after ``O`` in IOB2) is rejected by :func:`check`
with its position; :func:`repair` rewrites it as conlleval reads it (there
``I-PER`` after ``O`` opens an entity), for callers that opt in.
"""

from seq_templates import errors
from seq_templates.preprocessing import labels

SCHEMES = ("iob1", "iob2", "bioes")
PREFIXES = {"iob1": ("B", "I"), "iob2": ("B", "I"), "bioes": ("B", "I", "E", "S")}
OUTSIDE = "O"


def split_tag(tag):
    """Returns ``(prefix, type)``: ``("O", "")`` for ``O``, ``("B", "PER")`` for ``B-PER``.

    A tag without a ``-`` other than ``O`` gives ``(tag, "")`` (checked by :func:`check`).
    """
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, _, entity_type = tag.partition("-")
    return prefix, entity_type


def _check_scheme(scheme):
    if scheme not in SCHEMES:
        raise errors.SeqTemplatesError(
            f"Unknown tag scheme '{scheme}'; expected one of {', '.join(SCHEMES)} (data.tag_scheme).")


def _ends(previous_prefix, prefix, previous_type, entity_type):
    """conlleval's endOfChunk: does an entity end between the previous tag and this one?"""
    if previous_prefix in ("E", "S"):
        return True
    if previous_prefix in ("B", "I") and prefix in ("B", "S", OUTSIDE):
        return True
    return previous_prefix != OUTSIDE and previous_type != entity_type


def _starts(previous_prefix, prefix, previous_type, entity_type):
    """conlleval's startOfChunk: does an entity start at this tag?"""
    if prefix in ("B", "S"):
        return True
    if previous_prefix in ("E", "S", OUTSIDE) and prefix in ("E", "I"):
        return True
    return prefix != OUTSIDE and previous_type != entity_type


def entity_spans(tags):
    """Entities of one sentence as ``(type, start, end)`` with ``end`` inclusive, as conlleval reads them.

    Works for IOB1, IOB2 and BIOES alike, and for sequences that break their
    scheme (``I-X`` after ``O`` starts an entity; a change of type starts one).
    """
    spans = []
    previous_prefix, previous_type, begin = OUTSIDE, "", 0
    for index, tag in enumerate(list(tags) + [OUTSIDE]):
        prefix, entity_type = split_tag(tag)
        if _ends(previous_prefix, prefix, previous_type, entity_type):
            spans.append((previous_type, begin, index - 1))
        if _starts(previous_prefix, prefix, previous_type, entity_type):
            begin = index
        previous_prefix, previous_type = prefix, entity_type
    return spans


def entities(tokens, tags):
    """The entities of one tagged sentence, for people to read (None counts as no tokens or tags).

    Returns:
        ``[{"text", "type", "start", "end"}]``: token positions with ``end`` exclusive, and
        the entity's tokens joined by spaces.
    """
    tokens = tokens or []
    return [{"text": " ".join(tokens[start:end + 1]), "type": entity_type, "start": start,
             "end": end + 1} for entity_type, start, end in entity_spans(tags or [])]


def encode(spans, length, scheme="iob2"):
    """Writes entity spans ``(type, start, end)`` as ``length`` tags in ``scheme``."""
    _check_scheme(scheme)
    tags = [OUTSIDE] * length
    previous_end, previous_type = -2, None
    for entity_type, start, end in sorted(spans, key=lambda span: span[1]):
        for index in range(start, end + 1):
            tags[index] = f"I-{entity_type}"
        if scheme == "iob2":
            tags[start] = f"B-{entity_type}"
        elif scheme == "iob1":
            if previous_end == start - 1 and previous_type == entity_type:
                tags[start] = f"B-{entity_type}"
        elif start == end:
            tags[start] = f"S-{entity_type}"
        else:
            tags[start], tags[end] = f"B-{entity_type}", f"E-{entity_type}"
        previous_end, previous_type = end, entity_type
    return tags


def convert(tags, source="iob2", target="iob2"):
    """Converts one sentence's tags from ``source`` to ``target`` scheme (exact for valid input)."""
    _check_scheme(source)
    return encode(entity_spans(tags), len(tags), target)


def repair(tags, scheme="iob2"):
    """Rewrites a sentence so it follows ``scheme``, reading its entities as conlleval does."""
    return convert(tags, scheme, scheme)


def check(tags, scheme="iob2"):
    """Returns ``None`` when ``tags`` follow ``scheme``, else ``(index, reason)`` of the first break.

    Raises:
        SeqTemplatesError: ``scheme`` is not one of ``SCHEMES``.
    """
    _check_scheme(scheme)
    allowed = PREFIXES[scheme]
    previous_prefix, previous_type = OUTSIDE, ""
    for index, tag in enumerate(tags):
        prefix, entity_type = split_tag(tag)
        if prefix != OUTSIDE and (prefix not in allowed or not entity_type):
            return index, (f"'{tag}' is not a {scheme.upper()} tag; expected O or "
                           f"{'/'.join(allowed)}-TYPE")
        continues = previous_prefix in ("B", "I") and previous_type == entity_type
        if scheme == "iob2" and prefix == "I" and not continues:
            return index, f"'{tag}' follows '{_tag(previous_prefix, previous_type)}'; IOB2 starts entities with B-"
        if scheme == "iob1" and prefix == "B" and not continues:
            return index, (f"'{tag}' follows '{_tag(previous_prefix, previous_type)}'; IOB1 uses B- only right "
                           "after an entity of the same type")
        if scheme == "bioes":
            if prefix in ("I", "E") and not continues:
                return index, (f"'{tag}' follows '{_tag(previous_prefix, previous_type)}'; BIOES needs B- or I- "
                               "before it")
            if previous_prefix in ("B", "I") and not (prefix in ("I", "E") and continues):
                return index, f"'{tag}' follows '{_tag(previous_prefix, previous_type)}'; BIOES ends entities with E-"
        previous_prefix, previous_type = prefix, entity_type
    if scheme == "bioes" and previous_prefix in ("B", "I"):
        return len(tags) - 1, "the sentence ends inside an entity; BIOES ends entities with E-"
    return None


def check_and_convert(path, token_lists, tag_lists, line_numbers, scheme, target="iob2",
                      repair_tags=False, setting_prefix=""):
    """Checks the sentences read from a file and returns their tags in the ``target`` scheme.

    A broken sentence stops everything with its file and line, so the data can be fixed.

    Args:
        path: The file, named in errors.
        token_lists: Tokens of each sentence.
        tag_lists: Tags of each sentence.
        line_numbers: The line of each token (``readers.read_conll(..., return_line_numbers=True)``).
        scheme: The scheme the file's tags must follow (:data:`SCHEMES`).
        target: The scheme of the tags returned (:func:`convert`).
        repair_tags: Let tags that break ``scheme`` through: :func:`convert` reads them as
            conlleval does.
        setting_prefix: Prefixed to ``token_column``, ``tag_scheme`` and ``repair_tags`` where
            errors say what to set (``"data."``: the caller's settings of those names).

    Returns:
        The tag lists in ``target``.

    Raises:
        SeqTemplatesError: An empty token, a tag breaking ``scheme`` (unless ``repair_tags``),
            or an unknown scheme.
    """
    for tokens, tags, lines in zip(token_lists, tag_lists, line_numbers):
        if "" in tokens:
            raise errors.SeqTemplatesError(f"{path}:{lines[tokens.index('')]}: the token column is empty; "
                                           f"fix the line or set {setting_prefix}token_column.")
        problem = check(tags, scheme)
        if problem is not None and not repair_tags:
            raise errors.SeqTemplatesError(
                f"{path}:{lines[problem[0]]}: {problem[1]}. Fix the tag, set {setting_prefix}tag_scheme to the "
                f"file's scheme ({', '.join(SCHEMES)}), or set {setting_prefix}repair_tags=true.")
    return [convert(tags, scheme, target) for tags in tag_lists]


def check_known_tags(splits, setting):
    """Checks that every tag of the ``validation`` and ``test`` splits occurs in ``train``.

    Args:
        splits: ``{"train"|"validation"|"test": (token_lists, tag_lists)}``.
        setting: The setting that picks the tag column, named in errors.

    Raises:
        SeqTemplatesError: Training has no tags, or another split has a tag training lacks.
    """
    tags = {name: [tag for tags in split[1] for tag in tags] for name, split in splits.items()}
    vocabulary = labels.label_vocabulary(tags["train"], setting)
    for name in ("validation", "test"):
        labels.check_known_labels(tags[name], vocabulary, name)


def _tag(prefix, entity_type):
    return OUTSIDE if prefix == OUTSIDE else f"{prefix}-{entity_type}"


def entity_types(tag_lists):
    """The sorted entity types found in ``tag_lists``."""
    return sorted({split_tag(tag)[1] for tags in tag_lists for tag in tags if tag != OUTSIDE})
