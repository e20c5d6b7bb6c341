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


def test_shrunk_correction(tmp_path):
    window = np.random.default_rng(7).normal(size=(8, 4)).astype("float32")
    layer = forecasting.ShrunkCorrection(name="corrected_forecast")

    def build(inputs, shrunk):
        correction = keras.layers.Dense(3)(inputs[0])
        output = shrunk([correction, keras.layers.Dense(3, trainable=False)(inputs[0])])
        shrunk.scale.assign(0.25)  # a chosen scale, which the reloaded model must keep
        return output

    keras_object_test_case.run_layer_test(layer, [(4,)], [window], build, np.zeros((8, 3), "float32"), "mse",
                                          tmp_path)


REGISTERED_IN_A_FRESH_PROCESS = """
import sys
{imports}
import keras
names = [name for name in keras.saving.get_custom_objects() if name.startswith("seq_templates>")]
print(sorted(names))
"""


def test_import_seq_templates_registers_every_keras_object_in_any_import_order():
    import subprocess
    import sys

    import seq_templates

    declared = set()
    for path in (keras_object_test_case.REPOSITORY / "seq_templates").rglob("*.py"):
        if "register_keras_serializable" in path.read_text(encoding="utf-8") and path.stem != "__init__":
            declared.add(".".join(path.relative_to(keras_object_test_case.REPOSITORY).with_suffix("").parts))
    assert declared == set(seq_templates.KERAS_OBJECT_MODULES)  # a new module must be listed there
    expected = "['seq_templates>CRF', 'seq_templates>CRFLoss', 'seq_templates>PinballLoss', " \
               "'seq_templates>ShrunkCorrection', 'seq_templates>WordCharacterRNN']"
    # TensorFlow first looks keras up without importing it (the order that broke a first hook); the
    # contract tests load model.keras after `import seq_templates` alone, and with keras imported first.
    for imports in ("import seq_templates\nimport tensorflow", "import tensorflow\nimport keras\nimport seq_templates"):
        completed = subprocess.run(
            [sys.executable, "-c", REGISTERED_IN_A_FRESH_PROCESS.format(imports=imports)], capture_output=True,
            text=True, timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin",
                                         "PYTHONPATH": str(keras_object_test_case.REPOSITORY)})
        assert completed.returncode == 0, completed.stderr[-2000:]
        assert completed.stdout.strip().splitlines()[-1] == expected, imports
