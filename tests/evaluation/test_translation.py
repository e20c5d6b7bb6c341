"""Translation metrics (sacreBLEU), the copy-the-source baseline, heatmaps and the samples table."""

import numpy as np
import pytest

from seq_templates.evaluation import translation

REFERENCES = ["The cat sat on the mat.", "Where is the library?", "I don't know."]


def test_perfect_output_scores_100_and_case_only_counts_when_cased():
    perfect = translation.translation_metrics(REFERENCES, REFERENCES)
    assert perfect["bleu"] == perfect["bleu_cased"] == perfect["chrf"] == 100.0
    assert perfect["exact_match"] == 1.0
    assert "case:lc" in perfect["bleu_signature"]
    lowered = translation.translation_metrics(REFERENCES, [reference.lower() for reference in REFERENCES])
    assert lowered["bleu"] == 100.0 and lowered["bleu_cased"] < 100.0 and lowered["exact_match"] == 0.0


def test_scores_are_corpus_level_and_detokenized_output_matches_raw_references():
    tokenized = translation.translation_metrics(REFERENCES, ["The cat sat on the mat .", "Where is the library ?",
                                                             "I do n't know ."])
    assert tokenized["bleu"] < 100.0  # sacreBLEU tokenizes itself: send detokenized text
    partial = translation.translation_metrics(REFERENCES, ["The cat sat on a mat.", "Where is the library?", "No."])
    assert 0.0 < partial["bleu"] < 100.0 and partial["exact_match"] == pytest.approx(1 / 3)


def test_copy_source_baseline_and_length_mismatch():
    baseline = translation.copy_source_baseline(["El gato.", "Tom."], ["The cat.", "Tom."])
    assert baseline["name"] == "copy_source" and baseline["exact_match"] == 0.5 and baseline["chrf"] > 0
    with pytest.raises(ValueError, match="as many hypotheses as references"):
        translation.translation_metrics(REFERENCES, REFERENCES[:2])


def test_heatmap_and_samples_table(tmp_path):
    weights = np.full((4, 3), 1 / 3)
    path = translation.attention_heatmap(weights, ["¿", "dónde", "?"], ["where", "?", "[end]"],
                                         tmp_path / "plots" / "attention_0.png", title="¿dónde? -> where?")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(path.parent.glob(".*"))
    rows = translation.samples_table(["a | b", "c"], ["x", "y"], ["x", "z"], tmp_path / "samples.md", count=1)
    assert rows == [{"source": "a | b", "reference": "x", "output": "x"}]
    assert (tmp_path / "samples.md").read_text().splitlines()[2] == "| a \\| b | x | x |"
