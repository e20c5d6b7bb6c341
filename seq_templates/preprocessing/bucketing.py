"""tf.data input pipelines: vectorize once, cache, shuffle, bucket by length.

Batches of similar length waste little compute on padding: on SST-2 with a
2xBiLSTM-64 this trains several times faster than padding every sentence to a
fixed length (see docs/benchmarks.md).

A streamed split (``seq-templates prepare``) is transformed during its first epoch and kept,
transformed, in a file cache (:func:`file_cache`) that later epochs read instead of
tokenizing again.
"""

import atexit
import os
import shutil
import tempfile
import weakref

import tensorflow as tf

STREAM_SHUFFLE_ROWS = 16_384  # a streamed split's shuffle buffer (its shards are interleaved as well)


def bucket_by_length(dataset, batch_size, boundaries, length_function):
    """Groups variable-length examples into right-padded batches of similar length.

    Args:
        dataset: Unbatched ``tf.data.Dataset`` of examples with a 1-D sequence.
        batch_size: Examples per batch in every bucket.
        boundaries: Increasing sequence-length boundaries of the buckets.
        length_function: Maps one example to its sequence length.

    Returns:
        A batched dataset; sequences are padded with 0 to the longest in the batch.
    """
    return dataset.bucket_by_sequence_length(
        element_length_func=length_function,
        bucket_boundaries=list(boundaries),
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        pad_to_bucket_boundary=False,
        drop_remainder=False,
    )


def file_cache(dataset, prefix="seq_templates_stream_cache_"):
    """``dataset.cache`` in a new folder of the temporary directory (``TMPDIR``).

    The first full pass writes it and every later pass reads it; a pass that stops early
    (a timing run, a time budget) leaves nothing behind, as ``tf.data`` discards a partial
    cache. The folder goes when the returned dataset (and every dataset built on it) is
    garbage-collected, or when the process exits; a killed process leaves it behind. It
    takes the transformed rows' size on disk: 8 bytes per id (a word: one; with character
    features, one per character more; a text window: ``sequence_length + 1`` per window).
    """
    folder = tempfile.mkdtemp(prefix=prefix)
    cached = dataset.cache(os.path.join(folder, "rows"))
    weakref.finalize(cached, shutil.rmtree, folder, ignore_errors=True)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return cached


def _densify(value):
    if isinstance(value, tf.RaggedTensor):
        return value.to_tensor() if value.ragged_rank > 0 else value.flat_values
    return value


def densify_example(*example):
    """Turns the ragged parts of one unbatched example into dense tensors."""
    return tuple(tf.nest.map_structure(_densify, value) for value in example)


def sequence_dataset(examples, transform, batch_size, boundaries, shuffle=False, seed=None,
                     shuffle_buffer_size=0, transform_batch_size=1024, augment=None, length_function=None):
    """Builds a training/evaluation pipeline for sequence examples of any shape.

    Raw examples are transformed in large batches (``transform`` turns a batch of
    raw examples into ragged features and targets), unbatched, cached, optionally
    shuffled, bucketed by length (right padding with 0) and prefetched.

    Args:
        examples: Raw examples: a tensor or a tuple/dict of tensors sliced along
            their first axis (e.g. ``(texts, labels)`` as ``tf.string`` tensors), or a
            ``tf.data.Dataset`` of such tuples read lazily (a prepared split,
            ``seq_templates.data.prepared.examples``): then the transformed rows are cached
            in a file (:func:`file_cache`), not in memory, and the shuffle buffer holds
            ``shuffle_buffer_size`` or :data:`STREAM_SHUFFLE_ROWS` rows.
        transform: Maps a batch of ``examples`` (same structure) to ``(features,
            targets)`` or ``(features, targets, sample_weights)``. ``features`` is
            a dict keyed by the model's ``keras.Input`` names; any part may be
            ragged along the time axis. Per-token targets come with per-token
            ``sample_weights`` (ones), which padding turns into 0 so the loss
            ignores padded steps.
        batch_size: Examples per training batch.
        boundaries: Bucket boundaries (an empty list makes one bucket).
        shuffle: Shuffle examples each epoch (before bucketing).
        seed: Shuffle seed.
        shuffle_buffer_size: Buffer size; 0 means the whole split (of a streamed
            one, :data:`STREAM_SHUFFLE_ROWS`).
        transform_batch_size: Batch size used while transforming.
        augment: Optional function applied to each padded batch of features after
            caching and bucketing (e.g. token dropout), so it differs every epoch.
        length_function: Maps one example's ``features`` to its length for
            bucketing; default: the first axis of the first feature in
            ``tf.nest.flatten`` order.

    Returns:
        A ``tf.data.Dataset`` of ``(features, targets)`` or ``(features, targets,
        sample_weights)`` batches.
    """
    streamed = isinstance(examples, tf.data.Dataset)
    if streamed:  # rows read lazily (a prepared split): transformed once, into a file cache
        dataset = examples.map(lambda *columns: (columns,))
        buffer_size = shuffle_buffer_size or STREAM_SHUFFLE_ROWS
    else:
        dataset = tf.data.Dataset.from_tensor_slices((examples,))
        buffer_size = shuffle_buffer_size or max(int(dataset.cardinality()), 1)
    length_function = length_function or (lambda features: tf.shape(tf.nest.flatten(features)[0])[0])
    # Streamed rows of different lengths (a sentence's tokens) batch as ragged tensors, as sliced ones do.
    batched = dataset.ragged_batch(transform_batch_size) if streamed else dataset.batch(transform_batch_size)
    dataset = batched.map(transform, num_parallel_calls=tf.data.AUTOTUNE).unbatch().map(densify_example)
    dataset = file_cache(dataset) if streamed else dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True)
    dataset = bucket_by_length(dataset, batch_size, boundaries,
                               lambda features, *rest: length_function(features))
    if augment is not None:
        dataset = dataset.map(lambda features, *rest: (augment(features),) + rest,
                              num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
