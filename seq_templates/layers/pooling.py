"""Pooling a recurrent stack's steps into one vector per sequence (many-to-one models).

Each kind reads only the real steps (the token mask), so a sequence's vector does not
depend on how much padding its batch added. They differ in how they hold up when a
model meets texts much longer than those it trained on (a sentence-trained classifier
reading whole reviews, docs/benchmarks.md "Long inputs"):

=================  ===============================================================
``max``            each feature's largest value over the steps (Conneau et al. 2017's
                   BiLSTM-max): a feature that fires on one phrase fires as strongly
                   in a long text, so the vector keeps its scale at any length
``attention``      a query made from the mean state weighs the steps (softmax); over
                   hundreds of steps the weights spread thin
``mean``           the mean over the steps: one strong phrase is diluted by length
``last``           the recurrent stack's final output (``return_sequences=False``)
``mean_and_last``  the mean beside the final states (``return_state=True``)
=================  ===============================================================

All are built from built-in layers and ``keras.ops``, so ``model.keras`` loads with no
custom objects.
"""

import keras

from seq_templates import errors

POOLING_CHOICES = ("max", "attention", "mean", "last", "mean_and_last")
# Below any value a recurrent layer outputs (tanh-bounded): masked steps never win a max.
_MASKED = -1e9
_MASKED_FLOAT16 = -6e4  # float16 (mixed precision) holds at most 65504: -1e9 would be -inf, and 0 * -inf is NaN


def returns_sequences(pooling):
    """Whether the recurrent stack must return every step for ``pooling`` (all but ``last``)."""
    return pooling != "last"


def returns_state(pooling):
    """Whether the recurrent stack must return its final states for ``pooling``."""
    return pooling == "mean_and_last"


def pool_sequence(outputs, mask, pooling):
    """One vector per sequence from a recurrent stack's outputs.

    Args:
        outputs: What ``recurrent.recurrent_stack`` returned with
            ``return_sequences=returns_sequences(pooling)`` and
            ``return_state=returns_state(pooling)``: ``(batch, steps, width)`` steps, the final
            output ``(batch, width)`` for ``last``, or ``(steps, states)`` for ``mean_and_last``.
        mask: Boolean ``(batch, steps)``, true at real steps (e.g. ``token_ids != 0``).
        pooling: One of :data:`POOLING_CHOICES`.

    Returns:
        A ``(batch, features)`` tensor.
    """
    if pooling not in POOLING_CHOICES:
        raise errors.SeqTemplatesError(
            f"Expected model.pooling in {', '.join(POOLING_CHOICES)}, received '{pooling}'.")
    if pooling == "last":
        return outputs
    if pooling == "mean_and_last":  # every step's mean beside the final states
        sequence, states = outputs  # (a forward state has read the whole text)
        return keras.layers.Concatenate(name="mean_and_last_pooling")(
            [keras.layers.GlobalAveragePooling1D(name="mean_pooling")(sequence, mask=mask), states[0]])
    if pooling == "mean":
        return keras.layers.GlobalAveragePooling1D(name="mean_pooling")(outputs, mask=mask)
    if pooling == "max":  # padded steps are pushed below every real value first
        real = keras.ops.expand_dims(keras.ops.cast(mask, outputs.dtype), -1)
        masked = _MASKED_FLOAT16 if str(outputs.dtype) == "float16" else _MASKED
        return keras.ops.max(outputs * real + (1.0 - real) * masked, axis=1)
    # attention: a query made from the mean state attends over every real step.
    width = outputs.shape[-1]
    query = keras.layers.Dense(width, name="attention_query")(
        keras.layers.GlobalAveragePooling1D(name="attention_mean")(outputs, mask=mask))
    query = keras.layers.Reshape((1, width), name="attention_query_step")(query)
    attended = keras.layers.Attention(name="attention_pooling")([query, outputs], mask=[None, mask])
    return keras.layers.Flatten(name="attention_output")(attended)
