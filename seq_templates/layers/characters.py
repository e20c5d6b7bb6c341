"""Character features per word, from built-in layers.

Unseen words (5.7% of SST-2 dev words never occur in train) still have
spelling: a small CNN over each word's characters gives them a representation
that a word embedding cannot. NER uses the same encoder for capitalisation and
suffixes.

The encoder embeds ``(batch, words, max_word_chars)`` character ids, convolves
along each word with ``Conv2D((1, kernel_size))`` and takes the max over the
character axis with ``MaxPooling2D((1, max_word_chars))``. That avoids
``TimeDistributed`` over a dynamic time axis, which fails under ``fit`` on
tf.data. Everything is a built-in layer, so ``model.keras`` loads with no
custom objects.
"""

import keras


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
        A Keras tensor ``(batch, words, filters)``. It carries no mask: combine it
        with a masked word embedding (``Concatenate`` keeps that mask).
    """
    chars = keras.layers.Embedding(vocabulary_size, embedding_dim, name=f"{name}_embedding")(char_ids)
    chars = keras.layers.Conv2D(filters, (1, kernel_size), padding="same", activation="relu",
                                name=f"{name}_convolution")(chars)
    chars = keras.layers.MaxPooling2D((1, max_word_chars), name=f"{name}_max")(chars)
    return keras.layers.Reshape((-1, filters), name=f"{name}_features")(chars)
