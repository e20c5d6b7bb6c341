"""Region 1's skeleton, shared by the apps: ``--data`` files or a registered dataset, then the splits.

Every app reads its examples the same way: the local files of ``data.path`` (with
``data.validation_path`` and ``data.test_path`` when given) or the registered dataset
``data.dataset``; missing validation and test splits are carved from train with the
recipe's split strategy (the app's default for local files); ``data.max_train_samples``
caps the training split. What differs, the reader of one file, is the app's. A prepared
folder (``seq-templates prepare``, :mod:`seq_templates.data.prepared`) as ``data.path`` comes
back as its splits, the training split streamed from its shards.
:func:`without_gutenberg_boilerplate` is a ``transform`` for plain-text corpora.
"""

from seq_templates import errors
from seq_templates.data import prepared
from seq_templates.data import readers
from seq_templates.data import registry
from seq_templates.data import splits as data_splits

SPLIT_PATH_SETTINGS = {"validation": "validation_path", "test": "test_path"}


def load_splits(data_config, read_file, read_dataset=None, default_strategy="shuffle", transform=None,
                left_empty=None, cleaning=None, prepared_task=None, formats=None):
    """Reads the configured data and returns every split, carved and capped.

    Args:
        data_config: The app's ``data`` section (a ``config.DataConfig``).
        read_file: ``path -> split`` for the files of ``data.path`` and the split paths.
        read_dataset: ``name -> (splits, recipe)`` for ``data.dataset``; default
            ``registry.read`` (the reader follows the recipe's format).
        default_strategy: How to carve local files (``shuffle``, ``chronological``,
            ``position``); a recipe's own ``split_strategy`` wins for a dataset.
        transform: Optional ``split -> split`` applied to every split read, before carving
            (cleaning, direction).
        left_empty: The error when ``transform`` leaves no rows in any split (which
            setting dropped them), raised before any split is carved.
        cleaning: What ``transform`` drops, with its settings (e.g. ``"repeats dropped with
            data.deduplicate"``): when it leaves too few training rows to carve a split
            from, the error says how many of those read are left and why, not only that
            the carved split is empty.
        prepared_task: The template whose prepared folders (``seq-templates prepare``) the app
            reads as ``data.path``: its splits come back as :func:`prepared.load` reads them
            (the training split streamed). None: the app reads no prepared data.
        formats: The recipe formats the app reads (e.g. ``("text",)``); a dataset in
            another is refused. None: any.

    Returns:
        ``(splits, recipe)``: ``{"train"|"validation"|"test": split}`` and the dataset's
        recipe (None for local files).

    Raises:
        SeqTemplatesError: No data configured, or a reader's error.
    """
    if data_config.path and prepared.is_prepared(data_config.path):
        return _prepared_splits(data_config, prepared_task), None
    if data_config.path:
        splits = {"train": read_file(data_config.path)}
        for name, setting in SPLIT_PATH_SETTINGS.items():
            if getattr(data_config, setting):
                splits[name] = read_file(getattr(data_config, setting))
        recipe, strategy = None, default_strategy
    elif data_config.dataset:
        splits, recipe = (read_dataset or registry.read)(data_config.dataset)
        if formats is not None and recipe.get("format") not in formats:
            raise errors.SeqTemplatesError(
                f"Dataset '{data_config.dataset}' is in the {recipe.get('format')} format, which this template "
                f"does not read (it reads {', '.join(formats)}); choose another dataset or --data FILE.")
        strategy = data_splits.strategy_for_recipe(recipe, default_strategy)
    else:
        raise errors.SeqTemplatesError("No data: pass --data PATH or --dataset NAME.")
    read_rows = _rows(splits.get("train"))
    if transform is not None:
        splits = {name: transform(split) for name, split in splits.items()}
        if not any(split[0] if isinstance(split, tuple) else split for split in splits.values()):
            raise errors.SeqTemplatesError(left_empty or "No rows are left after cleaning; check the data.")
    try:
        splits = data_splits.carve(splits, {"test": data_config.test_fraction,
                                            "validation": data_config.validation_fraction},
                                   strategy, data_config.split_seed)
    except errors.SeqTemplatesError as error:
        kept_rows = _rows(splits.get("train"))
        if transform is None or read_rows is None or kept_rows is None or kept_rows == read_rows:
            raise
        reason = str(error)
        raise errors.SeqTemplatesError(
            f"Only {kept_rows:,} of the {read_rows:,} training rows read {'is' if kept_rows == 1 else 'are'} left "
            f"after cleaning{f' ({cleaning})' if cleaning else ''}, too few to carve the other splits from: "
            f"{reason[:1].lower()}{reason[1:]}") from None
    splits["train"] = data_splits.take_at_most(splits["train"], data_config.max_train_samples,
                                               data_config.split_seed)
    return splits, recipe


def _prepared_splits(data_config, task):
    """The splits of the prepared folder ``data.path``, refused where a setting would need every row."""
    if task is None:
        raise errors.SeqTemplatesError(
            f"'{data_config.path}' is a prepared dataset (seq-templates prepare), which this template does not "
            "read; give it the data file itself.")
    given = [f"data.{name}" for name in ("validation_path", "test_path", "max_train_samples")
             if getattr(data_config, name, None)]
    if given:
        raise errors.SeqTemplatesError(
            f"{', '.join(given)} cannot apply to the prepared dataset '{data_config.path}': its splits were fixed "
            "by `seq-templates prepare`; remove the setting, or prepare the data again with it.")
    return prepared.load(data_config.path, task)


def _rows(split):
    """The rows of a split of aligned columns (a tuple of lists), or None for another kind of split."""
    return len(split[0]) if isinstance(split, tuple) and split else None


def without_gutenberg_boilerplate(keep=False):
    """Returns a ``transform`` for :func:`load_splits` that cuts a Project Gutenberg header and footer.

    A book downloaded from Project Gutenberg starts with a header (title, release date, "This
    eBook is for the use of anyone...") and ends with some 350 lines of license: text a language
    model should not learn as the book's. The transform keeps what lies between the markers
    (:func:`~seq_templates.data.readers.gutenberg_body`) and prints one line saying how many lines
    it left out; a text without the markers passes unchanged.

    Args:
        keep: True to keep the header and footer (the setting ``data.keep_boilerplate``).

    Returns:
        A function ``text -> text``.
    """
    def transform(text):
        if not isinstance(text, str):  # another format's dataset: the app says it is not plain text
            return text
        start, end = readers.gutenberg_body(text)
        if keep or (start, end) == (0, len(text)):
            return text
        footer = text[end:].removeprefix("\n")  # the body's own last line end is not the footer's
        header_lines, footer_lines = len(text[:start].splitlines()), len(footer.splitlines())
        print(f"Data: left out a Project Gutenberg header ({header_lines} lines) and footer ({footer_lines} "
              "lines); data.keep_boilerplate=true keeps them.", flush=True)
        return text[start:end] + "\n"

    return transform
