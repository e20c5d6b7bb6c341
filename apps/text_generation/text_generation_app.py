"""Text generation (one-to-many): a char- or word-level language model that writes from a prompt.

Run it as ``python text_generation_app.py [--dataset tiny_shakespeare] [--data book.txt]`` or
``seq-templates train text_generation``. ``main`` runs seven regions in order: load (split by
position: test is the end of the text, validation just before) -> preprocess (a token lookup adapted
on the training text) -> build model (embedding -> stacked RNN -> next-token logits) -> train
(independent windows, or ``train.stateful`` truncated BPTT with carried state) -> evaluate (loss,
perplexity, bits per token beside an add-k n-gram; samples at several temperatures) -> export
(``serving_default``, ``generate`` and ``score`` signatures; generation runs inside the graph)
-> check that the reloaded export writes the same text for the same seed.

Copy it with ``seq-templates new text_generation ./my_app`` and edit any region.
"""

import collections
import dataclasses
import pathlib
import sys
import typing

import keras
import numpy as np
import tensorflow as tf

from seq_templates import cli
from seq_templates import config as config_module
from seq_templates import errors
from seq_templates import export
from seq_templates import lifecycle
from seq_templates import training
from seq_templates.data import readers
from seq_templates.data import registry
from seq_templates.data import splits as data_splits
from seq_templates.evaluation import language_model as lm_metrics
from seq_templates.layers import recurrent
from seq_templates.layers import sampling
from seq_templates.preprocessing import language_model
from seq_templates.preprocessing import text

TASK = "text_generation"
SAMPLE_TEMPERATURES = (0.0, 0.5, 0.8, 1.0)


@dataclasses.dataclass
class DataConfig(config_module.DataConfig):
    """A plain-text corpus (dataset, path: see the base) and how it becomes tokens."""

    dataset: typing.Optional[str] = "synthetic_play"  # a registry name (`seq-templates list`)
    tokenization: str = dataclasses.field(default="char", metadata={"choices": language_model.LEVELS})
    standardize: str = dataclasses.field(default="tokenize_and_lower",  # word level only
                                         metadata={"choices": text.STANDARDIZE_CHOICES})
    max_tokens: int = dataclasses.field(default=20000, metadata={"minimum": 3})  # vocabulary incl. pad, OOV
    sequence_length: int = dataclasses.field(default=100, metadata={"minimum": 1})  # tokens per window/chunk
    window_stride: typing.Optional[int] = dataclasses.field(  # null: sequence_length (no overlap)
        default=None, metadata={"minimum": 1})


@dataclasses.dataclass
class ModelConfig:
    """Embedding -> stacked recurrent layers -> next-token logits; the export's sampling defaults."""

    cell: str = dataclasses.field(default="gru", metadata={"choices": recurrent.CELLS})
    units: int = dataclasses.field(default=256, metadata={"minimum": 1})
    num_layers: int = dataclasses.field(default=1, metadata={"minimum": 1})
    residual: bool = False  # add each layer's input to its output from the second layer on
    embedding_dim: int = dataclasses.field(default=64, metadata={"minimum": 1})
    dropout_rate: float = dataclasses.field(default=0.0, metadata={"minimum": 0.0})
    max_length: int = dataclasses.field(default=200, metadata={"minimum": 1})  # tokens generated
    temperature: float = dataclasses.field(default=0.8, metadata={"minimum": 0.0})  # 0: greedy
    top_k: int = dataclasses.field(default=0, metadata={"minimum": 0})  # 0: off
    top_p: float = 1.0  # in (0, 1]; 1: off
    seed: int = 0  # serving_default's sampling seed


@dataclasses.dataclass
class TrainConfig(config_module.TrainConfig):
    """Shared training options plus the two ways to cut the corpus."""

    epochs: int = dataclasses.field(default=20, metadata={"minimum": 1})
    learning_rate: float = dataclasses.field(default=0.003, metadata={"minimum": 0.0})
    stateful: bool = False  # truncated BPTT: batch_size streams, state carried chunk to chunk


CONFIG_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def check_settings(config):
    """Rejects sampling settings that config types cannot (top_p outside (0, 1])."""
    if not 0.0 < config["model"].top_p <= 1.0:
        raise errors.SeqTemplatesError(f"Expected model.top_p in (0, 1] (1 = off), received {config['model'].top_p}.")


# region 1. load
def load_raw_data(data_config):
    """Returns ``{"train"|"validation"|"test": str}``, contiguous blocks of the corpus."""
    if data_config.path:
        splits = {"train": readers.read_plain_text(data_config.path, data_config.encoding)}
        splits.update({name: readers.read_plain_text(getattr(data_config, f"{name}_path"), data_config.encoding)
                       for name in ("validation", "test") if getattr(data_config, f"{name}_path")})
    elif data_config.dataset:
        splits, recipe = registry.read(data_config.dataset)
        if recipe.get("format") != "text":
            raise errors.SeqTemplatesError(f"Dataset '{data_config.dataset}' is not plain text (format "
                                           f"{recipe.get('format')}); choose a text dataset or --data FILE.txt.")
    else:
        raise errors.SeqTemplatesError("No data: pass --data FILE.txt or --dataset NAME.")
    splits = data_splits.carve(splits, {"test": data_config.test_fraction,
                                        "validation": data_config.validation_fraction},
                               "position", data_config.split_seed)
    if data_config.max_train_samples:  # quick trials: the first characters of the training text
        splits["train"] = splits["train"][:data_config.max_train_samples]
    for name, split in splits.items():  # words counted roughly (the tokenizer splits further)
        count = len(split) if data_config.tokenization == "char" else len(split.split())
        language_model.check_length(count, data_config.sequence_length + 1,
                                    "one sequence of data.sequence_length + 1 tokens", name)
    return splits
# endregion


# region 2. preprocess
def build_preprocessing(config, train_split):
    """Adapts the token lookup (0: padding "", 1: "[UNK]") on the training text only."""
    data_config = config["data"]
    lookup = keras.layers.StringLookup(max_tokens=data_config.max_tokens, mask_token="", name="token_lookup")
    lookup.adapt(language_model.corpus_tokens(train_split, data_config.tokenization, data_config.standardize))
    return {"token_lookup": lookup}


def featurize(preprocessing, config, texts):
    """Strings -> ``{"token_ids": ragged token ids}`` (unseen tokens -> 1, OOV)."""
    tokens = language_model.split_tokens(texts, config["data"].tokenization, config["data"].standardize)
    return {"token_ids": preprocessing["token_lookup"](tokens)}


def corpus_ids(split, preprocessing, config):
    """A split's token ids as one int64 NumPy array."""
    tokens = language_model.corpus_tokens(split, config["data"].tokenization, config["data"].standardize)
    return preprocessing["token_lookup"](tf.constant(tokens)).numpy()


def make_dataset(split, preprocessing, config, shuffle=False):
    """``({"token_ids"}, next ids)``: shuffled independent windows, or streams in order (``train.stateful``)."""
    ids, data_config, train_config = corpus_ids(split, preprocessing, config), config["data"], config["train"]
    if train_config.stateful:
        return language_model.stream_dataset(ids, data_config.sequence_length, train_config.batch_size)
    return language_model.window_dataset(ids, data_config.sequence_length, train_config.batch_size,
                                         data_config.window_stride, shuffle=shuffle, seed=train_config.seed)
# endregion


# region 3. build model
def build_network(config, vocabulary_size, batch_size=None):
    """The functional network ``{"token_ids"}`` -> logits; ``batch_size`` makes its RNN layers stateful."""
    model_config = config["model"]
    token_ids = keras.Input(shape=(None,), batch_size=batch_size, dtype="int64", name="token_ids")
    sequence = keras.layers.Embedding(vocabulary_size, model_config.embedding_dim, name="embedding")(token_ids)
    for index in range(model_config.num_layers):
        layer = recurrent.recurrent_layer(model_config.cell, model_config.units, return_sequences=True,
                                          return_state=True, name=f"recurrent_{index + 1}")
        layer.stateful = batch_size is not None
        outputs = layer(sequence)[0]
        if model_config.dropout_rate > 0:
            outputs = keras.layers.Dropout(model_config.dropout_rate, name=f"recurrent_{index + 1}_dropout")(outputs)
        if model_config.residual and index > 0:
            outputs = keras.layers.Add(name=f"recurrent_{index + 1}_residual")([sequence, outputs])
        sequence = outputs
    logits = keras.layers.Dense(vocabulary_size, name="logits")(sequence)
    return keras.Model({"token_ids": token_ids}, logits, name=f"{TASK}_{model_config.cell}")


def build_model(config, preprocessing):
    """Returns the compiled model (stateful with a fixed batch size when ``train.stateful``)."""
    batch_size = config["train"].batch_size if config["train"].stateful else None
    model = build_network(config, preprocessing["token_lookup"].vocabulary_size(), batch_size)
    model.compile(optimizer=training.build_optimizer(config["train"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model
# endregion


# region 6. export (defined before evaluation, which runs through the same serving functions)
def build_serving(model, preprocessing, config):
    """Returns ``(archive, endpoints)``: ``serving_default(prompt)``, ``generate(prompt, max_length,
    temperature, top_k, top_p, seed)`` -> ``text``, ``continuation``, ``num_generated``; ``score(text)`` ->
    ``log_probability`` of each token after the first and ``num_scored``."""
    lookup, model_config = preprocessing["token_lookup"], config["model"]
    network = build_network(config, lookup.vocabulary_size())  # stateless twin: any batch size
    network.set_weights(model.get_weights())
    embedding, dense = network.get_layer("embedding"), network.get_layer("logits")
    layers = [network.get_layer(f"recurrent_{index + 1}") for index in range(model_config.num_layers)]
    vocabulary = tf.constant(lookup.get_vocabulary())
    never_drawn = tf.constant([-1e9, -1e9] + [0.0] * (lookup.vocabulary_size() - 2))  # padding and [UNK]
    separator = "" if config["data"].tokenization == "char" else " "

    def run_layers(ids, mask, states=None):  # -> (per-step top outputs, final states per layer)
        sequence, final_states = embedding(ids), []
        for index, layer in enumerate(layers):
            outputs, *layer_states = layer(sequence, mask=mask, initial_state=states[index] if states else None)
            sequence = outputs + sequence if model_config.residual and index > 0 else outputs
            final_states.append(layer_states)
        return sequence, final_states

    def last_output(final_states):  # the top output at the last step, rebuilt from the final states
        output = final_states[0][0]
        for index in range(1, len(final_states)):
            output = final_states[index][0] + output if model_config.residual else final_states[index][0]
        return output

    def step(token_ids, states):
        _, states = run_layers(tf.cast(token_ids, tf.int64)[:, None], None, states)
        return dense(last_output(states)) + never_drawn, states

    def write(prompt, max_length, temperature, top_k, top_p, seed):
        ids = tf.pad(featurize(preprocessing, config, prompt)["token_ids"].to_tensor(), [[0, 0], [0, 1]])
        _, states = run_layers(ids, ids > 0)  # the prompt once; an empty prompt keeps the zero state
        first_logits = dense(last_output(states)) + never_drawn
        tokens, lengths = sampling.generate(step, states, first_logits, max_length, temperature, top_k, top_p,
                                            tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)]))
        words = tf.gather(vocabulary, tokens)
        continuation = tf.strings.reduce_join(words, axis=1, separator=separator)
        joiner = tf.where(tf.logical_and(tf.strings.length(prompt) > 0, tf.strings.length(continuation) > 0),
                          separator, "")
        return {"text": prompt + joiner + continuation, "continuation": continuation, "num_generated": lengths}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="prompt")])
    def serve(prompt):
        return write(prompt, model_config.max_length, model_config.temperature, model_config.top_k,
                     model_config.top_p, model_config.seed)

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name="prompt"), tf.TensorSpec([], tf.int32, name="max_length"),
        tf.TensorSpec([], tf.float32, name="temperature"), tf.TensorSpec([], tf.int32, name="top_k"),
        tf.TensorSpec([], tf.float32, name="top_p"), tf.TensorSpec([], tf.int64, name="seed")])
    def generate(prompt, max_length, temperature, top_k, top_p, seed):
        return write(prompt, max_length, temperature, top_k, top_p, seed)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def score(text):
        ids = tf.pad(featurize(preprocessing, config, text)["token_ids"].to_tensor(), [[0, 0], [0, 1]])
        sequence, _ = run_layers(ids, ids > 0)
        log_probabilities = tf.nn.log_softmax(dense(sequence[:, :-1]))
        scored = tf.cast(ids[:, 1:] > 0, tf.float32)
        token_log_probabilities = tf.gather(log_probabilities, ids[:, 1:], batch_dims=2) * scored
        return {"log_probability": tf.reduce_sum(token_log_probabilities, axis=1),
                "num_scored": tf.cast(tf.reduce_sum(scored, axis=1), tf.int32)}

    archive = export.new_archive([network, lookup])
    endpoints = {"serving_default": serve, "generate": generate, "score": score}
    for name, function in endpoints.items():
        archive.add_endpoint(name, function)
    return archive, endpoints


def serving_defaults(config):
    """The ``generate`` inputs' defaults, recorded in ``assets.extra/serving.json`` for ``predict``."""
    model_config = config["model"]
    return {"generate": {"max_length": model_config.max_length, "temperature": model_config.temperature,
                         "top_k": model_config.top_k, "top_p": model_config.top_p, "seed": model_config.seed}}


def example_inputs(raw_data, config):
    """Inputs the parity check (and the contract tests) send to each signature of the export."""
    prompts = [raw_data["test"][:20], "", "zz\u00e9\u4e2d unseen", "To be or not"]
    return {"serving_default": {"prompt": prompts},
            "generate": {"prompt": prompts, "max_length": 30, "temperature": 1.0, "top_k": 5, "top_p": 0.9},
            "score": {"text": [raw_data["test"][:200], "", "x"]}}
# endregion


# region 5. evaluate
def evaluate(predict, raw_data, config, output_dir, endpoints=None):
    """Test loss, perplexity and bits per token beside an add-k n-gram; samples at a few temperatures.

    ``predict`` runs ``serving_default``; ``endpoints`` maps ``score`` and ``generate`` to
    predictors (None: read them from the run's export, as ``seq-templates evaluate`` does). The
    model scores windows of ``sequence_length + 1`` tokens, each token after a window's first
    (as validation does for independent windows); ``model_long_context`` scores pieces ten times
    as long, where most tokens have a long history (as with ``train.stateful``).
    """
    if endpoints is None:
        endpoints = {name: export.batch_predictor(export.load_serving_function(output_dir, name)[0])
                     for name in ("score", "generate")}
    data_config = config["data"]
    level, mode = data_config.tokenization, data_config.standardize
    tokens = {name: [token.decode("utf-8") for token in language_model.corpus_tokens(split, level, mode)]
              for name, split in raw_data.items()}
    separator = "" if level == "char" else " "
    def score_pieces(length):  # test text in pieces of `length + 1` tokens; each token after a piece's first
        starts = language_model.window_starts(len(tokens["test"]), length + 1, length)
        scores = endpoints["score"]({"text": [separator.join(tokens["test"][start:start + length + 1])
                                              for start in starts]})
        return lm_metrics.summary(-float(np.sum(scores["log_probability"])), int(np.sum(scores["num_scored"])))

    model = score_pieces(data_config.sequence_length)
    long_length = min(10 * data_config.sequence_length, len(tokens["test"]) - 1)  # as train.stateful learns
    long_context = {**score_pieces(long_length), "piece_length": long_length + 1}
    # The lookup's vocabulary: the most frequent training tokens; the rest are one unknown token.
    vocabulary = {token for token, _ in collections.Counter(tokens["train"]).most_common(data_config.max_tokens - 2)}
    known = {name: [token if token in vocabulary else "[UNK]" for token in split] for name, split in tokens.items()}
    ngram, choice = lm_metrics.fit_ngram_baseline(known["train"], known["validation"], len(set(known["train"])) + 1)
    baseline = lm_metrics.summary(ngram.negative_log_likelihood(known["test"], skip_first=1), len(known["test"]) - 1)
    unit = "char" if level == "char" else "word"
    for metrics in (model, baseline, long_context):
        metrics[f"bits_per_{unit}"] = metrics.pop("bits_per_token")
    prompt = separator.join(tokens["test"][:min(20, len(tokens["test"]))])
    samples = {f"temperature_{temperature}": str(endpoints["generate"]({
        "prompt": [prompt], "max_length": config["model"].max_length, "temperature": temperature,
        "top_k": 0, "top_p": 1.0, "seed": config["model"].seed})["text"][0]) for temperature in SAMPLE_TEMPERATURES}
    samples["serving_default"] = str(predict({"prompt": [prompt]})["text"][0])
    (pathlib.Path(output_dir) / "samples.txt").write_text(
        "".join(f"=== {name} ===\n{sample}\n\n" for name, sample in samples.items()), encoding="utf-8")
    return {"split": "test", "tokenization": level, "model": model, "model_long_context": long_context,
            "baseline": {"name": f"add_k_{choice['order']}_gram", **baseline, **choice}, "samples": samples}
# endregion


def main(argv=None):
    """Trains, evaluates and exports a language model; returns the exit status."""
    run = lifecycle.start(argv, CONFIG_SECTIONS, TASK, __file__, description=__doc__.splitlines()[0])
    config = run.config
    check_settings(config)
    raw_data = load_raw_data(config["data"])  # 1. load (before any folder is made)
    print(f"Data: {', '.join(f'{name} {len(split)} characters' for name, split in raw_data.items())}")
    with run.directory():
        preprocessing = run.preprocessing(build_preprocessing, raw_data["train"])  # 2. preprocess
        train_dataset = make_dataset(raw_data["train"], preprocessing, config, shuffle=True)
        validation_dataset = make_dataset(raw_data["validation"], preprocessing, config)
        model = run.model(build_model, preprocessing)  # 3. build model (or the checkpoint's on --resume)
        callbacks = [language_model.ResetStatesEachEpoch()] if config["train"].stateful else []
        run.fit(model, train_dataset, validation_dataset, callbacks=callbacks)  # 4. train
        archive, endpoints = build_serving(model, preprocessing, config)
        predictors = {name: export.batch_predictor(function, batch_size=256) for name, function in endpoints.items()}
        metrics = run.record_metrics(evaluate(predictors["serving_default"], raw_data, config, run.path,  # 5.
                                              predictors))
        print(f"Test loss {metrics['model']['loss']:.4f} nats/token, perplexity {metrics['model']['perplexity']:.3f}; "
              f"{metrics['baseline']['name']} (k={metrics['baseline']['k']}) perplexity "
              f"{metrics['baseline']['perplexity']:.3f}")
        for name, sample in metrics["samples"].items():
            print(f"--- sample, {name} ---\n{sample}")
        version_path = run.export(archive, {"serving.json": {"defaults": serving_defaults(config)}})  # 6. export
        run.check_export(version_path, endpoints, example_inputs(raw_data, config))  # 7. check the reloaded export
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
