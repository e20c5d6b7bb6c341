"""Generation in bounded chunks, so that a deadline, a client gone or a shutdown can stop it.

A ``generate`` call runs its whole decoding loop inside one model call (a ``tf.while_loop``):
once a model thread runs it, nothing stops it until it is done. So the server runs a request
whose ``max_length`` is over ``generate_chunk_length`` (:class:`limits.Limits`) as several
calls of at most that many steps: the first from the request's prompt, each next one from
the ``text`` the previous one answered (its prompt followed by what it generated). Before
each call after the first, the request's deadline, the client's connection and the
shutdown's drain deadline are checked (:func:`generate`'s ``before_chunk``), so a request
given up leaves its model thread within one chunk, and other requests queued for the
threads run between two chunks of a long one. The answer has the shape of one call's.

Which signatures: those the export lists under ``"resumable"`` in ``assets.extra/serving.json``
(the app declares that its ``text``, given back as ``prompt``, is read as exactly the tokens
it read and wrote: true of a character-level model; not declared by a word-level one, whose
standardizer could split a generated token differently when it reads it again) and whose
inputs and outputs are those of :data:`INPUTS` and :data:`OUTPUTS` (:func:`fits`). Any other
signature, and an export from before the declaration, runs in one call.

What chunking changes, beside the interruptions:

- Each chunk reads the text so far again to rebuild the recurrent state (exact tokens, the
  same state up to floating-point rounding: greedy decoding gives the one call's text). A
  generation of L steps in chunks of c reads about L²/2c tokens more than one call.
- Each chunk draws from its own random stream: the first from the request's ``seed``, chunk
  ``k`` from :func:`chunk_seed` (``seed``, ``k``). A seeded request gives the same text every
  time, and the same text as one call while it fits in one chunk; a longer one draws
  differently after its first chunk.
- A row that answers fewer tokens than a chunk asked (it wrote its end token) is finished:
  it leaves the next calls, as it would have stopped inside one call.
"""

import numpy as np

PROMPT, LENGTH, SEED = "prompt", "max_length", "seed"
INPUTS = (PROMPT, LENGTH)  # required: a [batch] string prompt and a scalar integer max_length (seed optional)
OUTPUTS = ("text", "continuation", "num_generated")
RESUMABLE_KEY = "resumable"  # serving.json: the signatures whose `text` continues as their `prompt`


def fits(signature):
    """Whether a signature has :data:`INPUTS` (and a scalar integer ``seed``, if any) and exactly :data:`OUTPUTS`."""
    specs, outputs = signature.input_specs, signature.output_specs
    if set(outputs) != set(OUTPUTS) or not all(name in specs for name in INPUTS):
        return False
    prompt, length, seed = specs[PROMPT], specs[LENGTH], specs.get(SEED)
    return (prompt.dtype.name == "string" and prompt.shape.rank == 1 and length.dtype.is_integer
            and length.shape.rank == 0 and (seed is None or (seed.dtype.is_integer and seed.shape.rank == 0)))


def should_chunk(signature, inputs, chunk_length):
    """Whether this request runs in chunks: a resumable signature asked for more than ``chunk_length`` steps."""
    if not getattr(signature, "resumable", False) or LENGTH not in inputs or PROMPT not in inputs:
        return False
    length = np.asarray(inputs[LENGTH])
    return length.ndim == 0 and int(length) > chunk_length and np.ndim(inputs[PROMPT]) == 1


_MASK_64 = 2 ** 64 - 1


def chunk_seed(seed, index, dtype=np.int64):
    """The seed of chunk ``index``: ``seed`` itself for the first, else a SplitMix64 mix of both.

    Deterministic (the same request draws the same text) and different for every chunk, in
    the non-negative range of ``dtype``.
    """
    if index == 0:
        return np.asarray(seed, dtype=dtype)
    value = (int(seed) + index * 0x9E3779B97F4A7C15) & _MASK_64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK_64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK_64
    value ^= value >> 31
    return np.asarray(value & int(np.iinfo(dtype).max), dtype=dtype)


async def generate(call, inputs, chunk_length, before_chunk):
    """Runs one generation request as calls of at most ``chunk_length`` steps.

    Args:
        call: ``async call(inputs) -> {output name: numpy array}``, one model call.
        inputs: The request's inputs (``{name: numpy array}``; :data:`INPUTS` among them).
        chunk_length: The most steps one call runs.
        before_chunk: ``async before_chunk()``, awaited before every call after the first;
            it raises to stop the request (a deadline, a client gone, the shutdown).

    Returns:
        ``{"text", "continuation", "num_generated"}`` as one call would answer them:
        each row's prompt followed by all it generated, what it generated, and how many tokens.
    """
    total = int(inputs[LENGTH])
    texts = np.array(list(inputs[PROMPT]) + [None], dtype=object)[:-1]  # an object array of bytes
    generated = None
    starts = np.zeros(len(texts), dtype=np.int64)  # where each row's continuation begins in its text
    active = np.arange(len(texts))
    done, index = 0, 0
    while done < total and active.size:
        if index:
            await before_chunk()
        steps = min(chunk_length, total - done)
        chunk_inputs = dict(inputs, **{PROMPT: texts[active], LENGTH: np.asarray(steps, inputs[LENGTH].dtype)})
        if SEED in inputs:
            chunk_inputs[SEED] = chunk_seed(inputs[SEED], index, np.asarray(inputs[SEED]).dtype)
        outputs = await call(chunk_inputs)
        counts = np.asarray(outputs["num_generated"])
        if generated is None:
            generated = np.zeros(len(texts), dtype=counts.dtype)
            starts[active] = [len(text) - len(continuation)
                              for text, continuation in zip(outputs["text"], outputs["continuation"])]
        texts[active] = list(outputs["text"])
        generated[active] += counts
        active = active[counts >= steps]  # a row that wrote fewer tokens than asked has ended
        done += steps
        index += 1
    continuations = np.array([text[start:] for text, start in zip(texts, starts)] + [None], dtype=object)[:-1]
    return {"text": texts, "continuation": continuations, "num_generated": generated}
