"""Translation metrics (sacreBLEU corpus BLEU and chrF, exact match), the copy-the-source baseline,
attention heatmaps and a table of sample translations.

Scores compare detokenized outputs with the raw references, as sacreBLEU expects:
its own ``13a`` tokenization runs on both sides. ``bleu`` is lower-cased (case
differences are not counted), ``bleu_cased`` is not; chrF is case-sensitive.
"""

import pathlib

import matplotlib.figure
import numpy as np
import sacrebleu

from seq_templates.evaluation import plots


def translation_metrics(references, hypotheses):
    """Scores hypotheses against one reference each.

    Args:
        references: Reference sentences (raw text).
        hypotheses: Model outputs (detokenized text), aligned with ``references``.

    Returns:
        ``{"bleu": lower-cased corpus BLEU, "bleu_cased", "chrf", "exact_match",
        "bleu_signature"}``; BLEU and chrF on sacreBLEU's 0-100 scale, exact match
        (after stripping surrounding spaces) as a fraction.
    """
    references = [str(reference) for reference in references]
    hypotheses = [str(hypothesis) for hypothesis in hypotheses]
    if len(references) != len(hypotheses):
        raise ValueError(f"Expected as many hypotheses as references, received {len(hypotheses)} and "
                         f"{len(references)}.")
    lowercased = sacrebleu.metrics.BLEU(lowercase=True)
    return {
        "bleu": round(lowercased.corpus_score(hypotheses, [references]).score, 2),
        "bleu_cased": round(sacrebleu.metrics.BLEU().corpus_score(hypotheses, [references]).score, 2),
        "chrf": round(sacrebleu.metrics.CHRF().corpus_score(hypotheses, [references]).score, 2),
        "exact_match": float(np.mean([reference.strip() == hypothesis.strip()
                                      for reference, hypothesis in zip(references, hypotheses)]))
        if references else 0.0,
        "bleu_signature": str(lowercased.get_signature()),
    }


def chrf(references, hypotheses):
    """Corpus chrF (sacreBLEU, 0-100) of hypotheses (str or bytes) against one reference each."""
    import sacrebleu

    hypotheses = [item.decode("utf-8") if isinstance(item, bytes) else str(item) for item in hypotheses]
    return float(sacrebleu.corpus_chrf(hypotheses, [list(references)]).score)


def copy_source_baseline(sources, references):
    """The baseline that outputs its input unchanged (names, numbers and cognates score)."""
    return {"name": "copy_source", **translation_metrics(references, sources)}


def attention_heatmap(weights, source_tokens, target_tokens, path, title=None):
    """Draws one sentence's attention weights (output tokens down, source tokens across) as a PNG.

    Args:
        weights: ``[target length, source length]`` attention weights.
        source_tokens: The source tokens (columns).
        target_tokens: The output tokens (rows).
        path: The PNG file (written to a temp name and renamed).
        title: Optional title.

    Returns:
        The path.
    """
    weights = np.asarray(weights, dtype=float)[:len(target_tokens), :len(source_tokens)]
    figure = matplotlib.figure.Figure(figsize=(1.0 + 0.45 * max(len(source_tokens), 4),
                                               1.0 + 0.4 * max(len(target_tokens), 4)))
    axes = figure.subplots()
    image = axes.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(len(source_tokens)), source_tokens, rotation=90)
    axes.set_yticks(range(len(target_tokens)), target_tokens)
    axes.set_xlabel("source")
    axes.set_ylabel("output")
    if title:
        axes.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.04)
    return plots.save(figure, path, dpi=100)


def attention_maps(answers, sources, folder):
    """Writes ``attention_<i>.png`` for each source from the answers of an ``attention`` signature.

    Args:
        answers: Numpy outputs with ``attention_weights``, ``source_tokens``/``source_length``,
            ``output_tokens``/``output_length`` (the end token is drawn too) and ``translation``.
        sources: The raw sources (for the titles).
        folder: Where the PNGs go.

    Returns:
        The paths.
    """
    paths = []
    for index, source in enumerate(sources):
        output_tokens = [str(token) for token in answers["output_tokens"][index][:answers["output_length"][index] + 1]]
        source_tokens = [str(token) for token in answers["source_tokens"][index][:answers["source_length"][index]]]
        paths.append(attention_heatmap(answers["attention_weights"][index], source_tokens, output_tokens,
                                       pathlib.Path(folder) / f"attention_{index}.png",
                                       title=f"{source} -> {answers['translation'][index]}"))
    return paths


def samples_table(sources, references, hypotheses, path, count=20):
    """Writes a Markdown table of the first ``count`` (source, reference, output) triples; returns the rows."""
    rows = [{"source": str(source), "reference": str(reference), "output": str(hypothesis)}
            for source, reference, hypothesis in list(zip(sources, references, hypotheses))[:count]]

    def cell(value):
        return value.replace("|", "\\|").replace("\n", " ")

    lines = ["| source | reference | output |", "|---|---|---|"]
    lines += [f"| {cell(row['source'])} | {cell(row['reference'])} | {cell(row['output'])} |" for row in rows]
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary_path = path.with_name(f".{path.name}.tmp")
    temporary_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    temporary_path.replace(path)
    return rows
