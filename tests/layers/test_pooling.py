"""Pooling a recurrent stack's steps: every kind reads the real steps only and survives a .keras round trip."""

import keras
import numpy as np
import pytest

from seq_templates import errors
from seq_templates.layers import pooling
from seq_templates.layers import recurrent


def pooled_model(kind, bidirectional=True):
    token_ids = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(20, 8, mask_zero=True)(token_ids)
    mask = keras.ops.not_equal(token_ids, 0)
    outputs = recurrent.recurrent_stack(embedded, "lstm", 6, 1, bidirectional, mask=mask,
                                        return_sequences=pooling.returns_sequences(kind),
                                        return_state=pooling.returns_state(kind))
    return keras.Model(token_ids, pooling.pool_sequence(outputs, mask, kind))


@pytest.mark.parametrize("kind", pooling.POOLING_CHOICES)
def test_every_kind_ignores_padding_and_reloads(kind, tmp_path):
    keras.utils.set_random_seed(0)
    model = pooled_model(kind)
    padded = np.array([[3, 4, 5, 0, 0, 0], [7, 8, 9, 10, 11, 12]])
    pooled = model.predict(padded, verbose=0)
    assert pooled.shape[0] == 2 and np.all(np.isfinite(pooled))
    np.testing.assert_allclose(pooled[0], model.predict(np.array([[3, 4, 5]]), verbose=0)[0], atol=1e-5)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded.predict(padded, verbose=0), pooled, atol=1e-6)


def test_max_takes_each_features_largest_value_over_the_real_steps():
    keras.utils.set_random_seed(0)
    model = pooled_model("max", bidirectional=False)
    steps = keras.Model(model.inputs, model.get_layer(index=2).output)  # the LSTM's every step
    ids = np.array([[3, 4, 5, 0, 0]])
    every_step = steps.predict(ids, verbose=0)[0, :3]
    np.testing.assert_allclose(model.predict(ids, verbose=0)[0], every_step.max(axis=0), atol=1e-6)
    # A step that holds padding never wins, even where every real value is negative.
    assert np.all(model.predict(ids, verbose=0) > -1.0)


def test_an_unknown_kind_is_a_user_error():
    with pytest.raises(errors.SeqTemplatesError, match="model.pooling"):
        pooling.pool_sequence(keras.Input((None, 4)), keras.Input((None,), dtype="bool"), "median")
