"""Word- and character-level text vectorizers (ragged, right-padded later).

The vectorizer is a ``keras.layers.TextVectorization`` adapted on the training
split only. It returns ragged token ids, so the tf.data pipeline can bucket by
length and the serving graph can pad each request batch only to its own longest
sequence. Id 0 is padding (``mask_zero=True`` in the embedding), id 1 is the
out-of-vocabulary token.
"""

import keras
import tensorflow as tf

from seq_templates import errors

LEVELS = ("word", "char")
STANDARDIZE_CHOICES = ("lower_and_strip_punctuation", "lower", "strip_punctuation", "none")
PADDING_ID = 0
OOV_ID = 1
# TextVectorization's own punctuation pattern, so words split here line up with its ids.
STRIP_PUNCTUATION_PATTERN = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'


def build_text_vectorizer(level="word", max_tokens=20000, standardize="lower_and_strip_punctuation",
                          name=None):
    """Returns an un-adapted ragged ``TextVectorization`` layer.

    Args:
        level: ``word`` splits on whitespace; ``char`` splits into characters.
        max_tokens: Vocabulary size including padding and OOV; None for no limit.
        standardize: One of ``lower_and_strip_punctuation``, ``lower``,
            ``strip_punctuation`` or ``none``.
        name: Layer name.

    Returns:
        A ``keras.layers.TextVectorization`` with ``ragged=True``.
    """
    if level not in LEVELS:
        raise errors.SeqTemplatesError(
            f"Expected a text level in {', '.join(LEVELS)}, received '{level}'."
        )
    if standardize not in STANDARDIZE_CHOICES:
        raise errors.SeqTemplatesError(
            f"Expected standardize in {', '.join(STANDARDIZE_CHOICES)}, received '{standardize}'."
        )
    return keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize=None if standardize == "none" else standardize,
        split="character" if level == "char" else "whitespace",
        output_mode="int",
        ragged=True,
        name=name,
    )


def adapt_text_vectorizer(vectorizer, texts, batch_size=1024):
    """Adapts ``vectorizer`` on training texts (a list of str) and checks the result.

    Raises:
        SeqTemplatesError: The texts yield no tokens at all.
    """
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), dtype=tf.string))
    vectorizer.adapt(dataset.batch(batch_size))
    if vectorizer.vocabulary_size() <= 2:
        raise errors.SeqTemplatesError(
            "The training texts produced no tokens; check data.text_column points at the text."
        )
    return vectorizer


def truncate_and_fill(token_ids, max_length=None, filler=OOV_ID):
    """Cuts ragged rows to ``max_length`` and turns empty rows into ``[OOV]``.

    An empty row (a text of only punctuation, say) would leave a fully masked
    sequence, which pooling layers turn into NaN; one OOV token keeps it a valid,
    uninformative input. The same function runs in tf.data and in serving.

    Args:
        token_ids: ``tf.RaggedTensor`` of shape ``(batch, None)``.
        max_length: Keep at most this many tokens per row; None keeps all.
        filler: The value put in empty rows (``OOV_ID``; ``""`` for words).

    Returns:
        A ``tf.RaggedTensor`` whose rows hold between 1 and ``max_length`` ids.
    """
    if max_length is not None:
        token_ids = token_ids[:, :max_length]
    lengths = token_ids.row_lengths()
    filler_column = tf.fill(
        tf.stack([tf.shape(lengths, out_type=lengths.dtype)[0], tf.constant(1, lengths.dtype)]),
        tf.constant(filler, token_ids.dtype))
    with_filler = tf.concat([token_ids, tf.RaggedTensor.from_tensor(filler_column)], axis=1)
    positions = tf.ragged.range(lengths + 1)
    keep = positions < tf.expand_dims(tf.maximum(lengths, 1), 1)
    return tf.ragged.boolean_mask(with_filler, keep)


def vectorize(vectorizer, texts, max_length=None):
    """Vectorizes a batch of strings to ragged ids with :func:`truncate_and_fill` applied."""
    return truncate_and_fill(vectorizer(texts), max_length)


def token_dropout(token_ids, rate, seed=None):
    """Replaces each non-padding id by ``OOV_ID`` with probability ``rate`` (training only).

    Word dropout regularizes, and it trains the OOV embedding, which unseen words at
    test time map to but which a vocabulary adapted on the training split never sees.

    Args:
        token_ids: Dense ``(batch, time)`` ids, 0 for padding.
        rate: Probability of replacing a token.
        seed: Optional op seed.

    Returns:
        Ids of the same shape and dtype.
    """
    if rate <= 0:
        return token_ids
    drop = tf.random.uniform(tf.shape(token_ids), seed=seed) < rate
    return tf.where(drop & (token_ids != PADDING_ID), tf.cast(OOV_ID, token_ids.dtype), token_ids)


def split_words(texts, standardize="lower_and_strip_punctuation"):
    """Splits strings into words exactly as a whitespace ``TextVectorization`` does.

    Returns:
        A ragged ``(batch, None)`` string tensor of standardized words.
    """
    if standardize in ("lower", "lower_and_strip_punctuation"):
        texts = tf.strings.lower(texts)
    if standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
        texts = tf.strings.regex_replace(texts, STRIP_PUNCTUATION_PATTERN, "")
    return tf.strings.split(texts)


def build_char_lookup(words, max_tokens=500, name=None):
    """Returns a ``StringLookup`` of characters (0 padding, 1 OOV) adapted on training words."""
    characters = tf.strings.unicode_split(words.flat_values, "UTF-8").flat_values
    lookup = keras.layers.StringLookup(mask_token="", max_tokens=max_tokens, name=name)
    lookup.adapt(characters)
    return lookup


def char_ids(char_lookup, texts, standardize, max_length=None, max_word_chars=12):
    """Character ids per word, aligned with :func:`vectorize`'s word ids.

    Args:
        char_lookup: From :func:`build_char_lookup`.
        texts: A batch of strings.
        standardize: The word vectorizer's ``standardize`` option.
        max_length: The word vectorizer's ``max_length``.
        max_word_chars: Characters kept per word (the rest are cut; shorter words
            are right-padded with 0).

    Returns:
        A ragged ``(batch, None, max_word_chars)`` int tensor: rows line up with
        the word ids, including the one-token filler of empty texts.
    """
    words = truncate_and_fill(split_words(texts, standardize), max_length, filler="")
    characters = tf.strings.unicode_split(words.flat_values, "UTF-8")[:, :max_word_chars]
    dense = char_lookup(characters).to_tensor(shape=[None, max_word_chars])
    return tf.RaggedTensor.from_row_lengths(dense, words.row_lengths())
