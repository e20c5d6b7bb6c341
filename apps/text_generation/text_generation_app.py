"""Text generation (one-to-many): a char- or word-level language model that writes from a prompt.

``python text_generation_app.py [--dataset tiny_shakespeare] [--data book.txt]`` or ``seq-templates
train text_generation``: load (split by position) -> preprocess (a token lookup) -> build (embedding
-> stacked RNN -> next-token logits) -> train (windows, or truncated BPTT) -> evaluate (beside an
add-k n-gram; samples) -> export (generation inside the graph) -> check (same seed, same text)."""

import dataclasses
import pathlib
import sys
import typing

import keras
import tensorflow as tf

from seq_templates import auto_settings as auto
from seq_templates import cli
from seq_templates import config as config_module
from seq_templates import export
from seq_templates import lifecycle
from seq_templates import training
from seq_templates.data import loading
from seq_templates.data import prepared
from seq_templates.data import readers
from seq_templates.evaluation import language_model as lm_metrics
from seq_templates.layers import recurrent
from seq_templates.layers import sampling
from seq_templates.preprocessing import language_model
from seq_templates.preprocessing import text

TASK = "text_generation"
SAMPLE_TEMPERATURES = (0.0, 0.5, 0.8, 1.0)
HEADLINE = ("loss", "min", "model.loss", ("baseline.loss",))  # nats/token beside the n-gram's
WIDTHS = {"char": ((300_000, 256), (None, 512)), "word": auto.WIDTH_STEPS}  # units by train tokens
SAMPLING_SETTINGS = ("max_length", "temperature", "top_k", "top_p", "seed")  # model.*: the defaults
PREPARED_COLUMNS = ("text",)  # `seq-templates prepare` (stream_examples): ~4 KB pieces of the text
PREPARED_LIMITS = {"sample_rows": 1000, "max_heldout_rows": 100, "row_bytes": 4096}  # 4 MB, 400 KB


@dataclasses.dataclass
class DataConfig(config_module.DataConfig):
    """A plain-text corpus (dataset, path: see the base) and how it becomes tokens."""

    dataset: typing.Optional[str] = "synthetic_play"  # a registry name (`seq-templates list`)
    tokenization: str = dataclasses.field(default="char",
                                          metadata={"choices": language_model.LEVELS})
    standardize: str = dataclasses.field(default="tokenize_and_lower",  # word level only
                                         metadata={"choices": text.STANDARDIZE_CHOICES})
    max_tokens: int = dataclasses.field(default=20000, metadata={"minimum": 3})  # with pad, [UNK]
    sequence_length: int = dataclasses.field(default=100, metadata={"minimum": 1})  # tokens/window
    window_stride: typing.Optional[int] = dataclasses.field(  # null: sequence_length (no overlap)
        default=None, metadata={"minimum": 1})
    keep_boilerplate: bool = False  # true: keep a Project Gutenberg header and license footer


@dataclasses.dataclass
class ModelConfig:
    """Embedding -> recurrent layers -> next-token logits; the export's sampling defaults."""

    cell: str = dataclasses.field(default="gru", metadata={"choices": recurrent.CELLS})
    units: int = dataclasses.field(default=256, metadata={"minimum": 1})
    num_layers: int = dataclasses.field(default=1, metadata={"minimum": 1})
    residual: bool = False  # add each layer's input to its output from the second layer on
    embedding_dim: int = dataclasses.field(default=64, metadata={"minimum": 1})
    dropout_rate: float = dataclasses.field(default=0.0, metadata=config_module.RATE)
    max_length: int = dataclasses.field(default=200, metadata={"minimum": 1})  # tokens generated
    temperature: float = dataclasses.field(default=0.8, metadata={"minimum": 0.0})  # 0: greedy
    top_k: int = dataclasses.field(default=0, metadata={"minimum": 0})  # 0: off
    top_p: float = dataclasses.field(default=1.0, metadata={"interval": (0.0, 1.0)})  # 1: off
    seed: int = 0  # serving_default's sampling seed


@dataclasses.dataclass
class TrainConfig(config_module.TrainConfig):  # the shared options, two ways to cut the corpus
    epochs: int = dataclasses.field(default=20, metadata={"minimum": 1})
    learning_rate: float = dataclasses.field(default=0.003, metadata={"minimum": 0.0})
    stateful: bool = False  # truncated BPTT: batch_size streams, state carried chunk to chunk


CONFIG_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


# region 1. load
def load_raw_data(data_config):
    """Returns ``{"train"|"validation"|"test": str}``, contiguous blocks of the corpus."""
    splits, _ = loading.load_splits(
        data_config, lambda path: readers.read_plain_text(path, data_config.encoding),
        default_strategy="position",  # data.max_train_samples: the first characters of train
        transform=loading.without_gutenberg_boilerplate(data_config.keep_boilerplate),
        prepared_task=TASK, formats=("text",))  # or a `prepare`d folder: train streamed
    for name, split in splits.items():  # words counted roughly (the tokenizer splits further)
        texts = split[0] if hasattr(split, "shards") else [language_model.corpus_text(split)]
        count = max(len(text) if data_config.tokenization == "char" else len(text.split())
                    for text in texts)  # prepared training pieces: a window stays in one piece
        language_model.check_length(count, data_config.sequence_length + 1,
                                    "one sequence of data.sequence_length + 1 tokens", name)
        splits[name] = split if name == "train" else language_model.corpus_text(split)
    return splits


def stream_examples(data, path):  # `prepare`: pieces of the text (a Gutenberg header is kept)
    return readers.stream_text_pieces(path, data.encoding, PREPARED_LIMITS["row_bytes"])
# endregion


# region 2. preprocess
def auto_settings(config):
    """Real data: sizes from the training text (seq_templates/auto_settings.py; the README)."""
    data_config = config["data"]
    train = load_raw_data(data_config)["train"]  # a prepared split: its sample's count, scaled up
    count = language_model.corpus_token_count(train, data_config.tokenization,
                                              data_config.standardize)
    windows = count // data_config.sequence_length  # training windows of sequence_length tokens
    return auto.recurrent_sizes([data_config.sequence_length] * windows,
                                ("model.units",), width_steps=WIDTHS[data_config.tokenization],
                                length_key=None, dropout_steps=((300_000, 0.2), (None, 0.1)))


def build_preprocessing(config, train_split):
    """Adapts the token lookup (0: padding "", 1: "[UNK]") on the training text only."""
    data_config = config["data"]
    lookup = keras.layers.StringLookup(max_tokens=data_config.max_tokens, mask_token="",
                                       name="token_lookup")
    lookup.adapt(language_model.corpus_tokens(train_split, data_config.tokenization,
                                              data_config.standardize))  # prepared: its sample
    return {"token_lookup": lookup}


def featurize(preprocessing, config, texts):
    """Strings -> ``{"token_ids": ragged token ids}`` (unseen tokens -> 1, OOV)."""
    tokens = language_model.split_tokens(texts, config["data"].tokenization,
                                         config["data"].standardize)
    return {"token_ids": preprocessing["token_lookup"](tokens)}


def make_dataset(split, preprocessing, config, shuffle=False):
    """``({"token_ids"}, next ids)``: shuffled windows, or streams in order (``train.stateful``);
    a prepared split's pieces are windowed in the first epoch, then read from a file cache."""
    data_config, train_config = config["data"], config["train"]
    return language_model.corpus_dataset(
        split if isinstance(split, str) else prepared.examples(split, train_config.seed),
        preprocessing["token_lookup"], data_config.tokenization, data_config.standardize,
        data_config.sequence_length, train_config.batch_size, data_config.window_stride,
        train_config.stateful, shuffle, train_config.seed)
# endregion


# region 3. build model
def build_network(config, vocabulary_size, batch_size=None):
    """The network ``{"token_ids"}`` -> logits; ``batch_size`` makes its RNN layers stateful."""
    model_config = config["model"]
    token_ids = keras.Input(shape=(None,), batch_size=batch_size, dtype="int64", name="token_ids")
    sequence = keras.layers.Embedding(vocabulary_size, model_config.embedding_dim,
                                      name="embedding")(token_ids)
    for index in range(model_config.num_layers):
        name = f"recurrent_{index + 1}"
        layer = recurrent.recurrent_layer(model_config.cell, model_config.units,
                                          return_sequences=True, return_state=True, name=name)
        layer.stateful = batch_size is not None
        outputs = layer(sequence)[0]
        if model_config.dropout_rate > 0:
            outputs = keras.layers.Dropout(model_config.dropout_rate,
                                           name=f"{name}_dropout")(outputs)
        if model_config.residual and index > 0:
            outputs = keras.layers.Add(name=f"{name}_residual")([sequence, outputs])
        sequence = outputs
    logits = keras.layers.Dense(vocabulary_size, name="logits", dtype="float32")(sequence)
    return keras.Model({"token_ids": token_ids}, logits, name=f"{TASK}_{model_config.cell}")


def build_model(config, preprocessing):
    """Returns the compiled model (stateful with a fixed batch size when ``train.stateful``)."""
    batch_size = config["train"].batch_size if config["train"].stateful else None
    model = build_network(config, preprocessing["token_lookup"].vocabulary_size(), batch_size)
    model.compile(optimizer=training.build_optimizer(config["train"]), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
# endregion


# region 4. train
def training_callbacks(preprocessing, config, raw_data):
    """With ``train.stateful``, zeroes the carried state when an epoch or a validation starts."""
    return [language_model.ResetStatesEachEpoch()] if config["train"].stateful else []
# endregion


# region 5. evaluate
def evaluate(predictors, raw_data, config, output_dir):
    """Test loss, perplexity and bits per token beside an add-k n-gram; samples (``samples.txt``).

    The model scores pieces of ``sequence_length + 1`` tokens, each token after a piece's first
    (as validation does); ``model_long_context`` pieces ten times as long (``train.stateful``)."""
    data_config, level = config["data"], config["data"].tokenization
    tokens = {name: [token.decode("utf-8") for token in language_model.corpus_tokens(
        split, level, data_config.standardize)] for name, split in raw_data.items()}
    separator = "" if level == "char" else " "

    def score_pieces(length):  # pieces of `length + 1` tokens, each starting where one ends
        pieces = language_model.overlapping_pieces(tokens["test"], length + 1, separator)
        return lm_metrics.score_summary(predictors["score"]({"text": pieces}))

    model = score_pieces(data_config.sequence_length)
    long_length = min(10 * data_config.sequence_length, len(tokens["test"]) - 1)
    long_context = {**score_pieces(long_length), "piece_length": long_length + 1}
    baseline, choice = lm_metrics.ngram_baseline(tokens, data_config.max_tokens - 2)  # rest: [UNK]
    for metrics in (model, baseline, long_context):
        metrics[f"bits_per_{'char' if level == 'char' else 'word'}"] = metrics.pop("bits_per_token")
    prompt = separator.join(tokens["test"][:min(20, len(tokens["test"]))])
    samples = {f"temperature_{temperature}": str(predictors["generate"]({
        "prompt": [prompt], "max_length": config["model"].max_length, "temperature": temperature,
        "top_k": 0, "top_p": 1.0, "seed": config["model"].seed})["text"][0])
        for temperature in SAMPLE_TEMPERATURES}
    samples["serving_default"] = str(predictors["serving_default"]({"prompt": [prompt]})["text"][0])
    lm_metrics.write_samples(samples, pathlib.Path(output_dir) / "samples.txt")
    return {"split": "test", "tokenization": level, "model": model,
            "model_long_context": long_context,
            "baseline": {"name": f"add_k_{choice['order']}_gram", **baseline, **choice},
            "samples": samples}


def summary(metrics):
    """The lines printed after evaluation: the test loss beside the baseline, then the samples."""
    model, baseline = metrics["model"], metrics["baseline"]
    return "\n".join([
        (f"Test loss {model['loss']:.4f} nats/token, perplexity {model['perplexity']:.3f}; "
         f"{baseline['name']} (k={baseline['k']}) perplexity {baseline['perplexity']:.3f}"),
        *(f"--- sample, {name} ---\n{sample}" for name, sample in metrics["samples"].items())])
# endregion


# region 6. export
def build_serving(model, preprocessing, config):
    """Returns ``(archive, endpoints, assets)``: ``serving_default(prompt)``, ``generate(prompt,
    max_length, temperature, top_k, top_p, seed)`` -> ``text``, ``continuation``, ``num_generated``;
    ``score(text)`` -> ``log_probability`` of the tokens after the first, ``num_scored``."""
    lookup, model_config = preprocessing["token_lookup"], config["model"]
    network = build_network(config, lookup.vocabulary_size())  # stateless twin: any batch size
    network.set_weights(model.get_weights())
    never_drawn = tf.constant([-1e9, -1e9] + [0.0] * (lookup.vocabulary_size() - 2))  # pad, [UNK]
    stack = sampling.RecurrentLanguageModel(
        network.get_layer("embedding"),
        [network.get_layer(f"recurrent_{index + 1}") for index in range(model_config.num_layers)],
        network.get_layer("logits"), model_config.residual, never_drawn)
    vocabulary = tf.constant(lookup.get_vocabulary())
    separator = "" if config["data"].tokenization == "char" else " "

    def padded_ids(texts):  # one padding step more, so that an empty text still has one step
        return tf.pad(featurize(preprocessing, config, texts)["token_ids"].to_tensor(),
                      [[0, 0], [0, 1]])

    def write(prompt, *settings):  # settings: max_length, temperature, top_k, top_p, seed
        tokens, lengths = stack.generate(padded_ids(prompt), *settings)  # reads the prompt once
        continuation = tf.strings.reduce_join(tf.gather(vocabulary, tokens), 1, separator=separator)
        return {"text": sampling.join_continuation(prompt, continuation, separator),
                "continuation": continuation, "num_generated": lengths}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="prompt")])
    def serve(prompt):
        return write(prompt, *(getattr(model_config, name) for name in SAMPLING_SETTINGS))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="prompt"), *(  # scalars:
        tf.TensorSpec([], dtype, name=name) for name, dtype in zip(SAMPLING_SETTINGS, (
            tf.int32, tf.float32, tf.int32, tf.float32, tf.int64)))])  # max_length ... seed
    def generate(prompt, max_length, temperature, top_k, top_p, seed):
        return write(prompt, max_length, temperature, top_k, top_p, seed)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def score(text):
        return stack.score(padded_ids(text))

    endpoints = {"serving_default": serve, "generate": generate, "score": score}
    archive = export.new_archive([network, lookup], endpoints)
    defaults = {name: getattr(model_config, name) for name in SAMPLING_SETTINGS}  # for `predict`
    serving = {"defaults": {"generate": defaults}, "resumable": [] if separator else ["generate"]}
    return archive, endpoints, {"serving.json": serving}  # resumable: `text` re-reads as same ids


def example_inputs(raw_data, config):
    """Inputs the parity check (and the contract tests) send to each signature of the export."""
    prompts = [raw_data["test"][:20], "", "zz\u00e9\u4e2d unseen", "To be or not"]
    return {"serving_default": {"prompt": prompts},
            "generate": {"prompt": prompts, "max_length": 30, "temperature": 1.0, "top_k": 5,
                         "top_p": 0.9, "seed": 1234},  # same seed, same draws on both sides
            "score": {"text": [raw_data["test"][:200], "", "x"]}}
# endregion


def main(argv=None):
    """Trains, evaluates and exports a language model (the seven regions, in order); returns 0."""
    return lifecycle.train(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
