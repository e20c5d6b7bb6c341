"""The dataset registry: named recipes in ``datasets/*.yaml`` resolved to local files.

A recipe is YAML only (no Python; a ``datasets`` package would shadow the Hugging
Face one). It names the dataset, its license and citation, the reader ``format``
and options, the files of each split with their sha256, and how to obtain them:
a ``download`` URL (+ archive handling), a ``tfds`` name, or a ``generator`` of the
project's own (offline defaults). :func:`resolve` looks in this order:

1. ``$SEQ_TEMPLATES_DATA/<name>/`` (e.g. ``SEQ_TEMPLATES_DATA=../shared/data``): the split
   files themselves, or the archive a recipe's ``packed: {file, sha256, folder}`` names, kept
   as it is there (a zip or tarball) and unpacked into the cache on first use,
2. the cache ``$SEQ_TEMPLATES_CACHE/<name>/`` (default ``~/.cache/seq_templates``),
3. data already prepared by tensorflow-datasets (when the recipe names one),
4. a download with checksum into the cache,

and otherwise raises one clear error saying how to supply the files.

:func:`read` resolves a dataset and reads every split with the reader its
``format`` names, passing the recipe's ``reader:`` options; the recipe's
``split_strategy`` (shuffle | chronological | position) says how
:func:`seq_templates.data.splits.carve` should take out missing splits.
"""

import dataclasses
import inspect
import os
import pathlib

import pandas
import yaml

from seq_templates import config as config_module
from seq_templates import errors
from seq_templates.data import download
from seq_templates.data import readers
from seq_templates.data import splits as data_splits
from seq_templates.data import synthetic

READER_SETTING_PREFIX = "reader."
"""Recipe errors name the recipe's ``reader:`` options (``reader.token_column``)."""

# A recipe's ``format`` → the reader of one of its files.
READERS_BY_FORMAT = {
    "csv": readers.read_text_classification,
    "tsv": readers.read_text_classification,
    "jsonl": readers.read_text_classification,
    "folders": readers.read_labelled_folders,
    "conll": readers.read_conll,
    "parallel_tsv": readers.read_parallel_tsv,
    "text": readers.read_plain_text,
    "timeseries_csv": readers.read_timeseries,
}

DATA_ENVIRONMENT_VARIABLE = "SEQ_TEMPLATES_DATA"
CACHE_ENVIRONMENT_VARIABLE = "SEQ_TEMPLATES_CACHE"


@dataclasses.dataclass
class ResolvedDataset:
    """A dataset located on disk.

    Attributes:
        name: Registry name.
        recipe: The recipe as a dict.
        root: Folder holding the files.
        splits: Mapping of split name to a list of paths (several paths are
            concatenated in order).
        source: Where it came from: ``data_dir``, ``cache``, ``tfds``,
            ``download`` or ``generated``.
    """

    name: str
    recipe: dict
    root: pathlib.Path
    splits: dict
    source: str


def recipe_directory():
    """Returns the folder of recipes: ``datasets/`` in a checkout, else the installed copy."""
    package_folder = pathlib.Path(__file__).resolve().parent.parent
    for candidate in (package_folder / "dataset_recipes", package_folder.parent / "datasets"):
        if candidate.is_dir() and any(candidate.glob("*.yaml")):
            return candidate
    raise errors.SeqTemplatesError(
        "No dataset recipes found; reinstall seq-templates (pip install .) from a full checkout."
    )


def cache_directory():
    """Returns the cache folder (``$SEQ_TEMPLATES_CACHE`` or ``~/.cache/seq_templates``)."""
    configured = os.environ.get(CACHE_ENVIRONMENT_VARIABLE)
    return pathlib.Path(configured) if configured else pathlib.Path.home() / ".cache" / "seq_templates"


def data_directory():
    """Returns ``$SEQ_TEMPLATES_DATA`` as a path, or None when unset."""
    configured = os.environ.get(DATA_ENVIRONMENT_VARIABLE)
    return pathlib.Path(configured) if configured else None


def list_recipes():
    """Returns every recipe (dicts), sorted by name."""
    recipes = []
    for path in sorted(recipe_directory().glob("*.yaml")):
        recipes.append(_load_recipe_file(path))
    return recipes


def get_recipe(name):
    """Returns the recipe called ``name``.

    Raises:
        SeqTemplatesError: No recipe has that name.
    """
    path = recipe_directory() / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(recipe["name"] for recipe in list_recipes())
        raise errors.SeqTemplatesError(
            f"Unknown dataset '{name}'; known datasets are {known}. Or train on a file with --data PATH."
        )
    return _load_recipe_file(path)


def availability(recipe):
    """Says where a dataset would come from without fetching anything."""
    if recipe.get("generator"):
        return "generated offline"
    for label, folder in (("SEQ_TEMPLATES_DATA", _data_folder(recipe)),
                          ("cache", cache_directory() / recipe["name"])):
        if folder is not None and _has_all_files(recipe, folder):
            return f"local ({label})"
    packed = recipe.get("packed") or {}
    if packed and _data_folder(recipe) is not None and (_data_folder(recipe) / packed["file"]).is_file():
        return "local (SEQ_TEMPLATES_DATA, packed)"
    return "download" if recipe.get("download") else "not available"


def resolve(name):
    """Locates (generating or downloading if needed) the files of a registered dataset.

    Args:
        name: Registry name, e.g. ``sst2``.

    Returns:
        A :class:`ResolvedDataset`.

    Raises:
        SeqTemplatesError: The dataset is unknown, a local file fails its checksum,
            or it cannot be found or downloaded (the message says how to supply it).
    """
    recipe = get_recipe(name)
    cache_folder = cache_directory() / name
    if recipe.get("generator"):
        if not _has_all_files(recipe, cache_folder):
            synthetic.GENERATORS[recipe["generator"]](cache_folder, seed=recipe.get("seed", 1234))
        return _resolved(recipe, cache_folder, "generated")
    data_folder = _data_folder(recipe)
    if data_folder is not None and _has_all_files(recipe, data_folder):
        _verify_checksums(recipe, data_folder)
        return _resolved(recipe, data_folder, "data_dir")
    packed = recipe.get("packed") or {}  # the files kept as one archive in the data folder
    if data_folder is not None and packed and (data_folder / packed["file"]).is_file():
        if not _has_all_files(recipe, cache_folder):
            _unpack_into(recipe, data_folder / packed["file"], packed.get("sha256"), cache_folder,
                         packed.get("folder", ""))
        return _resolved(recipe, cache_folder, "data_dir")
    if _has_all_files(recipe, cache_folder):
        _verify_checksums(recipe, cache_folder)
        return _resolved(recipe, cache_folder, "cache")
    if recipe.get("tfds") and _materialize_from_tfds(recipe, cache_folder):
        return _resolved(recipe, cache_folder, "tfds")
    failure = "the recipe has no download address"
    if recipe.get("download"):
        try:
            _download_into(recipe, cache_folder)
        except errors.SeqTemplatesError as error:
            failure = str(error)
        else:
            return _resolved(recipe, cache_folder, "download")
    where = (f"${DATA_ENVIRONMENT_VARIABLE}/{name}" if data_folder is not None
             else f"${DATA_ENVIRONMENT_VARIABLE}/{name} ({DATA_ENVIRONMENT_VARIABLE} is not set)")
    raise errors.SeqTemplatesError(
        f"Dataset '{name}' is not available: not in {where}, not in the cache {cache_folder}, "
        f"and {failure}. Put its files ({', '.join(_all_files(recipe))}) in one of those folders, "
        "or train on a local file with --data PATH."
    )


def reader_for_format(file_format):
    """Returns the reader function that reads one file of a recipe ``format``.

    ``csv``/``tsv``/``jsonl`` → :func:`readers.read_text_classification`,
    ``folders`` → :func:`readers.read_labelled_folders`, ``conll`` →
    :func:`readers.read_conll`, ``parallel_tsv`` → :func:`readers.read_parallel_tsv`,
    ``text`` → :func:`readers.read_plain_text`, ``timeseries_csv`` →
    :func:`readers.read_timeseries`.

    Raises:
        SeqTemplatesError: The format is not one of those.
    """
    if file_format not in READERS_BY_FORMAT:
        raise errors.SeqTemplatesError(
            f"Recipe format '{file_format}' is not one of {', '.join(READERS_BY_FORMAT)}."
        )
    return READERS_BY_FORMAT[file_format]


def reader_options(recipe):
    """Returns the keyword arguments a recipe's reader is called with (checked).

    Raises:
        SeqTemplatesError: The format is unknown, or a ``reader:`` key is not a
            parameter of its reader (the message lists the accepted ones).
    """
    where = _recipe_file_label(recipe)
    try:
        reader = reader_for_format(recipe.get("format"))
    except errors.SeqTemplatesError as error:
        raise errors.SeqTemplatesError(f"{where}: {error}") from None
    options = dict(recipe.get("reader") or {})
    accepted = _reader_parameters(reader)
    for key in options:
        if key not in accepted:
            raise errors.SeqTemplatesError(
                f"{where}: reader option '{key}' is not a setting of {reader.__name__} (format "
                f"{recipe['format']}); use {', '.join(accepted)}."
            )
    if recipe["format"] in ("csv", "tsv", "jsonl"):
        options["file_format"] = recipe["format"]
    if recipe["format"] == "folders" and recipe.get("folder_labels") is not None:
        options["label_folders"] = recipe["folder_labels"]
    return options


def read(name):
    """Resolves a registered dataset and reads every split.

    Several files of one split are concatenated in order: lists are extended,
    texts joined (a newline is added after a file that lacks a final one),
    DataFrames stacked (and checked to stay in time order).

    Args:
        name: Registry name, e.g. ``conll2003``.

    Returns:
        A tuple ``(splits, recipe)``: ``splits`` maps the recipe's split names
        (``train``/``validation``/``test``, or ``all``) to the reader's data: a
        tuple of aligned lists (text classification, CoNLL, parallel TSV), a
        ``str`` (text) or a ``pandas.DataFrame`` (time series). Take out missing
        splits with ``splits.carve(..., splits.strategy_for_recipe(recipe), ...)``.

    Raises:
        SeqTemplatesError: As :func:`resolve`, or a reader's error; errors caused
            by the recipe's settings say to check the recipe file.
    """
    recipe = get_recipe(name)
    options = reader_options(recipe)  # a broken recipe fails before any download
    reader = reader_for_format(recipe["format"])
    data_splits.strategy_for_recipe(recipe)
    dataset = resolve(name)
    result = {}
    for split_name, paths in dataset.splits.items():
        try:
            parts = [reader(path, setting_prefix=READER_SETTING_PREFIX, **options) for path in paths]
            result[split_name] = _concatenate(parts, paths)
        except errors.SeqTemplatesError as error:
            raise errors.SeqTemplatesError(
                f"{error} (reading dataset '{name}': check {_recipe_file_label(recipe)})"
            ) from None
    return result, recipe


def _concatenate(parts, paths):
    first = parts[0]
    if len(parts) == 1:
        return first
    if isinstance(first, str):
        return "".join(part if part.endswith("\n") else part + "\n" for part in parts[:-1]) + parts[-1]
    if isinstance(first, pandas.DataFrame):
        frame = pandas.concat(parts)
        for index in range(1, len(parts)):
            if parts[index].index[0] <= parts[index - 1].index[-1]:
                raise errors.SeqTemplatesError(
                    f"{paths[index]}: its first time {parts[index].index[0]} does not come after the "
                    f"last time of {paths[index - 1]} ({parts[index - 1].index[-1]}); list the files "
                    "of a split in time order, without overlap."
                )
        return frame
    return tuple([item for part in parts for item in part[column]] for column in range(len(first)))


def _reader_parameters(reader):
    skipped = {"path", "root", "setting_prefix", "file_format", "label_folders"}
    return [name for name in inspect.signature(reader).parameters if name not in skipped]


def _recipe_file_label(recipe):
    try:
        folder = recipe_directory().name
    except errors.SeqTemplatesError:
        folder = "datasets"
    return f"{folder}/{recipe.get('name')}.yaml"


def _load_recipe_file(path):
    try:
        recipe = config_module.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise errors.SeqTemplatesError(f"{path}: invalid YAML ({error}).") from None
    if not isinstance(recipe, dict) or recipe.get("name") != path.stem or "splits" not in recipe:
        raise errors.SeqTemplatesError(
            f"{path}: a recipe needs 'name' equal to the file name and 'splits'."
        )
    return recipe


def _data_folder(recipe):
    root = data_directory()
    return None if root is None else root / recipe["name"]


def _split_files(recipe):
    splits = {}
    for split_name, files in recipe["splits"].items():
        splits[split_name] = [files] if isinstance(files, str) else list(files)
    return splits


def _all_files(recipe):
    return [file for files in _split_files(recipe).values() for file in files]


def _has_all_files(recipe, folder):
    return folder.is_dir() and all((folder / file).exists() for file in _all_files(recipe))


def _verify_checksums(recipe, folder):
    for file, expected in (recipe.get("sha256") or {}).items():
        path = folder / file
        if expected and path.is_file() and download.sha256_of(path) != expected:
            raise errors.SeqTemplatesError(
                f"{path}: sha256 does not match the recipe ({expected}); the file is corrupted or "
                f"a different version. Replace it, or delete it so it is fetched again."
            )


def _resolved(recipe, folder, source):
    splits = {name: [folder / file for file in files] for name, files in _split_files(recipe).items()}
    return ResolvedDataset(recipe["name"], recipe, folder, splits, source)


def _download_into(recipe, cache_folder):
    spec = recipe["download"]
    url = spec["url"]
    archive_path = cache_folder / "downloads" / url.rsplit("/", 1)[-1]
    if not archive_path.exists():
        download.download(url, archive_path, spec.get("sha256"))
    if spec.get("archive", True) is False:
        archive_path.replace(cache_folder / _all_files(recipe)[0])
        _verify_checksums(recipe, cache_folder)
    else:
        _unpack_into(recipe, archive_path, None, cache_folder, spec.get("archive_folder", ""))


def _unpack_into(recipe, archive_path, sha256, cache_folder, archive_folder):
    """Extracts an archive (zip, tar, tar.gz) and moves the recipe's split files into ``cache_folder``."""
    if sha256 and download.sha256_of(archive_path) != sha256:
        raise errors.SeqTemplatesError(
            f"{archive_path}: sha256 does not match the recipe ({sha256}); the archive is corrupted or "
            "a different version. Replace it, or remove it so the dataset is fetched again.")
    cache_folder.mkdir(parents=True, exist_ok=True)
    extracted = download.extract(archive_path, cache_folder / "extracted")
    source_folder = extracted / archive_folder
    for file in _all_files(recipe):
        target = cache_folder / file
        if not target.exists():
            if not (source_folder / file).exists():
                raise errors.SeqTemplatesError(
                    f"{archive_path}: holds no {archive_folder + '/' if archive_folder else ''}{file}, "
                    f"which the recipe datasets/{recipe['name']}.yaml reads.")
            target.parent.mkdir(parents=True, exist_ok=True)
            (source_folder / file).replace(target)
    _verify_checksums(recipe, cache_folder)


def _materialize_from_tfds(recipe, cache_folder):
    """Writes a tfds-prepared dataset into the recipe's layout; False if not prepared."""
    spec = recipe["tfds"]
    if not spec.get("splits") or not spec.get("label_names"):
        return False  # the tfds name is information only: no layout to write the data in
    try:
        import tensorflow_datasets
    except ImportError:
        return False
    try:
        builder = tensorflow_datasets.builder(spec["name"])
    except Exception:  # noqa: BLE001 - an unknown or broken builder means "not available"
        return False
    if not pathlib.Path(builder.data_dir).is_dir():
        return False
    label_names = spec["label_names"]
    for split_name, folder in spec["splits"].items():
        dataset = tensorflow_datasets.as_numpy(builder.as_dataset(split=split_name))
        for index, example in enumerate(dataset):
            label_folder = cache_folder / folder / label_names[int(example[spec["label_key"]])]
            label_folder.mkdir(parents=True, exist_ok=True)
            (label_folder / f"{index}.txt").write_bytes(example[spec["text_key"]])
    return _has_all_files(recipe, cache_folder)

