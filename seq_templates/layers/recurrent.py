"""Recurrent layer factories that return built-in Keras layers.

Everything here builds ``keras.layers.SimpleRNN``, ``LSTM`` or ``GRU`` (optionally
wrapped in ``Bidirectional``), so models load from ``model.keras`` with no
custom objects. LSTM and GRU keep their fused kernels: ``recurrent_dropout`` is
always 0 and ``unroll`` False; dropout is applied between layers instead.
"""

import keras

from seq_templates import config
from seq_templates import errors

CELLS = config.CELLS
_CELL_CLASSES = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM,
                 "gru": keras.layers.GRU}


def recurrent_layer(cell, units, return_sequences=False, return_state=False, bidirectional=False,
                    name=None):
    """Returns one recurrent layer.

    Args:
        cell: ``simple_rnn``, ``lstm`` or ``gru``.
        units: Hidden units (per direction when bidirectional).
        return_sequences: Return the output at every step instead of the last.
        return_state: Also return the final state(s).
        bidirectional: Wrap in ``keras.layers.Bidirectional`` (outputs concatenated).
        name: Layer name.

    Returns:
        A built-in Keras layer.

    Raises:
        SeqTemplatesError: Unknown cell or non-positive units.
    """
    if cell not in CELLS:
        raise errors.SeqTemplatesError(f"Expected model.cell in {', '.join(CELLS)}, received '{cell}'.")
    if units < 1:
        raise errors.SeqTemplatesError(f"Expected model.units of at least 1, received {units}.")
    layer = _CELL_CLASSES[cell](
        units,
        return_sequences=return_sequences,
        return_state=return_state,
        name=None if bidirectional else name,
    )
    if bidirectional:
        return keras.layers.Bidirectional(layer, name=name)
    return layer


def recurrent_stack(inputs, cell="lstm", units=64, num_layers=1, bidirectional=False,
                    dropout_rate=0.0, residual=False, return_sequences=False, return_state=False,
                    name="recurrent", mask=None):
    """Applies ``num_layers`` stacked recurrent layers to a (masked) sequence tensor.

    Layers after the first may be joined by residual connections (``Add``) when
    the widths match, which they do from the second layer on. Dropout is applied
    to each layer's output. Masks propagate from an ``Embedding(mask_zero=True)``.

    Args:
        inputs: A Keras tensor of shape ``(batch, time, features)``.
        cell: ``simple_rnn``, ``lstm`` or ``gru``.
        units: Hidden units per layer (per direction when bidirectional).
        num_layers: Number of stacked layers (at least 1).
        bidirectional: Use bidirectional layers.
        dropout_rate: Dropout after each layer, in [0, 1).
        residual: Add each layer's input to its output from the second layer on.
        return_sequences: Whether the last layer returns every step.
        return_state: Also return the last layer's final states, e.g. to start a
            decoder: ``[h]`` for SimpleRNN/GRU, ``[h, c]`` for LSTM. With
            ``bidirectional`` the forward and backward states are concatenated
            by layers named ``<name>_state_1``, ``<name>_state_2`` (give your own
            layers other names), so each state is ``2 * units`` wide, like the outputs.
        name: Prefix of the layer names.
        mask: Optional boolean ``(batch, time)`` Keras tensor of the real steps, e.g.
            ``keras.ops.not_equal(token_ids, 0)``. Given, it replaces the mask that comes
            with ``inputs``: a ``Concatenate`` of a masked embedding and unmasked features
            (a character CNN, a casing embedding) carries an all-true mask, so without it
            the stack would read the padding and a sequence's answer would depend on the
            other sequences of its batch.

    Returns:
        The output tensor: ``(batch, time, width)`` with ``return_sequences``,
        else ``(batch, width)``; width is ``units`` or ``2 * units``. With
        ``return_state``, a tuple ``(outputs, states)``.
    """
    if num_layers < 1:
        raise errors.SeqTemplatesError(f"Expected model.num_layers of at least 1, received {num_layers}.")
    if not 0.0 <= dropout_rate < 1.0:
        raise errors.SeqTemplatesError(
            f"Expected model.dropout_rate in [0, 1), received {dropout_rate}."
        )
    outputs = inputs
    states = []
    for index in range(num_layers):
        last = index == num_layers - 1
        layer_outputs = recurrent_layer(
            cell, units, return_sequences=return_sequences or not last, return_state=return_state and last,
            bidirectional=bidirectional, name=f"{name}_{index + 1}",
        )(outputs, **({"mask": mask} if index == 0 and mask is not None else {}))
        if return_state and last:
            layer_outputs, *states = layer_outputs
            if bidirectional:
                half = len(states) // 2
                states = [keras.layers.Concatenate(name=f"{name}_state_{position + 1}")([forward, backward])
                          for position, (forward, backward) in enumerate(zip(states[:half], states[half:]))]
        if dropout_rate > 0:
            layer_outputs = keras.layers.Dropout(dropout_rate, name=f"{name}_{index + 1}_dropout")(
                layer_outputs)
        if residual and index > 0 and (return_sequences or not last):
            layer_outputs = keras.layers.Add(name=f"{name}_{index + 1}_residual")(
                [outputs, layer_outputs])
        outputs = layer_outputs
    return (outputs, states) if return_state else outputs
