"""A recurrent decoder with attention over the encoder's outputs, from built-in Keras layers.

One set of named layers serves training and serving. The teacher-forcing model calls
:func:`head` on the decoder's outputs over the whole target (Keras passes the masks);
serving takes the same layers out of the trained model by name (:class:`SteppedDecoder`)
and decodes one token at a time, passing the source mask itself. The two cannot drift
apart, and ``model.keras`` loads with no custom objects.

The layer names read from the model:

- ``source_ids`` (the input), ``initial_state_<i>`` (the encoder's final states, which
  start the decoder), ``target_embedding`` and ``decoder`` (a recurrent layer with
  ``return_sequences`` and ``return_state``);
- with attention, ``encoder_outputs`` (the memory attended over) and ``attention_keys``
  (its projection);
- the head, :data:`HEAD_LAYERS` (made by :func:`head_layers`).
"""

import keras
import tensorflow as tf

from seq_templates.layers import beam_search

ATTENTION_KINDS = ("none", "bahdanau", "luong")
HEAD_LAYERS = ("attention_query", "attention", "attention_concat", "attention_output",
               "output_dropout", "logits")


def head_layers(encoder_outputs, attention, vocabulary_size, width, attention_units, output_units,
                dropout_rate):
    """Makes the head's layers: attention over the encoder outputs, then the next-token logits.

    Args:
        encoder_outputs: The encoder's outputs ``[batch, source steps, width]`` (a Keras tensor).
        attention: ``none`` (the decoder output alone, so the encoder's final state is the
            only context, as in the first encoder-decoders); ``bahdanau``, the additive score
            ``v . tanh(W1 query + W2 key)`` (``AdditiveAttention`` over a projected query and
            projected keys, ``attention_units`` wide); ``luong``, Luong's "general" score
            ``query . W key`` (``Attention`` over keys projected to ``width``). With attention,
            ``tanh(Dense([decoder output; context]))``, ``output_units`` wide, feeds the logits.
        vocabulary_size: Target tokens (the logits' width; softmax is in the loss and decoding).
        width: The decoder's width.
        attention_units: Bahdanau's scoring width.
        output_units: The attentional output's width.
        dropout_rate: Dropout before the logits.

    Returns:
        ``(layers, encoder_outputs, keys)``: ``{name: layer}`` for :func:`head`, and with
        attention the encoder outputs and keys as the named tensors serving reads (without,
        ``encoder_outputs`` unchanged and ``keys`` None).
    """
    layers = {"output_dropout": keras.layers.Dropout(dropout_rate, name="output_dropout"),
              # float32 logits, also under train.mixed_precision (losses and decoding read them)
              "logits": keras.layers.Dense(vocabulary_size, name="logits", dtype="float32")}
    if attention == "none":
        return layers, encoder_outputs, None
    encoder_outputs = keras.layers.Identity(name="encoder_outputs")(encoder_outputs)
    if attention == "bahdanau":
        keys = keras.layers.Dense(attention_units, use_bias=False, name="attention_keys")
        layers["attention_query"] = keras.layers.Dense(attention_units, name="attention_query")
        layers["attention"] = keras.layers.AdditiveAttention(name="attention")
    else:
        keys = keras.layers.Dense(width, use_bias=False, name="attention_keys")
        layers["attention"] = keras.layers.Attention(name="attention")
    keys = keys(encoder_outputs)
    layers["attention_concat"] = keras.layers.Concatenate(name="attention_concat")
    layers["attention_output"] = keras.layers.Dense(output_units, activation="tanh",
                                                    name="attention_output")
    return layers, encoder_outputs, keys


def head(layers, decoder_outputs, encoder_outputs=None, keys=None, source_mask=None,
         return_attention_scores=False):
    """Decoder outputs -> next-token logits (and attention weights).

    Args:
        layers: ``{name: layer}`` of :data:`HEAD_LAYERS`; without ``attention`` the decoder
            outputs go straight to ``output_dropout`` and ``logits``.
        decoder_outputs: ``[batch, steps, width]``.
        encoder_outputs: ``[batch, source steps, width]`` (with attention).
        keys: The projected encoder outputs (with attention).
        source_mask: bool ``[batch, source steps]``, given at serving time (in the training
            model Keras passes the masks itself).
        return_attention_scores: Also return ``[batch, steps, source steps]`` weights.

    Returns:
        Logits ``[batch, steps, vocabulary]``, or ``(logits, weights)``.
    """
    scores = None
    if "attention" in layers:
        query = (layers["attention_query"](decoder_outputs) if "attention_query" in layers
                 else decoder_outputs)
        context = layers["attention"]([query, encoder_outputs, keys],
                                      mask=None if source_mask is None else [None, source_mask],
                                      return_attention_scores=return_attention_scores)
        if return_attention_scores:
            context, scores = context
        decoder_outputs = layers["attention_output"](
            layers["attention_concat"]([decoder_outputs, context]))
    logits = layers["logits"](layers["output_dropout"](decoder_outputs))
    return (logits, scores) if return_attention_scores else logits


class SteppedDecoder:
    """A trained teacher-forcing encoder-decoder as an encoder and a one-step decoder.

    Decoding never emits padding, the unknown token ``[UNK]`` or a second start token.

    Args:
        model: The trained model, its layers named as in the module docstring.
        vocabulary: The target tokens, by id (padding "" first).
        start_token: The token the decoder reads first.
        end_token: The token that ends an output.

    Attributes:
        attention: Whether the model attends over the encoder's outputs.
    """

    def __init__(self, model, vocabulary, start_token, end_token):
        names = {layer.name for layer in model.layers}
        self.attention = "attention" in names
        outputs = {"states": [model.get_layer(name).output
                              for name in ("initial_state_0", "initial_state_1") if name in names]}
        if self.attention:
            outputs.update(outputs=model.get_layer("encoder_outputs").output,
                           keys=model.get_layer("attention_keys").output)
        self.encoder = keras.Model(model.get_layer("source_ids").output, outputs)
        self.embedding = model.get_layer("target_embedding")
        self.decoder = model.get_layer("decoder")
        self.layers = {name: model.get_layer(name) for name in HEAD_LAYERS if name in names}
        self.words = tf.constant(vocabulary, dtype=tf.string)
        self.start_id, self.end_id = vocabulary.index(start_token), vocabulary.index(end_token)
        self.never_emit = tf.constant([[token in ("", "[UNK]", start_token)
                                        for token in vocabulary]])

    def encode(self, source_ids):
        """Source ids ``[batch, source steps]`` (0 = padding) -> the decoder's first state.

        Returns:
            ``{"decoder_states": [...]}``, with attention also the ``outputs``, ``keys`` and
            ``source_mask`` every step reads.
        """
        encoded = self.encoder(source_ids, training=False)
        state = {"decoder_states": list(encoded["states"])}
        if self.attention:
            state.update(outputs=encoded["outputs"], keys=encoded["keys"],
                         source_mask=source_ids != 0)
        return state

    def step(self, token_ids, state):
        """One decoder step, the ``step_function`` of ``beam_search.decode``.

        Returns:
            ``(logits [batch, vocabulary], state)``.
        """
        outputs, *decoder_states = self.decoder(
            self.embedding(tf.cast(token_ids, tf.int64)[:, None]),
            initial_state=state["decoder_states"], training=False)
        logits = head(self.layers, outputs, state.get("outputs"), state.get("keys"),
                      state.get("source_mask"))
        return (tf.where(self.never_emit, -1e9, logits[:, 0]),
                {**state, "decoder_states": decoder_states})

    def decode(self, source_ids, beam_width, max_length, length_penalty):
        """Source ids -> output ids ``[batch, steps]`` (the end token, then 0), greedy for a
        ``beam_width`` of 1 (see ``beam_search.decode``)."""
        start_ids = tf.fill(tf.shape(source_ids)[:1], self.start_id)
        return beam_search.decode(self.step, self.encode(source_ids), start_ids, beam_width,
                                  max_length, self.end_id, length_penalty)

    def tokens(self, token_ids):
        """Output ids -> their tokens (string, same shape)."""
        return tf.gather(self.words, token_ids)

    def text(self, token_ids, separator=" ", rewrites=()):
        """Output ids -> ``(text [batch], lengths before the end)``: ``beam_search.ids_to_text``."""
        return beam_search.ids_to_text(token_ids, self.words, self.end_id, separator, rewrites)

    def attention_weights(self, source_ids, token_ids):
        """Re-reads output ids in one pass, as in training, for the attention weights behind them.

        Args:
            source_ids: The source ids decoded.
            token_ids: int32 ``[batch, steps]`` output ids; the decoder reads the start token and
                every id but the last, so row ``t`` of the weights is the step that chose id ``t``.

        Returns:
            ``[batch, steps, source steps]`` attention weights (none on source padding).
        """
        state = self.encode(source_ids)
        inputs = tf.concat([tf.fill([tf.shape(token_ids)[0], 1], self.start_id), token_ids[:, :-1]],
                           axis=1)
        outputs = self.decoder(self.embedding(tf.cast(inputs, tf.int64)),
                               initial_state=state["decoder_states"], training=False)[0]
        return head(self.layers, outputs, state["outputs"], state["keys"], state["source_mask"],
                    return_attention_scores=True)[1]

    def attention_outputs(self, source_ids, source_tokens, separator, rewrites, beam_width, max_length,
                          length_penalty):
        """Decodes, then re-reads the output for its attention weights: an ``attention`` signature's outputs.

        Args:
            source_ids: ``[batch, source steps]`` source ids.
            source_tokens: Ragged ``[batch, None]`` source tokens as the vectorizer split them.
            separator, rewrites: As :meth:`text` takes them.
            beam_width, max_length, length_penalty: As :meth:`decode` takes them.

        Returns:
            ``{"translation", "output_length", "output_tokens", "source_length", "source_tokens",
            "attention_weights"}``.
        """
        token_ids = self.decode(source_ids, beam_width, max_length, length_penalty)
        translation, length = self.text(token_ids, separator, rewrites)
        return {"translation": translation, "output_length": length, "output_tokens": self.tokens(token_ids),
                "source_length": tf.reduce_sum(tf.cast(source_ids != 0, tf.int32), axis=1),
                "source_tokens": source_tokens.to_tensor(""),
                "attention_weights": self.attention_weights(source_ids, token_ids)}

    def attention_signature(self, source_spec, source_ids, source_tokens, separator, rewrites, defaults):
        """An ``attention`` signature: :meth:`attention_outputs` for raw sources, with ``defaults``.

        Args:
            source_spec: The ``tf.TensorSpec`` of the raw ``source`` strings.
            source_ids: ``source strings -> [batch, steps]`` ids.
            source_tokens: ``source strings -> ragged tokens`` as the vectorizer splits them.
            separator, rewrites: As :meth:`text` takes them.
            defaults: ``{"beam_width", "max_length", "length_penalty"}`` of the decoding.
        """

        @tf.function(input_signature=[source_spec])
        def attend(source):
            return self.attention_outputs(source_ids(source), source_tokens(source), separator, rewrites,
                                          **defaults)

        return attend
