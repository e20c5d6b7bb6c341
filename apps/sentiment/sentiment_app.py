"""Sentiment classification (many-to-one): raw text in, label and probabilities out.

Run it as ``python sentiment_app.py [--dataset sst2] [--set model.cell=gru]`` or
``seq-templates train sentiment``. ``main`` runs seven regions in order: load ->
preprocess (adapt layers on the training split) -> build model -> train ->
evaluate (beside a TF-IDF + logistic-regression baseline) -> export (a SavedModel
that takes raw strings) -> check that the reloaded export answers the same.

Copy it with ``seq-templates new sentiment ./my_app`` and edit any region.
"""

import dataclasses
import datetime
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
from seq_templates import run_directory
from seq_templates import train_arguments
from seq_templates import training
from seq_templates.data import readers
from seq_templates.data import splits as data_splits
from seq_templates.data import registry
from seq_templates.evaluation import baselines
from seq_templates.evaluation import classification
from seq_templates.evaluation import plots
from seq_templates.layers import characters
from seq_templates.layers import recurrent
from seq_templates.preprocessing import bucketing
from seq_templates.preprocessing import labels
from seq_templates.preprocessing import state
from seq_templates.preprocessing import text

TASK = "sentiment"


@dataclasses.dataclass
class DataConfig:
    """Where the examples come from and how text becomes token ids."""

    dataset: typing.Optional[str] = "synthetic_sentiment"  # a registry name (`seq-templates list`)
    path: typing.Optional[str] = None  # a local CSV/TSV/JSONL file; wins over `dataset`
    validation_path: typing.Optional[str] = None  # else carved from train
    test_path: typing.Optional[str] = None  # else carved from train
    format: typing.Optional[str] = dataclasses.field(
        default=None, metadata={"choices": (None, "csv", "tsv", "jsonl")})  # None: from the extension
    text_column: str = "text"
    label_column: str = "label"
    has_header: bool = True
    encoding: str = "utf-8"
    validation_fraction: float = dataclasses.field(default=0.1, metadata={"minimum": 0.0})
    test_fraction: float = dataclasses.field(default=0.1, metadata={"minimum": 0.0})
    max_train_samples: typing.Optional[int] = dataclasses.field(default=None, metadata={"minimum": 1})
    split_seed: int = 1234
    level: str = dataclasses.field(default="word", metadata={"choices": text.LEVELS})
    standardize: str = dataclasses.field(default="lower_and_strip_punctuation",
                                         metadata={"choices": text.STANDARDIZE_CHOICES})
    max_tokens: int = dataclasses.field(default=20000, metadata={"minimum": 3})
    max_length: typing.Optional[int] = dataclasses.field(default=256, metadata={"minimum": 1})
    token_dropout_rate: float = dataclasses.field(default=0.0, metadata={"minimum": 0.0})  # train only
    char_features: bool = False  # add a character CNN per word (helps with unseen words; level=word)
    max_word_chars: int = dataclasses.field(default=12, metadata={"minimum": 1})


@dataclasses.dataclass
class ModelConfig:
    """Embedding -> recurrent stack -> pooling -> softmax."""

    cell: str = dataclasses.field(default="lstm", metadata={"choices": recurrent.CELLS})
    units: int = dataclasses.field(default=64, metadata={"minimum": 1})
    num_layers: int = dataclasses.field(default=1, metadata={"minimum": 1})
    bidirectional: bool = True
    residual: bool = False
    embedding_dim: int = dataclasses.field(default=64, metadata={"minimum": 1})
    dropout_rate: float = dataclasses.field(default=0.3, metadata={"minimum": 0.0})
    pooling: str = dataclasses.field(default="attention",
                                     metadata={"choices": ("last", "mean", "attention")})
    char_embedding_dim: int = dataclasses.field(default=16, metadata={"minimum": 1})  # char_features
    char_filters: int = dataclasses.field(default=64, metadata={"minimum": 1})
    char_kernel_size: int = dataclasses.field(default=3, metadata={"minimum": 1})


CONFIG_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": config_module.TrainConfig}


# region 1. load
def load_raw_data(data_config):
    """Returns ``{"train"|"validation"|"test": (texts, labels)}`` as lists of str."""
    if data_config.path:
        read = lambda path: readers.read_text_classification(  # noqa: E731
            path, data_config.text_column, data_config.label_column, data_config.format,
            data_config.has_header, data_config.encoding)
        splits = {"train": read(data_config.path)}
        for name in ("validation", "test"):
            if getattr(data_config, f"{name}_path"):
                splits[name] = read(getattr(data_config, f"{name}_path"))
        label_names = {}
    elif data_config.dataset:
        dataset = registry.resolve(data_config.dataset)
        recipe = dataset.recipe
        splits = {}
        for name, paths in dataset.splits.items():
            texts, label_list = [], []
            for path in paths:
                if recipe["format"] == "folders":
                    part = readers.read_labelled_folders(path, recipe.get("folder_labels"))
                else:
                    part = readers.read_text_classification(path, file_format=recipe["format"],
                                                            **recipe.get("reader", {}))
                texts += part[0]
                label_list += part[1]
            splits[name] = (texts, label_list)
        label_names = recipe.get("label_names") or {}
    else:
        raise errors.SeqTemplatesError("No data: pass --data PATH or --dataset NAME.")
    splits = data_splits.add_missing_splits(
        splits, {"test": data_config.test_fraction, "validation": data_config.validation_fraction},
        data_config.split_seed)
    splits["train"] = data_splits.take_at_most(splits["train"], data_config.max_train_samples,
                                               data_config.split_seed)
    splits = {name: (texts, [str(label_names.get(label, label)) for label in label_list])
              for name, (texts, label_list) in splits.items()}
    vocabulary = labels.label_vocabulary(splits["train"][1])
    for name in ("validation", "test"):
        labels.check_known_labels(splits[name][1], vocabulary, name)
    return splits
# endregion


# region 2. preprocess
def build_preprocessing(config, train_split):
    """Adapts the text vectorizer and the label lookup on the training split only."""
    data_config = config["data"]
    vectorizer = text.build_text_vectorizer(data_config.level, data_config.max_tokens,
                                            data_config.standardize, name="text_vectorizer")
    text.adapt_text_vectorizer(vectorizer, train_split[0])
    label_lookup = labels.build_label_lookup(labels.label_vocabulary(train_split[1]), name="label_lookup")
    preprocessing = {"text_vectorizer": vectorizer, "label_lookup": label_lookup}
    if data_config.char_features:
        if data_config.level != "word":
            raise errors.SeqTemplatesError("data.char_features needs data.level=word; set one of them.")
        words = text.split_words(tf.constant(train_split[0]), data_config.standardize)
        preprocessing["char_lookup"] = text.build_char_lookup(words, name="char_lookup")
    return preprocessing


def featurize(preprocessing, config, texts):
    """Raw strings -> ragged word ids, or (word ids, character ids per word) with char features."""
    data_config = config["data"]
    word_ids = text.vectorize(preprocessing["text_vectorizer"], texts, data_config.max_length)
    if "char_lookup" not in preprocessing:
        return word_ids
    return word_ids, text.char_ids(preprocessing["char_lookup"], texts, data_config.standardize,
                                   data_config.max_length, data_config.max_word_chars)


def make_dataset(split, preprocessing, config, shuffle=False):
    """A bucketed tf.data pipeline of (token ids, label ids); training (shuffle) adds token dropout."""
    label_lookup = preprocessing["label_lookup"]
    rate = config["data"].token_dropout_rate
    drop = lambda ids: text.token_dropout(ids, rate)  # noqa: E731
    augment = (lambda ids: (drop(ids[0]), ids[1]) if isinstance(ids, tuple) else drop(ids))  # noqa: E731
    return bucketing.sequence_dataset(
        tf.constant(split[0], dtype=tf.string), tf.constant(split[1], dtype=tf.string),
        lambda texts, label_batch: (featurize(preprocessing, config, texts), label_lookup(label_batch)),
        config["train"].batch_size, config["train"].bucket_boundaries, shuffle=shuffle,
        seed=config["train"].seed, shuffle_buffer_size=config["train"].shuffle_buffer_size,
        augment=augment if shuffle and rate > 0 else None)
# endregion


# region 3. build model
def build_model(config, preprocessing):
    """Returns the compiled functional model: token ids (batch, time) [+ char ids] -> probabilities."""
    model_config = config["model"]
    num_classes = preprocessing["label_lookup"].vocabulary_size()
    token_ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    inputs = [token_ids]
    embedded = keras.layers.Embedding(preprocessing["text_vectorizer"].vocabulary_size(),
                                      model_config.embedding_dim, mask_zero=True, name="embedding")(token_ids)
    if "char_lookup" in preprocessing:
        # Characters of each word: embed, convolve along the word, max over its characters.
        width = config["data"].max_word_chars
        char_ids = keras.Input(shape=(None, width), dtype="int64", name="char_ids")
        inputs.append(char_ids)
        chars = characters.char_word_encoder(
            char_ids, preprocessing["char_lookup"].vocabulary_size(), width,
            model_config.char_embedding_dim, model_config.char_filters, model_config.char_kernel_size)
        embedded = keras.layers.Concatenate(name="word_and_char_features")([embedded, chars])
    embedded = keras.layers.Dropout(model_config.dropout_rate, name="embedding_dropout")(embedded)
    sequence = recurrent.recurrent_stack(
        embedded, model_config.cell, model_config.units, model_config.num_layers,
        model_config.bidirectional, model_config.dropout_rate, model_config.residual,
        return_sequences=model_config.pooling != "last")
    if model_config.pooling == "mean":
        pooled = keras.layers.GlobalAveragePooling1D(name="mean_pooling")(sequence)
    elif model_config.pooling == "attention":
        # A query made from the mean state attends over every (unmasked) step.
        width = sequence.shape[-1]
        query = keras.layers.Dense(width, name="attention_query")(
            keras.layers.GlobalAveragePooling1D(name="attention_mean")(sequence))
        query = keras.layers.Reshape((1, width), name="attention_query_step")(query)
        attended = keras.layers.Attention(name="attention_pooling")([query, sequence])
        pooled = keras.layers.Flatten(name="attention_output")(attended)
    else:
        pooled = sequence
    probabilities = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(pooled)
    model = keras.Model(inputs if len(inputs) > 1 else token_ids, probabilities,
                        name=f"{TASK}_{model_config.cell}")
    model.compile(optimizer=training.build_optimizer(config["train"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
# endregion


# region 6. export (defined before evaluation, which runs through the same serving function)
def build_serving(model, preprocessing, config):
    """Returns ``(archive, serve)``: raw strings in, probabilities and label names out."""
    label_names = tf.constant(preprocessing["label_lookup"].get_vocabulary(), dtype=tf.string)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text_batch):
        features = featurize(preprocessing, config, text_batch)
        if isinstance(features, tuple):
            features = [feature.to_tensor() for feature in features]
        else:
            features = features.to_tensor()
        probabilities = model(features, training=False)
        return {"probabilities": probabilities,
                "label": tf.gather(label_names, tf.argmax(probabilities, axis=-1))}

    archive = export.new_archive([model, *(layer for name, layer in preprocessing.items()
                                           if name != "label_lookup")])
    archive.add_endpoint("serve", serve)
    return archive, serve


def predictor(serve, batch_size=512):
    """Wraps ``serve`` (string batch -> dict of tensors) as list of str -> dict of numpy."""
    def predict(texts):
        parts = [export.to_numpy(serve(tf.constant(texts[start:start + batch_size], dtype=tf.string)))
                 for start in range(0, len(texts), batch_size)]
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    return predict
# endregion


# region 5. evaluate
def evaluate(predict, raw_data, config, output_dir):
    """Scores the test split: the model beside TF-IDF + logistic regression and the majority class."""
    test_texts, test_labels = raw_data["test"]
    train_texts, train_labels = raw_data["train"]
    label_names = labels.label_vocabulary(train_labels)
    model_metrics = classification.classification_metrics(test_labels, predict(test_texts)["label"],
                                                           label_names)
    baseline = baselines.tfidf_logistic_regression(train_texts, train_labels, seed=config["train"].seed)
    baseline_metrics = classification.classification_metrics(test_labels, baseline.predict(test_texts),
                                                              label_names)
    plots.confusion_matrix(model_metrics["confusion_matrix"], label_names,
                           pathlib.Path(output_dir) / "plots" / "confusion_matrix.png",
                           title="Confusion matrix (test split)")
    return {"split": "test", "num_examples": len(test_texts), "model": model_metrics,
            "baseline": {"name": "tfidf_word_1_2gram_logistic_regression", **baseline_metrics},
            "majority_class_accuracy": classification.majority_class_accuracy(train_labels, test_labels)}
# endregion


def main(argv=None):
    """Trains, evaluates and exports a sentiment classifier; returns the exit status."""
    arguments = train_arguments.parse(argv, CONFIG_SECTIONS, TASK, description=__doc__.splitlines()[0],
                                      configs_folder=pathlib.Path(__file__).parent / "configs")
    config = arguments.config
    if arguments.preset:
        print(f"Settings for this dataset: {arguments.preset} (under --config/--set; --no-preset skips it)")
    training.set_seed(config["train"].seed)
    raw_data = load_raw_data(config["data"])  # 1. load (before any folder is made)
    print(f"Data: {', '.join(f'{name} {len(split[0])}' for name, split in raw_data.items())}")
    with run_directory.open_run(arguments.output_dir, arguments.resume) as run_path:
        config_module.save(config, run_path / "config.yaml")
        run_directory.write_json({"task": TASK, "app": str(pathlib.Path(__file__).resolve()),
                                  "started": datetime.datetime.now().isoformat(timespec="seconds")},
                                 run_path / "run.json")
        if arguments.resume and (run_path / "preprocessing.json").is_file():  # 2. preprocess
            preprocessing = state.load(run_path / "preprocessing.json")
        else:
            preprocessing = build_preprocessing(config, raw_data["train"])
            state.save(preprocessing, run_path / "preprocessing.json")
        train_dataset = make_dataset(raw_data["train"], preprocessing, config, shuffle=True)
        validation_dataset = make_dataset(raw_data["validation"], preprocessing, config)
        checkpoint = training.load_checkpoint(run_path) if arguments.resume else None  # 3. build
        model, initial_epoch, history = checkpoint or (build_model(config, preprocessing), 0, None)
        if checkpoint:
            print(f"Resuming after epoch {initial_epoch} from {run_path / 'checkpoints'}")
        if config["train"].verbose != 0:
            model.summary(print_fn=lambda line, **_: print(line))
        training.fit(model, train_dataset, validation_dataset, config["train"], run_path,  # 4. train
                     initial_epoch, history)
        model.save(run_path / "model.keras")
        archive, serve = build_serving(model, preprocessing, config)
        metrics = evaluate(predictor(serve), raw_data, config, run_path)  # 5. evaluate
        run_directory.write_json(metrics, run_path / "metrics.json")
        version_path = export.write(archive, run_path / "export", {  # 6. export
            "labels.txt": "\n".join(preprocessing["label_lookup"].get_vocabulary()) + "\n",
            "config.json": config_module.to_dict(config), "metrics.json": metrics})
        sample = tf.constant(raw_data["test"][0][:64] + ["", "!!!"], dtype=tf.string)  # 7. check
        difference = export.check_parity(version_path, {"text": sample},
                                         export.to_numpy(serve(sample)))
        training.remove_checkpoints(run_path)
    print(f"Test accuracy {metrics['model']['accuracy']:.4f} (macro-F1 {metrics['model']['macro_f1']:.4f}); "
          f"TF-IDF baseline {metrics['baseline']['accuracy']:.4f}; majority class "
          f"{metrics['majority_class_accuracy']:.4f}")
    print(f"Export parity: max |difference| {difference:.2e} over {int(sample.shape[0])} inputs")
    print(f"Run directory: {arguments.output_dir}")
    print(f"Exported SavedModel: {arguments.output_dir / 'export' / version_path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
