"""Translation (many-to-many, unaligned): an encoder-decoder with attention, beam decoding.

``python translation_app.py [--dataset spa_eng]`` or ``seq-templates train translation``: load
pairs -> preprocess (vocabularies with start/end tokens) -> build a (Bi)RNN encoder-decoder with
attention -> train (teacher forcing) -> evaluate (BLEU, chrF beside copying the source) -> export
(raw strings in, translations out; beam search in the graph) -> check the export."""

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
from seq_templates.evaluation import translation as translation_metrics
from seq_templates.layers import attention_decoder
from seq_templates.layers import recurrent
from seq_templates.preprocessing import bucketing
from seq_templates.preprocessing import text
from seq_templates.preprocessing import tokenizer

TASK = "translation"
START, END = "[start]", "[end]"
HEADLINE = ("bleu", "max", "model.bleu", ("baseline.bleu",))  # test BLEU beside copying the source
DETOKENIZE_RULES = tokenizer.DETOKENIZE_RULES  # word-level output -> readable text ("don't")
STANDARDIZE, POSITIVE = {"choices": text.STANDARDIZE_CHOICES}, {"minimum": 1}
PREPARED_COLUMNS = ("source", "target")  # `seq-templates prepare` (stream_examples); source keys
PREPARED_LIMITS = {"max_heldout_rows": 5000}  # pairs: beam-decoding 50,000 test pairs takes long


@dataclasses.dataclass
class DataConfig(config_module.DataConfig):
    """Sentence pairs (a dataset, or a ``source<TAB>target[<TAB>attribution]`` file)."""

    dataset: typing.Optional[str] = "synthetic_dates"  # a registry name (`seq-templates list`)
    source_column: int = 0
    target_column: int = 1
    reverse_direction: bool = False  # target column -> source column (spa_eng: Spanish -> English)
    max_words: typing.Optional[int] = dataclasses.field(default=15, metadata=POSITIVE)  # else cut
    deduplicate: bool = True  # drop repeats of an identical pair
    level: str = dataclasses.field(default="char", metadata={"choices": text.LEVELS})  # both sides
    source_standardize: str = dataclasses.field(default="lower", metadata=STANDARDIZE)
    target_standardize: str = dataclasses.field(default="none", metadata=STANDARDIZE)
    source_max_tokens: int = dataclasses.field(default=20000, metadata={"minimum": 3})
    target_max_tokens: int = dataclasses.field(default=20000, metadata={"minimum": 5})
    max_output_length: int = dataclasses.field(default=40, metadata={"minimum": 1})  # in tokens


@dataclasses.dataclass
class ModelConfig:
    """Embeddings -> (Bi)RNN encoder -> decoder started from its final state -> attention."""

    cell: str = dataclasses.field(default="gru", metadata={"choices": recurrent.CELLS})
    units: int = dataclasses.field(default=128, metadata={"minimum": 1})  # encoder's, per direction
    num_layers: int = dataclasses.field(default=1, metadata={"minimum": 1})  # encoder layers
    bidirectional: bool = True  # the decoder has the encoder's output width (2 * units)
    embedding_dim: int = dataclasses.field(default=64, metadata={"minimum": 1})
    attention: str = dataclasses.field(default="bahdanau",
                                       metadata={"choices": attention_decoder.ATTENTION_KINDS})
    attention_units: int = dataclasses.field(default=128, metadata={"minimum": 1})  # bahdanau's
    # The attentional output's width (None: the decoder's); smaller is faster, as the logits are.
    output_units: typing.Optional[int] = dataclasses.field(default=None, metadata={"minimum": 1})
    dropout_rate: float = dataclasses.field(default=0.1, metadata=config_module.RATE)
    beam_width: int = dataclasses.field(default=4, metadata={"minimum": 1})  # 1: greedy
    length_penalty: float = dataclasses.field(default=0.6, metadata={"minimum": 0.0})  # GNMT alpha


@dataclasses.dataclass
class TrainConfig(config_module.TrainConfig):
    epochs: int = dataclasses.field(default=5, metadata={"minimum": 1})
    monitor: str = "val_chrf"  # region 4's score of greedy validation translations
    learning_rate: float = dataclasses.field(default=3e-3, metadata={"minimum": 0.0})
    early_stopping_patience: int = dataclasses.field(default=3, metadata={"minimum": 0})


CONFIG_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


# region 1. load
def load_raw_data(data_config):
    """Returns ``{"train"|"validation"|"test": (sources, targets)}`` as lists of raw strings."""
    def clean(pair):  # in the chosen direction, pairs within data.max_words, repeats dropped
        return readers.clean_pairs(*(pair[::-1] if data_config.reverse_direction else pair),
                                   data_config.max_words, data_config.deduplicate)
    return loading.load_splits(data_config, lambda path: readers.read_parallel_tsv(
        path, data_config.source_column, data_config.target_column, data_config.encoding),
        transform=clean, cleaning=f"pairs over data.max_words={data_config.max_words} words "
        "dropped, and repeats with data.deduplicate", left_empty="No training pairs of at most "
        f"{data_config.max_words} words are left (repeats dropped when data.deduplicate); raise "
        "data.max_words or check the data.", prepared_task=TASK)[0]  # or a `prepare`d folder


def stream_examples(data, path):  # `prepare`: cleaned as above but repeats kept (in one split)
    return readers.stream_parallel_tsv(path, data.source_column, data.target_column, data.encoding,
                                       data.reverse_direction, data.max_words)
# endregion


# region 2. preprocess
def auto_settings(config):
    """Real data: word level and sizes from the training pairs (seq_templates/auto_settings.py)."""
    train = load_raw_data(config["data"])["train"]  # a prepared split: its seeded sample
    return auto.sentence_pairs(
        *train, rows=prepared.rows(train), level_key="data.level",
        standardize={"data.source_standardize": "tokenize_and_lower",
                     "data.target_standardize": "tokenize"},  # output keeps its case: "Tom", "I"
        vocabulary_keys=("data.source_max_tokens", "data.target_max_tokens"),
        width_keys=("model.units", "model.embedding_dim", "model.attention_units",
                    "model.output_units"), dropout_steps=((300_000, 0.3), (None, 0.2)))


def target_tokens(config, targets):
    """Raw targets -> ragged ``[start] tokens [end]`` strings (words or characters: data.level)."""
    data_config = config["data"]
    return text.bracket_tokens(text.split_tokens(targets, data_config.level,
                                                 data_config.target_standardize), START, END)


def build_preprocessing(config, train_split):
    """Adapts the source vectorizer and the target lookup (start and end tokens too) on train."""
    data_config = config["data"]
    source_vectorizer = text.build_text_vectorizer(data_config.level, data_config.source_max_tokens,
                                                   name="source_vectorizer")
    text.adapt_text_vectorizer(source_vectorizer, train_split[0], data_config.source_standardize)
    target_lookup = keras.layers.StringLookup(
        mask_token="", max_tokens=data_config.target_max_tokens, name="target_lookup")
    target_lookup.adapt(target_tokens(config, tf.constant(train_split[1])).flat_values)
    return {"source_vectorizer": source_vectorizer, "target_lookup": target_lookup}


def featurize(preprocessing, config, sources, targets=None):
    """Raw sources (and targets) -> ragged ``{"source_ids"[, "target_input_ids"]}``."""
    features = {"source_ids": text.vectorize(preprocessing["source_vectorizer"], sources,
                                             config["data"].source_standardize)}
    if targets is not None:
        target_ids = preprocessing["target_lookup"](target_tokens(config, targets))
        features["target_input_ids"] = target_ids[:, :-1]  # teacher forcing: [start] w1 ... wn
    return features


def make_dataset(split, preprocessing, config, shuffle=False):
    """``(features, next-token ids, weights)`` batches bucketed by length; padding weighs 0."""
    def transform(batch):
        target_output_ids = preprocessing["target_lookup"](target_tokens(config, batch[1]))[:, 1:]
        return (featurize(preprocessing, config, batch[0], batch[1]), target_output_ids,
                tf.ones_like(target_output_ids, dtype=tf.float32))

    return bucketing.sequence_dataset(
        prepared.examples(split, config["train"].seed), transform, config["train"].batch_size,
        config["train"].bucket_boundaries, shuffle=shuffle, seed=config["train"].seed,
        shuffle_buffer_size=config["train"].shuffle_buffer_size,
        length_function=lambda features: tf.maximum(tf.shape(features["source_ids"])[0],
                                                    tf.shape(features["target_input_ids"])[0]))
# endregion


# region 3. build model
def build_model(config, preprocessing):
    """The compiled teacher-forcing model, named as ``attention_decoder`` reads it for serving."""
    model_config = config["model"]
    source_ids = keras.Input(shape=(None,), dtype="int64", name="source_ids")
    target_input_ids = keras.Input(shape=(None,), dtype="int64", name="target_input_ids")
    source = keras.layers.Embedding(preprocessing["source_vectorizer"].vocabulary_size(),
                                    model_config.embedding_dim, mask_zero=True,
                                    name="source_embedding")(source_ids)
    source = keras.layers.Dropout(model_config.dropout_rate, name="source_dropout")(source)
    encoder_outputs, states = recurrent.recurrent_stack(
        source, model_config.cell, model_config.units, model_config.num_layers,
        model_config.bidirectional, model_config.dropout_rate, return_sequences=True,
        return_state=True, name="encoder")
    states = [keras.layers.Identity(name=f"initial_state_{index}")(state)  # start the decoder,
              for index, state in enumerate(states)]  # named: serving cuts the encoder out there
    width = model_config.units * (2 if model_config.bidirectional else 1)
    target_size = preprocessing["target_lookup"].vocabulary_size()
    # model.attention over the encoder outputs (none | bahdanau | luong), then the logits.
    head, encoder_outputs, keys = attention_decoder.head_layers(
        encoder_outputs, model_config.attention, target_size, width, model_config.attention_units,
        model_config.output_units or width, model_config.dropout_rate)
    target = keras.layers.Embedding(target_size, model_config.embedding_dim, mask_zero=True,
                                    name="target_embedding")(target_input_ids)
    target = keras.layers.Dropout(model_config.dropout_rate, name="target_dropout")(target)
    decoder = recurrent.recurrent_layer(model_config.cell, width, return_sequences=True,
                                        return_state=True, name="decoder")
    logits = attention_decoder.head(head, decoder(target, initial_state=states)[0],
                                    encoder_outputs, keys)
    model = keras.Model({"source_ids": source_ids, "target_input_ids": target_input_ids}, logits,
                        name=f"{TASK}_{model_config.cell}_{model_config.attention}")
    model.compile(training.build_optimizer(config["train"]), weighted_metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
# endregion


# region 4. train
def training_callbacks(preprocessing, config, raw_data):
    """``val_chrf`` after each epoch (train.monitor): chrF of greedy translations of 1,000
    validation pairs (smoother than BLEU on a sample, and above 0 from the first epoch)."""
    (sources, references), max_length = raw_data["validation"], config["data"].max_output_length
    greedy = {"beam_width": 1, "length_penalty": 0.0, "max_length": max_length}
    return [training.signature_score(  # the translate signature, built once per model
        "val_chrf", lambda model: build_serving(model, preprocessing, config)[1]["translate"],
        {"source": sources[:1000], **greedy},
        lambda outputs: translation_metrics.chrf(references[:1000], outputs["translation"]))]
# endregion


# region 5. evaluate
def evaluate(predictors, raw_data, config, output_dir):
    """BLEU/chrF (sacreBLEU) and exact match of ``serving_default`` on the test split beside
    copying the source; ``samples.md``; with an ``attention`` signature, four heatmaps."""
    sources, references = raw_data["test"]
    outputs = list(map(str, predictors["serving_default"]({"source": sources})["translation"]))
    samples = translation_metrics.samples_table(sources, references, outputs,
                                                pathlib.Path(output_dir) / "samples.md")
    if "attention" in predictors:
        translation_metrics.attention_maps(predictors["attention"]({"source": sources[:4]}),
                                           sources[:4], pathlib.Path(output_dir) / "plots")
    return {"split": "test", "num_examples": len(sources), "decoding": {
                name: getattr(config["model"], name) for name in ("beam_width", "length_penalty")},
            "model": translation_metrics.translation_metrics(references, outputs),
            "baseline": translation_metrics.copy_source_baseline(sources, references),
            "samples": samples[:5]}


def summary(metrics):
    """The line printed after evaluation."""
    model, baseline = metrics["model"], metrics["baseline"]
    return (f"Test BLEU {model['bleu']:.2f} (lower-cased; cased {model['bleu_cased']:.2f}), chrF "
            f"{model['chrf']:.2f}, exact match {model['exact_match']:.4f}; copy-source baseline "
            f"BLEU {baseline['bleu']:.2f}, chrF {baseline['chrf']:.2f}")
# endregion


# region 6. export
def build_serving(model, preprocessing, config):
    """Returns ``(archive, endpoints, assets)``: ``serving_default``, ``translate`` and (with
    attention) ``attention``; ``serving.json`` holds the defaults of ``translate``'s settings."""
    model_config, data_config = config["model"], config["data"]
    network = attention_decoder.SteppedDecoder(  # build_model's layers, one token at a time
        model, preprocessing["target_lookup"].get_vocabulary(), START, END)
    defaults = {"beam_width": model_config.beam_width, "max_length": data_config.max_output_length,
                "length_penalty": model_config.length_penalty}  # serving_default's; serving.json
    separator, rewrites = (" ", DETOKENIZE_RULES) if data_config.level == "word" else ("", ())

    def source_ids(source):
        return featurize(preprocessing, config, source)["source_ids"].to_tensor()

    def source_tokens(source):  # as the vectorizer splits them: the attention map's columns
        tokens = text.split_tokens(source, data_config.level, data_config.source_standardize)
        return text.truncate_and_fill(tokens, filler="")
    source_spec = tf.TensorSpec([None], tf.string, name="source")

    @tf.function(input_signature=[source_spec, tf.TensorSpec([], tf.int32, name="beam_width"),
                                  tf.TensorSpec([], tf.int32, name="max_length"),
                                  tf.TensorSpec([], tf.float32, name="length_penalty")])
    def translate(source, beam_width, max_length, length_penalty):
        token_ids = network.decode(source_ids(source), beam_width, max_length, length_penalty)
        translation, length = network.text(token_ids, separator, rewrites)  # detokenized
        return {"translation": translation, "length": length}

    @tf.function(input_signature=[source_spec])
    def serve(source):
        return translate(source, **{name: tf.constant(value) for name, value in defaults.items()})

    endpoints = {"serving_default": serve, "translate": translate}
    if network.attention:  # decodes as serving_default, then re-reads the output for the weights
        endpoints["attention"] = network.attention_signature(
            source_spec, source_ids, source_tokens, separator, rewrites, defaults)
    archive = export.new_archive([model, *preprocessing.values()], endpoints)
    return archive, endpoints, {"serving.json": {"defaults": {"translate": defaults}}}


def example_inputs(raw_data, config):
    """Inputs the parity check (and the contract tests) send to each signature of the export."""
    sources = raw_data["test"][0][:32] + ["", "¿Dónde está la biblioteca?", "zzqx " * 40]
    examples = {"serving_default": {"source": sources}, "translate": dict(
        source=sources[:8] + sources[-3:], beam_width=1, max_length=20, length_penalty=0.0)}
    if config["model"].attention != "none":
        examples["attention"] = {"source": sources[:4] + sources[-2:]}
    return examples
# endregion


def main(argv=None):
    """Trains, evaluates and exports a translation model (the regions, in order); returns 0."""
    return lifecycle.train(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
