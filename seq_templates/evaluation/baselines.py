"""Simple baselines every report puts beside the model."""

from sklearn import feature_extraction
from sklearn import linear_model
from sklearn import pipeline


def tfidf_logistic_regression(train_texts, train_labels, seed=0, ngram_range=(1, 2), max_features=200000):
    """Fits a TF-IDF (word uni- and bigrams) + logistic-regression text classifier.

    Args:
        train_texts: Training texts (list of str).
        train_labels: Training labels (list of str).
        seed: Random state of the solver.
        ngram_range: Word n-gram range of the TF-IDF features.
        max_features: Vocabulary cap of the vectorizer.

    Returns:
        A fitted scikit-learn pipeline with ``predict`` and ``predict_proba``.
    """
    model = pipeline.make_pipeline(
        feature_extraction.text.TfidfVectorizer(ngram_range=ngram_range, max_features=max_features,
                                                sublinear_tf=True, lowercase=True),
        linear_model.LogisticRegression(max_iter=2000, C=4.0, random_state=seed),
    )
    model.fit(list(train_texts), list(train_labels))
    return model
