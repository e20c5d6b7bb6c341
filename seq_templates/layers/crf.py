"""A linear-chain conditional random field (CRF) for Keras 3: layer, loss and Viterbi decoding.

No maintained Keras 3 CRF exists on PyPI (checked 2026-11: ``tensorflow-addons``
0.23 is archived and Keras 2 only; ``keras-crf`` 0.3 wraps it; ``tf2crf`` 0.1.33
is ``tf.keras`` 2 from 2021; keras-hub has none), so this module provides one.

A CRF scores a whole tag path ``y`` of a sentence ``x`` as::

    score(x, y) = start[y_0] + sum_t emission[t, y_t] + sum_{t>0} transition[y_{t-1}, y_t] + end[y_last]

and trains by the negative log-likelihood ``log Z(x) - score(x, y)``, where the
log-partition ``log Z`` sums ``exp(score)`` over every path (the forward algorithm).
Decoding takes the best path (the Viterbi algorithm). Both run in the graph and
honour right padding: padded steps neither score nor move the path.

Keras losses only see ``(y_true, y_pred)``, so :class:`CRF` *packs* what the loss
needs into its output: per step, the emissions (``num_tags`` values), then the
transition matrix, the start and end scores (the same at every step) and the
padding mask (1 real, 0 padding)::

    emissions = Dense(num_tags)(sequence)                # (batch, time, num_tags)
    packed = crf.CRF(num_tags, name="crf")(emissions)    # (batch, time, crf.packed_width(num_tags))
    model.compile(loss=crf.CRFLoss(num_tags), ...)       # y_true: (batch, time) tag ids
    tag_ids = crf.decode(model(inputs), num_tags)        # Viterbi, in the graph

The model stays functional with one output; ``model.keras`` reloads with no
custom objects once this module is imported (both classes are registered with
``package="seq_templates"``), and a checkpoint resumes with its compiled loss.
"""

import keras
import tensorflow as tf


def packed_width(num_tags):
    """Channels of :class:`CRF`'s output for ``num_tags`` tags: emissions, transitions, start, end, mask."""
    return num_tags * (num_tags + 3) + 1


def unpack(packed, num_tags):
    """Splits :class:`CRF`'s output into its parts.

    Args:
        packed: ``(batch, time, packed_width(num_tags))`` float tensor.
        num_tags: Number of tags.

    Returns:
        A tuple ``(emissions (batch, time, n), transitions (n, n), start (n,), end (n,),
        mask (batch, time) bool)``. With no time steps the parameters are zeros.
    """
    packed = tf.convert_to_tensor(packed)
    emissions = packed[:, :, :num_tags]
    offset = num_tags
    # The parameters are the same at every step; read them from the first step of the first row.
    first = tf.cond(tf.size(packed) > 0, lambda: packed[0, 0], lambda: tf.zeros([packed_width(num_tags)],
                                                                                 packed.dtype))
    transitions = tf.reshape(first[offset:offset + num_tags * num_tags], [num_tags, num_tags])
    offset += num_tags * num_tags
    start = first[offset:offset + num_tags]
    end = first[offset + num_tags:offset + 2 * num_tags]
    mask = packed[:, :, -1] > 0.5
    return emissions, transitions, start, end, mask


def _lengths(mask):
    return tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)


def sequence_score(emissions, tag_ids, transitions, start, end, mask):
    """Score of the given tag paths (right-padded; padded steps ignored).

    Args:
        emissions: ``(batch, time, n)``.
        tag_ids: ``(batch, time)`` int tag ids (any value at padded steps).
        transitions: ``(n, n)``, ``transitions[i, j]`` scores tag ``i`` followed by ``j``.
        start: ``(n,)`` scores of the first tag.
        end: ``(n,)`` scores of the last real tag.
        mask: ``(batch, time)`` bool, True on real steps (a prefix of each row).

    Returns:
        ``(batch,)`` scores; 0 for a row with no real step.
    """
    tag_ids = tf.cast(tag_ids, tf.int32)
    float_mask = tf.cast(mask, emissions.dtype)
    lengths = _lengths(mask)
    tag_ids = tf.where(mask, tag_ids, 0)
    emitted = tf.reduce_sum(tf.gather(emissions, tag_ids, batch_dims=2) * float_mask, axis=1)
    pairs = tf.stack([tag_ids[:, :-1], tag_ids[:, 1:]], axis=-1)
    moved = tf.reduce_sum(tf.gather_nd(transitions, pairs) * float_mask[:, 1:], axis=1)
    has_steps = tf.cast(lengths > 0, emissions.dtype)
    first_tags = tag_ids[:, 0] if tag_ids.shape[1] != 0 else tf.zeros_like(lengths)
    last_tags = tf.gather(tag_ids, tf.maximum(lengths - 1, 0), batch_dims=1)
    return emitted + moved + (tf.gather(start, first_tags) + tf.gather(end, last_tags)) * has_steps


def log_partition(emissions, transitions, start, end, mask):
    """``log Z``: log of the summed ``exp(score)`` over every tag path (the forward algorithm).

    Args: as :func:`sequence_score`, without ``tag_ids``.

    Returns:
        ``(batch,)`` log-partitions; 0 for a row with no real step.
    """
    time_major = tf.transpose(emissions, [1, 0, 2])
    mask_time_major = tf.transpose(mask, [1, 0])
    initial = start[tf.newaxis, :] + time_major[0]

    def step(alpha, inputs):
        emission, real = inputs
        moved = tf.reduce_logsumexp(alpha[:, :, tf.newaxis] + transitions[tf.newaxis], axis=1) + emission
        return tf.where(real[:, tf.newaxis], moved, alpha)

    alpha = tf.foldl(step, (time_major[1:], mask_time_major[1:]), initializer=initial)
    lengths = _lengths(mask)
    return tf.where(lengths > 0, tf.reduce_logsumexp(alpha + end[tf.newaxis], axis=1), 0.0)


def viterbi(emissions, transitions, start, end, mask):
    """The best tag path of each row (Viterbi), in the graph.

    Args: as :func:`log_partition`.

    Returns:
        A tuple ``(tag_ids (batch, time) int32, 0 at padded steps; best scores (batch,))``.
    """
    # One extra padded step, so the scans below never run over zero steps (graph mode cannot stack those).
    emissions = tf.concat([emissions, tf.zeros_like(emissions[:, :1])], axis=1)
    mask = tf.concat([mask, tf.zeros_like(mask[:, :1])], axis=1)
    time_major = tf.transpose(emissions, [1, 0, 2])
    mask_time_major = tf.transpose(mask, [1, 0])
    num_tags = tf.shape(emissions)[2]
    identity = tf.range(num_tags)[tf.newaxis, :] + tf.zeros_like(tf.cast(emissions[:, 0, :], tf.int32))
    initial = start[tf.newaxis, :] + time_major[0]

    def step(carry, inputs):
        scores, _ = carry
        emission, real = inputs
        candidates = scores[:, :, tf.newaxis] + transitions[tf.newaxis]  # (batch, from, to)
        best_previous = tf.argmax(candidates, axis=1, output_type=tf.int32)
        moved = tf.reduce_max(candidates, axis=1) + emission
        # A padded step keeps the scores and points every tag back to itself.
        return (tf.where(real[:, tf.newaxis], moved, scores),
                tf.where(real[:, tf.newaxis], best_previous, identity))

    scores_history, pointers = tf.scan(step, (time_major[1:], mask_time_major[1:]),
                                       initializer=(initial, identity))
    final_scores = scores_history[-1] + end[tf.newaxis]
    last_tags = tf.argmax(final_scores, axis=1, output_type=tf.int32)

    def back(tag, pointer):
        return tf.gather(pointer, tag, batch_dims=1)

    earlier = tf.scan(back, pointers, initializer=last_tags, reverse=True)  # tags at steps 0..T-2
    tag_ids = tf.concat([tf.transpose(earlier, [1, 0]), last_tags[:, tf.newaxis]], axis=1)
    return tf.where(mask, tag_ids, 0)[:, :-1], tf.reduce_max(final_scores, axis=1)


def decode(packed, num_tags):
    """Viterbi tag ids ``(batch, time)`` (0 at padded steps) from :class:`CRF`'s output."""
    emissions, transitions, start, end, mask = unpack(packed, num_tags)
    return tf.cond(tf.shape(emissions)[1] > 0,
                   lambda: viterbi(emissions, transitions, start, end, mask)[0],
                   lambda: tf.zeros(tf.shape(emissions)[:2], tf.int32))


@keras.saving.register_keras_serializable(package="seq_templates")
class CRF(keras.layers.Layer):
    """Holds the transition, start and end scores; packs them with the emissions and the mask.

    Args:
        num_tags: Number of tags (the last axis of the emissions).
        transitions_initializer: Initializer of the ``(num_tags, num_tags)`` transitions.
        **kwargs: Layer arguments (``name``, ``dtype``: float32 unless given, also under a
            mixed-precision policy, as the sums over paths need it).

    Input: emissions ``(batch, time, num_tags)`` with an optional Keras mask.
    Output: ``(batch, time, packed_width(num_tags))`` (see :func:`unpack`); the mask passes through.
    """

    def __init__(self, num_tags, transitions_initializer="zeros", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.num_tags = int(num_tags)
        self.transitions_initializer = keras.initializers.get(transitions_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.num_tags:
            raise ValueError(f"Expected emissions with {self.num_tags} values per step, received {input_shape[-1]}.")
        self.transitions = self.add_weight(shape=(self.num_tags, self.num_tags), name="transitions",
                                           initializer=self.transitions_initializer)
        self.start_transitions = self.add_weight(shape=(self.num_tags,), name="start_transitions",
                                                 initializer="zeros")
        self.end_transitions = self.add_weight(shape=(self.num_tags,), name="end_transitions",
                                               initializer="zeros")

    def call(self, emissions, mask=None):
        shape = tf.shape(emissions)
        if mask is None:
            mask = tf.ones(shape[:2], dtype=tf.bool)
        parameters = tf.concat([tf.reshape(self.transitions, [-1]), self.start_transitions, self.end_transitions],
                               axis=0)
        parameters = tf.broadcast_to(tf.cast(parameters, emissions.dtype)[tf.newaxis, tf.newaxis],
                                     tf.concat([shape[:2], tf.shape(parameters)], axis=0))
        return tf.concat([emissions, parameters, tf.cast(mask, emissions.dtype)[:, :, tf.newaxis]], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (packed_width(self.num_tags),)

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        return {**super().get_config(), "num_tags": self.num_tags,
                "transitions_initializer": keras.initializers.serialize(self.transitions_initializer)}


@keras.saving.register_keras_serializable(package="seq_templates")
class CRFLoss(keras.losses.Loss):
    """Negative log-likelihood of the gold tag paths under :class:`CRF`'s packed output.

    Returns a per-step loss: each real step of a sentence carries ``NLL / length``
    (padded steps 0), so Keras' masked mean over steps gives the summed
    sentence NLL per real token, comparable with a per-token cross-entropy.

    Args:
        num_tags: Number of tags.
        name: Loss name.
        **kwargs: ``reduction``, ``dtype``.
    """

    def __init__(self, num_tags, name="crf_negative_log_likelihood", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_tags = int(num_tags)

    def call(self, y_true, y_pred):
        emissions, transitions, start, end, mask = unpack(y_pred, self.num_tags)
        tag_ids = tf.cast(tf.reshape(y_true, tf.shape(emissions)[:2]), tf.int32)
        negative_log_likelihood = (log_partition(emissions, transitions, start, end, mask)
                                   - sequence_score(emissions, tag_ids, transitions, start, end, mask))
        lengths = tf.cast(tf.maximum(_lengths(mask), 1), emissions.dtype)
        return tf.cast(mask, emissions.dtype) * (negative_log_likelihood / lengths)[:, tf.newaxis]

    def get_config(self):
        return {**super().get_config(), "num_tags": self.num_tags}
