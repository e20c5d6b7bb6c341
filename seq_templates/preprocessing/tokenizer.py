"""A tokenizing text standardizer built only from core TensorFlow ops.

``standardize`` turns raw text (``"It isn't good."``) and already tokenized
text (``"it is n't good ."``) into the same space-separated, Penn-Treebank-style
tokens, so a model trained on a tokenized corpus meets what people type. It runs
eagerly, in ``tf.data.Dataset.map``, inside ``tf.function`` and in a SavedModel
served by plain TensorFlow or TensorFlow Serving: it uses only ``tf.strings``,
``regex_replace``/``regex_full_match`` (RE2), Unicode decode/encode,
``tf.searchsorted``, ``tf.gather``, ragged ops and constants (no
tensorflow-text, no ``tf.py_function``, no lookup tables or variables).

Steps, in order:
    1. Unicode NFKC (``normalize_nfkc``) from constant tables built at import
       from Python's ``unicodedata``: every code point whose NFKC form differs is
       replaced by that form, then adjacent (base, combining mark) pairs are
       composed, twice, so two stacked marks compose. Known gaps: several
       combining marks are not canonically reordered before composing, Hangul
       compatibility jamo (U+3131-U+318E) are left as they are, and conjoining
       Hangul jamo are not composed into syllables.
    2. Control characters and Unicode spaces become one ASCII space; typographic
       quotes and the PTB quote tokens map to ``'`` and ``"``; an em dash becomes
       ``--``; the PTB bracket escapes (``-lrb-`` ...) become brackets.
    3. Lower-casing (Unicode-aware), when asked.
    4. Penn-Treebank-style splitting: punctuation and symbols become tokens of
       their own (``...``, ``--`` and runs of them stay one token), clitics are
       split off (``is n't``, ``it 's``, ``ca n't``, ``can not``), while numbers
       (``3.5``, ``1,000``, ``10:30``, ``-5``), abbreviations (``u.s.``, ``mr.``),
       URLs, e-mail addresses and word-internal ``- ' / & ·`` stay whole.

The result is a fixed point: ``standardize(standardize(x)) == standardize(x)``.
Other known limits: words are found by spaces and punctuation only, so Chinese or
Japanese text is not segmented into words; a single letter followed by a period
(``plan b.``) is read as an initial; ``no.`` is kept whole only before a number;
a bracket closing a URL is peeled off it; URLs are lower-cased like the rest;
a number followed by a period (``3.``) loses the period to a token of its own;
the Unicode noncharacters U+FDD0-U+FDEF, used here as internal markers, are
read as spaces.
"""

import functools
import unicodedata

import numpy as np
import tensorflow as tf

# ---------------------------------------------------------------- NFKC tables
# Every code point with a (canonical or compatibility) decomposition is below
# U+30000 (the last is U+2FA1D); tests/preprocessing/test_tokenizer.py checks
# that a scan of all of Unicode finds nothing more.
_SCAN_END = 0x30000
_SURROGATES = range(0xD800, 0xE000)
# NFKC maps these to conjoining jamo, which would then need algorithmic
# composition with their neighbours; they are left unchanged instead.
_HANGUL_COMPATIBILITY_JAMO = range(0x3131, 0x318F)
_COMPOSITION_BASE = 0x110000


def _build_nfkc_tables():
    """Returns the NFKC mapping and canonical composition tables as numpy arrays.

    Returns:
        A dict with ``mapping_keys`` (sorted int32 code points that NFKC changes),
        ``mapping_starts`` and ``mapping_lengths`` (int32 slices of
        ``mapping_values``, the concatenated int32 code points of each
        replacement), ``composition_keys`` (sorted int64
        ``base * 0x110000 + mark``) and ``composition_values`` (int32 composed
        code points).
    """
    mapping_keys, mapping_starts, mapping_lengths, mapping_values = [], [], [], []
    composition = {}
    for code_point in range(_SCAN_END):
        if code_point in _SURROGATES:
            continue
        character = chr(code_point)
        decomposition = unicodedata.decomposition(character)
        if not decomposition:
            continue
        if code_point not in _HANGUL_COMPATIBILITY_JAMO:
            normalized = unicodedata.normalize("NFKC", character)
            if normalized != character:
                mapping_keys.append(code_point)
                mapping_starts.append(len(mapping_values))
                mapping_lengths.append(len(normalized))
                mapping_values.extend(ord(part) for part in normalized)
        parts = decomposition.split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            base, mark = (int(part, 16) for part in parts)
            # Composition exclusions (and singletons) do not recompose under NFC.
            if unicodedata.normalize("NFC", chr(base) + chr(mark)) == character:
                composition[base * _COMPOSITION_BASE + mark] = code_point
    composition_keys = sorted(composition)
    return {
        "mapping_keys": np.array(mapping_keys, dtype=np.int32),
        "mapping_starts": np.array(mapping_starts, dtype=np.int32),
        "mapping_lengths": np.array(mapping_lengths, dtype=np.int32),
        "mapping_values": np.array(mapping_values, dtype=np.int32),
        "composition_keys": np.array(composition_keys, dtype=np.int64),
        "composition_values": np.array([composition[key] for key in composition_keys], dtype=np.int32),
    }


NFKC_TABLES = _build_nfkc_tables()

# ------------------------------------------------------------------ patterns
# Internal markers: Unicode noncharacters (read as spaces where the input has them).
# Word-level output -> readable text: "I do n't know ." -> "I don't know." (regex rewrites that undo
# the splits of the tokenizing standardizer, for English-like punctuation and clitics).
DETOKENIZE_RULES = (('" (.*?) "', '"\\1"'), (" ([.,!?;:%)\\]}]|\\.\\.\\.)", "\\1"),
                    ("([(\\[{¿¡$#]) ", "\\1"), ("(?i) (n't|'s|'re|'ve|'ll|'d|'m)( |$)", "\\1\\2"))
_LINK_MARKER = "\ufdd0"  # stands for a token saved before symbols are split off
_SPLIT_MARK = "\ufdd1"  # a split point inserted by the rules (not an input space)
_CORE_MARKER = "\ufdd2"  # stands for a token saved before periods etc. are split off
_KEPT_PERIOD = "\ufdd3"  # the period of "no." before a number

_WORD = r"\p{L}\p{M}\p{N}_\p{Cf}\x{FDD0}\x{FDD2}\x{FDD3}"  # inside [...]
_JOINERS = r".,:'/&·\-"  # kept inside words / numbers, split off elsewhere

_QUOTE_RULES = (
    ("``", '"'),
    ("[\u2018\u2019\u201a\u201b\u02bc`]", "'"),
    ("''", '"'),
    ("[\u201c\u201d\u201e\u201f\u00ab\u00bb]", '"'),
    ("\u2014", "--"),
)
_BRACKET_ESCAPES = (
    ("lrb", "("), ("rrb", ")"), ("lsb", "["), ("rsb", "]"), ("lcb", "{"), ("rcb", "}"),
)

_LINK_END = r"""[^\s.,;:!?'"()\[\]{}<>]"""
_URL = r"(?i:https?://|www\.)\S*" + _LINK_END
_EMAIL = r"[\p{L}\p{N}_][\p{L}\p{N}_.+\-]*@[\p{L}\p{N}_\-]+(?:\.[\p{L}\p{N}_\-]+)+"
_DOMAIN = (r"[\p{L}\p{N}_\-]+(?:\.[\p{L}\p{N}_\-]+)*\.(?i:com|org|net|edu|gov|io)"
           r"(?:/\S*" + _LINK_END + ")?")
_NUMBER = r"[-+±]?\.?[0-9]+(?:[.,:/\-][0-9]+)*-?"
_CURRENCY = r"\p{L}{1,3}\$"  # US$, C$, HK$
# Stage 2 (whole whitespace tokens): links, numbers and currency prefixes with
# the punctuation around them; a number's leading punctuation excludes ' ('70s).
_LINK_OR_NUMBER = (r"^(?:([^" + _WORD + r"]*?)(" + _URL + "|" + _EMAIL + "|" + _DOMAIN + r")|([^"
                   + _WORD + r"']*?)(" + _NUMBER + "|" + _CURRENCY + r"))([^" + _WORD + r"]*)$")

_ABBREVIATIONS = (
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "inc", "corp", "co", "ltd",
    "bros", "gen", "gov", "sen", "rep", "rev", "lt", "col", "capt", "sgt", "mt", "ft", "jan", "feb",
    "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "calif", "fla", "wash",
    "al", "vol", "dept", "approx",
)
_ABBREVIATION = (r"(?:\p{L}(?:\.\p{L})*\.|(?i:" + "|".join(_ABBREVIATIONS)
                 + r")\.)(?:-[\p{L}\p{N}]+)*|\p{L}(?:\.\p{L})+")  # u.s., mr., u.s.-led, wash.-based, e.g
_CLITIC = r"(?i:n't|'(?:s|re|ve|ll|d|m|em|til|tis|twas|cause|n'|n)|ol')|'[0-9]0s|'[0-9]{2}"
_RUN = r"\.{2,}|-{2,}|\*{2,}"
# Stage 4 (tokens after symbols are split off): abbreviations, clitic tokens and
# runs of dots, hyphens or stars, with the joiners around them.
_PROTECTED_CORE = (r"^([" + _JOINERS + r"]*?)((?:" + _ABBREVIATION + "|" + _CLITIC + ")-?|" + _RUN
                   + r")([" + _JOINERS + r"]*)$")
# Stage 3: every character that is not a word character, a joiner or a space is
# its own token; an emoji keeps its modifiers, ZWJ sequence or flag pair.
_SYMBOL = (r"(" + _RUN + r"|[\x{1F1E6}-\x{1F1FF}]{2}|[^\s" + _WORD + _JOINERS
           + r"](?:[\p{M}\x{1F3FB}-\x{1F3FF}\x{E0020}-\x{E007F}]|\x{200D}\p{So})*)")


def normalize_nfkc(texts):
    """Applies Unicode NFKC to UTF-8 strings with core TensorFlow ops only.

    Code points whose NFKC form differs (ligatures, fullwidth forms, superscripts,
    compatibility characters, ...) are replaced via a constant table, then
    adjacent (base, combining mark) pairs are canonically composed, twice.
    Matches ``unicodedata.normalize("NFKC", text)`` except for the gaps named in
    the module docstring. Invalid UTF-8 becomes U+FFFD.

    Args:
        texts: A ``tf.string`` tensor of any shape.

    Returns:
        A ``tf.string`` tensor of the same shape.
    """
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    normalized = _NORMALIZE_NFKC_BATCH(tf.reshape(texts, [-1]))
    return tf.reshape(normalized, tf.shape(texts))


def _normalize_nfkc_batch(texts):
    """``normalize_nfkc`` on a 1-D batch; ASCII texts (already NFKC) are skipped."""
    positions = tf.where(tf.logical_not(tf.strings.regex_full_match(texts, r"[\x00-\x7f]*")))
    code_points = tf.strings.unicode_decode(tf.gather_nd(texts, positions), "UTF-8", errors="replace")
    code_points = _map_code_points(code_points)
    code_points = _compose_pairs(_compose_pairs(code_points))
    return tf.tensor_scatter_nd_update(texts, positions, tf.strings.unicode_encode(code_points, "UTF-8"))


def _map_code_points(code_points):
    """Replaces each code point NFKC changes by its NFKC form (ragged in, ragged out)."""
    keys = tf.constant(NFKC_TABLES["mapping_keys"])
    values = tf.constant(NFKC_TABLES["mapping_values"])
    flat = code_points.flat_values
    index = tf.minimum(tf.searchsorted(keys, flat), tf.size(keys) - 1)
    found = tf.equal(tf.gather(keys, index), flat)
    # Unchanged code points are read from `flat`, appended after the table values.
    own_position = tf.size(values) + tf.range(tf.size(flat), dtype=tf.int32)
    starts = tf.where(found, tf.gather(tf.constant(NFKC_TABLES["mapping_starts"]), index), own_position)
    lengths = tf.where(found, tf.gather(tf.constant(NFKC_TABLES["mapping_lengths"]), index), 1)
    source = tf.concat([values, flat], axis=0)
    mapped = tf.gather(source, tf.ragged.range(starts, starts + lengths).flat_values)
    per_code_point = tf.RaggedTensor.from_row_lengths(mapped, tf.cast(lengths, tf.int64))
    return code_points.with_flat_values(per_code_point).merge_dims(1, 2)


def _compose_pairs(code_points):
    """Composes each (base, combining mark) pair that has a primary composite."""
    keys = tf.constant(NFKC_TABLES["composition_keys"])
    flat = code_points.flat_values
    flat_wide = tf.cast(flat, tf.int64)
    row_ids = code_points.value_rowids()
    none = tf.constant([-1], tf.int64)
    starts_row = tf.not_equal(row_ids, tf.concat([none, row_ids[:-1]], axis=0))
    previous = tf.where(starts_row, none, tf.concat([none, flat_wide[:-1]], axis=0))
    pair_keys = previous * _COMPOSITION_BASE + flat_wide
    index = tf.minimum(tf.searchsorted(keys, pair_keys), tf.size(keys) - 1)
    found = tf.equal(tf.gather(keys, index), pair_keys)
    # A mark that composes must not also be the base of the next pair.
    found = tf.logical_and(found, tf.logical_not(tf.concat([[False], found[:-1]], axis=0)))
    composed = tf.gather(tf.constant(NFKC_TABLES["composition_values"]), index)
    next_found = tf.concat([found[1:], [False]], axis=0)
    next_composed = tf.concat([composed[1:], [0]], axis=0)
    updated = tf.where(next_found, next_composed, flat)
    return tf.ragged.boolean_mask(code_points.with_flat_values(updated),
                                  code_points.with_flat_values(tf.logical_not(found)))


def standardize(texts, lowercase=True):
    """Raw or pre-tokenized text -> space-separated tokens (Penn Treebank style).

    ``"It isn't good..."``, ``"it is n't good ..."`` and ``"IT ISN’T GOOD…"`` all
    become ``"it is n't good ..."``. See the module docstring for the steps and
    known limits. Uses constants and core ops only, so the same graph runs
    eagerly, in ``tf.data``, in ``tf.function`` and in an exported SavedModel.

    Args:
        texts: A ``tf.string`` tensor of any shape (a batch is 1-D).
        lowercase: Whether to lower-case (Unicode-aware) the text.

    Returns:
        A ``tf.string`` tensor of the same shape: tokens joined by single spaces,
        no leading or trailing space; empty or whitespace-only texts give ``""``.

    Raises:
        ValueError: ``texts`` is not a string tensor or ``lowercase`` is not a bool.
    """
    if lowercase not in (True, False):
        raise ValueError(f"Expected lowercase to be True or False, received {lowercase!r}.")
    texts = tf.convert_to_tensor(texts)
    if texts.dtype != tf.string:
        raise ValueError(f"Expected a tf.string tensor of texts, received dtype {texts.dtype.name}.")
    result = _STANDARDIZE_BATCH[bool(lowercase)](tf.reshape(texts, [-1]))
    return tf.reshape(result, tf.shape(texts))


def _standardize_batch(texts, lowercase):
    """``standardize`` on a 1-D batch."""
    normalized = _normalize(texts, lowercase)

    # Stage 2: whole tokens. Links, numbers and currency prefixes are peeled out
    # of the punctuation around them and set aside behind a marker.
    tokens = tf.strings.split(normalized)
    flat = tokens.flat_values
    flat, saved_links = _set_aside(flat, _LINK_OR_NUMBER, r"\2\4", r"\1\3 " + _LINK_MARKER + r" \5")
    joined = tf.strings.reduce_join(tokens.with_flat_values(flat), axis=-1, separator=" ")

    # Stage 3: symbols, brackets, quotes and runs become tokens of their own.
    joined = tf.strings.regex_replace(joined, _SYMBOL, r" \1 ")

    # Stage 4: abbreviations, clitic tokens and runs set aside behind a marker.
    tokens = tf.strings.split(joined)
    flat, saved_cores = _set_aside(tokens.flat_values, _PROTECTED_CORE, r"\2", r"\1 " + _CORE_MARKER + r" \3")
    joined = tf.strings.reduce_join(tokens.with_flat_values(flat), axis=-1, separator=" ")

    # Stage 5: . , : split off unless between digits; ' / & · - split off unless
    # between word characters (a hyphen may also end a word: "anti-").
    split = _SPLIT_MARK
    joined = tf.strings.regex_replace(joined, r"([.,:])", split + r"\1" + split)
    for _ in range(2):  # twice: "1.2.3" overlaps
        joined = tf.strings.regex_replace(joined, f"([0-9]){split}([.,:]){split}([0-9])", r"\1\2\3")
    joined = tf.strings.regex_replace(joined, r"(['/&·\-])", split + r"\1" + split)
    for _ in range(2):  # twice: "rock'n'roll" overlaps
        joined = tf.strings.regex_replace(
            joined, f"([{_WORD}]){split}(['/&·\\-]){split}([{_WORD}])", r"\1\2\3")
    joined = tf.strings.regex_replace(joined, f"([{_WORD}]){split}-{split}", r"\1-" + split)
    joined = tf.strings.regex_replace(joined, split, " ")

    # Clitics: isn't -> is n't, it's -> it 's, cannot -> can not.
    joined = _split_clitics(joined)
    for _ in range(2):
        joined = tf.strings.regex_replace(joined, "(?i)(^| )(can)(not)( |$)", r"\1\2 \3\4")

    # Put the set-aside tokens back, in order, and join with single spaces.
    tokens = tf.strings.split(joined)
    flat = tf.strings.regex_replace(tokens.flat_values, _KEPT_PERIOD, ".")
    flat = _put_back(flat, _LINK_MARKER, saved_links)
    flat = _put_back(flat, _CORE_MARKER, saved_cores)
    return tf.strings.reduce_join(tokens.with_flat_values(flat), axis=-1, separator=" ")


def _split_clitics(texts):
    """Splits clitics off the ends of tokens, repeating while a token ends in two ("isn't's")."""
    clitic = f"([{_WORD}])('(?:s|re|ve|ll|d|m)|n't)( |$)"
    pattern = "(?i)" + clitic
    texts = tf.strings.regex_replace(texts, pattern, r"\1 \2\3")
    return tf.while_loop(
        lambda texts: tf.reduce_any(tf.strings.regex_full_match(texts, f"(?i).*{clitic}.*")),
        lambda texts: [tf.strings.regex_replace(texts, pattern, r"\1 \2\3")],
        [texts],
    )[0]


def _normalize(texts, lowercase):
    """Steps 1-3 on a 1-D batch: NFKC, spaces, quotes, lower-casing; "US$5", "no." before a number."""
    texts = _normalize_nfkc_batch(texts)
    texts = tf.strings.regex_replace(texts, r"[\p{Cc}\p{Z}\x{FDD0}-\x{FDEF}]+", " ")
    for pattern, replacement in _QUOTE_RULES:
        texts = tf.strings.regex_replace(texts, pattern, replacement)
    if lowercase:
        # Again NFKC: a lower-case letter may compose with a mark its capital did not ("T\u0308").
        texts = _normalize_nfkc_batch(tf.strings.lower(texts, encoding="utf-8"))
    texts = _apply_where_matching(texts, r"(?i).*-[lr][rsc]b-.*", _replace_bracket_escapes)
    texts = tf.strings.regex_replace(texts, r"(\p{L}\$)([0-9])", r"\1 \2")  # US$5 -> US$ 5
    return tf.strings.regex_replace(texts, r"(?i)(^| )(no)\.( ?[0-9])", r"\1\2" + _KEPT_PERIOD + r"\3")


def _apply_where_matching(texts, pattern, function):
    """Applies ``function`` (1-D batch in, 1-D batch out) only to the texts matching ``pattern``."""
    positions = tf.where(tf.strings.regex_full_match(texts, pattern))
    return tf.tensor_scatter_nd_update(texts, positions, function(tf.gather_nd(texts, positions)))


def _replace_bracket_escapes(texts):
    """Replaces the PTB escapes -lrb- -rrb- -lsb- -rsb- -lcb- -rcb- (whole tokens, any case)."""
    texts = tf.strings.regex_replace(texts, " ", "  ")  # so that adjacent escapes do not overlap
    for name, bracket in _BRACKET_ESCAPES:
        texts = tf.strings.regex_replace(texts, f"(?i)(^| )-{name}-( |$)", r"\1" + bracket + r"\2")
    return texts


def _set_aside(tokens, pattern, kept, rewrite):
    """Saves the part ``kept`` of tokens matching ``pattern``; rewrites them with a marker.

    Returns:
        The rewritten tokens and the saved parts, in token order.
    """
    positions = tf.where(tf.strings.regex_full_match(tokens, pattern))
    matched = tf.gather_nd(tokens, positions)
    saved = tf.strings.regex_replace(matched, pattern, kept)
    rewritten = tf.strings.regex_replace(matched, pattern, rewrite)
    return tf.tensor_scatter_nd_update(tokens, positions, rewritten), saved


def _put_back(tokens, marker, saved):
    """Replaces the tokens equal to ``marker``, in order, with ``saved``."""
    positions = tf.where(tf.equal(tokens, marker))
    return tf.tensor_scatter_nd_update(tokens, positions, saved)


# Traced once per setting, so eager calls run as one graph (ragged ops are slow
# one by one); inside tf.data, tf.function or a SavedModel they are nested calls.
_BATCH_SIGNATURE = [tf.TensorSpec([None], tf.string)]
_NORMALIZE_NFKC_BATCH = tf.function(_normalize_nfkc_batch, input_signature=_BATCH_SIGNATURE)
_STANDARDIZE_BATCH = {
    lowercase: tf.function(functools.partial(_standardize_batch, lowercase=lowercase),
                           input_signature=_BATCH_SIGNATURE)
    for lowercase in (True, False)
}
