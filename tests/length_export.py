"""A small SavedModel answering from text lengths, and generated input files: batch scoring's test fixtures.

Shared by tests/test_batch_predict.py (``predict --output-file``) and tests/test_beam.py (the Beam
pipeline), which score the same export the two ways.
"""

import json
import random

import tensorflow as tf
from tensorflow.python.data.experimental.ops import testing as data_testing  # sleep(): a call that takes time

from seq_templates import export
from seq_templates.data import synthetic


def save_length_export(root, slow=False):
    """Writes ``root/1``: ``serving_default`` answers ``len(text)``, ``scale`` ``len(texts) * factor + offset``
    (factor and offset with recorded defaults 2 and 1), and with ``slow`` a ``slow`` signature taking 0.1 s a call.

    Returns:
        ``root``.
    """
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        return {"length": tf.cast(tf.strings.length(text, unit="UTF8_CHAR"), tf.float32)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts"),
                                  tf.TensorSpec([], tf.float32, name="factor"),
                                  tf.TensorSpec([None], tf.float32, name="offset")])
    def scale(texts, factor, offset):
        return {"value": tf.cast(tf.strings.length(texts), tf.float32) * factor + offset}

    signatures = {"serving_default": serve, "scale": scale}
    if slow:
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def slow_call(text):
            slept = tf.data.Dataset.range(1).apply(data_testing.sleep(100_000)).reduce(
                tf.constant(0, tf.int64), lambda total, item: total + item)
            return {"length": tf.cast(tf.strings.length(text), tf.float32) + tf.cast(slept, tf.float32)}

        signatures["slow"] = slow_call
    module.serve = serve
    tf.saved_model.save(module, str(root / "1"), signatures=signatures)
    extra = root / "1" / export.ASSETS_EXTRA
    extra.mkdir()
    (extra / "serving.json").write_text(json.dumps({"defaults": {"scale": {"factor": 2.0, "offset": 1.0}}}))
    return root


def sentences(count, seed=0):
    """Generated sentiment sentences (the training data's kind)."""
    generator = random.Random(seed)
    return [synthetic.sentiment_example(generator)[0] for _ in range(count)]


def write_lines(path, lines, ending="\n"):
    """Writes ``lines`` to ``path``, each ended by ``ending``; returns ``path``."""
    path.write_text(ending.join(lines) + ending, encoding="utf-8")
    return path
