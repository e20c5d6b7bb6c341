"""Language-model data: a corpus as token ids, independent windows and stateful streams.

Two ways to cut a corpus of token ids into training batches, both with targets
shifted by one (the next token):

* :func:`window_dataset`: independent fixed-length windows (a new slice every
  ``stride`` tokens), shuffled; the model starts each window from a zero state.
* :func:`stream_dataset`: truncated backpropagation through time with carried
  state. The corpus is cut into ``batch_size`` contiguous streams; batch ``k``
  holds chunk ``k`` of every stream, so row ``i`` of consecutive batches
  continues the same text and a ``stateful=True`` recurrent layer carries its
  state from one chunk to the next. :class:`ResetStatesEachEpoch` zeroes the
  state when an epoch (or an evaluation pass) starts.

:func:`corpus_dataset` picks one for a split; a prepared split (``seq-templates prepare``: pieces
of the corpus, shuffled into shards) is read, tokenized and windowed in its first epoch by
:func:`streamed_window_dataset` into a file cache, never whole in memory. :func:`corpus_text` is a split's text
(a prepared split's: its sample's pieces) for vocabularies and auto settings.
"""

import keras
import numpy as np
import tensorflow as tf

from seq_templates import errors
from seq_templates.preprocessing import bucketing
from seq_templates.preprocessing import text

LEVELS = ("char", "word")


def split_tokens(texts, level, standardize_mode="tokenize_and_lower"):
    """Splits a batch of strings into ragged tokens with TensorFlow ops (tf.data and serving alike).

    Args:
        texts: A ``tf.string`` tensor ``[batch]``.
        level: ``char``: Unicode characters as they are (newlines and case kept);
            ``word``: the in-graph tokenizing standardizer, then whitespace.
        standardize_mode: Word level only: one of ``text.STANDARDIZE_CHOICES``.

    Returns:
        A ragged ``tf.string`` tensor ``[batch, (tokens)]``.
    """
    if level not in LEVELS:
        raise errors.SeqTemplatesError(f"Expected data.tokenization in {', '.join(LEVELS)}, received '{level}'.")
    if level == "char":
        return tf.strings.unicode_split(texts, "UTF-8")
    return tf.strings.split(text.standardize(texts, standardize_mode))


def corpus_tokens(corpus, level, standardize_mode="tokenize_and_lower", lines_per_batch=4096):
    """Returns a corpus string's tokens as a NumPy array of ``bytes`` (word level: line by line).

    ``corpus`` may be a prepared split: its sample's text (:func:`corpus_text`) is read.
    """
    corpus = corpus_text(corpus)
    if level == "char":
        return split_tokens(tf.constant([corpus]), level).flat_values.numpy()
    lines = corpus.split("\n")
    parts = [split_tokens(tf.constant(lines[start:start + lines_per_batch]), level, standardize_mode).flat_values
             for start in range(0, len(lines), lines_per_batch)]
    return tf.concat(parts, axis=0).numpy() if parts else np.array([], dtype=object)


def window_starts(num_tokens, window_length, stride):
    """Start positions of every full window of ``window_length`` tokens, ``stride`` apart."""
    return np.arange(0, max(num_tokens - window_length, -1) + 1, stride)


def overlapping_pieces(tokens, piece_length, separator):
    """Texts of ``piece_length`` consecutive tokens, each starting at the last token of the one before.

    Scoring every token after a piece's first then scores each token of ``tokens`` after
    the very first exactly once (as far as whole pieces reach), with up to
    ``piece_length - 1`` tokens of history.

    Args:
        tokens: A list of str tokens.
        piece_length: Tokens per piece, at least 2.
        separator: What joins the tokens of a piece ("" for characters, " " for words).
    """
    starts = window_starts(len(tokens), piece_length, piece_length - 1)
    return [separator.join(tokens[start:start + piece_length]) for start in starts]


def window_arrays(token_ids, sequence_length, stride):
    """``(inputs, targets)`` int64 arrays ``[windows, sequence_length]``: windows of ``sequence_length + 1``."""
    token_ids = np.asarray(token_ids, dtype=np.int64)
    starts = window_starts(len(token_ids), sequence_length + 1, stride)
    windows = token_ids[starts[:, None] + np.arange(sequence_length + 1)[None, :]]
    return windows[:, :-1], windows[:, 1:]


def window_dataset(token_ids, sequence_length, batch_size, stride=None, shuffle=False, seed=None,
                   input_name="token_ids"):
    """Independent windows: ``({input_name: ids}, next ids)`` batches, reshuffled every epoch when asked.

    Args:
        token_ids: 1-D int array, the corpus.
        sequence_length: Tokens per window (targets are the same window shifted by one).
        batch_size: Windows per batch.
        stride: Tokens between window starts (default ``sequence_length``: no overlap).
        shuffle: Shuffle the windows each epoch.
        seed: Shuffle seed.
        input_name: The model input's name.

    Raises:
        SeqTemplatesError: The corpus holds fewer than ``sequence_length + 1`` tokens.
    """
    check_length(len(token_ids), sequence_length + 1, "a window of data.sequence_length + 1 tokens")
    inputs, targets = window_arrays(token_ids, sequence_length, stride or sequence_length)
    dataset = tf.data.Dataset.from_tensor_slices(({input_name: inputs}, targets))
    if shuffle:
        dataset = dataset.shuffle(len(inputs), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def stream_arrays(token_ids, sequence_length, batch_size):
    """Stateful order: ``(inputs, targets)`` int64 arrays ``[chunks, batch_size, sequence_length]``.

    Row ``i`` of chunk ``k`` is tokens ``i * S + k * L`` to ``i * S + (k + 1) * L`` of the
    corpus (``S`` the stream length, ``L`` the sequence length); the end that does not
    fill a whole chunk in every stream is dropped.
    """
    token_ids = np.asarray(token_ids, dtype=np.int64)
    stream_length = (len(token_ids) - 1) // batch_size
    num_chunks = stream_length // sequence_length
    used = num_chunks * sequence_length
    starts = np.arange(batch_size) * stream_length
    positions = starts[:, None] + np.arange(used)[None, :]  # [batch, used]
    inputs = token_ids[positions].reshape(batch_size, num_chunks, sequence_length).transpose(1, 0, 2)
    targets = token_ids[positions + 1].reshape(batch_size, num_chunks, sequence_length).transpose(1, 0, 2)
    return inputs, targets


def stream_dataset(token_ids, sequence_length, batch_size, input_name="token_ids"):
    """Truncated-BPTT batches in stream order (never shuffled); every batch has exactly ``batch_size`` rows.

    Raises:
        SeqTemplatesError: The corpus cannot fill one chunk of every stream.
    """
    check_length(len(token_ids), batch_size * sequence_length + 1,
                 "train.batch_size streams of data.sequence_length tokens (train.stateful)")
    inputs, targets = stream_arrays(token_ids, sequence_length, batch_size)
    return tf.data.Dataset.from_tensor_slices(({input_name: inputs}, targets)).prefetch(tf.data.AUTOTUNE)


def corpus_text(split):
    """A split's text: a string as it is; a prepared split's pieces (its sample's) joined.

    Each piece ends where a line ends (:func:`seq_templates.data.readers.stream_text_pieces`), so
    joining them with nothing keeps their lines.
    """
    return split if isinstance(split, str) else "".join(split[0])


def corpus_token_count(split, level, standardize_mode="tokenize_and_lower"):
    """The tokens of a split's text: counted, or for a prepared split counted in its sample and
    scaled up by its pieces over the sample's."""
    count = len(corpus_tokens(corpus_text(split), level, standardize_mode))
    if isinstance(split, str):
        return count
    return int(count * getattr(split, "rows", len(split[0])) / max(len(split[0]), 1))


def corpus_dataset(corpus, lookup, level, standardize_mode, sequence_length, batch_size, stride=None,
                   stateful=False, shuffle=False, seed=None):
    """A split's training batches ``({"token_ids"}, next ids)``, in memory or streamed.

    Args:
        corpus: The split's text, or a ``tf.data.Dataset`` of ``(piece,)`` strings (a
            prepared split, ``prepared.examples``).
        lookup: The adapted token ``StringLookup``.
        level, standardize_mode: As :func:`split_tokens` takes them.
        sequence_length, batch_size, stride, shuffle, seed: As :func:`window_dataset` takes them.
        stateful: :func:`stream_dataset` (truncated BPTT) instead of windows.

    Raises:
        SeqTemplatesError: A streamed corpus with ``stateful`` (its pieces come in no order), or
            a corpus too short.
    """
    if isinstance(corpus, str):
        ids = lookup(tf.constant(corpus_tokens(corpus, level, standardize_mode))).numpy()
        if stateful:
            return stream_dataset(ids, sequence_length, batch_size)
        return window_dataset(ids, sequence_length, batch_size, stride, shuffle=shuffle, seed=seed)
    if stateful:
        raise errors.SeqTemplatesError(
            "train.stateful reads the corpus in order, which a prepared dataset's shuffled pieces do not keep; "
            "set train.stateful=false, or train on the text file itself.")
    return streamed_window_dataset(corpus.map(lambda piece: piece), lambda texts: lookup(
        split_tokens(texts, level, standardize_mode)), sequence_length, batch_size, stride, shuffle, seed)


def streamed_window_dataset(pieces, to_ids, sequence_length, batch_size, stride=None, shuffle=False, seed=None,
                            pieces_per_batch=64, shuffle_windows=16_384, input_name="token_ids"):
    """:func:`window_dataset`'s windows, cut from each piece of a streamed corpus as it is read.

    Each piece gives every window of ``sequence_length + 1`` ids that it holds whole, starting
    ``stride`` apart (windows across two pieces are not cut); they are kept in a file cache
    (``bucketing.file_cache``) for the later epochs, and a buffer of ``shuffle_windows``
    windows shuffles them.

    Args:
        pieces: A ``tf.data.Dataset`` of scalar strings.
        to_ids: Strings ``[batch]`` -> ragged ids ``[batch, (tokens)]``.
        sequence_length, batch_size, stride, shuffle, seed, input_name: As in :func:`window_dataset`.
        pieces_per_batch: Pieces tokenized together.
        shuffle_windows: The shuffle buffer, in windows.
    """
    length, stride = sequence_length + 1, stride or sequence_length

    def windows(texts):  # every whole window of each piece, as rows of one tensor
        ids = to_ids(texts)
        starts = tf.ragged.range(tf.zeros_like(ids.row_lengths()), ids.row_lengths() - length + 1, stride)
        starts = (starts + tf.expand_dims(ids.row_starts(), 1)).flat_values
        return tf.gather(ids.flat_values, starts[:, None] + tf.range(length, dtype=starts.dtype)[None, :])

    dataset = bucketing.file_cache(  # cut in the first epoch, read from the file after it
        pieces.batch(pieces_per_batch).map(windows, num_parallel_calls=tf.data.AUTOTUNE).unbatch())
    if shuffle:
        dataset = dataset.shuffle(shuffle_windows, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).map(
        lambda window: ({input_name: window[:, :-1]}, window[:, 1:])).prefetch(tf.data.AUTOTUNE)


def check_length(num_tokens, needed, what, split_name="a"):
    """Raises a one-line user error when a split has fewer than ``needed`` tokens."""
    if num_tokens < needed:
        raise errors.SeqTemplatesError(
            f"The corpus is too short: {split_name} split has {num_tokens} tokens, {what} needs {needed}; "
            "give a longer text or lower data.sequence_length (or train.batch_size).")


class ResetStatesEachEpoch(keras.callbacks.Callback):
    """Zeroes the state of every ``stateful=True`` recurrent layer when an epoch or an evaluation starts."""

    def _reset(self):
        for layer in self.model.layers:
            if getattr(layer, "stateful", False):
                layer.reset_state()

    def on_epoch_begin(self, epoch, logs=None):
        self._reset()

    def on_test_begin(self, logs=None):
        self._reset()

    def on_predict_begin(self, logs=None):
        self._reset()
