"""The in-graph tokenizing standardizer: cases, NFKC, idempotence, and the same answers everywhere."""

import json
import os
import random
import subprocess
import sys
import time
import unicodedata

import pytest
import tensorflow as tf

from seq_templates.preprocessing import tokenizer
from tests.conftest import TEST_ENVIRONMENT

# (input, lowercase, expected)
CASES = [
    # clitics
    ("It isn't good.", True, "it is n't good ."),
    ("ISN'T", False, "IS N'T"),
    ("I can't, won't, don't!", True, "i ca n't , wo n't , do n't !"),
    ("it's they're I've we'll he'd I'm", True, "it 's they 're i 've we 'll he 'd i 'm"),
    ("She'S HERE'LL", False, "She 'S HERE 'LL"),
    ("the students' books", True, "the students ' books"),
    ("I cannot go", True, "i can not go"),
    ("it 's not a good film , is n't it ?", True, "it 's not a good film , is n't it ?"),
    ("we ca n't and wo n't -- can not", True, "we ca n't and wo n't -- can not"),
    # punctuation runs, ellipsis, dashes
    ("wow!!!", True, "wow ! ! !"),
    ("what?!", True, "what ? !"),
    ("wait... really", True, "wait ... really"),
    ("Hmm…", True, "hmm ..."),
    ("so--anyway", True, "so -- anyway"),
    ("so -- anyway", True, "so -- anyway"),
    ("rated ***", True, "rated ***"),
    ("pre- and post-war", True, "pre- and post-war"),
    # quotes
    ('"hi"', True, '" hi "'),
    ("He said “yes” and ‘no’.", True, "he said \" yes \" and ' no ' ."),
    ("``PTB'' quotes and `single'", True, "\" ptb \" quotes and ' single '"),
    ("«bonjour»", True, '" bonjour "'),
    # brackets and PTB escapes
    ("(good)", True, "( good )"),
    ("[a] {b}", True, "[ a ] { b }"),
    ("-LRB- good -RRB-", True, "( good )"),
    ("-lsb- x -rsb- -lcb- y -rcb- -lrb- -rrb-", True, "[ x ] { y } ( )"),
    # numbers, percentages, currency
    ("3.5 1,000 10:30 1/2 -5 .500", True, "3.5 1,000 10:30 1/2 -5 .500"),
    ("3.5% of $5, and 1,000.", True, "3.5 % of $ 5 , and 1,000 ."),
    ("born in 1990.", True, "born in 1990 ."),
    ("call (+44) 20, or US$5", True, "call ( +44 ) 20 , or us$ 5"),
    ("gangster no. 1 is good, say no.", True, "gangster no. 1 is good , say no ."),
    # URLs and e-mail addresses
    ("see http://x.org/a.", True, "see http://x.org/a ."),
    ("(www.example.com/page),", True, "( www.example.com/page ) ,"),
    ("Go to HTTPS://X.org/A?b=1&c=2!", False, "Go to HTTPS://X.org/A?b=1&c=2 !"),
    ("mail john.doe@example.com!", True, "mail john.doe@example.com !"),
    ("visit feardotcom.com.", True, "visit feardotcom.com ."),
    # abbreviations
    ("the U.S. and e.g. i.e. at 5 a.m.", True, "the u.s. and e.g. i.e. at 5 a.m."),
    ("Mr. Smith, Mrs. Jones, Dr. Who, St. Paul vs. etc. Inc.", False,
     "Mr. Smith , Mrs. Jones , Dr. Who , St. Paul vs. etc. Inc."),
    ("(U.S.), e.g.,", False, "( U.S. ) , e.g. ,"),
    # word-internal hyphens and apostrophes
    ("well-made o'clock rock'n'roll and/or r&b", True, "well-made o'clock rock'n'roll and/or r&b"),
    ("the '70s ol' rock 'n' roll", True, "the '70s ol' rock 'n' roll"),
    # emoji and symbols
    ("great😀", True, "great 😀"),
    ("love it👍🏽!!", True, "love it 👍🏽 ! !"),
    ("🇺🇸🇫🇷 #1 @home", True, "🇺🇸 🇫🇷 # 1 @ home"),
    # accented and non-Latin text
    ("Café naïve RÉSUMÉ", True, "café naïve résumé"),
    ("中文，测试。", True, "中文 , 测试 。"),
    ("مرحبا، كيف حالك؟", True, "مرحبا ، كيف حالك ؟"),
    ("Привет, мир!", True, "привет , мир !"),
    ("Γειά σου, κόσμε!", True, "γειά σου , κόσμε !"),
    ("¿dónde?", True, "¿ dónde ?"),
    ("¡hola!", True, "¡ hola !"),
    # empty text and white space
    ("", True, ""),
    ("   ", True, ""),
    ("\t\n", False, ""),
    ("a\tb\nc\u00a0d\u2003e  ", True, "a b c d e"),
    # NFKC before the rest
    ("ﬁne ｆｕｌｌ１２ x²", True, "fine full12 x2"),
]

NFKC_STRINGS = [
    "ＡＢＣ ｆｕｌｌ１２３",
    "ﬁnd the ﬂow ﬀ",
    "x² H₂O ½",
    "cafe\u0301",
    "e\u0323\u0302 and a\u0308",
    "a\u00a0b",
    "wait…",
    "ｶﾞｷﾞ ｱｲｳ",
    "Ⅻ ⅷ",
    "①②⑳",
    "ǅ Å ℌ ㎏",
]


def standardize_list(texts, lowercase=True):
    """Runs ``tokenizer.standardize`` eagerly on a list of str; returns a list of str."""
    return [text.decode("utf-8") for text in tokenizer.standardize(tf.constant(texts), lowercase).numpy()]


def all_inputs():
    """Every table input with each lowercase setting: {lowercase: [input, ...]}."""
    return {lowercase: [text for text, _, _ in CASES] for lowercase in (True, False)}


@pytest.mark.parametrize("text,lowercase,expected", CASES)
def test_case(text, lowercase, expected):
    assert tokenizer.standardize(tf.constant(text), lowercase=lowercase).numpy().decode("utf-8") == expected


def test_standardize_is_idempotent_on_every_case():
    for lowercase in (True, False):
        once = standardize_list([text for text, _, _ in CASES], lowercase)
        assert standardize_list(once, lowercase) == once


FUZZ_PIECES = list("abXY09 .,:;'\"-/&·!?()[]$%*@#+=`\t\u00a0") + [
    "http://", "www.", ".com", "@x.org", "n't", "'s", "ISN'T", "cannot", "...", "--", "…", "’", "“",
    "-lrb-", "u.s.", "mr.", "no. ", "'70s", "ol'", "😀", "🏽", "🇺", "\u200d",
    "é", "e\u0301", "ﬁ", "１", "中",
    "Ｔ\u0308", "\u0323\u0302",
]


def test_standardize_is_idempotent_on_random_mixtures():
    generator = random.Random(0)
    texts = ["".join(generator.choice(FUZZ_PIECES) for _ in range(generator.randint(0, 12))) for _ in range(3000)]
    for lowercase in (True, False):
        once = standardize_list(texts, lowercase)
        twice = standardize_list(once, lowercase)
        assert [(text, a, b) for text, a, b in zip(texts, once, twice) if a != b] == []


def test_shapes_are_kept():
    assert tokenizer.standardize(tf.constant("It's")).shape == ()
    matrix = tokenizer.standardize(tf.constant([["It's", "(a)"], ["", "b!"]]))
    assert matrix.shape == (2, 2)
    assert matrix.numpy().tolist() == [[b"it 's", b"( a )"], [b"", b"b !"]]
    assert tokenizer.standardize(tf.constant([], dtype=tf.string)).shape == (0,)


def test_bad_arguments_are_user_errors():
    with pytest.raises(ValueError, match="Expected a tf.string tensor"):
        tokenizer.standardize(tf.constant([1, 2]))
    with pytest.raises(ValueError, match="Expected lowercase to be True or False"):
        tokenizer.standardize(tf.constant(["a"]), lowercase="yes")


@pytest.mark.parametrize("text", NFKC_STRINGS)
def test_normalize_nfkc_agrees_with_unicodedata(text):
    normalized = tokenizer.normalize_nfkc(tf.constant(text)).numpy().decode("utf-8")
    assert normalized == unicodedata.normalize("NFKC", text)


def test_nfkc_tables_are_complete_and_cheap_to_build():
    started = time.perf_counter()
    tables = tokenizer._build_nfkc_tables()
    assert time.perf_counter() - started < 1.0
    # Nothing above the scanned range changes under NFKC.
    assert not any(unicodedata.normalize("NFKC", chr(code_point)) != chr(code_point)
                   for code_point in range(tokenizer._SCAN_END, 0x110000))
    assert 4500 < tables["mapping_keys"].size < 5200 and 900 < tables["composition_keys"].size < 1000
    # Every single code point the table maps comes out as unicodedata's NFKC of it.
    characters = [chr(code_point) for code_point in tables["mapping_keys"].tolist()]
    normalized = tokenizer.normalize_nfkc(tf.constant(characters)).numpy()
    assert [text.decode("utf-8") for text in normalized] == [unicodedata.normalize("NFKC", c) for c in characters]
    # And the normalized text is stable.
    again = tokenizer.normalize_nfkc(tf.constant(normalized)).numpy()
    assert again.tolist() == normalized.tolist()


def read_sst2_sentences(shared_data, count):
    """``count`` sentences spread over the SST-2 train split (lower-cased, PTB-tokenized)."""
    path = shared_data / "sst2" / "train.tsv"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    rows = path.read_text(encoding="utf-8").splitlines()[1:]
    step = max(1, len(rows) // count)
    return [row.split("\t")[0] for row in rows[::step][:count]]


def test_pre_tokenized_sst2_is_left_as_it_is(shared_data):
    sentences = read_sst2_sentences(shared_data, 2000)
    once = standardize_list(sentences)
    assert standardize_list(once) == once
    expected = [" ".join(s.split()).replace("``", '"').replace("''", '"').replace("`", "'") for s in sentences]
    unchanged = sum(result == original for result, original in zip(once, expected))
    assert unchanged / len(sentences) > 0.99


def test_tf_data_gives_the_eager_answers():
    for lowercase, texts in all_inputs().items():
        dataset = tf.data.Dataset.from_tensor_slices(texts).batch(7).map(
            lambda batch: tokenizer.standardize(batch, lowercase=lowercase))
        mapped = [text.decode("utf-8") for batch in dataset.as_numpy_iterator() for text in batch]
        assert mapped == standardize_list(texts, lowercase)


class Standardizer(tf.Module):
    """Both settings as serving functions, as an export would hold them."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def lower(self, texts):
        return tokenizer.standardize(texts)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def cased(self, texts):
        return tokenizer.standardize(texts, lowercase=False)


RELOAD_SCRIPT = """
import json, sys
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
inputs = json.load(open(sys.argv[2], encoding="utf-8"))
answers = {
    "lower": [t.decode("utf-8") for t in model.lower(tf.constant(inputs["True"])).numpy()],
    "cased": [t.decode("utf-8") for t in model.cased(tf.constant(inputs["False"])).numpy()],
    "seq_templates_imported": any(name.startswith("seq_templates") for name in sys.modules),
}
print(json.dumps(answers))
"""


def test_saved_model_reloaded_by_plain_tensorflow_gives_the_eager_answers(tmp_path):
    module = Standardizer()
    eager_lower = module.lower(tf.constant(all_inputs()[True]))  # traced once, same graph as exported
    tf.saved_model.save(module, str(tmp_path / "standardizer"))
    graph = (tmp_path / "standardizer" / "saved_model.pb").read_bytes()
    for forbidden in (b"PyFunc", b"HashTable", b"VarHandleOp", b"tensorflow_text"):
        assert forbidden not in graph
    inputs = {str(lowercase): texts for lowercase, texts in all_inputs().items()}
    (tmp_path / "inputs.json").write_text(json.dumps(inputs), encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-c", RELOAD_SCRIPT, str(tmp_path / "standardizer"), str(tmp_path / "inputs.json")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={**os.environ, **TEST_ENVIRONMENT, "PYTHONPATH": ""})
    assert completed.returncode == 0, completed.stderr[-3000:]
    answers = json.loads(completed.stdout.strip().splitlines()[-1])
    assert answers["seq_templates_imported"] is False
    assert answers["lower"] == [t.decode("utf-8") for t in eager_lower.numpy()] == standardize_list(
        all_inputs()[True])
    assert answers["cased"] == standardize_list(all_inputs()[False], lowercase=False)
