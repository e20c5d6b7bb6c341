"""A bidirectional RNN over each word's characters: the other character encoder next to the CNN.

Lample et al. (2016) read each word's characters with a BiLSTM and keep the two
final states. A built-in ``TimeDistributed(Bidirectional(LSTM))`` over a dynamic
word axis fails under ``fit`` on tf.data, so this layer folds the words into the
batch axis itself: ``(batch, words, chars, dim)`` -> ``(batch * words, chars,
dim)`` -> BiRNN (masked on character padding) -> ``(batch, words, 2 * units)``.
It is registered with ``package="seq_templates"``, so ``model.keras`` reloads once
this module is imported.
"""

import keras
import tensorflow as tf

from seq_templates.layers import recurrent


@keras.saving.register_keras_serializable(package="seq_templates")
class WordCharacterRNN(keras.layers.Layer):
    """Encodes every word's character embeddings with a bidirectional RNN (final states, concatenated).

    Args:
        units: Units per direction; the output has ``2 * units`` values per word.
        cell: ``lstm``, ``gru`` or ``simple_rnn``.
        **kwargs: Layer arguments (``name``, ``dtype``).

    Input: ``(batch, words, chars, dim)`` character embeddings, with the character
    mask of an ``Embedding(mask_zero=True)``. Output: ``(batch, words, 2 * units)``,
    zeros for a word with no characters (padding); it carries no mask.
    """

    def __init__(self, units, cell="lstm", **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.cell = cell
        self.supports_masking = True
        self.encoder = recurrent.recurrent_layer(cell, self.units, bidirectional=True, name=f"{self.name}_encoder")

    def build(self, input_shape):
        self.encoder.build((None, input_shape[2], input_shape[3]))

    def call(self, inputs, mask=None):
        shape = tf.shape(inputs)
        folded = tf.reshape(inputs, tf.stack([shape[0] * shape[1], shape[2], shape[3]]))
        folded_mask = None if mask is None else tf.reshape(mask, tf.stack([shape[0] * shape[1], shape[2]]))
        encoded = self.encoder(folded, mask=folded_mask)
        if folded_mask is not None:
            encoded = encoded * tf.cast(tf.reduce_any(folded_mask, axis=1), encoded.dtype)[:, tf.newaxis]
        return tf.reshape(encoded, tf.stack([shape[0], shape[1], 2 * self.units]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], 2 * self.units)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "units": self.units, "cell": self.cell}
