"""Beam search that runs inside the graph (``tf.while_loop``; works in a SavedModel).

The decoder is seen through one function, the same contract as
:func:`seq_templates.layers.sampling.generate`::

    step_function(token_ids int32 [batch], state) -> (logits float32 [batch, vocab], new_state)

where ``state`` is any nest of tensors with a leading batch dimension (decoder
states, and anything constant the step needs, such as the encoder outputs and
the source mask for attention). :func:`beam_search` tiles the state to
``batch * beam_width`` rows and reorders it after every step.

Two sets of hypotheses are kept per example, as in Tensor2Tensor's beam search:
the ``beam_width`` best *alive* ones (not ended), which are extended, and the
``beam_width`` best *finished* ones (ended with ``end_token_id``), which are kept
with their final score however long the search goes on. As in Hugging Face's
search, a hypothesis may end only if its end token ranks among the step's
``beam_width`` best candidates, so a beam of 1 decodes exactly as greedy does. A finished hypothesis
is scored ``log P(y) / ((5 + length) / 6) ** length_penalty`` (GNMT; 0 means the
plain log-probability, larger values favour longer outputs). The search stops
at ``max_length`` or as soon as no alive hypothesis can still beat the best
finished one of each example.

Around it: :func:`decode` picks greedy decoding or the beam by a ``beam_width`` tensor at
run time (one serving signature for both), and :func:`ids_to_text` turns decoded ids into
text in the graph.
"""

import tensorflow as tf

from seq_templates.layers import sampling

NEGATIVE_INFINITY = -1.0e9  # finite, so sums stay ordered and never give NaN


def length_normalizer(length, length_penalty):
    """The GNMT length normalizer ``((5 + length) / 6) ** length_penalty`` (float32)."""
    return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, tf.cast(length_penalty, tf.float32))


def _tile(tensor, beam_width):
    return tf.repeat(tensor, beam_width, axis=0)


def beam_search(step_function, state, start_token_ids, beam_width, max_length, end_token_id,
                length_penalty=0.0):
    """Decodes the best-scoring sequence of every example with a beam of ``beam_width``.

    Args:
        step_function: ``(token_ids int32 [batch], state) -> (logits [batch, vocab], new_state)``.
        state: A nest of tensors with a leading batch dimension (not yet tiled).
        start_token_ids: int32 ``[batch]``: the first token fed to the decoder.
        beam_width: Hypotheses kept per example (int scalar; a tensor is fine). 1 is
            greedy decoding.
        max_length: Most tokens generated per example, end token included (int scalar).
        end_token_id: The token that ends a hypothesis.
        length_penalty: The GNMT ``alpha`` (float scalar, at least 0).

    Returns:
        ``(token_ids, lengths, scores)``: int32 ``[batch, steps]`` best hypothesis of
        each example (its end token included, then 0 as padding; ``steps`` is at
        most ``max_length``), int32 ``[batch]`` lengths (end token included) and
        float32 ``[batch]`` length-normalized log-probabilities.
    """
    start_token_ids = tf.cast(tf.convert_to_tensor(start_token_ids), tf.int32)
    beam_width = tf.maximum(tf.cast(beam_width, tf.int32), 1)
    max_length = tf.maximum(tf.cast(max_length, tf.int32), 1)
    end_token_id = tf.cast(end_token_id, tf.int32)
    length_penalty = tf.cast(length_penalty, tf.float32)
    batch_size = tf.shape(start_token_ids)[0]
    state = tf.nest.map_structure(lambda tensor: _tile(tensor, beam_width), state)
    batch_offsets = tf.range(batch_size)[:, None] * beam_width  # row of beam 0 of each example
    # Only beam 0 is live at first, so the first step does not pick the same token K times.
    alive_log_probs = tf.tile(tf.where(tf.range(beam_width) == 0, 0.0, NEGATIVE_INFINITY)[None],
                              [batch_size, 1])
    empty = tf.zeros([batch_size, beam_width, 0], tf.int32)
    finished_scores = tf.fill([batch_size, beam_width], NEGATIVE_INFINITY)
    finished_flags = tf.zeros([batch_size, beam_width], tf.bool)
    longest_normalizer = length_normalizer(max_length, length_penalty)

    def condition(step, unused_tokens, unused_state, alive_sequences, alive_log_probs, unused_finished,
                  finished_scores, finished_flags):
        # Alive scores only fall as tokens are added; the best a hypothesis could still reach is its
        # log-probability now under the most favourable normalizer.
        best_possible = alive_log_probs[:, 0] / tf.maximum(longest_normalizer,
                                                           length_normalizer(step + 1, length_penalty))
        best_finished = tf.where(tf.reduce_any(finished_flags, axis=1), finished_scores[:, 0],
                                 NEGATIVE_INFINITY)
        searching = tf.reduce_any(best_possible > best_finished)
        return tf.logical_and(step < max_length, searching)

    def body(step, last_tokens, state, alive_sequences, alive_log_probs, finished_sequences,
             finished_scores, finished_flags):
        logits, state = step_function(last_tokens, state)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        vocabulary_size = tf.shape(log_probs)[-1]
        candidates = alive_log_probs[:, :, None] + tf.reshape(log_probs, [batch_size, beam_width, -1])
        # 2K candidates always hold K that do not end (each beam ends with one token only).
        top_log_probs, top_indices = tf.math.top_k(tf.reshape(candidates, [batch_size, -1]), k=2 * beam_width)
        top_beams = top_indices // vocabulary_size
        top_tokens = top_indices % vocabulary_size
        top_sequences = tf.concat([tf.gather(alive_sequences, top_beams, batch_dims=1), top_tokens[:, :, None]],
                                  axis=2)
        ends = tf.equal(top_tokens, end_token_id)

        # The K best that go on.
        alive_log_probs, alive_picks = tf.math.top_k(
            tf.where(ends, 2.0 * NEGATIVE_INFINITY, top_log_probs), k=beam_width)
        alive_sequences = tf.gather(top_sequences, alive_picks, batch_dims=1)
        parents = tf.reshape(batch_offsets + tf.gather(top_beams, alive_picks, batch_dims=1), [-1])
        state = tf.nest.map_structure(lambda tensor: tf.gather(tensor, parents), state)
        last_tokens = tf.reshape(tf.gather(top_tokens, alive_picks, batch_dims=1), [-1])

        # The K best finished so far, old and new (older ones get a padding column). A hypothesis ends only
        # from among the K best candidates of this step (so a beam of 1 is exactly greedy decoding).
        new_scores = tf.where(ends & (tf.range(2 * beam_width) < beam_width)[None],
                              top_log_probs / length_normalizer(step + 1, length_penalty), NEGATIVE_INFINITY)
        finished_sequences = tf.concat([finished_sequences, tf.zeros([batch_size, beam_width, 1], tf.int32)],
                                       axis=2)
        finished_scores, finished_picks = tf.math.top_k(tf.concat([finished_scores, new_scores], axis=1),
                                                        k=beam_width)
        finished_sequences = tf.gather(tf.concat([finished_sequences, top_sequences], axis=1), finished_picks,
                                       batch_dims=1)
        finished_flags = tf.gather(tf.concat([finished_flags, ends], axis=1), finished_picks, batch_dims=1)
        return (step + 1, last_tokens, state, alive_sequences, alive_log_probs, finished_sequences,
                finished_scores, finished_flags)

    loop_variables = (tf.constant(0), _tile(start_token_ids, beam_width), state, empty, alive_log_probs,
                      empty, finished_scores, finished_flags)
    sequence_shape = tf.TensorShape([None, None, None])
    shape_invariants = (tf.TensorShape([]), tf.TensorShape([None]),
                        tf.nest.map_structure(lambda tensor: tf.TensorShape([None]).concatenate(tensor.shape[1:]),
                                              state),
                        sequence_shape, tf.TensorShape([None, None]), sequence_shape, tf.TensorShape([None, None]),
                        tf.TensorShape([None, None]))
    (steps, _, _, alive_sequences, alive_log_probs, finished_sequences, finished_scores,
     finished_flags) = tf.while_loop(condition, body, loop_variables, shape_invariants=shape_invariants)

    # An example with no finished hypothesis (max_length reached) returns its best alive one.
    any_finished = tf.reduce_any(finished_flags, axis=1)
    token_ids = tf.where(any_finished[:, None], finished_sequences[:, 0], alive_sequences[:, 0])
    scores = tf.where(any_finished, finished_scores[:, 0],
                      alive_log_probs[:, 0] / length_normalizer(steps, length_penalty))
    ended = tf.equal(token_ids, end_token_id)
    lengths = tf.where(tf.reduce_any(ended, axis=1), tf.cast(tf.argmax(tf.cast(ended, tf.int32), axis=1), tf.int32) + 1,
                       tf.shape(token_ids)[1])
    return token_ids, lengths, scores


def decode(step_function, state, start_token_ids, beam_width, max_length, end_token_id,
           length_penalty=0.0):
    """Greedy decoding when ``beam_width`` <= 1, else :func:`beam_search` (chosen in the graph).

    Args:
        step_function: As for :func:`beam_search`.
        state: The decoder's first state (a nest of tensors with a leading batch dimension).
        start_token_ids: int32 ``[batch]``: the first token fed to the decoder.
        beam_width: int scalar (a tensor is fine, so one signature serves both).
        max_length: Most tokens generated per example, end token included.
        end_token_id: The token that ends an output.
        length_penalty: The GNMT ``alpha`` of beam search (greedy ignores it).

    Returns:
        int32 ``[batch, steps]`` token ids: each output's end token, then 0 as padding.
    """
    beam_width = tf.convert_to_tensor(beam_width, tf.int32)

    def greedy():
        first_logits, first_state = step_function(start_token_ids, state)
        return sampling.generate(step_function, first_state, first_logits, max_length, 0.0, 0, 1.0,
                                 tf.zeros([2], tf.int64), end_token_id)[0]

    def beam():
        return beam_search(step_function, state, start_token_ids, beam_width, max_length,
                           end_token_id, length_penalty)[0]

    return tf.cond(beam_width <= 1, greedy, beam)


def ids_to_text(token_ids, words, end_token_id, separator=" ", rewrites=()):
    """Decoded ids -> text: the tokens before the end token, joined, then rewritten.

    Args:
        token_ids: int ``[batch, steps]`` decoded ids (an end token, or none within ``steps``).
        words: string ``[vocabulary]``: each id's token.
        end_token_id: The end token (not part of the text).
        separator: Between tokens ("" for characters).
        rewrites: ``(pattern, rewrite)`` pairs for ``tf.strings.regex_replace``, applied in order
            (detokenization: no space before closing punctuation, ...).

    Returns:
        ``(text string [batch], lengths int32 [batch])``: lengths count the tokens before the end.
    """
    ended = tf.concat([tf.equal(token_ids, end_token_id),
                       tf.fill([tf.shape(token_ids)[0], 1], True)], axis=1)
    lengths = tf.cast(tf.argmax(tf.cast(ended, tf.int32), axis=1), tf.int32)
    tokens = tf.RaggedTensor.from_tensor(tf.gather(words, token_ids), lengths=lengths)
    text = tf.strings.reduce_join(tokens, axis=1, separator=separator)
    for pattern, rewrite in rewrites:
        text = tf.strings.regex_replace(text, pattern, rewrite)
    return text, lengths
