"""Every Keras object of the package through the one shared test (tests/layers/keras_object_test_case.py).

The samplers and beam search are not here: they are graph functions (``tf.while_loop`` s inside
the serving functions), not Keras objects, so nothing of them is serialized in ``model.keras``;
the exports that use them are checked by the app contract tests, reloaded in a fresh process.
"""

import keras
import numpy as np

from seq_templates.layers import char_recurrent
from seq_templates.layers import crf
from seq_templates.layers import forecasting
from tests.layers import keras_object_test_case

NUM_TAGS = 4


def _token_ids():
    random = np.random.default_rng(0)
    ids = random.integers(1, 9, size=(6, 5))
    ids[0, 3:] = 0  # padding: the masks are exercised
    ids[1, 1:] = 0
    return ids


def test_crf_layer_and_its_loss(tmp_path):
    ids = _token_ids()
    tags = np.random.default_rng(1).integers(1, NUM_TAGS, size=ids.shape) * (ids > 0)

    def build(inputs, layer):
        embedded = keras.layers.Embedding(10, 8, mask_zero=True)(inputs[0])
        return layer(keras.layers.Dense(NUM_TAGS)(embedded))

    keras_object_test_case.run_layer_test(
        crf.CRF(NUM_TAGS, name="crf"), [(None,)], [ids], build, tags, crf.CRFLoss(NUM_TAGS), tmp_path,
        input_dtypes=["int64"], sample_weight=(ids > 0).astype("float32"))


def test_crf_loss_alone():
    emissions = np.random.default_rng(2).normal(size=(3, 4, NUM_TAGS)).astype("float32")
    packed = np.asarray(crf.CRF(NUM_TAGS)(emissions))
    tags = np.random.default_rng(3).integers(0, NUM_TAGS, size=(3, 4))
    keras_object_test_case.run_loss_test(crf.CRFLoss(NUM_TAGS), tags, packed)


def test_word_character_rnn(tmp_path):
    char_ids = np.random.default_rng(4).integers(1, 12, size=(4, 3, 6))
    char_ids[0, 2] = 0  # a padding word: no characters
    char_ids[1, 0, 2:] = 0

    def build(inputs, layer):
        embedded = keras.layers.Embedding(12, 5, mask_zero=True)(inputs[0])
        return keras.layers.Dense(1)(layer(embedded))

    keras_object_test_case.run_layer_test(
        char_recurrent.WordCharacterRNN(3, cell="gru", name="char_rnn"), [(None, 6)], [char_ids], build,
        np.ones((4, 3, 1), "float32"), "mse", tmp_path, input_dtypes=["int64"])


def test_pinball_loss(tmp_path):
    quantiles = [0.1, 0.5, 0.9]
    truth = np.random.default_rng(5).normal(size=(8, 3)).astype("float32")
    keras_object_test_case.run_loss_test(forecasting.PinballLoss(quantiles), truth,
                                         np.zeros((8, 3, 3), "float32"))

    def build(inputs, unused_layer):
        return keras.layers.Reshape((3, 3))(keras.layers.Dense(9)(inputs[0]))

    window = np.random.default_rng(6).normal(size=(8, 4)).astype("float32")
    keras_object_test_case.run_layer_test(
        keras.layers.Identity(), [(4,)], [window], build, truth, forecasting.PinballLoss(quantiles), tmp_path)
