"""Configuration: small dataclasses per section, YAML files and ``--set`` overrides.

A run's configuration has three sections, ``data``, ``model`` and ``train``. Each
app declares its own ``data`` section by extending :class:`DataConfig` (where the
examples come from) and its own ``model`` dataclass; ``train`` is the shared
:class:`TrainConfig` (an app may subclass it). Values are resolved with one
precedence, lowest first:

1. the dataclass defaults of the app,
2. each ``--config FILE`` in the order given (later files win),
3. each ``--set section.key=value`` in the order given (later wins),

and the resolved configuration is saved as ``config.yaml`` in the run directory,
so ``--config runs/x/config.yaml`` reproduces a run.

Every value is checked against the field's type (``int``, ``float``, ``str``,
``bool``, optional and list types) and against ``choices``/``minimum`` given in the
field's metadata (for a list, ``minimum`` holds for every item, and ``increasing`` asks for
strictly increasing items); unknown keys are errors, never silently ignored.
"""

import dataclasses
import pathlib
import types
import typing

import yaml

from seq_templates import distribute
from seq_templates import errors

SECTION_NAMES = ("data", "model", "train")
# Keys that --resume may change: they steer how long and how loudly training goes
# on, not what the checkpoint's data, preprocessing or model are.
RESUMABLE_KEYS = ("train.epochs", "train.early_stopping_patience", "train.max_minutes", "train.verbose",
                  "train.tensorboard", "train.strategy", "train.backup_every_steps")
RATE = {"minimum": 0.0, "below": 1.0}  # a field's metadata: a dropout rate, a fraction, a momentum in [0, 1)
LENGTHS = {"minimum": 1, "increasing": True}  # a list field's metadata: sequence lengths, each >= 1, strictly rising


@dataclasses.dataclass
class DataConfig:
    """Where the examples come from: the base of every app's ``data`` section.

    An app extends it with its own fields (columns, vocabulary sizes, ...); the
    argument parser relies on ``dataset`` and ``path``, the readers on the rest.

    Attributes:
        dataset: A registered dataset name (``seq-templates list``).
        path: A local data file; wins over ``dataset``.
        validation_path: A local validation file; else carved from train.
        test_path: A local test file; else carved from train.
        format: The file format; None infers it from the extension.
        encoding: Text encoding of local files.
        validation_fraction: Share of train carved off for validation when the
            data has no validation split.
        test_fraction: Share carved off for test when the data has no test split.
        split_seed: Seed of shuffled carving and of ``max_train_samples``.
        max_train_samples: Train on at most this many examples (quick trials).
    """

    dataset: typing.Optional[str] = None
    path: typing.Optional[str] = None
    validation_path: typing.Optional[str] = None
    test_path: typing.Optional[str] = None
    format: typing.Optional[str] = None
    encoding: str = "utf-8"
    validation_fraction: float = dataclasses.field(default=0.1, metadata=RATE)
    test_fraction: float = dataclasses.field(default=0.1, metadata=RATE)
    split_seed: int = 1234
    max_train_samples: typing.Optional[int] = dataclasses.field(default=None, metadata={"minimum": 1})


CELLS = ("simple_rnn", "lstm", "gru")


@dataclasses.dataclass
class RecurrentConfig:
    """The recurrent stack a ``model`` section starts from; an app extends it with its own fields.

    Attributes:
        cell: ``simple_rnn``, ``lstm`` or ``gru``.
        units: Hidden units per layer (per direction when bidirectional).
        num_layers: Stacked recurrent layers.
        bidirectional: Read each sequence in both directions.
    """

    cell: str = dataclasses.field(default="lstm", metadata={"choices": CELLS})
    units: int = dataclasses.field(default=64, metadata={"minimum": 1})
    num_layers: int = dataclasses.field(default=1, metadata={"minimum": 1})
    bidirectional: bool = True


@dataclasses.dataclass
class TrainConfig:
    """Options shared by every template's training loop.

    Attributes:
        epochs: Maximum number of passes over the training split.
        batch_size: Examples per batch (sequences are bucketed by length).
        learning_rate: Adam learning rate.
        learning_rate_schedule: ``constant``, or ``cosine``: each epoch's learning
            rate follows half a cosine from ``learning_rate`` towards 0 over ``epochs``.
        warmup_steps: Raise the learning rate linearly from ``learning_rate / warmup_steps``
            to the schedule's rate over the run's first optimizer steps (a resume continues
            the count); 0: no warm-up.
        clipnorm: Gradient clipping by norm; ``null`` turns it off.
        ema_momentum: Keep an exponential moving average of the weights with this
            momentum (e.g. 0.999); validation, checkpoints and the final model use
            the averaged weights. ``null`` turns it off.
        ema_restart_each_epoch: With ``ema_momentum``, start every epoch from the
            averaged weights instead of the raw ones (as ``ema_overwrite_frequency``
            does in Keras, once per epoch); on SST-2 this adds about one point of
            dev accuracy (docs/benchmarks.md).
        monitor: What selection watches on the validation split: a logged name
            such as ``val_loss``, ``val_accuracy`` or an app's own score (NER's
            ``val_entity_f1``). Early stopping, the best weights kept at the end and
            the checkpoint's best weights all follow it.
        monitor_mode: ``min`` or ``max``: whether a smaller or a larger ``monitor`` is
            better; ``auto``: ``min`` for names with loss, error, mae, mse, mape,
            perplexity, crossentropy, divergence, hinge, cosh or bits in them, ``max``
            otherwise.
        early_stopping_patience: Epochs without improvement of ``monitor`` before
            stopping; 0 turns early stopping off.
        restore_best_weights: At the end of training keep the weights of the epoch
            with the best ``monitor`` (also without early stopping); false keeps the
            last epoch's.
        max_minutes: Stop training after this many minutes of wall clock (the
            epoch in progress is cut short, then validated and checkpointed as
            usual); counted from the start of each ``train`` or ``--resume``
            invocation. ``null``: no time limit.
        seed: Seed for Python, NumPy, TensorFlow and data shuffling.
        bucket_boundaries: Sequence-length boundaries for ``bucket_by_sequence_length``: strictly
            increasing lengths of at least 1 (``[]``: one bucket).
        shuffle_buffer_size: Examples in the shuffle buffer; 0 shuffles the whole split.
        tensorboard: Write TensorBoard logs to ``logs/`` in the run directory.
        verbose: Keras verbosity: 0 silent, 1 progress bar, 2 one line per epoch;
            null picks a bar on a terminal and a line per epoch otherwise.
        auto_settings: Derive the settings you did not give (sizes, budget, schedule) from
            the training split when the data is real (``seq_templates/auto_settings.py``, the
            app's ``auto_settings``); the offline demo datasets keep the defaults.
        strategy: How training is distributed (``seq_templates/distribute.py``, docs/scaling.md):
            ``one_device``, ``mirrored`` (this machine's GPUs), ``multi_worker`` (the processes
            ``TF_CONFIG`` describes; ``seq-templates launch`` starts local ones) or ``auto``
            (multi_worker under a TF_CONFIG of several workers, else mirrored with several GPUs,
            else one_device). ``batch_size`` is the global batch, split among the replicas.
        mixed_precision: Build the model under the ``mixed_float16`` policy (float16 computation,
            float32 variables, outputs and losses; a loss-scaling optimizer): faster on GPUs with
            tensor cores, slower on CPUs.
        backup_every_steps: Back the training state up every this many training steps
            (``keras.callbacks.BackupAndRestore`` with ``save_freq``, in ``checkpoints/backup``):
            a run killed mid-epoch (SIGKILL, a lost machine or worker) resumes with ``--resume``
            from the last backup instead of the last epoch. 0: epoch checkpoints only.
    """

    epochs: int = dataclasses.field(default=10, metadata={"minimum": 1})
    batch_size: int = dataclasses.field(default=64, metadata={"minimum": 1})
    learning_rate: float = dataclasses.field(default=1e-3, metadata={"minimum": 0.0})
    learning_rate_schedule: str = dataclasses.field(default="constant",
                                                    metadata={"choices": ("constant", "cosine")})
    warmup_steps: int = dataclasses.field(default=0, metadata={"minimum": 0})
    clipnorm: typing.Optional[float] = 1.0
    ema_momentum: typing.Optional[float] = dataclasses.field(default=None, metadata=RATE)
    ema_restart_each_epoch: bool = False
    monitor: str = "val_loss"
    monitor_mode: str = dataclasses.field(default="auto", metadata={"choices": ("auto", "min", "max")})
    early_stopping_patience: int = dataclasses.field(default=2, metadata={"minimum": 0})
    restore_best_weights: bool = True
    max_minutes: typing.Optional[float] = dataclasses.field(default=None, metadata={"minimum": 0.0})
    seed: int = 42
    bucket_boundaries: typing.List[int] = dataclasses.field(
        default_factory=lambda: [8, 16, 24, 32, 48, 64, 96, 128, 192, 256], metadata=LENGTHS
    )
    shuffle_buffer_size: int = dataclasses.field(default=0, metadata={"minimum": 0})
    tensorboard: bool = True
    verbose: typing.Optional[int] = dataclasses.field(default=None, metadata={"choices": (None, 0, 1, 2)})
    auto_settings: bool = True
    strategy: str = dataclasses.field(default="auto", metadata={"choices": distribute.STRATEGIES})
    mixed_precision: bool = False
    backup_every_steps: int = dataclasses.field(default=100, metadata={"minimum": 0})


def defaults(section_classes):
    """Returns a configuration made of each section's defaults.

    Args:
        section_classes: Mapping of section name to dataclass type.

    Returns:
        A dict of section name to dataclass instance.
    """
    return {name: section_class() for name, section_class in section_classes.items()}


def to_dict(config):
    """Converts a configuration (dict of dataclass instances) to plain dicts."""
    return {name: dataclasses.asdict(section) for name, section in config.items()}


def resolve(section_classes, config_paths=(), overrides=(), base=None):
    """Builds a configuration from defaults, YAML files and ``--set`` overrides.

    Args:
        section_classes: Mapping of section name to dataclass type.
        config_paths: YAML files, merged left to right.
        overrides: Strings ``section.key=value``; the value is parsed as YAML
            (``3`` is an int, ``null`` is None, ``[8, 16]`` is a list).
        base: Optional configuration to start from instead of the defaults
            (used by ``--resume``).

    Returns:
        A dict of section name to dataclass instance.

    Raises:
        SeqTemplatesError: A file is missing or malformed, a key is unknown, or
            a value has the wrong type or is out of range.
    """
    values = to_dict(base) if base is not None else to_dict(defaults(section_classes))
    for path in config_paths:
        document = _read_yaml(path)
        for section_name, section_values in document.items():
            if section_name not in section_classes:
                raise errors.SeqTemplatesError(
                    f"{path}: unknown config section '{section_name}'; expected one of "
                    f"{', '.join(section_classes)}."
                )
            if section_values is None:
                continue
            if not isinstance(section_values, dict):
                raise errors.SeqTemplatesError(
                    f"{path}: section '{section_name}' must be a mapping of keys to values, "
                    f"received {type(section_values).__name__}."
                )
            for key, value in section_values.items():
                _assign(values, section_classes, section_name, key, value, source=str(path))
    for override in overrides:
        section_name, key, value = _parse_override(override)
        _assign(values, section_classes, section_name, key, value, source=f"--set {override}")
    return {
        name: section_class(**values[name]) for name, section_class in section_classes.items()
    }


def resolve_values(section_classes, document, source):
    """Builds a configuration from ``{section: {key: value}}`` with the checks of :func:`resolve`."""
    values = to_dict(defaults(section_classes))
    for section_name, section_values in document.items():
        for key, value in section_values.items():
            _assign(values, section_classes, section_name, key, value, source=source)
    return {name: section_class(**values[name]) for name, section_class in section_classes.items()}


def given_keys(config_paths=(), overrides=()):
    """The ``section.key`` names that YAML files and ``--set`` overrides give (read, not checked)."""
    keys = set()
    for path in config_paths:
        for section_name, section_values in _read_yaml(path).items():
            keys.update(f"{section_name}.{key}" for key in (section_values or {}))
    for override in overrides:
        section_name, key, _ = _parse_override(override)
        keys.add(f"{section_name}.{key}")
    return keys


def differences(before, after):
    """Returns the ``section.key`` names whose values differ between two configurations."""
    before, after = to_dict(before), to_dict(after)
    return [f"{section}.{key}" for section in after for key in after[section]
            if before.get(section, {}).get(key) != after[section][key]]


def save(config, path):
    """Writes a configuration as YAML (via a temp file, then rename)."""
    path = pathlib.Path(path)
    temporary_path = path.with_name(path.name + ".tmp")
    temporary_path.write_text(yaml.safe_dump(to_dict(config), sort_keys=False), encoding="utf-8")
    temporary_path.replace(path)


def load(section_classes, path):
    """Reads a configuration saved by :func:`save`."""
    return resolve(section_classes, config_paths=[path])


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key '{key}' is given twice in one mapping; keep one", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def safe_load(text):
    """``yaml.safe_load`` with :class:`UniqueKeyLoader`: config files, recipes, search spaces."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _read_yaml(path):
    path = pathlib.Path(path)
    if not path.is_file():
        raise errors.SeqTemplatesError(
            f"Config file '{path}' does not exist; check the path given to --config."
        )
    try:
        document = safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise errors.SeqTemplatesError(
            f"{path}:{where}: invalid YAML ({problem}); fix the syntax of that line."
        ) from None
    except UnicodeDecodeError as error:
        raise errors.SeqTemplatesError(
            f"{path}: not UTF-8 text (byte {error.start}); save the config file as UTF-8."
        ) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise errors.SeqTemplatesError(
            f"{path}: expected a mapping with sections {', '.join(SECTION_NAMES)}, "
            f"received {type(document).__name__}."
        )
    return document


def _parse_override(override):
    name, separator, raw_value = override.partition("=")
    section_name, dot, key = name.strip().partition(".")
    if not separator or not dot or not key:
        raise errors.SeqTemplatesError(
            f"--set expects section.key=value (e.g. train.epochs=3), received '{override}'."
        )
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError:
        value = raw_value
    return section_name, key, value


def _assign(values, section_classes, section_name, key, value, source):
    if section_name not in section_classes:
        raise errors.SeqTemplatesError(
            f"{source}: unknown config section '{section_name}'; expected one of "
            f"{', '.join(section_classes)}."
        )
    fields = {field.name: field for field in dataclasses.fields(section_classes[section_name])}
    if key not in fields:
        raise errors.SeqTemplatesError(
            f"{source}: unknown key '{section_name}.{key}'; known keys are "
            f"{', '.join(section_name + '.' + name for name in fields)}."
        )
    field = fields[key]
    field_type = typing.get_type_hints(section_classes[section_name])[key]
    values[section_name][key] = _check_value(
        value, field_type, field.metadata, f"{section_name}.{key}", source
    )


def _check_value(value, field_type, metadata, name, source):
    coerced = _coerce(value, field_type)
    if coerced is _INVALID:
        raise errors.SeqTemplatesError(
            f"{source}: '{name}' expects {_describe(field_type)}, received {value!r}."
        )
    choices = metadata.get("choices")
    if choices is not None and coerced not in choices:
        raise errors.SeqTemplatesError(
            f"{source}: '{name}' expects one of {', '.join(map(str, choices))}, received {value!r}."
        )
    items = coerced if isinstance(coerced, list) else [] if coerced is None else [coerced]
    minimum = metadata.get("minimum")
    if minimum is not None and any(item < minimum for item in items):
        what = "values" if isinstance(coerced, list) else "a value"
        raise errors.SeqTemplatesError(
            f"{source}: '{name}' expects {what} of at least {minimum}, received {value!r}."
        )
    below = metadata.get("below")
    if below is not None and any(item >= below for item in items):
        what = "values" if isinstance(coerced, list) else "a value"
        raise errors.SeqTemplatesError(
            f"{source}: '{name}' expects {what} below {below}, received {value!r}."
        )
    interval = metadata.get("interval")  # (low, high): low < value <= high
    if interval is not None and not all(interval[0] < item <= interval[1] for item in items):
        raise errors.SeqTemplatesError(
            f"{source}: '{name}' expects a value in ({interval[0]:g}, {interval[1]:g}], received {value!r}."
        )
    if metadata.get("increasing") and any(later <= earlier for earlier, later in zip(items, items[1:])):
        raise errors.SeqTemplatesError(
            f"{source}: '{name}' expects strictly increasing values, received {value!r}; "
            f"sort them and drop repeats (e.g. {sorted(set(items))})."
        )
    return coerced


_INVALID = object()


def _coerce(value, field_type):
    origin = typing.get_origin(field_type)
    if origin in (typing.Union, types.UnionType):
        arguments = typing.get_args(field_type)
        if value is None and type(None) in arguments:
            return None
        for argument in arguments:
            if argument is type(None):
                continue
            coerced = _coerce(value, argument)
            if coerced is not _INVALID:
                return coerced
        return _INVALID
    if origin in (list, typing.List):
        (item_type,) = typing.get_args(field_type) or (typing.Any,)
        if not isinstance(value, (list, tuple)):
            return _INVALID
        items = [_coerce(item, item_type) for item in value]
        return _INVALID if any(item is _INVALID for item in items) else items
    if field_type is typing.Any:
        return value
    if field_type is bool:
        return value if isinstance(value, bool) else _INVALID
    if field_type is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _INVALID
    if field_type is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return _INVALID
    if field_type is str:  # an integer is taken as its digits: a column index written as a YAML number
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value if isinstance(value, str) else _INVALID
    return value


def _describe(field_type):
    origin = typing.get_origin(field_type)
    if origin in (typing.Union, types.UnionType):
        parts = [_describe(argument) for argument in typing.get_args(field_type)]
        return " or ".join(part for part in parts)
    if origin in (list, typing.List):
        (item_type,) = typing.get_args(field_type) or (typing.Any,)
        return f"a list of {_describe(item_type)} values"
    return {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
        type(None): "null",
    }.get(field_type, getattr(field_type, "__name__", str(field_type)))
