"""Named-entity recognition (many-to-many, aligned): tokens in, one tag per token out.

Run it as ``python ner_app.py [--dataset conll2003]`` or ``seq-templates train ner``; ``main``
hands the regions below to ``lifecycle.train``, which runs them in order: load CoNLL columns
(checking the tag scheme) -> preprocess (word, character and tag lookups adapted on train) ->
build a BiLSTM over word embeddings (optionally GloVe), a character CNN per word and a casing
feature, with a CRF or a softmax on top -> train (keeping the best validation entity F1 epoch)
-> evaluate (conlleval's entity F1, beside the most-frequent-tag baseline) -> export (raw or
pre-tokenized sentences in, tags out) -> check that the reloaded export answers the same.
Copy it with ``seq-templates new ner ./my_app`` and edit any region.
"""

import collections
import dataclasses
import pathlib
import sys
import typing

import keras
import tensorflow as tf

from seq_templates import cli
from seq_templates import config as config_module
from seq_templates import errors
from seq_templates import export
from seq_templates import lifecycle
from seq_templates import training
from seq_templates.data import loading
from seq_templates.data import readers
from seq_templates.data import registry
from seq_templates.evaluation import plots
from seq_templates.evaluation import tagging
from seq_templates.layers import char_recurrent
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


@dataclasses.dataclass
class DataConfig(config_module.DataConfig):
    """CoNLL files (``--data``) or a dataset; ``tag_scheme``: the files', ``output_scheme``: learnt."""

    dataset: typing.Optional[str] = "synthetic_ner"  # a registry name (`seq-templates list`)
    token_column: int = 0  # 0-based columns of --data files; negative counts from the end
    tag_column: int = -1
    separator: typing.Optional[str] = dataclasses.field(
        default=None, metadata={"choices": readers.CONLL_SEPARATORS})
    tag_scheme: str = dataclasses.field(default="iob2", metadata={"choices": tag_schemes.SCHEMES})
    repair_tags: bool = False  # false: a tag breaking tag_scheme is an error; true: read as conlleval
    output_scheme: str = dataclasses.field(default="iob2", metadata={"choices": tag_schemes.SCHEMES})
    min_word_count: int = dataclasses.field(default=1, metadata={"minimum": 1})  # rarer words: OOV
    replace_digits: bool = True  # word lookup sees 0 for every digit ("1996" -> "0000")
    embeddings_path: typing.Optional[str] = None  # GloVe/word2vec text file: "word v1 v2 ..."
    max_word_chars: int = dataclasses.field(default=16, metadata={"minimum": 1})
    token_dropout_rate: float = dataclasses.field(default=0.05, metadata={"minimum": 0.0})  # train


@dataclasses.dataclass
class ModelConfig:
    """Word embedding + character features + casing -> (Bi)RNN stack -> CRF or softmax."""

    cell: str = dataclasses.field(default="lstm", metadata={"choices": recurrent.CELLS})
    units: int = dataclasses.field(default=64, metadata={"minimum": 1})
    num_layers: int = dataclasses.field(default=1, metadata={"minimum": 1})
    bidirectional: bool = True
    embedding_dim: int = dataclasses.field(default=50, metadata={"minimum": 1})  # or the file's
    char_features: bool = True
    char_encoder: str = dataclasses.field(default="cnn", metadata={"choices": ("cnn", "bilstm")})
    char_embedding_dim: int = dataclasses.field(default=25, metadata={"minimum": 1})
    char_filters: int = dataclasses.field(default=50, metadata={"minimum": 1})  # cnn
    char_kernel_size: int = dataclasses.field(default=3, metadata={"minimum": 1})  # cnn
    char_units: int = dataclasses.field(default=25, metadata={"minimum": 1})  # bilstm, per direction
    casing_features: bool = True  # numeric / lower / UPPER / Initial / ... (characters.py)
    dropout_rate: float = dataclasses.field(default=0.5, metadata={"minimum": 0.0})
    output: str = dataclasses.field(default="crf", metadata={"choices": ("crf", "softmax")})


@dataclasses.dataclass
class TrainConfig(config_module.TrainConfig):
    """NER's training defaults: keep the epoch with the best validation entity F1 (region 4)."""

    epochs: int = dataclasses.field(default=15, metadata={"minimum": 1})
    batch_size: int = dataclasses.field(default=32, metadata={"minimum": 1})
    learning_rate: float = dataclasses.field(default=0.003, metadata={"minimum": 0.0})
    monitor: str = "val_entity_f1"  # scored after every epoch by training_callbacks
    monitor_mode: str = dataclasses.field(default="max", metadata={"choices": ("auto", "min", "max")})


CONFIG_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


# region 1. load
def read_split(path, data_config, options):
    """Reads one CoNLL file and checks (or repairs) its tags; returns ``(token_lists, tag_lists)``."""
    token_lists, tag_lists, lines = readers.read_conll(path, return_line_numbers=True, **options)
    for tokens, tags, numbers in zip(token_lists, tag_lists, lines):
        if "" in tokens:
            raise errors.SeqTemplatesError(f"{path}:{numbers[tokens.index('')]}: the token column"
                                           " is empty; fix the line or set data.token_column.")
        problem = tag_schemes.check(tags, data_config.tag_scheme)
        if problem is not None and not data_config.repair_tags:
            raise errors.SeqTemplatesError(
                f"{path}:{numbers[problem[0]]}: {problem[1]}. Fix the tag, set data.tag_scheme to "
                f"the file's scheme ({', '.join(tag_schemes.SCHEMES)}), or data.repair_tags=true.")
    scheme, output_scheme = data_config.tag_scheme, data_config.output_scheme
    return token_lists, [tag_schemes.convert(tags, scheme, output_scheme) for tags in tag_lists]


def load_raw_data(data_config):
    """Returns ``{"train"|"validation"|"test": (token_lists, tag_lists)}`` (tags: output_scheme)."""
    def read_dataset(name):  # each file of a registered dataset, read with the recipe's columns
        dataset = registry.resolve(name)
        options = {**registry.reader_options(dataset.recipe),
                   "setting_prefix": registry.READER_SETTING_PREFIX}
        files = {split: [read_split(path, data_config, options) for path in paths]
                 for split, paths in dataset.splits.items()}
        return {split: tuple(sum((part[column] for part in parts), []) for column in (0, 1))
                for split, parts in files.items()}, dataset.recipe

    options = {"token_column": data_config.token_column, "tag_column": data_config.tag_column,
               "separator": data_config.separator, "encoding": data_config.encoding}
    splits, _ = loading.load_splits(data_config, lambda path: read_split(path, data_config, options),
                                    read_dataset=read_dataset, default_strategy="shuffle")
    tags = {name: [tag for tags in split[1] for tag in tags] for name, split in splits.items()}
    vocabulary = labels.label_vocabulary(tags["train"], "data.tag_column")
    for name in ("validation", "test"):
        labels.check_known_labels(tags[name], vocabulary, name)
    return splits
# endregion


# region 2. preprocess
def word_key(words, data_config):
    """The word lookup's key of each word: lower-cased, digits as 0 (``data.replace_digits``)."""
    keys = tf.strings.lower(words, encoding="utf-8")
    return tf.strings.regex_replace(keys, "[0-9]", "0") if data_config.replace_digits else keys


def word_keys(token_lists, data_config):
    """:func:`word_key` of every token of a split, as a flat list of str."""
    flat = tf.constant([token for tokens in token_lists for token in tokens], tf.string)
    return [key.decode("utf-8") for key in word_key(flat, data_config).numpy()]


def build_preprocessing(config, train_split):
    """Adapts the word, character and tag lookups on the training split only."""
    counts = collections.Counter(word_keys(train_split[0], config["data"]))
    words = sorted((word for word, count in counts.items() if count >= config["data"].min_word_count),
                   key=lambda word: (-counts[word], word))
    tags = labels.label_vocabulary([tag for tags in train_split[1] for tag in tags])
    preprocessing = {"word_lookup": keras.layers.StringLookup(vocabulary=words, mask_token="",
                                                              name="word_lookup"),
                     "tag_lookup": labels.build_tag_lookup(tags, name="tag_lookup")}
    if config["model"].char_features:
        preprocessing["char_lookup"] = text.build_char_lookup(tf.ragged.constant(train_split[0]),
                                                              name="char_lookup")
    return preprocessing


def featurize(preprocessing, config, tokens):
    """Ragged tokens ``(batch, None)`` -> ragged ``token_ids`` [, ``casing_ids``, ``char_ids``]."""
    features = {"token_ids": preprocessing["word_lookup"](word_key(tokens, config["data"]))}
    if config["model"].casing_features:
        features["casing_ids"] = tokens.with_flat_values(characters.casing_ids(tokens.flat_values))
    if "char_lookup" in preprocessing:
        features["char_ids"] = tokens.with_flat_values(characters.word_char_ids(
            preprocessing["char_lookup"], tokens.flat_values, config["data"].max_word_chars))
    return features


def make_dataset(split, preprocessing, config, shuffle=False):
    """Bucketed ``(features, tag ids, weights)`` batches (padding: weight 0); shuffle: word dropout."""
    def transform(batch):
        tag_ids = preprocessing["tag_lookup"](batch[1])
        return featurize(preprocessing, config, batch[0]), tag_ids, tf.ones_like(tag_ids, tf.float32)

    train_config = config["train"]
    return bucketing.sequence_dataset(
        tuple(tf.ragged.constant(column, tf.string, ragged_rank=1) for column in split), transform,
        train_config.batch_size, train_config.bucket_boundaries, shuffle=shuffle,
        seed=train_config.seed, shuffle_buffer_size=train_config.shuffle_buffer_size,
        augment=text.token_dropout_augmenter(config["data"].token_dropout_rate) if shuffle else None,
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
        char_vocabulary = preprocessing["char_lookup"].vocabulary_size()
        if model_config.char_encoder == "cnn":
            parts.append(characters.char_word_encoder(
                char_ids, char_vocabulary, data_config.max_word_chars,
                model_config.char_embedding_dim, model_config.char_filters,
                model_config.char_kernel_size))
        else:  # a BiLSTM over each word's characters, final states (Lample et al. 2016)
            parts.append(char_recurrent.char_rnn_word_encoder(
                char_ids, char_vocabulary, model_config.char_embedding_dim, model_config.char_units))
    features = keras.layers.Concatenate(name="word_features")(parts) if len(parts) > 1 else parts[0]
    features = keras.layers.Dropout(model_config.dropout_rate, name="feature_dropout")(features)
    sequence = recurrent.recurrent_stack(
        features, model_config.cell, model_config.units, model_config.num_layers,
        model_config.bidirectional, model_config.dropout_rate, return_sequences=True)
    sequence = keras.layers.Dropout(model_config.dropout_rate, name="sequence_dropout")(sequence)
    scores = keras.layers.Dense(num_tags, name="tag_scores")(sequence)
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
    """Scores ``val_entity_f1`` after every epoch (as evaluate scores test) for ``train.monitor``."""
    tokens, tags = raw_data["validation"]
    predictors = {}  # the serving function tag_tokens of each model, built at its first epoch's end

    def score(model):
        if model not in predictors:
            predictors[model] = export.batch_predictors(
                build_serving(model, preprocessing, config)[1])["tag_tokens"]
        predicted = tagging.predict_tags(predictors[model], tokens)
        return tagging.entity_metrics(tags, predicted)["micro"]["f1"]

    return [training.ValidationScore("val_entity_f1", score)]
# endregion


# region 5. evaluate
def evaluate(predictors, raw_data, config, output_dir):
    """Entity P/R/F1 (conlleval) and token accuracy on test, beside the most-frequent-tag baseline;
    ``tag_tokens`` tags the gold tokens, as training scored the validation split."""
    (train_tokens, train_tags), (test_tokens, test_tags) = raw_data["train"], raw_data["test"]
    predicted = tagging.predict_tags(predictors["tag_tokens"], test_tokens)
    baseline = tagging.most_frequent_tag_baseline(train_tokens, train_tags, test_tokens)
    matrix, names = tagging.entity_confusion(test_tags, predicted)
    plots.confusion_matrix(matrix, names, pathlib.Path(output_dir) / "plots" / "entity_confusion.png",
                           title="Entity types (test; O = no entity with that span)")
    train_words = set(word_keys(train_tokens, config["data"]))
    test_words = word_keys(test_tokens, config["data"])
    unseen = sum(word not in train_words for word in test_words) / max(len(test_words), 1)
    return {"split": "test", "num_sentences": len(test_tokens),
            "model": tagging.entity_metrics(test_tags, predicted),
            "baseline": {"name": "most_frequent_tag_per_token",
                         **tagging.entity_metrics(test_tags, baseline)},
            "entity_confusion": {"names": names, "matrix": matrix}, "test_oov_rate": unseen}
# endregion


# region 6. export
def build_serving(model, preprocessing, config):
    """Returns ``(archive, endpoints, assets)``: ``serving_default(text)`` tags raw sentences,
    ``tag_tokens(tokens, length)`` pre-tokenized ones; both answer ``tags`` (padded with "" to the
    longest sentence; none is cut), ``length`` and ``tokens``. ``tags.txt`` lists the tags."""
    tag_names = tf.constant(preprocessing["tag_lookup"].get_vocabulary(), tf.string)  # 0: ""
    no_padding_tag = tf.one_hot(0, model.output.shape[-1]) * 1e4  # tag id 0 (padding) never wins

    def tag(tokens):
        length = tf.cast(tokens.row_lengths(), tf.int32)
        longest = tf.reduce_max(tf.concat([length, [0]], 0))
        width = tf.maximum(longest, 1)  # an empty batch still has one step
        features = {name: feature.to_tensor()
                    for name, feature in featurize(preprocessing, config, tokens).items()}
        scores = model({name: tf.pad(feature, [[0, 0], [0, width - tf.shape(feature)[1]]]
                                     + [[0, 0]] * (len(feature.shape) - 2))
                        for name, feature in features.items()}, training=False) - no_padding_tag
        if config["model"].output == "crf":
            tag_ids = crf.decode(scores, tag_names.shape[0])
        else:
            tag_ids = tf.argmax(scores, axis=-1, output_type=tf.int32)
        tags = tf.where(tf.sequence_mask(length, width), tf.gather(tag_names, tag_ids), "")
        return {"tags": tags[:, :longest], "length": length,
                "tokens": tokens.to_tensor("")[:, :longest]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        return tag(tf.strings.split(tokenizer.standardize(text, lowercase=False)))

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="tokens"),
                                  tf.TensorSpec([None], tf.int32, name="length")])
    def tag_tokens(tokens, length):
        return tag(tf.RaggedTensor.from_tensor(tokens, lengths=length))

    endpoints = {"serving_default": serve, "tag_tokens": tag_tokens}
    archive = export.new_archive([model, *(layer for name, layer in preprocessing.items()
                                           if name != "tag_lookup")])
    for name, function in endpoints.items():
        archive.add_endpoint(name, function)
    tag_list = "\n".join(preprocessing["tag_lookup"].get_vocabulary()[1:]) + "\n"
    return archive, endpoints, {"tags.txt": tag_list}


def example_inputs(raw_data, config):
    """What the parity check sends to each signature (a sentence longer than any in training)."""
    longest = max((len(tokens) for tokens in raw_data["train"][0]), default=1)
    sentences = raw_data["test"][0][:32]
    texts = [" ".join(tokens) for tokens in sentences] + [
        "", "EU rejects German call to boycott British lamb.", "The U.S. don't like it.",
        " ".join(["Zanzibar"] * (longest + 5))]
    return {"serving_default": {"text": texts},
            "tag_tokens": tagging.padded_tokens(sentences + [["Peter", "Blackburn"], []])}


def describe_prediction(record, config):
    """Adds ``entities``: ``[{"text", "type", "start", "end"}]`` (token positions, end exclusive)."""
    tokens = record.get("tokens") or []
    return {**record, "entities": [
        {"text": " ".join(tokens[start:end + 1]), "type": kind, "start": start, "end": end + 1}
        for kind, start, end in tag_schemes.entity_spans(record.get("tags") or [])]}
# endregion


def summary(metrics):
    """The line printed after evaluation."""
    return (f"Test entity F1 {metrics['model']['micro']['f1']:.4f} (token accuracy "
            f"{metrics['model']['token_accuracy']:.4f}); most-frequent-tag baseline "
            f"{metrics['baseline']['micro']['f1']:.4f}; test words unseen in training "
            f"{metrics['test_oov_rate']:.1%}")


def main(argv=None):
    """Trains, evaluates and exports a named-entity tagger (the seven regions, in order); returns 0."""
    return lifecycle.train(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
