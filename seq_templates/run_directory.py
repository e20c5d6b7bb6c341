"""The run directory's life cycle: nothing half-written is ever left under its name.

A run is built in ``<output_dir>.partial/`` and renamed to ``<output_dir>`` only
when every artifact is written. A mistake the user can fix (bad data, bad
config) removes the partial folder; an interruption (Ctrl-C, a crash) keeps it
so ``--resume`` can continue from the last epoch's checkpoint or step backup, but
only when it holds one: a new run that stops before either is saved leaves
nothing, so the same command can start again. A killed process (SIGKILL) removes
nothing: its partial folder is resumed from what it holds.
"""

import contextlib
import datetime
import json
import pathlib
import shutil
import sys

from seq_templates import errors

PARTIAL_SUFFIX = ".partial"
CHECKPOINT_FOLDER = "checkpoints"  # an epoch's checkpoint or a step backup (training.py) makes a run resumable


def default_output_dir(task):
    """Returns ``runs/<task>-<YYYYmmdd-HHMMSS>``."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return pathlib.Path("runs") / f"{task}-{stamp}"


def partial_path(output_dir):
    """The folder a run is built in before it is complete."""
    output_dir = pathlib.Path(output_dir)
    return output_dir.with_name(output_dir.name + PARTIAL_SUFFIX)


def check_can_start(output_dir, resume):
    """Raises a clear error when a run cannot start or resume at ``output_dir``."""
    output_dir = pathlib.Path(output_dir)
    work = partial_path(output_dir)
    if output_dir.exists():
        raise errors.SeqTemplatesError(
            f"Output directory '{output_dir}' already exists"
            + (" and is complete; nothing to resume." if resume else
               "; choose another --output-dir or delete it.")
        )
    if resume and not work.is_dir():
        raise errors.SeqTemplatesError(
            f"Nothing to resume: '{work}' does not exist; start the run without --resume."
        )
    if not resume and work.exists():
        raise errors.SeqTemplatesError(
            f"An interrupted run is at '{work}'; continue it with --resume --output-dir {output_dir}, "
            "or delete that folder."
        )


@contextlib.contextmanager
def open_run(output_dir, resume=False):
    """Yields the partial folder to write a run into; renames it when the block succeeds.

    Args:
        output_dir: The final run directory.
        resume: Continue an interrupted run in ``<output_dir>.partial``.

    Yields:
        The partial folder as a ``pathlib.Path``.
    """
    output_dir = pathlib.Path(output_dir)
    check_can_start(output_dir, resume)
    work = partial_path(output_dir)
    try:
        work.mkdir(parents=True, exist_ok=resume)
    except OSError as error:
        raise errors.SeqTemplatesError(
            f"Cannot create the run directory '{work}': {error.strerror or error}; choose another --output-dir."
        ) from None
    try:
        yield work
    except errors.SeqTemplatesError:
        if not resume:
            shutil.rmtree(work, ignore_errors=True)
        raise
    except BaseException:  # Ctrl-C, a crash
        if holds_a_checkpoint(work):
            print(f"The partial run '{work}' keeps its last checkpoint; continue it with --resume "
                  f"--output-dir {output_dir}, or delete that folder.", file=sys.stderr, flush=True)
        elif not resume:
            shutil.rmtree(work, ignore_errors=True)
            print(f"The run stopped before its first checkpoint; nothing is kept at '{work}', "
                  "so the same command can start it again.", file=sys.stderr, flush=True)
        raise
    work.rename(output_dir)


def holds_a_checkpoint(work):
    """Whether a partial run folder holds an epoch's checkpoint or a step backup (``--resume`` continues it)."""
    folder = pathlib.Path(work) / CHECKPOINT_FOLDER
    return folder.is_dir() and any(item.is_file() for item in folder.rglob("*"))


def write_json(data, path):
    """Writes JSON to ``path`` via a temp file and a rename."""
    path = pathlib.Path(path)
    temporary_path = path.with_name(f".{path.name}.tmp")
    temporary_path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    temporary_path.replace(path)
    return path


def read_run_info(run_path):
    """Reads ``run.json`` (task and app of a run).

    Raises:
        SeqTemplatesError: ``run_path`` is not a run directory.
    """
    run_path = pathlib.Path(run_path)
    info_path = run_path / "run.json"
    if not info_path.is_file():
        hint = (" (the run was interrupted; finish it with --resume)"
                if partial_path(run_path).is_dir() else "")
        raise errors.SeqTemplatesError(
            f"'{run_path}' is not a run directory: it has no run.json{hint}. Pass a folder made by "
            "seq-templates train."
        )
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise errors.SeqTemplatesError(f"{info_path}: not a readable run.json ({error}); the run directory is "
                                       "damaged: train it again.") from None
    if not isinstance(info, dict) or not isinstance(info.get("task"), str):
        raise errors.SeqTemplatesError(f"{info_path}: names no task; the run directory is damaged: train it again.")
    return info
