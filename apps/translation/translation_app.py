"""Translation (many-to-many, unaligned): an encoder-decoder with attention, greedy and beam decoding.

Run it as ``python translation_app.py [--dataset spa_eng] [--set model.attention=luong]`` or
``seq-templates train translation``. ``main`` runs seven regions in order: load (pairs,
length filter, deduplication, seeded split) -> preprocess (source and target vocabularies
with start/end tokens) -> build model (a (Bi)GRU/LSTM encoder whose final state starts the
decoder; attention none | bahdanau | luong) -> train (teacher forcing, padding masked out
of the loss) -> evaluate (sacreBLEU BLEU and chrF beside copying the source; attention
heatmaps; sample translations) -> export (raw strings in, translations out; greedy and beam
search run in the graph) -> check that the reloaded export answers the same.

Copy it with ``seq-templates new translation ./my_app`` and edit any region.
"""

import dataclasses
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
from seq_templates.data import readers
from seq_templates.data import registry
from seq_templates.data import splits as data_splits
from seq_templates.evaluation import translation as translation_metrics
from seq_templates.layers import beam_search
from seq_templates.layers import recurrent
from seq_templates.layers import sampling
from seq_templates.preprocessing import bucketing
from seq_templates.preprocessing import text

TASK = "translation"
START, END = "[start]", "[end]"
# Word-level output -> readable text: no space before closing punctuation and clitics, none after
# opening marks, quotes hugging what they quote (the reverse of the tokenizing standardizer).
DETOKENIZE_RULES = (('" (.*?) "', '"\\1"'), (" ([.,!?;:%)\\]}]|\\.\\.\\.)", "\\1"), ("([(\\[{¿¡$#]) ", "\\1"),
                    ("(?i) (n't|'s|'re|'ve|'ll|'d|'m)( |$)", "\\1\\2"))


@dataclasses.dataclass
class DataConfig(config_module.DataConfig):
    """Sentence pairs (dataset or a ``source<TAB>target[<TAB>attribution]`` file) and their vocabularies."""

    dataset: typing.Optional[str] = "synthetic_dates"  # a registry name (`seq-templates list`)
    source_column: int = 0
    target_column: int = 1
    reverse_direction: bool = False  # translate the target column into the source column (spa_eng: Spanish->English)
    max_words: typing.Optional[int] = dataclasses.field(default=15, metadata={"minimum": 1})  # per side
    deduplicate: bool = True  # drop repeats of an identical pair
    level: str = dataclasses.field(default="char", metadata={"choices": text.LEVELS})  # both sides
    source_standardize: str = dataclasses.field(default="lower", metadata={"choices": text.STANDARDIZE_CHOICES})
    target_standardize: str = dataclasses.field(default="none", metadata={"choices": text.STANDARDIZE_CHOICES})
    source_max_tokens: int = dataclasses.field(default=20000, metadata={"minimum": 3})
    target_max_tokens: int = dataclasses.field(default=20000, metadata={"minimum": 5})
    max_output_length: int = dataclasses.field(default=40, metadata={"minimum": 1})  # tokens decoded at most


@dataclasses.dataclass
class ModelConfig:
    """Embeddings -> (Bi)RNN encoder -> decoder started from its final state -> attention -> logits."""

    cell: str = dataclasses.field(default="gru", metadata={"choices": recurrent.CELLS})
    units: int = dataclasses.field(default=128, metadata={"minimum": 1})  # encoder units per direction
    num_layers: int = dataclasses.field(default=1, metadata={"minimum": 1})  # encoder layers
    bidirectional: bool = True  # the decoder has the encoder's output width (2 * units)
    embedding_dim: int = dataclasses.field(default=64, metadata={"minimum": 1})
    attention: str = dataclasses.field(default="bahdanau", metadata={"choices": ("none", "bahdanau", "luong")})
    attention_units: int = dataclasses.field(default=128, metadata={"minimum": 1})  # bahdanau's scoring layer
    # Width of the attentional output (tanh of decoder output + context) that the logits read; None:
    # the decoder's width. Smaller is faster: the logits layer is most of the compute.
    output_units: typing.Optional[int] = dataclasses.field(default=None, metadata={"minimum": 1})
    dropout_rate: float = dataclasses.field(default=0.1, metadata={"minimum": 0.0})
    beam_width: int = dataclasses.field(default=4, metadata={"minimum": 1})  # serving_default; 1 = greedy
    length_penalty: float = dataclasses.field(default=0.6, metadata={"minimum": 0.0})  # GNMT alpha


@dataclasses.dataclass
class TrainConfig(config_module.TrainConfig):
    epochs: int = dataclasses.field(default=5, metadata={"minimum": 1})
    learning_rate: float = dataclasses.field(default=3e-3, metadata={"minimum": 0.0})
    early_stopping_patience: int = dataclasses.field(default=3, metadata={"minimum": 0})


CONFIG_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


# region 1. load
def load_raw_data(data_config):
    """Returns ``{"train"|"validation"|"test": (sources, targets)}`` as lists of raw strings."""
    if data_config.path:
        read = lambda path: readers.read_parallel_tsv(path, data_config.source_column,  # noqa: E731
                                                      data_config.target_column, data_config.encoding)
        splits = {"train": read(data_config.path)}
        splits.update({name: read(getattr(data_config, f"{name}_path")) for name in ("validation", "test")
                       if getattr(data_config, f"{name}_path")})
        strategy = "shuffle"
    elif data_config.dataset:
        splits, recipe = registry.read(data_config.dataset)  # several part files come concatenated
        strategy = data_splits.strategy_for_recipe(recipe)  # shuffle: the Anki file is sorted by length
    else:
        raise errors.SeqTemplatesError("No data: pass --data PATH or --dataset NAME.")
    splits = {name: readers.clean_pairs(*(pair[::-1] if data_config.reverse_direction else pair),
                                        max_words=data_config.max_words, deduplicate=data_config.deduplicate)
              for name, pair in splits.items()}
    splits = data_splits.carve(splits, {"test": data_config.test_fraction,
                                        "validation": data_config.validation_fraction},
                               strategy, data_config.split_seed)
    splits["train"] = data_splits.take_at_most(splits["train"], data_config.max_train_samples,
                                               data_config.split_seed)
    if not splits["train"][0]:
        raise errors.SeqTemplatesError(f"No training pairs of at most {data_config.max_words} words; raise "
                                       "data.max_words or check the data.")
    return splits
# endregion


# region 2. preprocess
def split_tokens(config, texts, standardize_mode):
    """Raw strings -> ragged standardized tokens: words, or characters with ``data.level=char``."""
    standardized = text.standardize(texts, standardize_mode)
    return (tf.strings.unicode_split(standardized, "UTF-8") if config["data"].level == "char"
            else tf.strings.split(standardized))


def target_tokens(config, targets):
    """Raw targets -> ragged ``[start] tokens [end]`` strings."""
    tokens = split_tokens(config, targets, config["data"].target_standardize)
    column = lambda token: tf.RaggedTensor.from_tensor(tf.fill(tf.stack([tokens.nrows(), 1]), token))  # noqa: E731
    return tf.concat([column(START), tokens, column(END)], axis=1)


def build_preprocessing(config, train_split):
    """Adapts the source vectorizer and the target lookup (holding the start and end tokens) on train only."""
    data_config = config["data"]
    source_vectorizer = text.build_text_vectorizer(data_config.level, data_config.source_max_tokens,
                                                   name="source_vectorizer")
    text.adapt_text_vectorizer(source_vectorizer, train_split[0], data_config.source_standardize)
    target_lookup = keras.layers.StringLookup(mask_token="", max_tokens=data_config.target_max_tokens,
                                              name="target_lookup")
    target_lookup.adapt(target_tokens(config, tf.constant(train_split[1])).flat_values)
    return {"source_vectorizer": source_vectorizer, "target_lookup": target_lookup}


def featurize(preprocessing, config, sources, targets=None):
    """Raw sources (and targets, for teacher forcing) -> ``{"source_ids"[, "target_input_ids"]}`` (ragged)."""
    features = {"source_ids": text.vectorize(preprocessing["source_vectorizer"], sources,
                                             config["data"].source_standardize)}
    if targets is not None:
        features["target_input_ids"] = preprocessing["target_lookup"](target_tokens(config, targets))[:, :-1]
    return features


def make_dataset(split, preprocessing, config, shuffle=False):
    """``(features, next-token ids, weights)`` batches bucketed by length; padding has weight 0 in the loss."""

    def transform(batch):
        target_output_ids = preprocessing["target_lookup"](target_tokens(config, batch[1]))[:, 1:]
        return (featurize(preprocessing, config, batch[0], batch[1]), target_output_ids,
                tf.ones_like(target_output_ids, dtype=tf.float32))

    return bucketing.sequence_dataset(
        (tf.constant(split[0]), tf.constant(split[1])), transform, config["train"].batch_size,
        config["train"].bucket_boundaries, shuffle=shuffle, seed=config["train"].seed,
        shuffle_buffer_size=config["train"].shuffle_buffer_size,
        length_function=lambda features: tf.maximum(tf.shape(features["source_ids"])[0],
                                                    tf.shape(features["target_input_ids"])[0]))
# endregion


# region 3. build model
def decoder_head(layers, decoder_outputs, encoder_outputs=None, keys=None, source_mask=None,
                 return_attention_scores=False):
    """Decoder outputs -> next-token logits (and attention weights): the same layers in training and serving.

    ``source_mask`` is given at serving time; in the training model Keras passes the masks itself.
    """
    scores = None
    if "attention" in layers:
        query = layers["attention_query"](decoder_outputs) if "attention_query" in layers else decoder_outputs
        context = layers["attention"]([query, encoder_outputs, keys],
                                      mask=None if source_mask is None else [None, source_mask],
                                      return_attention_scores=return_attention_scores)
        if return_attention_scores:
            context, scores = context
        decoder_outputs = layers["attention_output"](layers["attention_concat"]([decoder_outputs, context]))
    logits = layers["logits"](layers["output_dropout"](decoder_outputs))
    return (logits, scores) if return_attention_scores else logits


def build_model(config, preprocessing):
    """Returns the compiled teacher-forcing model ``{"source_ids", "target_input_ids"}`` -> logits."""
    model_config = config["model"]
    source_ids = keras.Input(shape=(None,), dtype="int64", name="source_ids")
    target_input_ids = keras.Input(shape=(None,), dtype="int64", name="target_input_ids")
    source = keras.layers.Embedding(preprocessing["source_vectorizer"].vocabulary_size(), model_config.embedding_dim,
                                    mask_zero=True, name="source_embedding")(source_ids)
    source = keras.layers.Dropout(model_config.dropout_rate, name="source_dropout")(source)
    encoder_outputs, states = recurrent.recurrent_stack(
        source, model_config.cell, model_config.units, model_config.num_layers, model_config.bidirectional,
        model_config.dropout_rate, return_sequences=True, return_state=True, name="encoder")
    # Named, so serving cuts the encoder out of this model: source_ids -> outputs, keys, initial states.
    states = [keras.layers.Identity(name=f"initial_state_{index}")(state) for index, state in enumerate(states)]
    width = model_config.units * (2 if model_config.bidirectional else 1)
    target_size = preprocessing["target_lookup"].vocabulary_size()
    layers = {"output_dropout": keras.layers.Dropout(model_config.dropout_rate, name="output_dropout"),
              "logits": keras.layers.Dense(target_size, name="logits")}  # softmax in the loss and in decoding
    keys = None
    if model_config.attention != "none":
        encoder_outputs = keras.layers.Identity(name="encoder_outputs")(encoder_outputs)
        if model_config.attention == "bahdanau":  # score = v . tanh(W1 query + W2 key)
            keys = keras.layers.Dense(model_config.attention_units, use_bias=False, name="attention_keys")
            layers["attention_query"] = keras.layers.Dense(model_config.attention_units, name="attention_query")
            layers["attention"] = keras.layers.AdditiveAttention(name="attention")
        else:  # Luong's "general" score = query . W key
            keys = keras.layers.Dense(width, use_bias=False, name="attention_keys")
            layers["attention"] = keras.layers.Attention(name="attention")
        keys = keys(encoder_outputs)
        layers["attention_concat"] = keras.layers.Concatenate(name="attention_concat")
        layers["attention_output"] = keras.layers.Dense(model_config.output_units or width, activation="tanh",
                                                        name="attention_output")
    target = keras.layers.Embedding(target_size, model_config.embedding_dim, mask_zero=True,
                                    name="target_embedding")(target_input_ids)
    target = keras.layers.Dropout(model_config.dropout_rate, name="target_dropout")(target)
    decoder = recurrent.recurrent_layer(model_config.cell, width, return_sequences=True, return_state=True,
                                        name="decoder")
    logits = decoder_head(layers, decoder(target, initial_state=states)[0], encoder_outputs, keys)
    model = keras.Model({"source_ids": source_ids, "target_input_ids": target_input_ids}, logits,
                        name=f"{TASK}_{model_config.cell}_{model_config.attention}")
    model.compile(optimizer=training.build_optimizer(config["train"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), weighted_metrics=["accuracy"])
    return model
# endregion


# region 6. export (defined before evaluation, which runs through the same serving functions)
HEAD_LAYERS = ("attention_query", "attention", "attention_concat", "attention_output", "output_dropout", "logits")


def build_serving(model, preprocessing, config):
    """Returns ``(archive, endpoints)``: ``serving_default``, ``translate`` and (with attention) ``attention``."""
    model_config, data_config = config["model"], config["data"]
    attention = model_config.attention != "none"
    names = {layer.name for layer in model.layers}
    encoder = keras.Model(model.get_layer("source_ids").output, {
        "states": [model.get_layer(f"initial_state_{index}").output for index in range(2)
                   if f"initial_state_{index}" in names],
        **({"outputs": model.get_layer("encoder_outputs").output, "keys": model.get_layer("attention_keys").output}
           if attention else {})})
    embedding, decoder = model.get_layer("target_embedding"), model.get_layer("decoder")
    head = {name: model.get_layer(name) for name in HEAD_LAYERS if name in names}
    vocabulary = preprocessing["target_lookup"].get_vocabulary()
    words = tf.constant(vocabulary, dtype=tf.string)
    start_id, end_id = vocabulary.index(START), vocabulary.index(END)
    # Never emit padding, the unknown-word token or a second start token.
    banned = tf.constant([[0.0 if word in ("", "[UNK]", START) else 1.0 for word in vocabulary]]) < 0.5

    def encode(source):
        source_ids = featurize(preprocessing, config, source)["source_ids"].to_tensor()
        encoded = encoder(source_ids, training=False)
        state = {"decoder_states": list(encoded["states"])}
        if attention:
            state.update(outputs=encoded["outputs"], keys=encoded["keys"], source_mask=source_ids != 0)
        return source_ids, state

    def step(token_ids, state):
        """One decoder step: ``(token ids [batch], state) -> (logits [batch, vocabulary], state)``."""
        outputs, *decoder_states = decoder(embedding(tf.cast(token_ids, tf.int64)[:, None]),
                                           initial_state=state["decoder_states"], training=False)
        logits = decoder_head(head, outputs, state.get("outputs"), state.get("keys"), state.get("source_mask"))
        return tf.where(banned, -1e9, logits[:, 0]), {**state, "decoder_states": decoder_states}

    def decode(source, beam_width, max_length, length_penalty):
        """Raw sources -> output token ids [batch, steps] (end token and padding after it)."""
        beam_width = tf.convert_to_tensor(beam_width, tf.int32)
        _, state = encode(source)
        start_ids = tf.fill(tf.shape(source), start_id)

        def greedy():
            first_logits, first_state = step(start_ids, state)
            return sampling.generate(step, first_state, first_logits, max_length, 0.0, 0, 1.0,
                                     tf.zeros([2], tf.int64), end_id)[0]

        def beam():
            return beam_search.beam_search(step, state, start_ids, beam_width, max_length, end_id,
                                           length_penalty)[0]

        return tf.cond(beam_width <= 1, greedy, beam)

    def output_text(token_ids):
        """Token ids -> (detokenized strings, lengths before the end token)."""
        ended = tf.concat([tf.equal(token_ids, end_id), tf.fill([tf.shape(token_ids)[0], 1], True)], axis=1)
        length = tf.cast(tf.argmax(tf.cast(ended, tf.int32), axis=1), tf.int32)
        tokens = tf.RaggedTensor.from_tensor(tf.gather(words, token_ids), lengths=length)
        joined = tf.strings.reduce_join(tokens, axis=1, separator="" if data_config.level == "char" else " ")
        if data_config.level == "word":
            for pattern, rewrite in DETOKENIZE_RULES:
                joined = tf.strings.regex_replace(joined, pattern, rewrite)
        return joined, length

    source_spec = tf.TensorSpec([None], tf.string, name="source")

    @tf.function(input_signature=[source_spec, tf.TensorSpec([], tf.int32, name="beam_width"),
                                  tf.TensorSpec([], tf.int32, name="max_length"),
                                  tf.TensorSpec([], tf.float32, name="length_penalty")])
    def translate(source, beam_width, max_length, length_penalty):
        translation, length = output_text(decode(source, beam_width, max_length, length_penalty))
        return {"translation": translation, "length": length}

    @tf.function(input_signature=[source_spec])
    def serve(source):
        return translate(source, tf.constant(model_config.beam_width), tf.constant(data_config.max_output_length),
                         tf.constant(model_config.length_penalty))

    endpoints = {"serving_default": serve, "translate": translate}
    if attention:
        @tf.function(input_signature=[source_spec])
        def attend(source):
            """Decodes as serving_default, then re-reads the output to return the attention weights."""
            token_ids = decode(source, model_config.beam_width, data_config.max_output_length,
                               model_config.length_penalty)
            translation, length = output_text(token_ids)
            source_ids, state = encode(source)
            inputs = tf.concat([tf.fill([tf.shape(source)[0], 1], start_id), token_ids[:, :-1]], axis=1)
            outputs = decoder(embedding(tf.cast(inputs, tf.int64)), initial_state=state["decoder_states"],
                              training=False)[0]
            _, weights = decoder_head(head, outputs, state["outputs"], state["keys"], state["source_mask"], True)
            source_tokens = split_tokens(config, source, data_config.source_standardize)
            return {"translation": translation, "output_length": length, "output_tokens": tf.gather(words, token_ids),
                    "source_length": tf.reduce_sum(tf.cast(source_ids != 0, tf.int32), axis=1),
                    "source_tokens": text.truncate_and_fill(source_tokens, filler="").to_tensor(""),
                    "attention_weights": weights}
        endpoints["attention"] = attend

    archive = export.new_archive([model, preprocessing["source_vectorizer"], preprocessing["target_lookup"]])
    for name, function in endpoints.items():
        archive.add_endpoint(name, function)
    return archive, endpoints


def example_inputs(raw_data, config):
    """Inputs the parity check (and the contract tests) send to each signature of the export."""
    sources = raw_data["test"][0][:32] + ["", "¿Dónde está la biblioteca?", "zzqx " * 40]
    examples = {"serving_default": {"source": sources},
                "translate": {"source": sources[:8] + sources[-3:], "beam_width": 1, "max_length": 20,
                              "length_penalty": 0.0}}
    if config["model"].attention != "none":
        examples["attention"] = {"source": sources[:4] + sources[-2:]}
    return examples
# endregion


# region 5. evaluate
def evaluate(predict, raw_data, config, output_dir):
    """BLEU/chrF (sacreBLEU) and exact match of ``serving_default`` on the test split, beside copying the source.

    ``predict`` takes ``{"source": list of str}`` and returns ``{"translation": ...}``.
    """
    sources, references = raw_data["test"]
    outputs = [str(output) for output in predict({"source": sources})["translation"]]
    samples = translation_metrics.samples_table(sources, references, outputs, f"{output_dir}/samples.md")
    return {"split": "test", "num_examples": len(sources),
            "decoding": {"beam_width": config["model"].beam_width,
                         "length_penalty": config["model"].length_penalty},
            "model": translation_metrics.translation_metrics(references, outputs),
            "baseline": translation_metrics.copy_source_baseline(sources, references),
            "samples": samples[:5]}

# endregion


def main(argv=None):
    """Trains, evaluates and exports a translation model; returns the exit status."""
    run = lifecycle.start(argv, CONFIG_SECTIONS, TASK, __file__, description=__doc__.splitlines()[0])
    config = run.config
    raw_data = load_raw_data(config["data"])  # 1. load (before any folder is made)
    print(f"Data: {', '.join(f'{name} {len(split[0])}' for name, split in raw_data.items())}")
    with run.directory():
        preprocessing = run.preprocessing(build_preprocessing, raw_data["train"])  # 2. preprocess
        train_dataset = make_dataset(raw_data["train"], preprocessing, config, shuffle=True)
        validation_dataset = make_dataset(raw_data["validation"], preprocessing, config)
        model = run.model(build_model, preprocessing)  # 3. build model (or the checkpoint's on --resume)
        run.fit(model, train_dataset, validation_dataset)  # 4. train (stops at train.max_minutes if set)
        archive, endpoints = build_serving(model, preprocessing, config)
        metrics = run.record_metrics(evaluate(export.batch_predictor(endpoints["serving_default"], 256),  # 5.
                                              raw_data, config, run.path))
        if "attention" in endpoints:  # heatmaps of four test sentences, through the attention signature
            sources = raw_data["test"][0][:4]
            translation_metrics.attention_maps(export.to_numpy(endpoints["attention"](tf.constant(sources))),
                                               sources, run.path / "plots")
        print(f"Test BLEU {metrics['model']['bleu']:.2f} (lower-cased; cased {metrics['model']['bleu_cased']:.2f}), "
              f"chrF {metrics['model']['chrf']:.2f}, exact match {metrics['model']['exact_match']:.4f}; "
              f"copy-source baseline BLEU {metrics['baseline']['bleu']:.2f}, chrF {metrics['baseline']['chrf']:.2f}")
        defaults = {"beam_width": config["model"].beam_width, "max_length": config["data"].max_output_length,
                    "length_penalty": config["model"].length_penalty}  # for `predict --signature translate`
        version_path = run.export(archive, {"serving.json": {"defaults": {"translate": defaults}}})  # 6. export
        run.check_export(version_path, endpoints, example_inputs(raw_data, config))  # 7. check the reloaded export
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
