"""In-graph samplers and the decoding loop of seq_templates.layers.sampling."""

import numpy as np
import pytest
import tensorflow as tf

from seq_templates.layers import sampling

LOGITS = tf.constant([[2.0, 1.0, 0.5, -1.0, 0.0], [0.1, 0.2, 3.0, 0.3, -2.0]])
SEED = tf.constant([3, 7], tf.int64)


def test_temperature_zero_and_tiny_equal_greedy():
    greedy = sampling.sample_next(LOGITS, 0.0, 0, 1.0, SEED).numpy()
    assert greedy.tolist() == [0, 2]
    for seed in range(20):
        tiny = sampling.sample_next(LOGITS, 1e-4, 0, 1.0, tf.constant([seed, 1]))
        assert tiny.numpy().tolist() == greedy.tolist()


def test_top_k_one_equals_greedy_at_any_temperature():
    for seed in range(20):
        drawn = sampling.sample_next(LOGITS, 5.0, 1, 1.0, tf.constant([seed, 2]))
        assert drawn.numpy().tolist() == [0, 2]


def test_top_p_keeps_exactly_the_nucleus():
    probabilities = np.array([[0.5, 0.3, 0.1, 0.06, 0.04]])
    logits = tf.constant(np.log(probabilities), tf.float32)
    def kept(top_p):
        return np.isfinite(sampling.filter_top_p(logits, top_p).numpy()[0]).tolist()

    assert kept(0.5) == [True, False, False, False, False]
    assert kept(0.51) == [True, True, False, False, False]
    assert kept(0.79) == [True, True, False, False, False]
    assert kept(0.81) == [True, True, True, False, False]
    assert kept(0.95) == [True, True, True, True, False]
    assert kept(1.0) == [True] * 5
    assert kept(0.01) == [True, False, False, False, False]
    # Drawn tokens never leave the nucleus.
    draws = {int(sampling.sample_next(logits, 1.0, 0, 0.85, tf.constant([seed, 0]))[0]) for seed in range(200)}
    assert draws == {0, 1, 2}


def test_top_k_keeps_the_k_largest():
    kept = np.isfinite(sampling.filter_top_k(LOGITS, 2).numpy())
    assert kept.tolist() == [[True, True, False, False, False], [False, False, True, True, False]]
    assert np.isfinite(sampling.filter_top_k(LOGITS, 0).numpy()).all()
    assert np.isfinite(sampling.filter_top_k(LOGITS, 99).numpy()).all()


def test_seeded_draws_repeat_and_other_seeds_differ():
    logits = tf.zeros([4, 50])
    first = sampling.sample_next(logits, 1.0, 0, 1.0, tf.constant([1, 2])).numpy()
    again = sampling.sample_next(logits, 1.0, 0, 1.0, tf.constant([1, 2])).numpy()
    other = sampling.sample_next(logits, 1.0, 0, 1.0, tf.constant([1, 3])).numpy()
    assert first.tolist() == again.tolist()
    assert first.tolist() != other.tolist()


def test_sampled_frequencies_match_the_tempered_distribution():
    probabilities = np.array([0.5, 0.25, 0.15, 0.1])
    temperature = 2.0
    draws = 20000
    logits = tf.constant(np.tile(np.log(probabilities), (draws, 1)), tf.float32)
    drawn = sampling.sample_next(logits, temperature, 0, 1.0, tf.constant([11, 12])).numpy()
    expected = probabilities ** (1 / temperature)
    expected /= expected.sum()
    observed = np.bincount(drawn, minlength=4) / draws
    # Standard error is at most sqrt(0.25 / 20000) = 0.0035; allow 4 of them.
    np.testing.assert_allclose(observed, expected, atol=0.014)


def _counting_step(vocabulary_size):
    """A step function whose next logits favour (token + 1) mod vocab; state counts steps."""
    def step(token_ids, state):
        logits = 10.0 * tf.one_hot((token_ids + 1) % vocabulary_size, vocabulary_size)
        return logits, {"count": state["count"] + 1}
    return step


def test_generate_greedy_runs_the_state_and_stops_at_end_token():
    first = 10.0 * tf.one_hot([1, 3], 6)
    state = {"count": tf.zeros([2], tf.int32)}
    tokens, lengths = sampling.generate(_counting_step(6), state, first, 8, 0.0, 0, 1.0, SEED,
                                        end_token_id=4)
    assert tokens.numpy().tolist() == [[1, 2, 3, 4], [3, 4, 0, 0]]  # stops once every row ended
    assert lengths.numpy().tolist() == [4, 2]


def test_generate_in_a_tf_function_with_dynamic_length_repeats_with_a_seed():
    step = _counting_step(5)

    @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.float32), tf.TensorSpec([], tf.int32),
                                  tf.TensorSpec([], tf.float32), tf.TensorSpec([2], tf.int64)])
    def run(first, max_length, temperature, seed):
        # Flat logits: the step function's preference is washed out by a high temperature.
        return sampling.generate(lambda token, state: (step(token, state)[0] * 0.0, state),
                                 {"count": tf.zeros([tf.shape(first)[0]], tf.int32)}, first, max_length,
                                 temperature, 0, 1.0, seed)

    first = tf.zeros([3, 5])
    tokens, lengths = run(first, 30, 1.0, tf.constant([5, 6], tf.int64))
    again, _ = run(first, 30, 1.0, tf.constant([5, 6], tf.int64))
    other, _ = run(first, 30, 1.0, tf.constant([5, 7], tf.int64))
    assert tokens.shape == (3, 30) and lengths.numpy().tolist() == [30, 30, 30]
    assert tokens.numpy().tolist() == again.numpy().tolist()
    assert tokens.numpy().tolist() != other.numpy().tolist()
    short, _ = run(first, 3, 1.0, tf.constant([5, 6], tf.int64))
    assert short.shape == (3, 3)


@pytest.mark.parametrize("max_length, temperature, top_k, top_p, message", [
    (0, 1.0, 0, 1.0, "max_length"), (5, -0.5, 0, 1.0, "temperature"), (5, 1.0, -1, 1.0, "top_k"),
    (5, 1.0, 0, 0.0, "top_p"), (5, 1.0, 0, 1.5, "top_p")])
def test_generate_rejects_settings_out_of_range_in_the_graph(max_length, temperature, top_k, top_p, message):
    @tf.function
    def run():
        return sampling.generate(_counting_step(4), {"count": tf.zeros([1], tf.int32)}, tf.zeros([1, 4]),
                                 tf.constant(max_length), tf.constant(temperature), tf.constant(top_k),
                                 tf.constant(top_p), SEED)

    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        run()


def _tiny_language_model(cell, residual, num_layers=2, vocabulary_size=7, units=5):
    """A stateless Embedding -> recurrent layers -> Dense network and its RecurrentLanguageModel."""
    import keras

    keras.utils.set_random_seed(3)
    token_ids = keras.Input(shape=(None,), dtype="int64")
    embedding = keras.layers.Embedding(vocabulary_size, units)
    layers = [getattr(keras.layers, cell)(units, return_sequences=True, return_state=True)
              for _ in range(num_layers)]
    dense = keras.layers.Dense(vocabulary_size)
    sequence = embedding(token_ids)
    for index, layer in enumerate(layers):
        outputs = layer(sequence)[0]
        sequence = keras.layers.Add()([sequence, outputs]) if residual and index > 0 else outputs
    network = keras.Model(token_ids, dense(sequence))
    return network, sampling.RecurrentLanguageModel(embedding, layers, dense, residual)


@pytest.mark.parametrize("cell, residual", [("GRU", False), ("LSTM", True), ("SimpleRNN", True)])
def test_recurrent_language_model_steps_as_the_network_reads_the_whole_sequence(cell, residual):
    network, language_model = _tiny_language_model(cell, residual)
    ids = tf.constant([[3, 1, 4, 1, 5, 2]], tf.int64)
    expected = network(ids).numpy()[0]  # logits after every prefix
    states = language_model.read(ids[:, :2])
    np.testing.assert_allclose(language_model.next_logits(states).numpy()[0], expected[1], atol=1e-5)
    for position in range(2, 6):
        logits, states = language_model.step(tf.cast(ids[:, position], tf.int32), states)
        np.testing.assert_allclose(logits.numpy()[0], expected[position], atol=1e-5)


def test_recurrent_language_model_reads_padding_as_the_end_and_scores_tokens_after_the_first():
    network, language_model = _tiny_language_model("GRU", False)
    ids = tf.constant([[3, 1, 4, 0, 0], [2, 5, 6, 1, 3], [0, 0, 0, 0, 0]], tf.int64)
    expected = network(ids).numpy()
    last = language_model.next_logits(language_model.read(ids)).numpy()
    np.testing.assert_allclose(last[0], expected[0, 2], atol=1e-5)  # after the last real token
    np.testing.assert_allclose(last[1], expected[1, 4], atol=1e-5)
    np.testing.assert_allclose(last[2], language_model.dense(tf.zeros([1, 5])).numpy()[0], atol=1e-5)
    scores = language_model.score(ids)
    log_probabilities = tf.nn.log_softmax(expected).numpy()
    row = ids.numpy()[1]
    assert scores["num_scored"].numpy().tolist() == [2, 4, 0]
    np.testing.assert_allclose(scores["log_probability"].numpy()[1],
                               sum(log_probabilities[1, index, row[index + 1]] for index in range(4)),
                               atol=1e-4)
    assert scores["log_probability"].numpy()[2] == 0.0


def test_recurrent_language_model_generate_never_draws_a_biased_off_token_and_repeats():
    _, language_model = _tiny_language_model("GRU", False)
    language_model.logit_bias = tf.constant([-1e9, -1e9] + [0.0] * 5)
    ids = tf.constant([[3, 1, 4], [0, 0, 0]], tf.int64)
    tokens, lengths = language_model.generate(ids, 12, 1.0, 0, 1.0, tf.constant(9, tf.int64))
    again, _ = language_model.generate(ids, 12, 1.0, 0, 1.0, tf.constant(9, tf.int64))
    assert tokens.shape == (2, 12) and lengths.numpy().tolist() == [12, 12]
    assert tokens.numpy().min() >= 2 and tokens.numpy().tolist() == again.numpy().tolist()


def test_join_continuation_adds_the_separator_only_between_two_texts():
    joined = sampling.join_continuation(tf.constant(["To be", "", "To be"]),
                                        tf.constant(["or not", "or not", ""]), " ")
    assert joined.numpy().astype(str).tolist() == ["To be or not", "or not", "To be"]
