"""Beam search in the graph: width 1 is greedy, a wider beam finds better sequences, end tokens and
length penalty behave, and it runs inside tf.function with dynamic settings."""

import itertools
import math

import numpy as np
import pytest
import tensorflow as tf

from seq_templates.layers import beam_search
from seq_templates.layers import sampling

PAD, END, A, B, START = 0, 1, 2, 3, 4


def table_step(table):
    """A decoder whose next-token distribution depends only on the last token: ``table[last token]``."""
    log_table = tf.math.log(tf.constant(table, tf.float32) + 1e-12)

    def step(token_ids, state):
        return tf.gather(log_table, token_ids), {"steps": state["steps"] + 1}

    return step


def random_rnn_step(vocabulary_size=7, hidden=8, seed=0):
    """A tiny random recurrent decoder: h' = tanh(E[token] + h U), logits = h' W."""
    generator = np.random.default_rng(seed)
    embedding = tf.constant(generator.normal(size=(vocabulary_size, hidden)), tf.float32)
    recurrent = tf.constant(generator.normal(size=(hidden, hidden)) * 0.8, tf.float32)
    output = tf.constant(generator.normal(size=(hidden, vocabulary_size)) * 1.5, tf.float32)

    def step(token_ids, state):
        hidden_state = tf.tanh(tf.gather(embedding, token_ids) + state["hidden"] @ recurrent)
        return hidden_state @ output, {"hidden": hidden_state}

    return step


def sequence_log_prob(table, tokens):
    total, last = 0.0, START
    for token in tokens:
        total += math.log(table[last][token] + 1e-12)
        last = token
    return total


# From START: A 0.6, B 0.4. After A: END 0.4, A 0.3, B 0.3. After B: END 0.95.
# Greedy takes A then END (0.24); the best sequence is B END (0.38).
TRAP = [[0.0] * 5 for _ in range(5)]
TRAP[START][A], TRAP[START][B] = 0.6, 0.4
TRAP[A][END], TRAP[A][A], TRAP[A][B] = 0.4, 0.3, 0.3
TRAP[B][END], TRAP[B][A] = 0.95, 0.05
TRAP[END][END] = 1.0
TRAP[PAD][END] = 1.0


def run(step, batch_size, beam_width, max_length, length_penalty=0.0, state=None):
    state = state if state is not None else {"steps": tf.zeros([batch_size, 1])}
    return beam_search.beam_search(step, state, tf.fill([batch_size], START), beam_width, max_length, END,
                                   length_penalty)


def greedy(step, state, batch_size, max_length):
    first_logits, state = step(tf.fill([batch_size], START), state)
    return sampling.generate(step, state, first_logits, max_length, 0.0, 0, 1.0, tf.zeros([2], tf.int64), END)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_width_one_equals_greedy(seed):
    step = random_rnn_step(seed=seed)
    state = {"hidden": tf.random.stateless_normal([6, 8], seed=[seed, 1])}
    beam_ids, beam_lengths, _ = run(step, 6, 1, 12, state=state)
    greedy_ids, greedy_lengths = greedy(step, state, 6, 12)
    width = max(beam_ids.shape[1], greedy_ids.shape[1])
    pad = lambda ids: np.pad(ids.numpy(), [(0, 0), (0, width - ids.shape[1])])  # noqa: E731
    np.testing.assert_array_equal(pad(beam_ids), pad(greedy_ids))
    np.testing.assert_array_equal(beam_lengths.numpy(), greedy_lengths.numpy())


def test_beam_finds_the_best_sequence_where_greedy_does_not():
    step = table_step(TRAP)
    greedy_ids, _ = greedy(step, {"steps": tf.zeros([1, 1])}, 1, 5)
    assert greedy_ids.numpy()[0].tolist()[:2] == [A, END]
    ids, lengths, scores = run(step, 1, 2, 5)
    assert ids.numpy()[0].tolist()[:2] == [B, END]
    assert lengths.numpy().tolist() == [2]
    assert scores.numpy()[0] == pytest.approx(math.log(0.38), abs=1e-4)
    # Exhaustively, no sequence of up to 4 tokens ending in END scores better.
    best = max(sequence_log_prob(TRAP, list(prefix) + [END])
               for length in range(4) for prefix in itertools.product([A, B], repeat=length))
    assert scores.numpy()[0] == pytest.approx(best, abs=1e-4)


def test_end_token_padding_after_it_and_max_length():
    # Rows never end (END has probability ~0): they stop at max_length with every position filled.
    never = [[0.0] * 5 for _ in range(5)]
    for row in never:
        row[A], row[B] = 0.7, 0.3
    ids, lengths, _ = run(table_step(never), 2, 3, 6)
    assert ids.shape == (2, 6)
    assert lengths.numpy().tolist() == [6, 6]
    assert (ids.numpy() != PAD).all() and (ids.numpy() != END).all()
    # Rows that end: the END token is kept, zeros follow, lengths count the END token.
    ids, lengths, _ = run(table_step(TRAP), 3, 3, 6)
    for row, length in zip(ids.numpy(), lengths.numpy()):
        assert row[length - 1] == END
        assert (row[length:] == PAD).all()
        assert END not in row[:length - 1]


def test_length_penalty_favours_longer_outputs():
    # END 0.55 or A 0.45 after START and after A: the shortest output is the most probable,
    # a strong length penalty (GNMT alpha) prefers longer ones.
    table = [[0.0] * 5 for _ in range(5)]
    for last in (START, A, PAD, END):
        table[last][END], table[last][A] = 0.55, 0.45
    _, short_lengths, short_scores = run(table_step(table), 1, 4, 8, length_penalty=0.0)
    _, long_lengths, long_scores = run(table_step(table), 1, 4, 8, length_penalty=6.0)
    assert short_lengths.numpy().tolist() == [1]
    assert short_scores.numpy()[0] == pytest.approx(math.log(0.55), abs=1e-5)
    assert long_lengths.numpy()[0] > 1
    length = int(long_lengths.numpy()[0])
    expected = ((length - 1) * math.log(0.45) + math.log(0.55)) / ((5 + length) / 6) ** 6.0
    assert long_scores.numpy()[0] == pytest.approx(expected, rel=1e-4)


def test_runs_in_tf_function_with_dynamic_width_and_length():
    step = random_rnn_step(seed=3)

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32), tf.TensorSpec([], tf.int32),
                                  tf.TensorSpec([], tf.int32)])
    def decode(hidden, beam_width, max_length):
        ids, lengths, scores = beam_search.beam_search(step, {"hidden": hidden}, tf.fill([tf.shape(hidden)[0]], START),
                                                       beam_width, max_length, END, 0.6)
        return ids, lengths, scores

    hidden = tf.random.stateless_normal([5, 8], seed=[3, 4])
    eager = beam_search.beam_search(step, {"hidden": hidden}, tf.fill([5], START), 3, 9, END, 0.6)
    for width in (1, 3, 5):
        ids, lengths, scores = decode(hidden, tf.constant(width), tf.constant(9))
        assert ids.shape[0] == 5 and ids.shape[1] <= 9
        assert (lengths.numpy() <= 9).all()
        if width == 3:
            np.testing.assert_array_equal(ids.numpy(), eager[0].numpy())
            np.testing.assert_allclose(scores.numpy(), eager[2].numpy(), rtol=1e-5)


def test_decode_is_greedy_for_width_one_and_the_beam_otherwise_chosen_in_the_graph():
    step = random_rnn_step(seed=4)
    hidden = tf.random.stateless_normal([5, 8], seed=[4, 5])

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32), tf.TensorSpec([], tf.int32)])
    def decode(hidden, beam_width):
        return beam_search.decode(step, {"hidden": hidden}, tf.fill([tf.shape(hidden)[0]], START), beam_width,
                                  9, END, 0.6)

    def same(ids, expected):
        width = max(ids.shape[1], expected.shape[1])
        pad = lambda array: np.pad(array.numpy(), [(0, 0), (0, width - array.shape[1])])  # noqa: E731
        np.testing.assert_array_equal(pad(ids), pad(expected))

    same(decode(hidden, tf.constant(1)), greedy(step, {"hidden": hidden}, 5, 9)[0])
    beam = beam_search.beam_search(step, {"hidden": hidden}, tf.fill([5], START), 3, 9, END, 0.6)[0]
    same(decode(hidden, tf.constant(3)), beam)
    # The TRAP table: greedy takes A END, a beam of 2 finds B END.
    state = {"steps": tf.zeros([1, 1])}
    assert beam_search.decode(table_step(TRAP), state, tf.fill([1], START), 2, 5, END).numpy()[0].tolist()[:2] == [
        B, END]


def test_ids_to_text_joins_the_tokens_before_the_end_and_rewrites():
    words = tf.constant(["", "[end]", "I", "do", "n't", "know", "?"])
    ids = tf.constant([[2, 3, 4, 5, 6, 1, 0], [5, 1, 5, 5, 0, 0, 0], [2, 5, 2, 5, 2, 5, 2]])
    text, lengths = beam_search.ids_to_text(ids, words, 1)
    assert [value.decode() for value in text.numpy()] == ["I do n't know ?", "know", "I know I know I know I"]
    assert lengths.numpy().tolist() == [5, 1, 7]
    joined, _ = beam_search.ids_to_text(ids, words, 1, separator="", rewrites=(("know", "KNOW"), ("K", "k")))
    assert joined.numpy()[1].decode() == "kNOW" and joined.numpy()[0].decode() == "Idon'tkNOW?"
