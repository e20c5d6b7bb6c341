"""Pretrained word vectors from GloVe / word2vec text files, for initialising an ``Embedding``.

A text file holds one word per line followed by its numbers (``word 0.1 -0.3 ...``);
word2vec's text format adds a first line ``count width``, which is skipped. Words
are matched lower-cased, the first occurrence wins, and only the vocabulary's
words are kept, so a large file costs one pass and little memory.
"""

import keras
import numpy as np

from seq_templates import errors
from seq_templates.data import readers


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
