"""Command-line arguments of scripted training, shared by every app's ``main``.

``seq-templates train TASK ...`` and ``python TASK_app.py ...`` accept the same
options. The configuration precedence, lowest first: the app's defaults, then
the app's tuned settings for the dataset named by ``--dataset NAME`` (its
``configs/NAME.yaml``, when there is one and ``--no-preset`` is not given), then
``--config`` files left to right, then ``--set`` overrides left to right, then
``--data``/``--dataset``. With ``--resume`` the interrupted run's saved
``config.yaml`` replaces the defaults and the preset, and only the keys in
``config.RESUMABLE_KEYS`` (such as ``train.epochs``) may change: anything that
shapes the data, the preprocessing or the model of the checkpoint is refused.
"""

import argparse
import dataclasses
import pathlib
import typing

from seq_templates import config as config_module
from seq_templates import errors
from seq_templates import run_directory

EPILOG = (
    "Precedence, lowest first: app defaults < the app's configs/NAME.yaml for --dataset NAME "
    "(if it exists; --no-preset skips it) < --config files (left to right) < --set "
    "(left to right) < --data/--dataset. The resolved configuration is saved as config.yaml "
    "in the run directory."
)


@dataclasses.dataclass
class TrainArguments:
    """Parsed training arguments.

    Attributes:
        config: Dict of section name to dataclass instance.
        output_dir: Final run directory.
        resume: Whether to continue an interrupted run.
        preset: The app's config file applied for ``--dataset NAME``, or None.
        resumed_changes: With ``--resume``, the keys changed from the saved
            configuration (all in ``config.RESUMABLE_KEYS``).
        given_keys: The ``section.key`` names the preset, ``--config`` files and ``--set``
            give: auto settings (``seq_templates/auto_settings.py``) leave them alone.
    """

    config: dict
    output_dir: pathlib.Path
    resume: bool
    preset: typing.Optional[pathlib.Path] = None
    resumed_changes: typing.List[str] = dataclasses.field(default_factory=list)
    given_keys: typing.Set[str] = dataclasses.field(default_factory=set)


def add_arguments(parser):
    """Adds the scripted-training options to an ``argparse`` parser."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="PATH",
                        help="a local data file (CSV/TSV/JSONL for sentiment); sets data.path")
    source.add_argument("--dataset", metavar="NAME",
                        help="a registered dataset (see `seq-templates list`); sets data.dataset")
    parser.add_argument("--output-dir", metavar="DIR",
                        help="run directory (default runs/<task>-<timestamp>)")
    parser.add_argument("--config", metavar="FILE", action="append", default=[],
                        help="YAML config file with sections data/model/train, or the name of one "
                             "in the app's configs/ folder (e.g. sst2); repeatable")
    parser.add_argument("--set", metavar="SECTION.KEY=VALUE", action="append", default=[],
                        dest="overrides", help="override one value, e.g. train.epochs=3; repeatable")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run in --output-dir from its last checkpoint")
    parser.add_argument("--no-preset", action="store_true",
                        help="with --dataset NAME, do not apply the app's tuned configs/NAME.yaml")
    return parser


def build_parser(prog, description):
    """Returns a parser with the training options."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=EPILOG)
    return add_arguments(parser)


def config_path(value, configs_folder):
    """Returns ``value`` as a config file path: an existing path, else ``configs_folder/value.yaml``.

    A bare name such as ``conll2003`` finds the app's own ``configs/conll2003.yaml``, which
    also works after ``pip install .``, where the bundled apps live inside the package.
    """
    path = pathlib.Path(value)
    if path.is_file() or configs_folder is None or path.suffix or len(path.parts) > 1:
        return path
    named = pathlib.Path(configs_folder) / f"{value}.yaml"
    if named.is_file():
        return named
    available = sorted(candidate.stem for candidate in pathlib.Path(configs_folder).glob("*.yaml"))
    raise errors.SeqTemplatesError(
        f"Config '{value}' is neither a file nor a name in {configs_folder}; "
        f"give a YAML path or one of: {', '.join(available) or '(none)'}.")


def parse(argv, section_classes, task, prog=None, description=None, configs_folder=None):
    """Parses training arguments and resolves the configuration.

    Args:
        argv: Argument list (None for ``sys.argv[1:]``).
        section_classes: Mapping of section name to dataclass type.
        task: Template name, used for the default output directory.
        prog: Program name shown in ``--help``.
        description: Description shown in ``--help``.
        configs_folder: The app's ``configs/`` folder, where ``--config NAME``
            looks for ``NAME.yaml``.

    Returns:
        A :class:`TrainArguments`.

    Raises:
        SeqTemplatesError: For a bad config file, key or value, or an output
            directory that cannot be used.
    """
    data_section = section_classes.get("data")
    if not (isinstance(data_section, type) and issubclass(data_section, config_module.DataConfig)):
        raise errors.SeqTemplatesError(
            f"The app's data section must extend seq_templates.config.DataConfig (it holds dataset, path, "
            f"the split paths and encoding), received {getattr(data_section, '__name__', data_section)!r}.")
    parser = build_parser(prog or f"seq-templates train {task}", description)
    arguments = parser.parse_args(argv)
    if arguments.resume and not arguments.output_dir:
        parser.error("--resume needs --output-dir, the run to continue")
    output_dir = pathlib.Path(arguments.output_dir or run_directory.default_output_dir(task))
    run_directory.check_can_start(output_dir, arguments.resume)
    base = None
    if arguments.resume:
        saved = run_directory.partial_path(output_dir) / "config.yaml"
        info = saved.with_name("run.json")
        owner = run_directory.read_run_info(info.parent).get("task") if info.is_file() else task
        if owner != task:
            raise errors.SeqTemplatesError(
                f"'{saved.parent}' is an interrupted {owner} run; continue it with seq-templates train {owner} "
                f"--resume --output-dir {output_dir}.")
        if saved.is_file():
            base = config_module.load(section_classes, saved)
    preset = None
    if arguments.dataset and not arguments.resume and not arguments.no_preset and configs_folder is not None:
        candidate = pathlib.Path(configs_folder) / f"{arguments.dataset}.yaml"
        preset = candidate if candidate.is_file() else None
    config_paths = [config_path(value, configs_folder) for value in arguments.config]
    config = config_module.resolve(section_classes, ([preset] if preset else []) + config_paths,
                                   arguments.overrides, base=base)
    # The app's data section has `path` and `dataset` fields; a local file wins over a name.
    if arguments.data:
        # absolute, so `seq-templates evaluate RUN` works from any folder
        config["data"] = dataclasses.replace(config["data"], path=str(pathlib.Path(arguments.data).resolve()),
                                             dataset=None)
    if arguments.dataset:
        config["data"] = dataclasses.replace(config["data"], dataset=arguments.dataset, path=None)
    changes = config_module.differences(base, config) if base is not None else []
    refused = [key for key in changes if key not in config_module.RESUMABLE_KEYS]
    if refused:
        raise errors.SeqTemplatesError(
            f"--resume cannot change {', '.join(refused)}: the checkpoint's data, preprocessing or model "
            f"depend on them. Drop those --set/--config/--data values, or start a new run; only "
            f"{', '.join(config_module.RESUMABLE_KEYS)} may change on resume.")
    given = config_module.given_keys(([preset] if preset else []) + config_paths, arguments.overrides)
    return TrainArguments(config=config, output_dir=output_dir, resume=arguments.resume, preset=preset,
                          resumed_changes=changes, given_keys=given)
