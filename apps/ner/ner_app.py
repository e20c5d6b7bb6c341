"""Named-entity recognition (many-to-many, aligned): tokens in, one tag per token out.

Run it as ``python ner_app.py [--dataset conll2003]`` or ``seq-templates train ner``: ``main``
hands the regions below to ``lifecycle.train``, which runs them in order. Copy it to edit it:
``seq-templates new ner ./my_app``.
"""

import dataclasses
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
from seq_templates.data import registry
from seq_templates.evaluation import plots
from seq_templates.evaluation import tagging
from seq_templates.layers import characters
from seq_templates.layers import crf
from seq_templates.layers import recurrent
from seq_templates.preprocessing import bucketing
from seq_templates.preprocessing import embeddings
from seq_templates.preprocessing import labels
from seq_templates.preprocessing import tag_schemes
from seq_templates.preprocessing import text
from seq_templates.preprocessing import tokenizer

TASK = "ner"
HEADLINE = ("entity_f1", "max", "model.micro.f1", ("baseline.micro.f1",))  # evaluation/report.py


@dataclasses.dataclass
class DataConfig(config_module.DataConfig):
    """CoNLL files (``--data``) or a dataset; ``tag_scheme``: the files', ``output_scheme``: ours"""

    dataset: typing.Optional[str] = "synthetic_ner"  # a registry name (`seq-templates list`)
    token_column: int = 0  # 0-based columns of --data files; negative counts from the end
    tag_column: int = -1
    separator: typing.Optional[str] = dataclasses.field(
        default=None, metadata={"choices": readers.CONLL_SEPARATORS})
    tag_scheme: str = dataclasses.field(default="iob2", metadata={"choices": tag_schemes.SCHEMES})
    repair_tags: bool = False  # false: a tag breaking tag_scheme is an error; true: conlleval's way
    output_scheme: str = dataclasses.field(default="iob2",
                                           metadata={"choices": tag_schemes.SCHEMES})
    min_word_count: int = dataclasses.field(default=1, metadata={"minimum": 1})  # rarer words: OOV
    replace_digits: bool = True  # word lookup sees 0 for every digit ("1996" -> "0000")
    embeddings_path: typing.Optional[str] = None  # GloVe/word2vec text: "word v1 v2 ..."
    max_word_chars: int = dataclasses.field(default=16, metadata={"minimum": 1})
    token_dropout_rate: float = dataclasses.field(default=0.05, metadata=config_module.RATE)  # fit


@dataclasses.dataclass
class ModelConfig(config_module.RecurrentConfig):  # cell, units, num_layers, bidirectional
    """Word embedding + character features + casing -> (Bi)RNN stack -> CRF or softmax."""

    embedding_dim: int = dataclasses.field(default=50, metadata={"minimum": 1})  # or the file's
    char_features: bool = True
    char_encoder: str = dataclasses.field(default="cnn", metadata={"choices": ("cnn", "bilstm")})
    char_embedding_dim: int = dataclasses.field(default=25, metadata={"minimum": 1})
    char_filters: int = dataclasses.field(default=50, metadata={"minimum": 1})  # cnn
    char_kernel_size: int = dataclasses.field(default=3, metadata={"minimum": 1})  # cnn
    char_units: int = dataclasses.field(default=25, metadata={"minimum": 1})  # bilstm, each way
    casing_features: bool = True  # numeric / lower / UPPER / Initial / ... (characters.py)
    dropout_rate: float = dataclasses.field(default=0.5, metadata=config_module.RATE)
    output: str = dataclasses.field(default="crf", metadata={"choices": ("crf", "softmax")})


@dataclasses.dataclass
class TrainConfig(config_module.TrainConfig):  # keep the epoch with the best validation entity F1
    epochs: int = dataclasses.field(default=15, metadata={"minimum": 1})
    batch_size: int = dataclasses.field(default=32, metadata={"minimum": 1})
    learning_rate: float = dataclasses.field(default=0.003, metadata={"minimum": 0.0})
    monitor: str = "val_entity_f1"  # scored after every epoch by training_callbacks (max: auto)


CONFIG_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


# region 1. load
def read_split(path, data_config, options=None, tag_scheme=None):
    """Reads one CoNLL file, checking (or repairing) its tags: ``(token_lists, tag_lists)``."""
    return tuple(map(list, zip(*stream_examples(data_config, path, options, tag_scheme))))


PREPARED_COLUMNS = ("tokens", "tags")  # `prepare`: lists; the first keys held-out rows


def stream_examples(data, path, options=None, tag_scheme=None):  # one sentence at a time
    options = options or {name: getattr(data, name) for name in readers.CONLL_OPTIONS}
    for tokens, tags, lines in readers.stream_conll(path, **options):  # stops at a broken tag
        yield tokens, tag_schemes.check_and_convert(path, [tokens], [tags], [lines], tag_scheme
                                                    or data.tag_scheme, data.output_scheme,
                                                    data.repair_tags, "data.")[0]


def load_raw_data(data_config):
    """Returns ``{"train"|"validation"|"test": (token_lists, tag_lists)}`` (tags: output_scheme)."""
    def read_dataset(name):  # each file of a registered dataset, read with the recipe's columns
        dataset = registry.resolve(name)
        options = {**registry.reader_options(dataset.recipe),
                   "setting_prefix": registry.READER_SETTING_PREFIX}
        files = {split: [read_split(path, data_config, options, dataset.recipe.get("tag_scheme"))
                         for path in paths]  # a recipe states its files' tag scheme
                 for split, paths in dataset.splits.items()}
        return {split: tuple(sum((part[column] for part in parts), []) for column in (0, 1))
                for split, parts in files.items()}, dataset.recipe

    splits, _ = loading.load_splits(  # local files are shuffled before validation/test are carved
        data_config, lambda path: read_split(path, data_config), read_dataset=read_dataset,
        prepared_task=TASK)  # or a `prepare`d folder (its training split: a sample of every tag)
    tag_schemes.check_known_tags(splits, "data.tag_column")  # validation and test tags are in train
    return splits
# endregion


# region 2. preprocess
def auto_settings(config):
    """Real data: sizes from the training split (seq_templates/auto_settings.py; the README)."""
    train = load_raw_data(config["data"])["train"]  # lists of words (prepared: a sample)
    return auto.recurrent_sizes([len(tokens) for tokens in train[0]], rows=prepared.rows(train))


def build_preprocessing(config, train_split):
    """Adapts the word, character and tag lookups on the training split only."""
    data_config = config["data"]  # words: lower-cased, digits as 0, seen min_word_count+ times
    words = embeddings.word_vocabulary(train_split[0], data_config.min_word_count,
                                       data_config.replace_digits)
    tags = labels.label_vocabulary([tag for tags in train_split[1] for tag in tags])
    preprocessing = {"word_lookup": keras.layers.StringLookup(vocabulary=words, mask_token="",
                                                              name="word_lookup"),
                     "tag_lookup": labels.build_tag_lookup(tags, name="tag_lookup")}
    if config["model"].char_features:
        preprocessing["char_lookup"] = text.build_char_lookup(
            tagging.ragged_sentences(train_split[0]), name="char_lookup")
    return preprocessing


def featurize(preprocessing, config, tokens):
    """Ragged tokens ``(batch, None)`` -> ragged ``token_ids`` [, ``casing_ids``, ``char_ids``]."""
    keys = embeddings.word_keys(tokens, config["data"].replace_digits)
    features = {"token_ids": preprocessing["word_lookup"](keys)}
    if config["model"].casing_features:
        features["casing_ids"] = tokens.with_flat_values(characters.casing_ids(tokens.flat_values))
    if "char_lookup" in preprocessing:
        features["char_ids"] = tokens.with_flat_values(characters.word_char_ids(
            preprocessing["char_lookup"], tokens.flat_values, config["data"].max_word_chars))
    return features


def make_dataset(split, preprocessing, config, shuffle=False):
    """``(features, tag ids, weights)`` batches bucketed by length; padding weighs 0."""
    def transform(batch):  # (tokens, tags) -> (features, tag ids, a weight of 1 per token)
        tag_ids = preprocessing["tag_lookup"](batch[1])
        return featurize(preprocessing, config, batch[0]), tag_ids, tf.ones_like(tag_ids, "float32")

    train_config, rate = config["train"], config["data"].token_dropout_rate
    return bucketing.sequence_dataset(
        prepared.examples(split, train_config.seed), transform,  # in memory, or streamed shards
        train_config.batch_size, train_config.bucket_boundaries, shuffle=shuffle,
        seed=train_config.seed, shuffle_buffer_size=train_config.shuffle_buffer_size,
        augment=text.token_dropout_augmenter(rate) if shuffle else None,
        length_function=lambda features: tf.shape(features["token_ids"])[0])
# endregion


# region 3. build model
def build_model(config, preprocessing):
    """Returns the compiled model: token, casing and character ids -> tag scores (CRF/softmax)."""
    model_config, data_config = config["model"], config["data"]
    num_tags = preprocessing["tag_lookup"].vocabulary_size()  # id 0 is padding
    inputs = {"token_ids": keras.Input(shape=(None,), dtype="int64", name="token_ids")}
    parts = [embeddings.embed_words(  # optionally started from data.embeddings_path's vectors
        inputs["token_ids"], preprocessing["word_lookup"].get_vocabulary(),
        model_config.embedding_dim, data_config.embeddings_path)]
    if model_config.casing_features:
        inputs["casing_ids"] = keras.Input(shape=(None,), dtype="int64", name="casing_ids")
        parts.append(keras.layers.Embedding(characters.NUM_CASING_IDS, 4, name="casing_embedding")(
            inputs["casing_ids"]))
    if "char_lookup" in preprocessing:
        char_ids = inputs["char_ids"] = keras.Input(shape=(None, data_config.max_word_chars),
                                                    dtype="int64", name="char_ids")
        num_chars = preprocessing["char_lookup"].vocabulary_size()
        if model_config.char_encoder == "cnn":
            parts.append(characters.char_word_encoder(
                char_ids, num_chars, data_config.max_word_chars, model_config.char_embedding_dim,
                model_config.char_filters, model_config.char_kernel_size))
        else:  # a BiLSTM over each word's characters, final states (Lample et al. 2016)
            parts.append(characters.char_rnn_word_encoder(
                char_ids, num_chars, model_config.char_embedding_dim, model_config.char_units))
    features = keras.layers.Concatenate(name="word_features")(parts) if len(parts) > 1 else parts[0]
    features = keras.layers.Dropout(model_config.dropout_rate, name="feature_dropout")(features)
    sequence = recurrent.recurrent_stack(  # over the real words only (the token mask)
        features, model_config.cell, model_config.units, model_config.num_layers,
        model_config.bidirectional, model_config.dropout_rate, return_sequences=True,
        mask=keras.ops.not_equal(inputs["token_ids"], 0))
    sequence = keras.layers.Dropout(model_config.dropout_rate, name="sequence_dropout")(sequence)
    scores = keras.layers.Dense(num_tags, name="tag_scores", dtype="float32")(sequence)
    if model_config.output == "crf":
        scores = crf.CRF(num_tags, name="crf")(scores)
        loss, metrics = crf.CRFLoss(num_tags), []
    else:
        loss, metrics = keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"]
    model = keras.Model(inputs, scores, name=f"{TASK}_{model_config.cell}_{model_config.output}")
    model.compile(optimizer=training.build_optimizer(config["train"]), loss=loss,
                  weighted_metrics=metrics)
    return model
# endregion


# region 4. train
def training_callbacks(preprocessing, config, raw_data):
    """Scores ``val_entity_f1`` after each epoch (as evaluate scores test) for ``train.monitor``."""
    tokens, tags = raw_data["validation"]
    return [training.signature_score(
        "val_entity_f1", lambda model: build_serving(model, preprocessing, config)[1]["tag_tokens"],
        tagging.padded_tokens(tokens), lambda outputs: tagging.entity_metrics(
            tags, tagging.tags_from_outputs(outputs))["micro"]["f1"])]
# endregion


# region 5. evaluate
def evaluate(predictors, raw_data, config, output_dir):
    """Entity P/R/F1 (conlleval) and token accuracy on test via tag_tokens, beside a baseline."""
    (train_tokens, train_tags), (test_tokens, test_tags) = raw_data["train"], raw_data["test"]
    predicted = tagging.predict_tags(predictors["tag_tokens"], test_tokens)
    baseline = {"name": "most_frequent_tag_per_token", **tagging.entity_metrics(test_tags, (
        tagging.most_frequent_tag_baseline(train_tokens, train_tags, test_tokens)))}
    matrix, names = tagging.entity_confusion(test_tags, predicted)
    plots.confusion_matrix(matrix, names, f"{output_dir}/plots/entity_confusion.png",
                           title="Entity types (test; O = no entity with that span)")
    unseen = embeddings.unseen_rate(train_tokens, test_tokens, config["data"].replace_digits)
    return {"split": "test", "num_sentences": len(test_tokens),
            "model": tagging.entity_metrics(test_tags, predicted), "baseline": baseline,
            "entity_confusion": {"names": names, "matrix": matrix}, "test_oov_rate": unseen}


def summary(metrics):
    """Test entity F1 and token accuracy beside the baseline: the line printed after evaluation."""
    model, baseline = metrics["model"], metrics["baseline"]["micro"]["f1"]
    return (f"Test entity F1 {model['micro']['f1']:.4f} (token accuracy "
            f"{model['token_accuracy']:.4f}); most-frequent-tag baseline {baseline:.4f}; test "
            f"words unseen in training {metrics['test_oov_rate']:.1%}")
# endregion


# region 6. export
def build_serving(model, preprocessing, config):
    """``(archive, endpoints, assets)``: ``tag_tokens(tokens, length)`` and ``serving_default``
    (raw ``text``) answer ``tags`` ("" past each end; none is cut), ``length``, ``tokens``."""
    vocabulary = preprocessing["tag_lookup"].get_vocabulary()  # id 0 is padding: ""

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="tokens"),
                                  tf.TensorSpec([None], tf.int32, name="length")])
    def tag_tokens(tokens, length):
        sentences = tf.RaggedTensor.from_tensor(tokens, lengths=length)
        tags = tagging.decode_tags(model, featurize(preprocessing, config, sentences), length,
                                   tf.constant(vocabulary), config["model"].output == "crf")
        return {"tags": tags, "length": length, "tokens": sentences.to_tensor("")}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):  # split as the tokenizing standardizer does, without lower-casing
        tokens = tf.strings.split(tokenizer.standardize(text, lowercase=False))
        return tag_tokens(tokens.to_tensor(""), tf.cast(tokens.row_lengths(), tf.int32))

    endpoints = {"serving_default": serve, "tag_tokens": tag_tokens}
    archive = export.new_archive([model, *preprocessing.values()], endpoints)
    return archive, endpoints, {"tags.txt": "\n".join(vocabulary[1:]) + "\n"}


def example_inputs(raw_data, config):
    """What the parity check sends to each signature (a sentence longer than any in training)."""
    too_long = 5 + max((len(tokens) for tokens in raw_data["train"][0]), default=1)
    sentences = raw_data["test"][0][:32] + [["Zanzibar"] * too_long, ["Peter", "Blackburn"], []]
    texts = ["EU rejects German call to boycott British lamb.", "The U.S. don't like it."]
    return {"serving_default": {"text": [" ".join(tokens) for tokens in sentences] + texts},
            "tag_tokens": tagging.padded_tokens(sentences)}


def describe_prediction(record, config):
    """Adds ``entities``: ``[{"text", "type", "start", "end"}]`` (token positions; end exclusive)"""
    return {**record, "entities": tag_schemes.entities(record.get("tokens"), record.get("tags"))}
# endregion


def main(argv=None):
    """Trains, evaluates and exports a named-entity tagger (the regions, in order); returns 0."""
    return lifecycle.train(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
