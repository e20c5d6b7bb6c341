"""Decoding loops that run inside the graph: greedy, temperature, top-k and top-p sampling.

``sample_next`` draws one token per row from next-token logits; ``generate`` runs
the step loop (a ``tf.while_loop``, so it works inside a ``tf.function`` with a
dynamic ``max_length``), feeding each drawn token back through a caller's
``step_function`` that carries the recurrent state. Nothing re-runs the growing
prefix. Random draws use stateless ops: the same seed gives the same tokens, in
Keras and in a reloaded SavedModel.

Written here rather than taken from keras-hub's samplers: those are Keras 3 ops
classes built around a cache of a transformer's keys/values and pull in the
keras-hub package (and its tensorflow-text pin); a recurrent state nest and four
scalar settings need only the two functions below.

Order of filtering (as in most libraries): divide by the temperature, keep the
``top_k`` largest logits, then keep the nucleus: the smallest set of the most
probable tokens whose probability adds up to at least ``top_p``.
"""

import tensorflow as tf


def _greedy(logits):
    return tf.cast(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.int32)


def filter_top_k(logits, top_k):
    """Sets every logit below a row's ``top_k``-th largest to ``-inf`` (``top_k`` 0 keeps all)."""
    vocabulary_size = tf.shape(logits)[-1]
    top_k = tf.cast(top_k, tf.int32)
    k = tf.where(top_k > 0, tf.minimum(top_k, vocabulary_size), vocabulary_size)
    threshold = tf.math.top_k(logits, k=k).values[:, -1:]
    return tf.where(logits < threshold, tf.constant(float("-inf"), logits.dtype), logits)


def filter_top_p(logits, top_p):
    """Keeps each row's nucleus: the fewest most-probable tokens whose probabilities sum to >= ``top_p``.

    Ties are broken by position (``tf.math.top_k`` order), so exactly that many tokens stay.
    """
    vocabulary_size = tf.shape(logits)[-1]
    sorted_logits, sorted_indices = tf.math.top_k(logits, k=vocabulary_size)
    sorted_probabilities = tf.nn.softmax(sorted_logits, axis=-1)
    mass_before = tf.math.cumsum(sorted_probabilities, axis=-1, exclusive=True)
    keep_sorted = mass_before < tf.cast(top_p, sorted_probabilities.dtype)
    keep_sorted = tf.concat([tf.ones_like(keep_sorted[:, :1]), keep_sorted[:, 1:]], axis=-1)
    inverse_permutation = tf.argsort(sorted_indices, axis=-1, stable=True)
    keep = tf.gather(keep_sorted, inverse_permutation, batch_dims=1)
    return tf.where(keep, logits, tf.constant(float("-inf"), logits.dtype))


def sample_next(logits, temperature, top_k, top_p, seed):
    """Draws one token id per row.

    Args:
        logits: float32 ``[batch, vocab]`` next-token logits.
        temperature: float32 scalar; ``<= 0`` means greedy (argmax).
        top_k: int32 scalar; keep only the ``top_k`` largest logits (0 = off).
        top_p: float32 scalar in (0, 1]; keep only the nucleus of mass ``top_p`` (1 = off).
        seed: int32/int64 shape ``[2]`` stateless seed.

    Returns:
        int32 ``[batch]`` token ids.
    """
    logits = tf.convert_to_tensor(logits, tf.float32)
    temperature = tf.cast(temperature, tf.float32)
    top_p = tf.cast(top_p, tf.float32)
    scaled = logits / tf.where(temperature > 0, temperature, tf.ones_like(temperature))
    filtered = tf.cond(tf.cast(top_k, tf.int32) > 0, lambda: filter_top_k(scaled, top_k), lambda: scaled)
    filtered = tf.cond(top_p < 1.0, lambda: filter_top_p(filtered, top_p), lambda: filtered)
    sampled = tf.random.stateless_categorical(filtered, 1, seed=tf.cast(seed, tf.int64), dtype=tf.int32)[:, 0]
    return tf.where(temperature > 0, sampled, _greedy(logits))


def check_settings(max_length, temperature, top_k, top_p):
    """Graph assertions on the sampling settings; returns the assert ops (empty list in eager mode)."""
    return [
        tf.debugging.assert_positive(tf.cast(max_length, tf.int32),
                                     message="Expected max_length >= 1"),
        tf.debugging.assert_non_negative(tf.cast(temperature, tf.float32),
                                         message="Expected temperature >= 0 (0 = greedy)"),
        tf.debugging.assert_non_negative(tf.cast(top_k, tf.int32),
                                         message="Expected top_k >= 0 (0 = off)"),
        tf.debugging.assert_positive(tf.cast(top_p, tf.float32),
                                     message="Expected top_p in (0, 1] (1 = off)"),
        tf.debugging.assert_less_equal(tf.cast(top_p, tf.float32), 1.0,
                                       message="Expected top_p in (0, 1] (1 = off)"),
    ]


def generate(step_function, state, first_logits, max_length, temperature, top_k, top_p, seed,
             end_token_id=-1):
    """Runs the decoding loop inside the graph.

    Args:
        step_function: ``(token_ids int32 [batch], state) -> (logits float32 [batch, vocab], new_state)``.
        state: Any nest of tensors with a leading batch dimension; carried step to step.
        first_logits: float32 ``[batch, vocab]`` logits of the first token to generate.
        max_length: int32 scalar (may be a tensor), the most tokens to generate; must be >= 1.
        temperature, top_k, top_p: As in ``sample_next``; temperature must be >= 0.
        seed: int32/int64 ``[2]`` stateless seed; step ``i`` uses ``stateless_fold_in(seed, i)``.
        end_token_id: A row stops after emitting this id (kept in its output); -1 for none.

    Returns:
        ``(token_ids int32 [batch, steps], lengths int32 [batch])`` where ``steps <= max_length``;
        positions after a row's end token are 0.

    Raises:
        tf.errors.InvalidArgumentError: At run time, for settings out of range.
    """
    first_logits = tf.convert_to_tensor(first_logits, tf.float32)
    max_length = tf.cast(max_length, tf.int32)
    seed = tf.cast(seed, tf.int64)
    with tf.control_dependencies(check_settings(max_length, temperature, top_k, top_p)):
        max_length = tf.identity(max_length)
    batch_size = tf.shape(first_logits)[0]

    def keep_going(index, logits, state, finished, tokens, lengths):
        return tf.logical_and(index < max_length, tf.logical_not(tf.reduce_all(finished)))

    def step(index, logits, state, finished, tokens, lengths):
        step_seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(index, tf.int64))
        token = sample_next(logits, temperature, top_k, top_p, step_seed)
        token = tf.where(finished, tf.zeros_like(token), token)
        lengths = lengths + tf.cast(tf.logical_not(finished), tf.int32)
        finished = tf.logical_or(finished, tf.equal(token, end_token_id))
        tokens = tf.concat([tokens, token[:, None]], axis=1)
        next_logits, state = step_function(token, state)
        return index + 1, tf.cast(next_logits, tf.float32), state, finished, tokens, lengths

    initial = (tf.constant(0), first_logits, state, tf.zeros([batch_size], tf.bool),
               tf.zeros([batch_size, 0], tf.int32), tf.zeros([batch_size], tf.int32))
    invariants = (tf.TensorShape([]), first_logits.shape,
                  tf.nest.map_structure(lambda tensor: tf.TensorShape(tensor.shape), state),
                  tf.TensorShape([None]), tf.TensorShape([None, None]), tf.TensorShape([None]))
    _, _, _, _, tokens, lengths = tf.while_loop(keep_going, step, initial, shape_invariants=invariants)
    return tokens, lengths


class RecurrentLanguageModel:
    """A stateless embedding -> recurrent layers -> logits network, read once and then stepped.

    What a language model's serving functions need around :func:`generate`: :meth:`read`
    runs a batch of padded prompts through the layers once and keeps their final states;
    :meth:`step` (the ``step_function`` of :func:`generate`) feeds one token per row from
    those states, so nothing re-reads the growing prefix; :meth:`score` gives the
    log-probability of each token after the first.

    Args:
        embedding: The embedding layer (token ids -> vectors).
        layers: The recurrent layers, bottom first, built with ``return_sequences=True`` and
            ``return_state=True`` (their first state is the layer's output at the last step).
        dense: The layer from the top output to next-token logits.
        residual: Whether each layer after the first adds its input to its output.
        logit_bias: Added to every next-token logit (``-1e9`` for ids never to draw, such as
            padding and an unknown token), or None.
    """

    def __init__(self, embedding, layers, dense, residual=False, logit_bias=None):
        self.embedding = embedding
        self.layers = list(layers)
        self.dense = dense
        self.residual = residual
        self.logit_bias = logit_bias

    def run(self, ids, mask=None, states=None):
        """Runs int64 ids ``[batch, steps]`` from ``states`` (None: zeros).

        Returns:
            ``(top outputs [batch, steps, units], final states of each layer)``.
        """
        sequence, final_states = self.embedding(ids), []
        for index, layer in enumerate(self.layers):
            outputs, *layer_states = layer(sequence, mask=mask,
                                           initial_state=states[index] if states else None)
            sequence = outputs + sequence if self.residual and index > 0 else outputs
            final_states.append(layer_states)
        return sequence, final_states

    def last_output(self, states):
        """The top output at the last (unmasked) step, rebuilt from every layer's final states."""
        output = states[0][0]
        for index in range(1, len(states)):
            output = states[index][0] + output if self.residual else states[index][0]
        return output

    def next_logits(self, states):
        """Next-token logits ``[batch, vocab]`` after ``states`` (with ``logit_bias`` added)."""
        logits = self.dense(self.last_output(states))
        return logits if self.logit_bias is None else logits + self.logit_bias

    def read(self, ids):
        """The final states after padded int64 ids (0: padding); an all-padding row keeps zeros."""
        _, states = self.run(ids, ids > 0)
        return states

    def step(self, token_ids, states):
        """One token per row -> ``(next-token logits, new states)``: :func:`generate`'s step."""
        _, states = self.run(tf.cast(token_ids, tf.int64)[:, None], None, states)
        return self.next_logits(states), states

    def generate(self, ids, max_length, temperature, top_k, top_p, seed):
        """Reads padded prompt ids once, then draws up to ``max_length`` tokens with :func:`generate`.

        Args:
            ids: int64 ``[batch, steps]`` prompt ids (0: padding; an all-padding row starts
                from zero states).
            max_length, temperature, top_k, top_p: As in :func:`generate`.
            seed: An integer scalar; the stateless seed is ``[seed, 0]``.

        Returns:
            ``(token_ids int32 [batch, steps], lengths int32 [batch])``.
        """
        states = self.read(ids)
        return generate(self.step, states, self.next_logits(states), max_length, temperature, top_k,
                        top_p, tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)]))

    def score(self, ids):
        """Log-probabilities of padded int64 ids ``[batch, steps]`` (0: padding), each token
        given the ones before it; the first token of a row is not scored.

        Returns:
            ``{"log_probability": float32 [batch] (natural log, summed over the row),
            "num_scored": int32 [batch]}``.
        """
        sequence, _ = self.run(ids, ids > 0)
        log_probabilities = tf.nn.log_softmax(self.dense(sequence[:, :-1]))
        scored = tf.cast(ids[:, 1:] > 0, tf.float32)
        token_log_probabilities = tf.gather(log_probabilities, ids[:, 1:], batch_dims=2) * scored
        return {"log_probability": tf.reduce_sum(token_log_probabilities, axis=1),
                "num_scored": tf.cast(tf.reduce_sum(scored, axis=1), tf.int32)}


def join_continuation(prompt, continuation, separator):
    """``prompt + separator + continuation`` per row; no separator when either side is empty."""
    both = tf.logical_and(tf.strings.length(prompt) > 0, tf.strings.length(continuation) > 0)
    return prompt + tf.where(both, separator, "") + continuation
