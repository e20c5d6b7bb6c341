"""Fixtures for the server's tests: a tiny hand-made export, apps' quick runs, app clients."""

import contextlib
import json
import pathlib
import shutil
import warnings

import pytest
import tensorflow as tf
from tensorflow.python.data.experimental.ops import testing as data_testing  # sleep(): a call that takes time

from seq_templates.serving import app as app_module
from seq_templates.serving import config_files
from seq_templates.serving import repository


class _Toy(tf.Module):
    """Signatures covering what the JSON formats and the batcher must handle."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def tokens(self, text):  # a padded sequence output with a `length`, like a tagger's
        split = tf.strings.split(text)
        return {"tokens": split.to_tensor(""), "length": tf.cast(split.row_lengths(), tf.int32),
                "upper": tf.strings.upper(text)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="data_bytes")])
    def echo_bytes(self, data_bytes):  # an output named *_bytes is answered as {"b64": ...}
        return {"data_bytes": data_bytes, "size": tf.strings.length(data_bytes)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.bool, name="flag"),
                                  tf.TensorSpec([None], tf.int64, name="count"),
                                  tf.TensorSpec([None], tf.float64, name="value"),
                                  tf.TensorSpec([None], tf.int32, name="small")])
    def types(self, flag, count, value, small):
        return {"flag": flag, "count": count, "value": value, "small": small}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def fail(self, text):  # a model call that fails inside TensorFlow (a NotFoundError)
        content = tf.io.read_file(tf.strings.join(["/nonexistent-seq-templates-folder/", text[0]]))
        return {"content": tf.fill(tf.shape(text), content)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def total_only(self, text):  # an output without a batch dimension
        return {"count": tf.size(text)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="values")])
    def checked(self, values):  # fails (InvalidArgumentError) for a negative value
        with tf.control_dependencies([tf.debugging.assert_non_negative(values)]):
            return {"root": tf.sqrt(values)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="values")])
    def centered(self, values):  # each row's answer depends on the whole batch
        return {"centered": values - tf.reduce_mean(values)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="path")])
    def touch(self, path):  # writes a file: shows whether a call ran at all
        with tf.control_dependencies([tf.io.write_file(path[0], "ran")]):
            return {"path": tf.identity(path)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="seconds"),
                                  tf.TensorSpec([], tf.int32, name="max_length")])
    def sleep(self, seconds, max_length):  # a long call that uses no CPU (and a generation-length input)
        micros = tf.cast(tf.reduce_max(seconds) * 1e6, tf.int64)
        slept = tf.data.Dataset.range(1).apply(data_testing.sleep(micros)).reduce(
            tf.constant(0, tf.int64), lambda total, item: total + item)
        return {"seconds": seconds + tf.cast(slept + tf.cast(max_length, tf.int64) * 0, tf.float32)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="prompt"),
                                  tf.TensorSpec([], tf.int32, name="max_length"),
                                  tf.TensorSpec([], tf.int64, name="seed"),
                                  tf.TensorSpec([], tf.int32, name="letters"),
                                  tf.TensorSpec([], tf.float32, name="seconds_per_step")])
    def generate(self, prompt, max_length, seed, letters, seconds_per_step):
        """A text generator's shape: draws from the first `letters` of a-z, a row ends after a "z"; sleeps."""
        draws = tf.random.stateless_uniform(tf.stack([tf.shape(prompt)[0], max_length]), tf.stack([seed, 0]),
                                            minval=0, maxval=letters, dtype=tf.int32)
        ended = tf.equal(draws, 25)
        lengths = tf.where(tf.reduce_any(ended, axis=1), tf.argmax(tf.cast(ended, tf.int32), axis=1,
                                                                   output_type=tf.int32) + 1, max_length)
        kept = tf.sequence_mask(lengths, max_length)
        characters = tf.where(kept, tf.gather(tf.constant(list("abcdefghijklmnopqrstuvwxyz")), draws), "")
        micros = tf.cast(seconds_per_step * tf.cast(max_length, tf.float32) * 1e6, tf.int64)
        slept = tf.data.Dataset.range(1).apply(data_testing.sleep(micros)).reduce(
            tf.constant(0, tf.int64), lambda total, item: total + item)
        continuation = tf.strings.reduce_join(characters, axis=1)
        return {"text": prompt + continuation, "continuation": continuation,
                "num_generated": lengths + tf.cast(slept, tf.int32) * 0}


def save_toy(path, scale=1.0):
    """Writes the toy SavedModel at ``path`` (a version folder); ``scale`` changes the window answer."""
    toy = _Toy()
    toy.scale = tf.Variable(scale)

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="values"),
                                  tf.TensorSpec([], tf.float32, name="offset")])
    def window(values, offset):  # a numeric window and a scalar given once per request
        return {"total": (tf.reduce_sum(values, axis=1) + offset) * toy.scale}

    signatures = {"serving_default": toy.tokens, "window": window, "echo_bytes": toy.echo_bytes,
                  "types": toy.types, "fail": toy.fail, "total_only": toy.total_only,
                  "checked": toy.checked, "centered": toy.centered, "sleep": toy.sleep,
                  "touch": toy.touch, "generate": toy.generate}
    tf.saved_model.save(toy, str(path), signatures=signatures)
    return pathlib.Path(path)


@pytest.fixture(scope="session")
def toy_version(tmp_path_factory):
    """A version folder holding the toy SavedModel (copy it to make more versions)."""
    return save_toy(tmp_path_factory.mktemp("toy") / "1")


@pytest.fixture
def toy_base(tmp_path, toy_version):
    """A fresh base path with the toy as version 1."""
    base = tmp_path / "toy"
    shutil.copytree(toy_version, base / "1")
    return base


def make_repository(models, poll_interval_seconds=0.0, **policy):
    """A loaded repository of ``{name: base path}``."""
    configs = [config_files.ModelConfig(name=name, base_path=pathlib.Path(path), **policy)
               for name, path in models.items()]
    loaded = repository.Repository(configs, poll_interval_seconds)
    loaded.refresh()
    return loaded


def write_extra_assets(version_path, **files):
    """Writes ``assets.extra/<name>.json`` files into an export version (``serving={...}``, ...)."""
    extra = pathlib.Path(version_path) / "assets.extra"
    extra.mkdir(exist_ok=True)
    for name, content in files.items():
        (extra / f"{name}.json").write_text(json.dumps(content), encoding="utf-8")


@contextlib.contextmanager
def client_for(models, batching=None, max_body_bytes=app_module.DEFAULT_MAX_BODY_BYTES, limits=None,
               num_threads=None, given_limits=(), **policy):
    """A Starlette TestClient on an app serving ``{name: base path}`` (``limits``: :class:`limits.Limits`;
    ``given_limits``: the bounds of it given as ``serve`` flags)."""
    with warnings.catch_warnings():  # starlette asks for httpx2, which is not released yet; httpx works
        warnings.simplefilter("ignore")
        from starlette import testclient

    served = make_repository(models, **policy)
    app = app_module.build_app(served, batching, max_body_bytes, num_threads, limits=limits, given_limits=given_limits)
    with testclient.TestClient(app, raise_server_exceptions=False) as client:
        client.repository = served
        client.app_under_test = app
        yield client


@pytest.fixture
def toy_client(toy_base):
    with client_for({"toy": toy_base}) as client:
        yield client
