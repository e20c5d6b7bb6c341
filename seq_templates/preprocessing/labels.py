"""Label lookups: label strings to ids and back, with unknown labels as errors."""

import keras

from seq_templates import errors


def label_vocabulary(labels, setting="data.label_column"):
    """Returns the sorted distinct labels of the training split.

    Labels that are all integers sort numerically (``2`` before ``10``).

    Args:
        labels: The training labels (str).
        setting: The setting that chose the label column, named in the error.

    Raises:
        SeqTemplatesError: Fewer than two distinct labels.
    """
    distinct = set(labels)
    if len(distinct) < 2:
        raise errors.SeqTemplatesError(
            f"Expected at least 2 distinct labels in the training data, received {sorted(distinct)}; "
            f"check {setting}."
        )
    if all(label.lstrip("-").isdigit() for label in distinct):
        return sorted(distinct, key=int)
    return sorted(distinct)


def check_known_labels(labels, vocabulary, split_name):
    """Raises a clear error for labels of ``split_name`` absent from training.

    Raises:
        SeqTemplatesError: Naming up to five unknown labels.
    """
    unknown = sorted(set(labels) - set(vocabulary))
    if unknown:
        raise errors.SeqTemplatesError(
            f"The {split_name} split has labels not seen in training: "
            f"{', '.join(map(repr, unknown[:5]))}; the known labels are "
            f"{', '.join(map(repr, vocabulary))}. Fix the data or merge those labels."
        )


def build_label_lookup(vocabulary, invert=False, name=None):
    """Returns a ``StringLookup`` mapping labels to ids 0..n-1 (or back with ``invert``).

    There is no OOV bucket: every label must be in ``vocabulary`` (check first
    with :func:`check_known_labels`).
    """
    return keras.layers.StringLookup(
        vocabulary=list(vocabulary), num_oov_indices=0, invert=invert, name=name
    )


def build_tag_lookup(vocabulary, invert=False, name=None):
    """Returns a ``StringLookup`` for per-token tags: id 0 is padding, the tags are 1..n.

    Padding never shares an id with a real tag, so padded steps can be told
    apart from tags (and masked out of the loss with a sample weight of 0).
    ``invert=True`` maps ids back to tags (id 0 to ``""``).
    """
    return keras.layers.StringLookup(
        vocabulary=list(vocabulary), num_oov_indices=0, mask_token="", invert=invert, name=name
    )
