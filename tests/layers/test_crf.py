"""The CRF layer against brute-force enumeration of every tag path, with padding."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq_templates.layers import crf


def _brute_force(emissions, transitions, start, end, length):
    """Returns (log Z, best path, best score) over every path of the first ``length`` steps."""
    num_tags = emissions.shape[-1]
    scores = {}
    for path in itertools.product(range(num_tags), repeat=length):
        score = start[path[0]] + end[path[-1]] + sum(emissions[step, tag] for step, tag in enumerate(path))
        score += sum(transitions[path[step - 1], path[step]] for step in range(1, length))
        scores[path] = score
    values = np.array(list(scores.values()))
    best = max(scores, key=scores.get)
    return np.log(np.sum(np.exp(values - values.max()))) + values.max(), list(best), scores[best]


@pytest.fixture
def problem():
    generator = np.random.default_rng(7)
    num_tags, time = 3, 5
    emissions = generator.normal(size=(4, time, num_tags)).astype("float32") * 2
    transitions = generator.normal(size=(num_tags, num_tags)).astype("float32") * 2
    start = generator.normal(size=num_tags).astype("float32")
    end = generator.normal(size=num_tags).astype("float32")
    lengths = np.array([5, 3, 1, 4])
    mask = np.arange(time)[None, :] < lengths[:, None]
    emissions_padded = np.where(mask[:, :, None], emissions, generator.normal(size=emissions.shape) * 100)
    return emissions_padded.astype("float32"), transitions, start, end, mask, lengths


def test_log_partition_and_best_path_match_brute_force(problem):
    emissions, transitions, start, end, mask, lengths = problem
    log_z = crf.log_partition(tf.constant(emissions), transitions, start, end, tf.constant(mask)).numpy()
    tags, best_scores = crf.viterbi(tf.constant(emissions), transitions, start, end, tf.constant(mask))
    for row, length in enumerate(lengths):
        expected_log_z, expected_path, expected_score = _brute_force(emissions[row], transitions, start, end, length)
        np.testing.assert_allclose(log_z[row], expected_log_z, rtol=1e-5)
        assert tags.numpy()[row, :length].tolist() == expected_path
        assert (tags.numpy()[row, length:] == 0).all()
        np.testing.assert_allclose(best_scores.numpy()[row], expected_score, rtol=1e-5)


def test_sequence_score_matches_hand_sum_and_nll_is_positive(problem):
    emissions, transitions, start, end, mask, lengths = problem
    tag_ids = np.random.default_rng(1).integers(0, 3, size=mask.shape)
    scores = crf.sequence_score(tf.constant(emissions), tf.constant(tag_ids), transitions, start, end,
                                tf.constant(mask)).numpy()
    for row, length in enumerate(lengths):
        path = tag_ids[row, :length]
        expected = start[path[0]] + end[path[-1]] + sum(emissions[row, step, tag] for step, tag in enumerate(path))
        expected += sum(transitions[path[step - 1], path[step]] for step in range(1, length))
        np.testing.assert_allclose(scores[row], expected, rtol=1e-5)
    log_z = crf.log_partition(tf.constant(emissions), transitions, start, end, tf.constant(mask)).numpy()
    assert (log_z - scores > 0).all()


def test_single_step_sequences():
    emissions = tf.constant([[[0.5, 2.0, -1.0]]])
    tags, _ = crf.viterbi(emissions, tf.zeros([3, 3]), tf.zeros([3]), tf.constant([0.0, -3.0, 0.0]),
                          tf.constant([[True]]))
    assert tags.numpy().tolist() == [[0]]


def _tiny_model(num_tags=4):
    token_ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    embedded = keras.layers.Embedding(20, 8, mask_zero=True)(token_ids)
    emissions = keras.layers.Dense(num_tags)(embedded)
    packed = crf.CRF(num_tags, name="crf")(emissions)
    model = keras.Model({"token_ids": token_ids}, packed)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=crf.CRFLoss(num_tags))
    return model


def test_loss_equals_nll_and_training_learns_a_rule_with_padding(tmp_path):
    num_tags = 4
    model = _tiny_model(num_tags)
    generator = np.random.default_rng(0)
    token_ids = generator.integers(1, 20, size=(64, 6))
    lengths = generator.integers(1, 7, size=64)
    token_ids[np.arange(6)[None, :] >= lengths[:, None]] = 0
    tags = np.where(token_ids > 0, token_ids % (num_tags - 1) + 1, 0)  # padding gets tag 0
    packed = model({"token_ids": tf.constant(token_ids)})
    emissions, transitions, start, end, mask = crf.unpack(packed, num_tags)
    assert mask.numpy().sum() == lengths.sum()
    expected = np.sum(crf.log_partition(emissions, transitions, start, end, mask)
                      - crf.sequence_score(emissions, tags, transitions, start, end, mask)) / lengths.sum()
    loss = model.compute_loss(y=tf.constant(tags), y_pred=packed)
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-4)
    model.fit({"token_ids": tf.constant(token_ids)}, tf.constant(tags), epochs=40, verbose=0, batch_size=16)
    decoded = crf.decode(model({"token_ids": tf.constant(token_ids)}), num_tags).numpy()
    assert (decoded == tags).mean() > 0.95
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded({"token_ids": tf.constant(token_ids)}).numpy(),
                               model({"token_ids": tf.constant(token_ids)}).numpy(), atol=1e-6)
    assert isinstance(reloaded.loss, crf.CRFLoss) and reloaded.get_layer("crf").num_tags == num_tags


def test_decode_inside_a_tf_function_with_dynamic_shapes():
    model = _tiny_model()

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int64)])
    def tag(token_ids):
        return crf.decode(model({"token_ids": token_ids}), 4)

    assert tag(tf.constant([[3, 4, 0], [5, 0, 0]], tf.int64)).shape == (2, 3)
    assert tag(tf.constant([[3]], tf.int64)).shape == (1, 1)


def test_loss_in_a_graph_on_a_batch_of_one_step_sentences():
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32),
                                  tf.TensorSpec([None, None, crf.packed_width(3)], tf.float32)])
    def loss(tags, packed):
        return crf.CRFLoss(3)(tags, packed)

    emissions = tf.constant([[[1.0, 0.0, -1.0]], [[0.0, 2.0, 0.0]]])
    packed = crf.CRF(3)(emissions)
    value = float(loss(tf.constant([[0], [1]]), packed))
    expected = np.mean([np.log(np.exp([1.0, 0.0, -1.0]).sum()) - 1.0, np.log(np.exp([0.0, 2.0, 0.0]).sum()) - 2.0])
    np.testing.assert_allclose(value, expected, rtol=1e-5)
