"""Turns SST-2 sentences (lower-cased, PTB-tokenized) back into text as people write it.

The SST-2 benchmark uses it to build a "written as people write" copy of the dev
set (``it's not good.`` instead of ``it 's not good .``), to check that a model
trained on the tokenized corpus answers the same on typed text. The rules are
written from how English is written, not from the project's tokenizer, so the
check is not circular; ``EXAMPLES`` shows each of them.

Usage:
    python benchmarks/detokenize.py        # checks EXAMPLES
"""

# Clitics joined to the word before them ("is n't" -> "isn't", "ca n't" -> "can't").
CLITICS = ("n't", "'s", "'re", "'ve", "'ll", "'d", "'m")
# Other words PTB writes in two pieces.
SPLIT_WORDS = {("can", "not"): "cannot", ("gon", "na"): "gonna", ("wan", "na"): "wanna", ("got", "ta"): "gotta"}
# Tokens written against the word before them.
CLOSING = (".", ",", ";", ":", "!", "?", "...", "%", ")", "]", "}", "'")
# Tokens written against the word after them.
OPENING = ("(", "[", "{", "$")
BRACKET_ESCAPES = {"-lrb-": "(", "-rrb-": ")", "-lsb-": "[", "-rsb-": "]", "-lcb-": "{", "-rcb-": "}"}

EXAMPLES = [
    ("it 's not a bad film , is n't it ?", "It's not a bad film, isn't it?"),
    ("you ca n't and you wo n't -- i can not", "You can't and you won't -- I cannot"),
    ("they 're fine , we 've seen it , you 'll see , he 'd go , i 'm in",
     "They're fine, we've seen it, you'll see, he'd go, I'm in"),
    ("the actors ' work ; a good : fine !", "The actors' work; a good: fine!"),
    ("well ... maybe", "Well... maybe"),
    ("a ( very ) good -lrb- and long -rrb- film", "A (very) good (and long) film"),
    ("`` good '' and `` bad '' films", '"Good" and "bad" films'),
    ("the ` good ' stuff", "The 'good' stuff"),
    ("you 're gon na like it", "You're gonna like it"),
    ("it costs $ 5 , or 10 % more", "It costs $5, or 10% more"),
    ("  spaced    out  ", "Spaced out"),
    ("", ""),
]


def detokenize(sentence):
    """Returns ``sentence`` (lower-case, PTB-tokenized) as a person would write it.

    Args:
        sentence: Space-separated tokens, e.g. ``"it 's good ."``.

    Returns:
        The text with clitics, punctuation, brackets and quotes attached, single
        spaces and a capital first letter, e.g. ``"It's good."``.
    """
    words = []  # the written words; punctuation is appended to them
    attach_next = False  # the last word is an opening bracket or quote
    double_quote_open = False  # for a lone '' or " that closes a `` quote
    for token in sentence.split():
        token = BRACKET_ESCAPES.get(token.lower(), token)
        if token == "i":  # the pronoun; PTB keeps it a token of its own ("i 'm")
            token = "I"
        if token == "``" or (token in ('"', "''") and not double_quote_open):
            token, double_quote_open = '"', True
            words.append(token)
            attach_next = True
            continue
        if token in ('"', "''"):
            token, double_quote_open = '"', False
            if words:
                words[-1] += token
            else:
                words.append(token)
            attach_next = False
            continue
        if token == "`":
            words.append("'")
            attach_next = True
            continue
        if token in OPENING:
            words.append(token)
            attach_next = True
            continue
        if words and not attach_next:
            if token.lower() in CLITICS:
                words[-1] += token
                continue
            if token in CLOSING:
                words[-1] += token
                continue
            joined = SPLIT_WORDS.get((words[-1].lower(), token.lower()))
            if joined:
                words[-1] = joined
                continue
        if attach_next and words:
            words[-1] += token
        else:
            words.append(token)
        attach_next = False
    text = " ".join(words)
    for position, character in enumerate(text):
        if character.isalpha():
            return text[:position] + character.upper() + text[position + 1:]
    return text


if __name__ == "__main__":
    for tokenized, written in EXAMPLES:
        result = detokenize(tokenized)
        assert result == written, f"Expected {written!r}, received {result!r} for {tokenized!r}."
    print(f"detokenize: all {len(EXAMPLES)} examples hold.")
