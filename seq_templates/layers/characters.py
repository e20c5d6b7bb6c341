"""Character features per word, from built-in layers.

Unseen words (5.7% of SST-2 dev words never occur in train) still have
spelling: a small CNN over each word's characters gives them a representation
that a word embedding cannot. NER uses the same encoder for capitalisation and
suffixes, fed by :func:`word_char_ids`, beside a casing class per word
(:func:`casing_ids`).

The encoder embeds ``(batch, words, max_word_chars)`` character ids, convolves
along each word with ``Conv2D((1, kernel_size))`` and takes the max over the
character axis with ``MaxPooling2D((1, max_word_chars))``. That avoids
``TimeDistributed`` over a dynamic time axis, which fails under ``fit`` on
tf.data. Everything is a built-in layer. :func:`char_rnn_word_encoder` is the other encoder NER offers: a
BiLSTM over each word's characters (``char_recurrent.WordCharacterRNN``).
"""

import keras
import tensorflow as tf

from seq_templates.layers import char_recurrent

# Casing classes of a word, tried in order (the first full match wins): what a lower-cased word
# lookup cannot see. Their ids are 1, 2, ...; a word none matches is "other"; 0 is padding.
CASING_PATTERNS = (("numeric", r"[0-9]+"), ("all_lower", r"\p{Ll}+"), ("all_upper", r"\p{Lu}+"),
                   ("initial_upper", r"\p{Lu}\p{Ll}*"), ("mixed_upper", r"\p{Lu}.*"),
                   ("has_digit", r".*[0-9].*"))
NUM_CASING_IDS = len(CASING_PATTERNS) + 2  # with padding and "other": an embedding's rows


def char_word_encoder(char_ids, vocabulary_size, max_word_chars, embedding_dim=16, filters=64,
                      kernel_size=3, name="char"):
    """Encodes the characters of every word into one vector per word.

    Args:
        char_ids: Keras tensor ``(batch, words, max_word_chars)`` of character ids,
            0 for padding (see ``preprocessing.text.char_ids``).
        vocabulary_size: Size of the character lookup (including padding and OOV).
        max_word_chars: Characters per word (the last, static axis of ``char_ids``).
        embedding_dim: Character embedding width.
        filters: Convolution filters, which is the width of the output per word.
        kernel_size: Characters the convolution sees at once.
        name: Prefix of the layer names.

    Returns:
        A Keras tensor ``(batch, words, filters)``. It carries no mask, and a
        ``Concatenate`` with a masked word embedding gives an all-true one: pass the
        token mask to ``recurrent.recurrent_stack(..., mask=...)``.
    """
    chars = keras.layers.Embedding(vocabulary_size, embedding_dim, name=f"{name}_embedding")(char_ids)
    chars = keras.layers.Conv2D(filters, (1, kernel_size), padding="same", activation="relu",
                                name=f"{name}_convolution")(chars)
    chars = keras.layers.MaxPooling2D((1, max_word_chars), name=f"{name}_max")(chars)
    return keras.layers.Reshape((-1, filters), name=f"{name}_features")(chars)


def char_rnn_word_encoder(char_ids, vocabulary_size, embedding_dim, units, name="char"):
    """Embeds every word's characters and reads them with a BiLSTM (``char_recurrent.WordCharacterRNN``).

    The recurrent counterpart of :func:`char_word_encoder` (Lample et al. 2016).

    Args:
        char_ids: Keras tensor ``(batch, words, max_word_chars)`` of character ids, 0 for padding.
        vocabulary_size: Size of the character lookup (including padding and OOV).
        embedding_dim: Character embedding width.
        units: Units per direction.
        name: Prefix of the layer names (``{name}_embedding``, ``{name}_bilstm``).

    Returns:
        A Keras tensor ``(batch, words, 2 * units)`` with no mask.
    """
    chars = keras.layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True,
                                   name=f"{name}_embedding")(char_ids)
    return char_recurrent.WordCharacterRNN(units, name=f"{name}_bilstm")(chars)


def word_char_ids(char_lookup, words, max_word_chars):
    """The character ids of each word, cut or right-padded with 0 to ``max_word_chars``.

    Args:
        char_lookup: A character ``StringLookup`` (``preprocessing.text.build_char_lookup``).
        words: A 1-D string tensor of words.
        max_word_chars: Characters kept per word.

    Returns:
        An int64 tensor ``(words, max_word_chars)``: the input of :func:`char_word_encoder`.
    """
    characters_per_word = tf.strings.unicode_split(words, "UTF-8")[:, :max_word_chars]
    return char_lookup(characters_per_word).to_tensor(shape=[None, max_word_chars])


def casing_ids(words, patterns=CASING_PATTERNS):
    """The casing class of each word: what a lower-cased word lookup cannot see.

    Args:
        words: A string tensor of words (any shape).
        patterns: ``(name, regular expression)`` pairs (RE2 syntax, matched against the whole
            word), tried in order: the first match wins.

    Returns:
        An int64 tensor shaped like ``words``: ``i`` for the ``i``-th pattern (from 1), and
        ``len(patterns) + 1`` for a word no pattern matches; 0 stays free for padding, so an
        embedding of them has ``len(patterns) + 2`` rows.
    """
    ids = tf.fill(tf.shape(words), tf.constant(len(patterns) + 1, tf.int64))
    for index, (_, pattern) in reversed(list(enumerate(patterns, start=1))):
        ids = tf.where(tf.strings.regex_full_match(words, pattern), tf.constant(index, tf.int64), ids)
    return ids
