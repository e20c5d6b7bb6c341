"""Recurrent stack factory: every cell, direction, depth and residual option."""

import keras
import numpy as np
import pytest

from seq_templates import errors
from seq_templates.layers import recurrent


@pytest.mark.parametrize("cell", recurrent.CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers, residual", [(1, False), (3, True)])
def test_stack_shapes_and_masking(cell, bidirectional, num_layers, residual):
    token_ids = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(20, 8, mask_zero=True)(token_ids)
    sequence = recurrent.recurrent_stack(embedded, cell, 6, num_layers, bidirectional, 0.1, residual,
                                         return_sequences=True)
    final = recurrent.recurrent_stack(embedded, cell, 6, num_layers, bidirectional, 0.0, residual,
                                      name="final")
    model = keras.Model(token_ids, [sequence, final])
    width = 12 if bidirectional else 6
    padded = np.array([[3, 4, 5, 0, 0]])
    unpadded = np.array([[3, 4, 5]])
    sequence_out, final_out = model.predict(padded, verbose=0)
    assert sequence_out.shape == (1, 5, width) and final_out.shape == (1, width)
    # Padding is masked: the final output equals that of the unpadded sequence.
    np.testing.assert_allclose(final_out, model.predict(unpadded, verbose=0)[1], atol=1e-5)
    expected_class = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM,
                      "gru": keras.layers.GRU}[cell]
    recurrent_layers = [layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else layer
                        for layer in model.layers if "recurrent" in layer.name or "final" in layer.name]
    recurrent_layers = [layer for layer in recurrent_layers if isinstance(layer, keras.layers.RNN)]
    assert len(recurrent_layers) == 2 * num_layers
    assert all(type(layer) is expected_class for layer in recurrent_layers)
    assert all(isinstance(layer, keras.layers.Bidirectional) == bidirectional for layer in model.layers
               if "recurrent_" in layer.name and "dropout" not in layer.name and "residual" not in layer.name)
    if residual:
        assert any(isinstance(layer, keras.layers.Add) for layer in model.layers)


def test_bad_arguments_are_user_errors():
    inputs = keras.Input((None, 4))
    with pytest.raises(errors.SeqTemplatesError, match="model.cell"):
        recurrent.recurrent_stack(inputs, cell="transformer")
    with pytest.raises(errors.SeqTemplatesError, match="num_layers"):
        recurrent.recurrent_stack(inputs, num_layers=0)
    with pytest.raises(errors.SeqTemplatesError, match="dropout_rate"):
        recurrent.recurrent_stack(inputs, dropout_rate=1.5)
