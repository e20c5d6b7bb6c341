"""A sentence-trained sentiment export scored on whole reviews: whole texts against windows of them.

Measures issue 18's item 3 before choosing: a sentiment export (e.g. trained on SST-2
sentences) reads ``aclimdb``'s val reviews (hundreds of words each) three ways:

- ``whole``: each review as one input (what the export does today);
- ``windows-N``: each review cut into windows of N words (overlapping by half), every window
  scored by the export, the windows' probabilities averaged (what an in-graph split would do);
- beside TF-IDF + logistic regression trained on the export's own training split.

Usage:
    python benchmarks/long_inputs.py RUN [--reviews 2000] [--windows 32 64 128] [--dataset aclimdb]
"""

import argparse
import json
import pathlib
import sys

import numpy as np


def windows(words, width):
    """Windows of ``width`` words, each starting half a window after the last (one window if shorter)."""
    if len(words) <= width:
        return [" ".join(words)]
    step = max(1, width // 2)
    return [" ".join(words[start:start + width]) for start in range(0, len(words) - width // 2, step)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a sentiment run directory (its export/ and config.yaml)")
    parser.add_argument("--reviews", type=int, default=2000, help="val reviews scored (seeded sample)")
    parser.add_argument("--windows", type=int, nargs="*", default=[32, 64, 128],
                        help="window widths in words (none: whole reviews only)")
    parser.add_argument("--dataset", default="aclimdb", help="the registered dataset whose test texts are read")
    parser.add_argument("--app", default="sentiment", help="the run's app: a template name or an app file")
    arguments = parser.parse_args(argv)

    from seq_templates import apps_loader
    from seq_templates import config as config_module
    from seq_templates import export
    from seq_templates.evaluation import baselines

    run = pathlib.Path(arguments.run)
    app = apps_loader.load_app(arguments.app)
    config = config_module.load(app.CONFIG_SECTIONS, run / "config.yaml")
    train_texts, train_labels = app.load_raw_data(config["data"])["train"]
    review_config = app.CONFIG_SECTIONS["data"](dataset=arguments.dataset)
    texts, labels = app.load_raw_data(review_config)["test"]
    order = np.random.default_rng(0).permutation(len(texts))[:arguments.reviews]
    texts, labels = [texts[index] for index in order], np.array([labels[index] for index in order])
    predict = export.batch_predictors(export.load_signatures(run))["serving_default"]
    labels_file = export.find_version(run) / "assets.extra" / "labels.txt"
    names = [line.strip() for line in labels_file.read_text(encoding="utf-8").splitlines()]

    results = {"reviews": len(texts), "mean_words": float(np.mean([len(text.split()) for text in texts]))}
    whole = predict({"text": texts})["probabilities"]
    results["whole"] = float(np.mean(np.array(names)[whole.argmax(axis=1)] == labels))
    for width in arguments.windows:
        pieces, owners = [], []
        for index, text in enumerate(texts):
            parts = windows(text.split(), width)
            pieces += parts
            owners += [index] * len(parts)
        probabilities = predict({"text": pieces})["probabilities"]
        pooled = np.zeros((len(texts), probabilities.shape[1]))
        np.add.at(pooled, np.array(owners), probabilities)
        results[f"windows_{width}"] = float(np.mean(np.array(names)[pooled.argmax(axis=1)] == labels))
    tfidf = baselines.tfidf_logistic_regression(train_texts, train_labels)
    results["tfidf_trained_on_the_same_split"] = float(np.mean(np.asarray(tfidf.predict(texts)) == labels))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
