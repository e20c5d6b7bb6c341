"""A word embedding's vocabulary, and pretrained vectors from GloVe / word2vec text files.

:func:`word_keys` is how a word becomes a key of the word lookup (lower-cased, digits
as 0 if asked); :func:`word_vocabulary` collects the training split's keys and
:func:`unseen_rate` measures how many words of another split the lookup has never seen.

A text file holds one word per line followed by its numbers (``word 0.1 -0.3 ...``);
word2vec's text format adds a first line ``count width``, which is skipped. Words
are matched lower-cased, the first occurrence wins, and only the vocabulary's
words are kept, so a large file costs one pass and little memory.
"""

import collections

import keras
import numpy as np
import tensorflow as tf

from seq_templates import errors
from seq_templates.data import readers


def word_keys(words, replace_digits=True):
    """The word lookup's key of each word: lower-cased, and every digit 0 ("1996" -> "0000").

    Args:
        words: A string tensor (or ragged tensor) of words.
        replace_digits: Map every digit to 0; false keeps them.

    Returns:
        A string tensor shaped like ``words``.
    """
    keys = tf.strings.lower(words, encoding="utf-8")
    return tf.strings.regex_replace(keys, "[0-9]", "0") if replace_digits else keys


def _flat_keys(token_lists, replace_digits):
    flat = tf.constant([token for tokens in token_lists for token in tokens], tf.string)
    return [key.decode("utf-8") for key in word_keys(flat, replace_digits).numpy()]


def word_vocabulary(token_lists, min_count=1, replace_digits=True):
    """The keys (:func:`word_keys`) seen at least ``min_count`` times, the most frequent first.

    Args:
        token_lists: The training split's sentences, as lists of tokens.
        min_count: Rarer keys are left out (out of vocabulary).
        replace_digits: As in :func:`word_keys`.

    Returns:
        A list of str, ties in alphabetical order.
    """
    counts = collections.Counter(_flat_keys(token_lists, replace_digits))
    return sorted((word for word, count in counts.items() if count >= min_count),
                  key=lambda word: (-counts[word], word))


def unseen_rate(train_token_lists, token_lists, replace_digits=True):
    """The share of the tokens of ``token_lists`` whose key never occurs in training (0 if none)."""
    seen = set(_flat_keys(train_token_lists, replace_digits))
    keys = _flat_keys(token_lists, replace_digits)
    return sum(key not in seen for key in keys) / max(len(keys), 1)


def read_vectors(path, vocabulary, setting="data.embeddings_path"):
    """Reads the vectors of ``vocabulary``'s words from a GloVe/word2vec text file.

    Args:
        path: The file.
        vocabulary: Words wanted (already lower-cased).
        setting: The setting named in errors.

    Returns:
        A tuple ``({word: float32 vector}, width)``; width is None for an empty file.

    Raises:
        SeqTemplatesError: A missing or unreadable file, or a line with another number of values.
    """
    vectors, width = {}, None
    wanted = set(vocabulary)
    for line_number, line in enumerate(readers.read_lines(path, setting_prefix=f"{setting} ").splitlines(), 1):
        fields = line.rstrip().split(" ")
        if line_number == 1 and len(fields) == 2:
            continue  # word2vec header: "count width"
        width = width or len(fields) - 1
        if len(fields) - 1 != width:
            raise errors.SeqTemplatesError(f"{path}:{line_number}: expected a word and {width} numbers, found "
                                           f"{len(fields) - 1} numbers; fix the file given as {setting}.")
        word = fields[0].lower()
        if word in wanted and word not in vectors:
            vectors[word] = np.asarray(fields[1:], dtype="float32")
    return vectors, width


def initialise(embedding, vocabulary, vectors):
    """Copies ``vectors`` into the rows of a built ``keras.layers.Embedding`` whose ids follow ``vocabulary``.

    Returns:
        The number of rows initialised; the other rows keep their random start.
    """
    matrix = keras.ops.convert_to_numpy(embedding.embeddings).copy()
    found = 0
    for index, word in enumerate(vocabulary):
        if word in vectors:
            matrix[index] = vectors[word]
            found += 1
    embedding.set_weights([matrix])
    return found


def embed_words(token_ids, vocabulary, width, path=None, name="word_embedding"):
    """A masked word ``Embedding`` of ``token_ids``, started from a vectors file when given one.

    Args:
        token_ids: Keras tensor ``(batch, words)`` of ids into ``vocabulary`` (0 padding, 1 OOV).
        vocabulary: The word lookup's vocabulary, padding and OOV first.
        width: Embedding width; a file's own width wins over it.
        path: A GloVe/word2vec text file (:func:`read_vectors`), or None for a random start.
        name: The layer's name.

    Returns:
        The embedded Keras tensor (it carries the padding mask). With ``path``, prints how
        many training words the file holds; the others start random.
    """
    vectors = {}
    if path:
        vectors, width = read_vectors(path, vocabulary)
    embedding = keras.layers.Embedding(len(vocabulary), width, mask_zero=True, name=name)
    embedded = embedding(token_ids)
    if vectors:
        found = initialise(embedding, vocabulary, vectors)
        print(f"Embeddings: {found} of {len(vocabulary) - 2} training words found in {path}; "
              f"{len(vocabulary) - 2 - found} (OOV for the file) start random")
    return embedded
