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
