"""Named-entity recognition (many-to-many, aligned): tokens in, one tag per token out.

Run it as ``python ner_app.py [--dataset conll2003]`` or ``seq-templates train ner``.
``main`` runs seven regions in order: load CoNLL columns (checking the tag scheme)
-> preprocess (word, character and tag lookups adapted on the training split; an
optional GloVe/word2vec text file for the word embedding) -> build a BiLSTM over
word embeddings, a character CNN per word and a casing feature, with a CRF or a
softmax on top -> train -> evaluate (entity F1 as conlleval counts it, beside the
most-frequent-tag baseline) -> export (raw sentences or pre-tokenized input in,
tag strings out) -> check that the reloaded export answers the same.

Copy it with ``seq-templates new ner ./my_app`` and edit any region.
"""

import collections
import dataclasses
import json
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
from seq_templates import run_directory
from seq_templates import training
from seq_templates.data import readers
from seq_templates.data import registry
from seq_templates.data import splits as data_splits
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
# Casing classes of a word (0 is padding): what a lower-cased word lookup cannot see.
CASING_PATTERNS = (("numeric", r"[0-9]+"), ("all_lower", r"\p{Ll}+"), ("all_upper", r"\p{Lu}+"),
                   ("initial_upper", r"\p{Lu}\p{Ll}*"), ("mixed_upper", r"\p{Lu}.*"), ("has_digit", r".*[0-9].*"))


@dataclasses.dataclass
class DataConfig(config_module.DataConfig):
    """CoNLL column files (``--data``) or a registered dataset, and how tokens become ids."""

    dataset: typing.Optional[str] = "synthetic_ner"  # a registry name (`seq-templates list`)
    token_column: int = 0  # 0-based columns of --data files; negative counts from the end
    tag_column: int = -1
    separator: typing.Optional[str] = dataclasses.field(default=None, metadata={"choices": readers.CONLL_SEPARATORS})
    tag_scheme: str = dataclasses.field(default="iob2", metadata={"choices": tag_schemes.SCHEMES})  # of the files
    repair_tags: bool = False  # false: a tag breaking tag_scheme is an error; true: read it as conlleval does
    output_scheme: str = dataclasses.field(default="iob2", metadata={"choices": tag_schemes.SCHEMES})  # learnt
    min_word_count: int = dataclasses.field(default=1, metadata={"minimum": 1})  # rarer training words are OOV
    replace_digits: bool = True  # word lookup sees 0 for every digit ("1996" -> "0000")
    embeddings_path: typing.Optional[str] = None  # GloVe/word2vec text file: "word v1 v2 ..." per line
    max_word_chars: int = dataclasses.field(default=16, metadata={"minimum": 1})
    token_dropout_rate: float = dataclasses.field(default=0.05, metadata={"minimum": 0.0})  # words -> OOV, train only


@dataclasses.dataclass
class ModelConfig:
    """Word embedding + character features + casing -> (Bi)RNN stack -> CRF or softmax."""

    cell: str = dataclasses.field(default="lstm", metadata={"choices": recurrent.CELLS})
    units: int = dataclasses.field(default=64, metadata={"minimum": 1})
    num_layers: int = dataclasses.field(default=1, metadata={"minimum": 1})
    bidirectional: bool = True
    embedding_dim: int = dataclasses.field(default=50, metadata={"minimum": 1})  # = the file's with embeddings_path
    char_features: bool = True
    char_encoder: str = dataclasses.field(default="cnn", metadata={"choices": ("cnn", "bilstm")})
    char_embedding_dim: int = dataclasses.field(default=25, metadata={"minimum": 1})
    char_filters: int = dataclasses.field(default=50, metadata={"minimum": 1})  # cnn
    char_kernel_size: int = dataclasses.field(default=3, metadata={"minimum": 1})  # cnn
    char_units: int = dataclasses.field(default=25, metadata={"minimum": 1})  # bilstm, per direction
    casing_features: bool = True
    dropout_rate: float = dataclasses.field(default=0.5, metadata={"minimum": 0.0})
    output: str = dataclasses.field(default="crf", metadata={"choices": ("crf", "softmax")})


@dataclasses.dataclass
class TrainConfig(config_module.TrainConfig):
    epochs: int = dataclasses.field(default=15, metadata={"minimum": 1})
    batch_size: int = dataclasses.field(default=32, metadata={"minimum": 1})
    learning_rate: float = dataclasses.field(default=0.003, metadata={"minimum": 0.0})
    # val_entity_f1: keep the epoch with the best validation entity F1 (scored after every epoch);
    # val_loss: keep what early stopping on validation loss keeps (or the last epoch)
    select_on: str = dataclasses.field(default="val_entity_f1", metadata={"choices": ("val_entity_f1", "val_loss")})


CONFIG_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


# region 1. load
def read_split(path, data_config, options):
    """Reads one CoNLL file and checks (or repairs) its tags; returns ``(token_lists, tag_lists)``."""
    token_lists, tag_lists, line_lists = readers.read_conll(path, return_line_numbers=True, **options)
    for tokens, tags, lines in zip(token_lists, tag_lists, line_lists):
        if "" in tokens:
            raise errors.SeqTemplatesError(f"{path}:{lines[tokens.index('')]}: the token column is empty; "
                                           "fix the line or set data.token_column.")
        problem = tag_schemes.check(tags, data_config.tag_scheme)
        if problem is not None and not data_config.repair_tags:
            raise errors.SeqTemplatesError(
                f"{path}:{lines[problem[0]]}: {problem[1]}. Fix the tag, set data.tag_scheme to the file's "
                f"scheme ({', '.join(tag_schemes.SCHEMES)}), or set data.repair_tags=true.")
    return token_lists, [tag_schemes.convert(tags, data_config.tag_scheme, data_config.output_scheme)
                         for tags in tag_lists]


def load_raw_data(data_config):
    """Returns ``{"train"|"validation"|"test": (token_lists, tag_lists)}``, tags in ``output_scheme``."""
    if data_config.path:
        options = {"token_column": data_config.token_column, "tag_column": data_config.tag_column,
                   "separator": data_config.separator, "encoding": data_config.encoding}
        paths = {name: getattr(data_config, f"{name}_path") for name in ("validation", "test")}
        paths = {"train": [data_config.path], **{name: [path] for name, path in paths.items() if path}}
        strategy = "shuffle"
    elif data_config.dataset:
        dataset = registry.resolve(data_config.dataset)
        options = {**registry.reader_options(dataset.recipe), "setting_prefix": registry.READER_SETTING_PREFIX}
        paths, strategy = dataset.splits, data_splits.strategy_for_recipe(dataset.recipe)
    else:
        raise errors.SeqTemplatesError("No data: pass --data PATH or --dataset NAME.")
    splits = {}
    for name, files in paths.items():
        parts = [read_split(path, data_config, options) for path in files]
        splits[name] = tuple([item for part in parts for item in part[column]] for column in range(2))
    splits = data_splits.carve(splits, {"test": data_config.test_fraction,
                                        "validation": data_config.validation_fraction},
                               strategy, data_config.split_seed)
    splits["train"] = data_splits.take_at_most(splits["train"], data_config.max_train_samples,
                                               data_config.split_seed)
    vocabulary = labels.label_vocabulary([tag for tags in splits["train"][1] for tag in tags], "data.tag_column")
    for name in ("validation", "test"):
        labels.check_known_labels([tag for tags in splits[name][1] for tag in tags], vocabulary, name)
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
    data_config = config["data"]
    counts = collections.Counter(word_keys(train_split[0], data_config))
    words = sorted((word for word, count in counts.items() if count >= data_config.min_word_count),
                   key=lambda word: (-counts[word], word))
    preprocessing = {"word_lookup": keras.layers.StringLookup(vocabulary=words, mask_token="", name="word_lookup"),
                     "tag_lookup": labels.build_tag_lookup(
                         labels.label_vocabulary([tag for tags in train_split[1] for tag in tags]), name="tag_lookup")}
    if config["model"].char_features:
        preprocessing["char_lookup"] = text.build_char_lookup(tf.ragged.constant(train_split[0]), name="char_lookup")
    return preprocessing


def featurize(preprocessing, config, tokens):
    """Ragged string tokens ``(batch, None)`` -> ragged ``token_ids`` [, ``casing_ids``][, ``char_ids``]."""
    data_config = config["data"]
    features = {"token_ids": preprocessing["word_lookup"](word_key(tokens, data_config))}
    flat = tokens.flat_values
    if config["model"].casing_features:
        casing = tf.fill(tf.shape(flat), tf.constant(len(CASING_PATTERNS) + 1, tf.int64))  # "other"
        for index, (_, pattern) in reversed(list(enumerate(CASING_PATTERNS, start=1))):  # the first match wins
            casing = tf.where(tf.strings.regex_full_match(flat, pattern), tf.constant(index, tf.int64), casing)
        features["casing_ids"] = tokens.with_flat_values(casing)
    if "char_lookup" in preprocessing:
        width = data_config.max_word_chars
        characters_per_word = tf.strings.unicode_split(flat, "UTF-8")[:, :width]
        dense = preprocessing["char_lookup"](characters_per_word).to_tensor(shape=[None, width])
        features["char_ids"] = tokens.with_flat_values(dense)
    return features


def make_dataset(split, preprocessing, config, shuffle=False):
    """``(features, tag ids, sample weights)`` batches, bucketed by length; padding has tag 0 and weight 0."""
    def ragged(lists):
        return tf.RaggedTensor.from_row_lengths(tf.constant([item for items in lists for item in items], tf.string),
                                                [len(items) for items in lists])

    def transform(batch):
        tag_ids = preprocessing["tag_lookup"](batch[1])
        return featurize(preprocessing, config, batch[0]), tag_ids, tf.ones_like(tag_ids, dtype=tf.float32)

    rate = config["data"].token_dropout_rate

    def augment(features):
        return {**features, "token_ids": text.token_dropout(features["token_ids"], rate)}

    return bucketing.sequence_dataset(
        (ragged(split[0]), ragged(split[1])), transform, config["train"].batch_size,
        config["train"].bucket_boundaries, shuffle=shuffle, seed=config["train"].seed,
        shuffle_buffer_size=config["train"].shuffle_buffer_size, augment=augment if shuffle and rate > 0 else None,
        length_function=lambda features: tf.shape(features["token_ids"])[0])
# endregion


# region 3. build model
def build_model(config, preprocessing):
    """Returns the compiled functional model: token, casing and character ids -> tag scores (CRF or softmax)."""
    model_config, data_config = config["model"], config["data"]
    num_tags = preprocessing["tag_lookup"].vocabulary_size()  # id 0 is padding
    token_ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    inputs = {"token_ids": token_ids}
    vocabulary = preprocessing["word_lookup"].get_vocabulary()
    vectors, width = {}, model_config.embedding_dim
    if data_config.embeddings_path:  # the file's width wins over model.embedding_dim
        vectors, width = embeddings.read_vectors(data_config.embeddings_path, vocabulary)
    word_embedding = keras.layers.Embedding(len(vocabulary), width, mask_zero=True, name="word_embedding")
    parts = [word_embedding(token_ids)]
    if vectors:
        found = embeddings.initialise(word_embedding, vocabulary, vectors)
        print(f"Embeddings: {found} of {len(vocabulary) - 2} training words found in {data_config.embeddings_path}; "
              f"{len(vocabulary) - 2 - found} (OOV for the file) start random")
    if model_config.casing_features:
        casing_ids = inputs["casing_ids"] = keras.Input(shape=(None,), dtype="int64", name="casing_ids")
        parts.append(keras.layers.Embedding(len(CASING_PATTERNS) + 2, 4, name="casing_embedding")(casing_ids))
    if "char_lookup" in preprocessing:
        char_ids = inputs["char_ids"] = keras.Input(shape=(None, data_config.max_word_chars), dtype="int64",
                                                    name="char_ids")
        if model_config.char_encoder == "cnn":
            parts.append(characters.char_word_encoder(
                char_ids, preprocessing["char_lookup"].vocabulary_size(), data_config.max_word_chars,
                model_config.char_embedding_dim, model_config.char_filters, model_config.char_kernel_size))
        else:  # a BiLSTM over each word's characters, final states (Lample et al. 2016)
            chars = keras.layers.Embedding(preprocessing["char_lookup"].vocabulary_size(),
                                           model_config.char_embedding_dim, mask_zero=True,
                                           name="char_embedding")(char_ids)
            parts.append(char_recurrent.WordCharacterRNN(model_config.char_units, name="char_bilstm")(chars))
    features = keras.layers.Concatenate(name="word_features")(parts) if len(parts) > 1 else parts[0]
    features = keras.layers.Dropout(model_config.dropout_rate, name="feature_dropout")(features)
    sequence = recurrent.recurrent_stack(features, model_config.cell, model_config.units, model_config.num_layers,
                                         model_config.bidirectional, model_config.dropout_rate, return_sequences=True)
    sequence = keras.layers.Dropout(model_config.dropout_rate, name="sequence_dropout")(sequence)
    scores = keras.layers.Dense(num_tags, name="tag_scores")(sequence)
    if model_config.output == "crf":
        scores = crf.CRF(num_tags, name="crf")(scores)
        loss, metrics = crf.CRFLoss(num_tags), []
    else:
        loss, metrics = keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"]
    model = keras.Model(inputs, scores, name=f"{TASK}_{model_config.cell}_{model_config.output}")
    model.compile(optimizer=training.build_optimizer(config["train"]), loss=loss, weighted_metrics=metrics)
    return model
# endregion


# region 4. train: choosing the epoch on validation entity F1
class BestValidationF1(keras.callbacks.Callback):
    """Logs ``val_entity_f1`` after every epoch and keeps the weights of the best epoch so far.

    Runs before the shared callbacks, so the F1 lands in ``history.json``; with ``train.ema_momentum``
    it scores the averaged weights that validation has just swapped in. The best weights and their
    F1 go to ``checkpoint_folder`` as they change, so ``--resume`` keeps the best epoch from before
    the interruption; :meth:`keep_best` puts them in the model after training.
    """

    def __init__(self, preprocessing, config, validation_split, checkpoint_folder):
        super().__init__()
        self.preprocessing, self.config, self.validation_split = preprocessing, config, validation_split
        self.weights_path = pathlib.Path(checkpoint_folder) / "best_entity_f1_weights.npz"
        self.state_path = pathlib.Path(checkpoint_folder) / "best_entity_f1.json"
        self.best, self.best_weights, self.predict = -1.0, None, None
        if self.state_path.is_file():  # left by the interrupted run that --resume continues
            self.best = json.loads(self.state_path.read_text(encoding="utf-8"))["val_entity_f1"]
            self.best_weights = training.load_weights(self.weights_path)

    def on_epoch_end(self, epoch, logs=None):
        if self.predict is None:
            self.predict = export.batch_predictor(serving_functions(self.model, self.preprocessing,
                                                                    self.config)["tag_tokens"])
        tokens, tags = self.validation_split
        outputs = self.predict(padded_tokens(tokens))
        predicted = [export.trim_to_length(outputs, index)["tags"] for index in range(len(tokens))]
        f1 = tagging.entity_metrics(tags, predicted)["micro"]["f1"]
        print(f"Epoch {epoch + 1}: validation entity F1 {f1:.4f}")
        if logs is not None:
            logs["val_entity_f1"] = f1
        if f1 > self.best:
            self.best, self.best_weights = f1, self.model.get_weights()
            self.weights_path.parent.mkdir(parents=True, exist_ok=True)
            training.save_weights(self.best_weights, self.weights_path)  # the weights first, then the F1
            run_directory.write_json({"val_entity_f1": f1, "epoch": epoch + 1}, self.state_path)

    def keep_best(self, model):
        """Sets the best epoch's weights in ``model`` (a no-op before any epoch was scored)."""
        if self.best_weights is not None:
            print(f"Keeping the weights with the best validation entity F1 ({self.best:.4f})")
            model.set_weights(self.best_weights)
# endregion


# region 6. export (defined before evaluation, which runs through the same serving function)
def serving_functions(model, preprocessing, config):
    """``serving_default(text)`` tags raw sentences; ``tag_tokens(tokens, length)`` pre-tokenized ones.

    Both return ``tags`` (padded with "" to the longest sentence of the request), ``length``
    and ``tokens``. No sentence is cut: the model runs over each whole sentence.
    """
    tag_names = tf.constant(preprocessing["tag_lookup"].get_vocabulary(), dtype=tf.string)  # id 0 is ""
    num_tags = len(preprocessing["tag_lookup"].get_vocabulary())
    no_padding_tag = tf.one_hot(0, model.output.shape[-1]) * 1e4  # tag id 0 (padding) never wins

    def tag(tokens):
        length = tf.cast(tokens.row_lengths(), tf.int32)
        width = tf.maximum(tf.reduce_max(tf.concat([length, [0]], 0)), 1)  # an empty batch still has one step
        features = {name: feature.to_tensor() for name, feature in featurize(preprocessing, config, tokens).items()}
        features = {name: tf.pad(feature, [[0, 0], [0, width - tf.shape(feature)[1]]] + [[0, 0]] * (
            len(feature.shape) - 2)) for name, feature in features.items()}
        scores = model(features, training=False) - no_padding_tag
        if config["model"].output == "crf":
            tag_ids = crf.decode(scores, num_tags)
        else:
            tag_ids = tf.argmax(scores, axis=-1, output_type=tf.int32)
        real = tf.sequence_mask(length, width)
        longest = tf.reduce_max(tf.concat([length, [0]], 0))
        return {"tags": tf.where(real, tf.gather(tag_names, tag_ids), "")[:, :longest], "length": length,
                "tokens": tokens.to_tensor("")[:, :longest]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        return tag(tf.strings.split(tokenizer.standardize(text, lowercase=False)))

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="tokens"),
                                  tf.TensorSpec([None], tf.int32, name="length")])
    def tag_tokens(tokens, length):
        return tag(tf.RaggedTensor.from_tensor(tokens, lengths=length))

    return {"serving_default": serve, "tag_tokens": tag_tokens}


def build_serving(model, preprocessing, config):
    """Returns ``(archive, endpoints)`` with the two signatures of :func:`serving_functions`."""
    endpoints = serving_functions(model, preprocessing, config)
    archive = export.new_archive([model, *(layer for name, layer in preprocessing.items() if name != "tag_lookup")])
    for name, function in endpoints.items():
        archive.add_endpoint(name, function)
    return archive, endpoints


def padded_tokens(token_lists):
    """``{"tokens": padded lists, "length": lengths}`` for ``tag_tokens``."""
    longest = max((len(tokens) for tokens in token_lists), default=0)
    return {"tokens": [list(tokens) + [""] * (longest - len(tokens)) for tokens in token_lists],
            "length": [len(tokens) for tokens in token_lists]}


def example_inputs(raw_data, config):
    """Inputs the contract tests send to the export: raw sentences, one longer than any in training."""
    longest = max((len(tokens) for tokens in raw_data["train"][0]), default=1)
    return {"serving_default": {"text": [" ".join(tokens) for tokens in raw_data["test"][0][:32]] + [
        "", "EU rejects German call to boycott British lamb.", "The U.S. don't like it.",
        " ".join(["Zanzibar"] * (longest + 5))]}}


def parity_inputs(raw_data, config):
    """What region 7 checks: :func:`example_inputs` and pre-tokenized sentences for ``tag_tokens``."""
    return {**example_inputs(raw_data, config),
            "tag_tokens": padded_tokens(raw_data["test"][0][:32] + [["Peter", "Blackburn"], []])}


def describe_prediction(record, config):
    """Adds ``entities``: ``[{"text", "type", "start", "end"}]`` (token positions, end exclusive)."""
    tokens = record.get("tokens") or []
    entities = [{"text": " ".join(tokens[start:end + 1]), "type": entity_type, "start": start, "end": end + 1}
                for entity_type, start, end in tag_schemes.entity_spans(record.get("tags") or [])]
    return {**record, "entities": entities}
# endregion


# region 5. evaluate
def evaluate(predict, raw_data, config, output_dir):
    """Entity P/R/F1 (conlleval) and token accuracy on test, beside the most-frequent-tag baseline.

    ``predict`` takes ``tag_tokens`` inputs (``{"tokens", "length"}``), so tags line up with the gold
    tokens. Given ``serving_default`` instead (``{"text"}``), sentences the tokenizer splits differently
    from the gold tokens ("1." -> "1 .") are scored as all ``O`` and counted in ``misaligned_sentences``.
    """
    (train_tokens, train_tags), (test_tokens, test_tags) = raw_data["train"], raw_data["test"]
    try:
        outputs = predict(padded_tokens(test_tokens))
    except errors.SeqTemplatesError:  # a serving_default predictor: raw text in
        outputs = predict({"text": [" ".join(tokens) for tokens in test_tokens]})
    predicted, misaligned = [], 0
    for index, tokens in enumerate(test_tokens):
        example = export.trim_to_length(outputs, index)
        aligned = list(example["tokens"]) == list(tokens)
        predicted.append(list(example["tags"]) if aligned else ["O"] * len(tokens))
        misaligned += not aligned
    model_metrics = tagging.entity_metrics(test_tags, predicted)
    baseline = tagging.most_frequent_tag_baseline(train_tokens, train_tags, test_tokens)
    matrix, names = tagging.entity_confusion(test_tags, predicted)
    plots.confusion_matrix(matrix, names, pathlib.Path(output_dir) / "plots" / "entity_confusion.png",
                           title="Entity types (test; O = no entity with that span)")
    train_words, test_words = set(word_keys(train_tokens, config["data"])), word_keys(test_tokens, config["data"])
    return {"split": "test", "num_sentences": len(test_tokens), "model": model_metrics,
            "baseline": {"name": "most_frequent_tag_per_token", **tagging.entity_metrics(test_tags, baseline)},
            "entity_confusion": {"names": names, "matrix": matrix}, "misaligned_sentences": misaligned,
            "test_oov_rate": sum(word not in train_words for word in test_words) / max(len(test_words), 1)}
# endregion


def main(argv=None):
    """Trains, evaluates and exports a named-entity tagger; returns the exit status."""
    run = lifecycle.start(argv, CONFIG_SECTIONS, TASK, __file__, description=__doc__.splitlines()[0])
    config = run.config
    raw_data = load_raw_data(config["data"])  # 1. load (before any folder is made)
    print(f"Data: {', '.join(f'{name} {len(split[0])}' for name, split in raw_data.items())} sentences")
    with run.directory():
        preprocessing = run.preprocessing(build_preprocessing, raw_data["train"])  # 2. preprocess
        train_dataset = make_dataset(raw_data["train"], preprocessing, config, shuffle=True)
        validation_dataset = make_dataset(raw_data["validation"], preprocessing, config)
        model = run.model(build_model, preprocessing)  # 3. build model (or the checkpoint's on --resume)
        best_f1 = None
        if config["train"].select_on == "val_entity_f1":
            best_f1 = BestValidationF1(preprocessing, config, raw_data["validation"],
                                       run.path / training.CHECKPOINT_FOLDER)
        run.fit(model, train_dataset, validation_dataset,  # 4. train
                callbacks=None if best_f1 is None else [best_f1])
        if best_f1 is not None:
            best_f1.keep_best(model)
        archive, endpoints = build_serving(model, preprocessing, config)
        metrics = run.record_metrics(evaluate(export.batch_predictor(endpoints["tag_tokens"]),  # 5. evaluate
                                              raw_data, config, run.path))
        print(f"Test entity F1 {metrics['model']['micro']['f1']:.4f} (token accuracy "
              f"{metrics['model']['token_accuracy']:.4f}); most-frequent-tag baseline "
              f"{metrics['baseline']['micro']['f1']:.4f}; test words unseen in training "
              f"{metrics['test_oov_rate']:.1%}")
        version_path = run.export(archive, {  # 6. export
            "tags.txt": "\n".join(preprocessing["tag_lookup"].get_vocabulary()[1:]) + "\n"})
        run.check_export(version_path, endpoints, parity_inputs(raw_data, config))  # 7. check the reloaded export
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
