"""Sentiment classification (many-to-one): raw text in, label and probabilities out.

Run it as ``python sentiment_app.py [--dataset sst2] [--set model.cell=gru]`` or
``seq-templates train sentiment``. The file holds seven regions in run order, and
``main`` hands it to ``lifecycle.train``, which calls them one after the other: load ->
preprocess (adapt layers on the training split) -> build model -> train ->
evaluate (beside a TF-IDF + logistic-regression baseline) -> export (a SavedModel
that takes raw strings) -> check that the reloaded export answers the same.

Copy it with ``seq-templates new sentiment ./my_app`` and edit any region.
"""

import dataclasses
import pathlib
import sys
import typing

import keras
import numpy as np
import tensorflow as tf

from seq_templates import auto_settings as auto
from seq_templates import cli
from seq_templates import config as config_module
from seq_templates import errors
from seq_templates import export
from seq_templates import lifecycle
from seq_templates import training
from seq_templates.data import loading
from seq_templates.data import prepared
from seq_templates.data import readers
from seq_templates.evaluation import baselines
from seq_templates.evaluation import classification
from seq_templates.evaluation import plots
from seq_templates.layers import characters
from seq_templates.layers import pooling
from seq_templates.layers import recurrent
from seq_templates.preprocessing import bucketing
from seq_templates.preprocessing import labels
from seq_templates.preprocessing import text

TASK = "sentiment"
HEADLINE = ("accuracy", "max", "model.accuracy", ("baseline.accuracy", "majority_class_accuracy"))


@dataclasses.dataclass
class DataConfig(config_module.DataConfig):
    """Where the examples come from (dataset, path, split paths, encoding: see the base) and how
    text becomes token ids."""

    dataset: typing.Optional[str] = "synthetic_sentiment"  # a registry name (`seq-templates list`)
    format: typing.Optional[str] = dataclasses.field(
        default=None, metadata={"choices": (None, "csv", "tsv", "jsonl")})  # None: the extension
    text_column: str = "text"
    label_column: str = "label"
    has_header: bool = True
    level: str = dataclasses.field(default="word", metadata={"choices": text.LEVELS})
    # tokenize_and_lower: punctuation and clitics split off as tokens, so "isn't good." and
    # "is n't good ." become the same tokens (seq_templates/preprocessing/tokenizer.py)
    standardize: str = dataclasses.field(default="tokenize_and_lower",
                                         metadata={"choices": text.STANDARDIZE_CHOICES})
    max_tokens: int = dataclasses.field(default=20000, metadata={"minimum": 3})
    max_length: typing.Optional[int] = dataclasses.field(default=256, metadata={"minimum": 1})
    serving_max_length: typing.Optional[int] = dataclasses.field(  # null: the export reads all
        default=None, metadata={"minimum": 1})
    token_dropout_rate: float = dataclasses.field(  # training batches only
        default=0.0, metadata=config_module.RATE)
    char_features: bool = False  # a character CNN per word (helps with unseen words; level=word)
    max_word_chars: int = dataclasses.field(default=12, metadata={"minimum": 1})


@dataclasses.dataclass
class ModelConfig(config_module.RecurrentConfig):  # cell, units, num_layers, bidirectional
    """Embedding -> recurrent stack -> pooling -> class logits."""

    residual: bool = False
    embedding_dim: int = dataclasses.field(default=64, metadata={"minimum": 1})
    dropout_rate: float = dataclasses.field(default=0.3, metadata=config_module.RATE)
    pooling: str = dataclasses.field(default="max", metadata={"choices": pooling.POOLING_CHOICES})
    # the character CNN of data.char_features
    char_embedding_dim: int = dataclasses.field(default=16, metadata={"minimum": 1})
    char_filters: int = dataclasses.field(default=64, metadata={"minimum": 1})
    char_kernel_size: int = dataclasses.field(default=3, metadata={"minimum": 1})


@dataclasses.dataclass
class TrainConfig(config_module.TrainConfig):
    """The shared training options; selection on validation accuracy, the figure reported."""

    monitor: str = "val_accuracy"


CONFIG_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


# region 1. load
def load_raw_data(data_config):
    """Returns ``{"train"|"validation"|"test": (texts, labels)}`` as lists of str."""
    splits, recipe = loading.load_splits(data_config, lambda path: readers.read_text_classification(
        path, data_config.text_column, data_config.label_column, data_config.format,
        data_config.has_header, data_config.encoding), prepared_task=TASK)  # or a `prepare`d folder
    label_names = (recipe or {}).get("label_names") or {}  # e.g. 0/1 -> negative/positive
    if label_names:
        splits = {name: (texts, [str(label_names.get(label, label)) for label in label_list])
                  for name, (texts, label_list) in splits.items()}
    vocabulary = labels.label_vocabulary(splits["train"][1])
    for name in ("validation", "test"):
        labels.check_known_labels(splits[name][1], vocabulary, name)
    return splits


PREPARED_COLUMNS = ("text", "label")  # the first keys held-out rows; the sample has every label


def stream_examples(data, path):  # `seq-templates prepare`: data larger than memory, row by row
    return readers.stream_text_classification(path, data.text_column, data.label_column,
                                              data.format, data.has_header, data.encoding)
# endregion


# region 2. preprocess
def auto_settings(config):
    """Real data: sizes from the training split (seq_templates/auto_settings.py; the README)."""
    data_config = config["data"]  # word or character tokens, as the vectorizer will see them
    train = load_raw_data(data_config)["train"]  # a prepared split: its seeded sample
    tokens = auto.standardized_tokens(train[0], data_config.standardize, data_config.level)
    lengths = np.array([len(text_tokens) for text_tokens in tokens])
    max_length = int(min(400, max(16, np.percentile(lengths, 99))))
    lengths, rows = np.minimum(lengths, max_length), prepared.rows(train)
    stack, widths, dropout = auto.classifier_stack(lengths, rows)
    return [*auto.vocabulary("data.max_tokens", auto.token_counts(tokens)),
            auto.Choice("data.max_length", max_length, "99 % of training texts are shorter "
                        "(at least 16, at most 400: longer texts train on their start)"),
            *stack, *auto.recurrent_sizes(lengths, widths, dropout, rows=rows)]


def build_preprocessing(config, train_split):
    """Adapts the text vectorizer and the label lookup on the training split only."""
    data_config = config["data"]
    vectorizer = text.build_text_vectorizer(data_config.level, data_config.max_tokens,
                                            name="text_vectorizer")
    text.adapt_text_vectorizer(vectorizer, train_split[0], data_config.standardize)
    label_lookup = labels.build_label_lookup(labels.label_vocabulary(train_split[1]),
                                             name="label_lookup")
    preprocessing = {"text_vectorizer": vectorizer, "label_lookup": label_lookup}
    if data_config.char_features:
        if data_config.level != "word":
            raise errors.SeqTemplatesError(
                "data.char_features needs data.level=word; set one of them.")
        words = text.split_words(tf.constant(train_split[0]), data_config.standardize)
        preprocessing["char_lookup"] = text.build_char_lookup(words, name="char_lookup")
    return preprocessing


def featurize(preprocessing, config, texts, max_length):
    """Raw strings -> ``{"token_ids": ragged ids[, "char_ids": ragged character ids per word]}``.

    ``max_length`` keeps the first tokens of long texts: ``data.max_length`` bounds
    training batches; serving passes ``data.serving_max_length`` (None: whole texts).
    """
    data_config = config["data"]
    tokens = text.standardize(texts, data_config.standardize)  # once, for words and characters
    features = {"token_ids": text.vectorize(preprocessing["text_vectorizer"], tokens, "none",
                                            max_length)}
    if "char_lookup" in preprocessing:
        features["char_ids"] = text.char_ids(preprocessing["char_lookup"], tokens, "none",
                                             max_length, data_config.max_word_chars)
    return features


def make_dataset(split, preprocessing, config, shuffle=False):
    """A bucketed tf.data pipeline of (features, label ids); training adds token dropout."""
    label_lookup = preprocessing["label_lookup"]
    return bucketing.sequence_dataset(
        prepared.examples(split, config["train"].seed),  # in memory, or a prepared split's shards
        lambda batch: (featurize(preprocessing, config, batch[0], config["data"].max_length),
                       label_lookup(batch[1])),
        config["train"].batch_size, config["train"].bucket_boundaries, shuffle=shuffle,
        seed=config["train"].seed, shuffle_buffer_size=config["train"].shuffle_buffer_size,
        augment=text.token_dropout_augmenter(config["data"].token_dropout_rate if shuffle else 0),
        length_function=lambda features: tf.shape(features["token_ids"])[0])
# endregion


# region 3. build model
def build_model(config, preprocessing):
    """Returns the compiled functional model: ``{"token_ids"[, "char_ids"]}`` -> class logits."""
    model_config = config["model"]
    num_classes = preprocessing["label_lookup"].vocabulary_size()
    token_ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    inputs = {"token_ids": token_ids}
    embedded = keras.layers.Embedding(preprocessing["text_vectorizer"].vocabulary_size(),
                                      model_config.embedding_dim, mask_zero=True,
                                      name="embedding")(token_ids)
    if "char_lookup" in preprocessing:
        # Characters of each word: embed, convolve along the word, max over its characters.
        width = config["data"].max_word_chars
        char_ids = keras.Input(shape=(None, width), dtype="int64", name="char_ids")
        inputs["char_ids"] = char_ids
        chars = characters.char_word_encoder(
            char_ids, preprocessing["char_lookup"].vocabulary_size(), width,
            model_config.char_embedding_dim, model_config.char_filters,
            model_config.char_kernel_size)
        embedded = keras.layers.Concatenate(name="word_and_char_features")([embedded, chars])
    embedded = keras.layers.Dropout(model_config.dropout_rate, name="embedding_dropout")(embedded)
    mask = keras.ops.not_equal(token_ids, 0)  # the real tokens: stack and pooling read only these
    outputs = recurrent.recurrent_stack(
        embedded, model_config.cell, model_config.units, model_config.num_layers,
        model_config.bidirectional, model_config.dropout_rate, model_config.residual,
        return_sequences=pooling.returns_sequences(model_config.pooling), mask=mask,
        return_state=pooling.returns_state(model_config.pooling))
    # max (the default): each feature's largest value over the text, which keeps its scale on
    # texts far longer than the training ones (seq_templates/layers/pooling.py lists the kinds)
    pooled = pooling.pool_sequence(outputs, mask, model_config.pooling)
    # float32 logits (also under train.mixed_precision); softmax: in the loss and in serving
    logits = keras.layers.Dense(num_classes, name="logits", dtype="float32")(pooled)
    model = keras.Model(inputs, logits, name=f"{TASK}_{model_config.cell}")
    model.compile(optimizer=training.build_optimizer(config["train"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model
# endregion


# region 5. evaluate
def evaluate(predictors, raw_data, config, output_dir):
    """Scores the test split: the model beside TF-IDF + logistic regression and the majority class.

    ``predictors["serving_default"]`` takes ``{"text": list of str}`` and returns ``{"label": ...,
    "probabilities": ...}`` (region 6's serving function, or the export's).
    """
    test_texts, test_labels = raw_data["test"]
    train_texts, train_labels = raw_data["train"]
    label_names = labels.label_vocabulary(train_labels)
    predicted = predictors["serving_default"]({"text": test_texts})["label"]
    model_metrics = classification.classification_metrics(test_labels, predicted, label_names)
    baseline = baselines.tfidf_logistic_regression(train_texts, train_labels,
                                                   seed=config["train"].seed)
    baseline_metrics = classification.classification_metrics(
        test_labels, baseline.predict(test_texts), label_names)
    plots.confusion_matrix(model_metrics["confusion_matrix"], label_names,
                           pathlib.Path(output_dir) / "plots" / "confusion_matrix.png",
                           title="Confusion matrix (test split)")
    return {"split": "test", "num_examples": len(test_texts), "model": model_metrics,
            "baseline": {"name": "tfidf_word_1_2gram_logistic_regression", **baseline_metrics},
            "majority_class_accuracy": classification.majority_class_accuracy(train_labels,
                                                                                test_labels)}


def summary(metrics):
    """Test accuracy beside the baselines: the line printed after evaluation."""
    figures = {"Test accuracy": metrics["model"]["accuracy"],
               "macro-F1": metrics["model"]["macro_f1"],
               "TF-IDF baseline": metrics["baseline"]["accuracy"],
               "majority class": metrics["majority_class_accuracy"]}
    return "; ".join(f"{name} {value:.4f}" for name, value in figures.items())
# endregion


# region 6. export
def build_serving(model, preprocessing, config):
    """Returns ``(archive, endpoints, assets)``: ``serving_default`` takes raw strings, returns
    probabilities and labels; ``labels.txt`` names the probabilities."""
    label_names = tf.constant(preprocessing["label_lookup"].get_vocabulary(), dtype=tf.string)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        features = featurize(preprocessing, config, text, config["data"].serving_max_length)
        logits = model({name: feature.to_tensor() for name, feature in features.items()},
                       training=False)
        probabilities = tf.nn.softmax(logits)
        return {"probabilities": probabilities,
                "label": tf.gather(label_names, tf.argmax(probabilities, axis=-1))}

    archive = export.new_archive([model, *(layer for name, layer in preprocessing.items()
                                           if name != "label_lookup")], {"serving_default": serve})
    serving_max_length = config["data"].serving_max_length
    notes = [f"this export reads the first {serving_max_length} tokens of each input "
             "(data.serving_max_length)"] if serving_max_length else []
    serving_json = {"named_outputs": {"probabilities": "labels.txt"}, "notes": notes}
    if serving_max_length:  # the server bounds texts by what the export reads (serving/limits.py)
        serving_json["reads_tokens"] = serving_max_length
    assets = {"labels.txt": "\n".join(preprocessing["label_lookup"].get_vocabulary()) + "\n",
              "serving.json": serving_json}
    return archive, {"serving_default": serve}, assets


def example_inputs(raw_data, config):
    """Inputs the parity check (and the contract tests) send to each signature of the export."""
    return {"serving_default": {"text": raw_data["test"][0][:64] + ["", "!!!", "It isn't good."]}}
# endregion


def main(argv=None):
    """Trains, evaluates and exports a sentiment classifier (the seven regions); returns 0."""
    return lifecycle.train(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
