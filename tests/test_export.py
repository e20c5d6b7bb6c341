"""Export: archives with restored preprocessing, the parity check, batch prediction, numeric inputs."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq_templates import errors
from seq_templates import export
from seq_templates import lifecycle
from seq_templates.preprocessing import state


def _window_export(tmp_path, restored_normalization):
    """A tiny numeric model behind a Normalization that was saved and restored (unbuilt) or adapted."""
    keras.utils.set_random_seed(0)
    normalization = keras.layers.Normalization(axis=-1, name="normalization")
    normalization.adapt(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 9.0]], dtype="float32"))
    if restored_normalization:
        saved = state.layer_state(normalization)
        saved.pop("build_config")  # as from a layer restored from its statistics only: not built
        normalization = state.restore_layer(saved)
        assert not normalization.built
    inputs = keras.Input((3,), name="values")
    model = keras.Model(inputs, keras.layers.Dense(1, name="forecast")(inputs))

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="values")])
    def serve(values):
        return {"forecast": model(normalization(values))[:, 0]}

    archive = export.new_archive([model, normalization])
    archive.add_endpoint("serving_default", serve)
    return export.write(archive, tmp_path / "export"), serve


@pytest.mark.parametrize("restored_normalization", [False, True])
def test_new_archive_builds_a_restored_normalization_and_parity_holds(tmp_path, restored_normalization):
    version_path, serve = _window_export(tmp_path, restored_normalization)
    inputs = {"values": tf.constant([[1.0, 2.0, 3.0], [0.0, -1.0, 7.5]])}
    expected = export.to_numpy(serve(**inputs))
    assert export.check_parity(version_path, inputs, expected) < 1e-6


def test_check_parity_fails_on_different_answers(tmp_path):
    version_path, serve = _window_export(tmp_path, False)
    inputs = {"values": tf.constant([[1.0, 2.0, 3.0]])}
    expected = export.to_numpy(serve(**inputs))
    with pytest.raises(RuntimeError, match="differs on 'forecast'"):
        export.check_parity(version_path, inputs, {"forecast": expected["forecast"] + 0.01})
    with pytest.raises(RuntimeError, match="lacks output 'label'"):
        export.check_parity(version_path, inputs, {**expected, "label": np.array(["x"])})
    with pytest.raises(RuntimeError, match="shaped"):
        export.check_parity(version_path, inputs, {"forecast": np.zeros((1, 2), "float32")})
    with pytest.raises(errors.SeqTemplatesError, match="no signature 'generate'"):
        export.check_parity(version_path, inputs, expected, signature_name="generate")


def test_predict_takes_numeric_json_inputs(tmp_path, cli_in_process):
    version_path, serve = _window_export(tmp_path, True)
    completed = cli_in_process("predict", tmp_path / "export", "[1.0, 2.0, 3.0]", "[0, -1, 7.5]")
    assert completed.returncode == 0, completed.stderr[-2000:]
    records = [json.loads(line) for line in completed.stdout.strip().splitlines()]
    expected = serve(tf.constant([[1.0, 2.0, 3.0], [0.0, -1.0, 7.5]]))["forecast"].numpy()
    np.testing.assert_allclose([record["forecast"] for record in records], expected, atol=1e-5)
    bad = cli_in_process("predict", tmp_path / "export", "[1.0, two]")
    assert bad.returncode == 2 and "INPUT 1" in bad.stderr and "not valid JSON" in bad.stderr
    wrong_shape = cli_in_process("predict", tmp_path / "export", "[1.0, 2.0]")
    assert wrong_shape.returncode == 2 and "Input 'values'" in wrong_shape.stderr, wrong_shape.stderr


def _tagger_like_export(tmp_path):
    """Two named inputs (strings and numbers) and per-token outputs with a length, padded per batch."""
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentence"),
                                  tf.TensorSpec([None], tf.float32, name="scale")])
    def serve(sentence, scale):
        words = tf.strings.split(sentence)
        lengths = words.row_lengths()
        return {"tags": tf.strings.upper(words).to_tensor(""),
                "scores": (tf.cast(tf.strings.length(words), tf.float32) * tf.expand_dims(scale, 1)).to_tensor(),
                "length": lengths}

    archive = keras.export.ExportArchive()
    archive.add_endpoint("serving_default", serve)
    return export.write(archive, tmp_path / "export"), serve


def test_batch_predictor_pads_per_batch_outputs_and_trims_by_length(tmp_path):
    _, serve = _tagger_like_export(tmp_path)
    predict = export.batch_predictor(serve, batch_size=2)
    outputs = predict({"sentence": ["a bb", "c", "dd ee fff gggg", "h"], "scale": [1.0, 2.0, 1.0, 0.5]})
    assert outputs["tags"].shape == (4, 4) and outputs["length"].tolist() == [2, 1, 4, 1]
    assert export.trim_to_length(outputs, 0) == {"tags": ["A", "BB"], "scores": [1.0, 2.0], "length": 2}
    assert export.trim_to_length(outputs, 2)["tags"] == ["DD", "EE", "FFF", "GGGG"]
    assert export.trim_to_length(outputs, 3) == {"tags": ["H"], "scores": [0.5], "length": 1}
    with pytest.raises(errors.SeqTemplatesError, match="Missing input"):
        predict({"sentence": ["a"]})


def test_predict_with_several_named_inputs_takes_json_objects(tmp_path, cli_in_process):
    _tagger_like_export(tmp_path)
    completed = cli_in_process("predict", tmp_path / "export", '{"sentence": "the cat", "scale": 2}',
                        '{"sentence": "a long sentence here", "scale": 1}')
    assert completed.returncode == 0, completed.stderr[-2000:]
    records = [json.loads(line) for line in completed.stdout.strip().splitlines()]
    assert records[0]["tags"] == ["THE", "CAT"] and records[0]["scores"] == [6.0, 6.0]
    assert records[1]["length"] == 4 and len(records[1]["tags"]) == 4
    plain = cli_in_process("predict", tmp_path / "export", "the cat")
    assert plain.returncode == 2 and "JSON object with the keys scale, sentence" in plain.stderr


def test_seeded_check_refuses_sampling_that_ignores_the_seed(tmp_path):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="values"),
                                  tf.TensorSpec([], tf.int64, name="seed")])
    def unseeded(values, seed):
        return {"sample": values + tf.random.uniform(tf.shape(values))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="values"),
                                  tf.TensorSpec([], tf.int64, name="seed")])
    def seeded(values, seed):
        return {"sample": values + tf.random.stateless_uniform(tf.shape(values), tf.stack([seed, seed]))}

    for function, should_pass in ((seeded, True), (unseeded, False)):
        archive = keras.export.ExportArchive()
        archive.add_endpoint("serving_default", function)
        version_path = export.write(archive, tmp_path / function.__name__)
        (tmp_path / "run").mkdir(exist_ok=True)
        run = lifecycle.Run(arguments=None, task="sampler", app_file=tmp_path / "sampler_app.py")
        run.path = tmp_path / "run"
        check = lambda: run.check_export(version_path, {"serving_default": function},  # noqa: E731
                                         {"serving_default": {"values": [1.0, 2.0], "seed": 7}})
        if should_pass:
            assert check() == 0.0
        else:
            with pytest.raises(RuntimeError, match="differently for the same seed"):
                check()


def test_batch_predictor_passes_a_scalar_input_with_every_call(tmp_path, cli_in_process):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="values"),
                                  tf.TensorSpec([], tf.float32, name="offset")])
    def shift(values, offset):
        return {"shifted": values + offset}

    outputs = export.batch_predictor(shift, batch_size=2)({"values": [1.0, 2.0, 3.0], "offset": 10.0})
    np.testing.assert_allclose(outputs["shifted"], [11.0, 12.0, 13.0])
    archive = keras.export.ExportArchive()
    archive.add_endpoint("serving_default", shift)
    export.write(archive, tmp_path / "export")
    completed = cli_in_process("predict", tmp_path / "export", '{"values": 1.5, "offset": 1}',
                               '{"values": 2, "offset": 1}')
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert [json.loads(line)["shifted"] for line in completed.stdout.strip().splitlines()] == [2.5, 3.0]
    differing = cli_in_process("predict", tmp_path / "export", '{"values": 1.5, "offset": 1}',
                               '{"values": 2, "offset": 2}')
    assert differing.returncode == 2 and "one value for the whole request" in differing.stderr
