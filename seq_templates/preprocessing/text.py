"""Word- and character-level text vectorizers (ragged, right-padded later).

Text is first standardized by :func:`standardize` with TensorFlow string ops,
then split on whitespace (or into characters) by a ``keras.layers.TextVectorization``
adapted on the standardized training split only. The same two steps run in
tf.data and in the serving graph. The default, ``tokenize_and_lower``, is the
tokenizing standardizer of :mod:`seq_templates.preprocessing.tokenizer`: raw text
(``It isn't good.``) and pre-tokenized corpora (``it is n't good .``) meet the
same tokens. The vectorizer returns ragged token ids, so the tf.data pipeline
can bucket by length and the serving graph pads each request batch only to its
own longest sequence. Id 0 is padding (``mask_zero=True`` in the embedding), id 1
is the out-of-vocabulary token.
"""

import keras
import tensorflow as tf

from seq_templates import errors
from seq_templates.preprocessing import tokenizer

LEVELS = ("word", "char")
# tokenize_and_lower / tokenize: punctuation and clitics split off (Penn Treebank style),
# NFKC, with or without lower-casing; the others are TextVectorization's own options.
STANDARDIZE_CHOICES = ("tokenize_and_lower", "tokenize", "lower_and_strip_punctuation", "lower",
                       "strip_punctuation", "none")
PADDING_ID = 0
OOV_ID = 1
# TextVectorization's own punctuation pattern, so words split here line up with its ids.
STRIP_PUNCTUATION_PATTERN = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'


def standardize(texts, mode="tokenize_and_lower"):
    """Standardizes a batch of strings with TensorFlow ops (the same in tf.data and serving).

    Args:
        texts: A ``tf.string`` tensor.
        mode: One of ``STANDARDIZE_CHOICES``: ``tokenize_and_lower`` (default) and
            ``tokenize`` split punctuation and clitics off as tokens (see
            :mod:`~seq_templates.preprocessing.tokenizer`); ``lower``,
            ``strip_punctuation``, ``lower_and_strip_punctuation`` and ``none``
            do what TextVectorization's options of those names do.

    Returns:
        A ``tf.string`` tensor of the same shape.
    """
    if mode not in STANDARDIZE_CHOICES:
        raise errors.SeqTemplatesError(
            f"Expected standardize in {', '.join(STANDARDIZE_CHOICES)}, received '{mode}'.")
    if mode in ("tokenize_and_lower", "tokenize"):
        return tokenizer.standardize(texts, lowercase=mode == "tokenize_and_lower")
    if mode in ("lower", "lower_and_strip_punctuation"):
        texts = tf.strings.lower(texts, encoding="utf-8")
    if mode in ("strip_punctuation", "lower_and_strip_punctuation"):
        texts = tf.strings.regex_replace(texts, STRIP_PUNCTUATION_PATTERN, "")
    return texts


def build_text_vectorizer(level="word", max_tokens=20000, name=None):
    """Returns an un-adapted ragged ``TextVectorization`` layer for standardized text.

    Args:
        level: ``word`` splits on whitespace; ``char`` splits into characters.
        max_tokens: Vocabulary size including padding and OOV; None for no limit.
        name: Layer name.

    Returns:
        A ``keras.layers.TextVectorization`` with ``ragged=True`` and no
        standardization of its own (feed it :func:`standardize`'s output).
    """
    if level not in LEVELS:
        raise errors.SeqTemplatesError(
            f"Expected a text level in {', '.join(LEVELS)}, received '{level}'."
        )
    return keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize=None,
        split="character" if level == "char" else "whitespace",
        output_mode="int",
        ragged=True,
        name=name,
    )


def adapt_text_vectorizer(vectorizer, texts, standardize_mode="tokenize_and_lower", batch_size=1024):
    """Adapts ``vectorizer`` on standardized training texts (a list of str) and checks the result.

    Raises:
        SeqTemplatesError: The texts yield no tokens at all.
    """
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), dtype=tf.string))
    vectorizer.adapt(dataset.batch(batch_size).map(lambda batch: standardize(batch, standardize_mode)))
    if vectorizer.vocabulary_size() <= 2:
        raise errors.SeqTemplatesError(
            "The training texts produced no tokens: the text column holds empty strings; point the "
            "data settings at the column with the text."
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


def vectorize(vectorizer, texts, standardize_mode="tokenize_and_lower", max_length=None):
    """Standardizes and vectorizes a batch of strings to ragged ids (:func:`truncate_and_fill` applied)."""
    return truncate_and_fill(vectorizer(standardize(texts, standardize_mode)), max_length)


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


def token_dropout_augmenter(rate, feature="token_ids"):
    """An ``augment`` for ``bucketing.sequence_dataset``: :func:`token_dropout` on one feature.

    Returns:
        ``features -> features`` with ``features[feature]`` dropped out, or None when
        ``rate`` is 0 (nothing to do).
    """
    if rate <= 0:
        return None

    def augment(features):
        return {**features, feature: token_dropout(features[feature], rate)}

    return augment


def split_words(texts, standardize_mode="tokenize_and_lower"):
    """Splits strings into words exactly as :func:`vectorize` does at word level.

    Returns:
        A ragged ``(batch, None)`` string tensor of standardized words.
    """
    return tf.strings.split(standardize(texts, standardize_mode))


def build_char_lookup(words, max_tokens=500, name=None):
    """Returns a ``StringLookup`` of characters (0 padding, 1 OOV) adapted on training words."""
    characters = tf.strings.unicode_split(words.flat_values, "UTF-8").flat_values
    lookup = keras.layers.StringLookup(mask_token="", max_tokens=max_tokens, name=name)
    lookup.adapt(characters)
    return lookup


def char_ids(char_lookup, texts, standardize_mode, max_length=None, max_word_chars=12):
    """Character ids per word, aligned with :func:`vectorize`'s word ids.

    Args:
        char_lookup: From :func:`build_char_lookup`.
        texts: A batch of strings.
        standardize_mode: The word vectorizer's standardization (:func:`standardize`).
        max_length: The word vectorizer's ``max_length``.
        max_word_chars: Characters kept per word (the rest are cut; shorter words
            are right-padded with 0).

    Returns:
        A ragged ``(batch, None, max_word_chars)`` int tensor: rows line up with
        the word ids, including the one-token filler of empty texts.
    """
    words = truncate_and_fill(split_words(texts, standardize_mode), max_length, filler="")
    characters = tf.strings.unicode_split(words.flat_values, "UTF-8")[:, :max_word_chars]
    dense = char_lookup(characters).to_tensor(shape=[None, max_word_chars])
    return tf.RaggedTensor.from_row_lengths(dense, words.row_lengths())


def split_tokens(texts, level, standardize_mode):
    """Raw strings -> ragged standardized tokens: words (``level="word"``) or characters."""
    standardized = standardize(texts, standardize_mode)
    return (tf.strings.unicode_split(standardized, "UTF-8") if level == "char"
            else tf.strings.split(standardized))


def bracket_tokens(tokens, start, end):
    """Ragged tokens -> ``start tokens end`` in every row (a decoder's input and target)."""
    first, last = (tf.RaggedTensor.from_tensor(tf.fill(tf.stack([tokens.nrows(), 1]), token))
                   for token in (start, end))
    return tf.concat([first, tokens, last], axis=1)


def ragged_strings(lists):
    """Lists of strings (a split's sentences of tokens or tags) as a ragged ``(rows, None)`` string tensor.

    Built from one flat constant: ``tf.ragged.constant`` takes minutes on a large split.
    """
    flat = tf.constant([item for items in lists for item in items], tf.string)
    return tf.RaggedTensor.from_row_lengths(flat, [len(items) for items in lists])
