"""Finding and loading apps: bundled templates by task name, or any app file by path.

The package never imports an app; it loads one by path, so a copied and edited
app (``seq-templates new sentiment ./my_app``) runs exactly like a bundled one.

The app contract (duck-typed, no base class) is declared here once, in
:data:`REQUIRED` and :data:`OPTIONAL`; the CLI, ``lifecycle.train``, the tests and the
benchmarks call nothing else. Each app file defines its regions in run order:

Required:

- ``TASK``: the template name; ``CONFIG_SECTIONS``: ``{"data": ..., "model": ...,
  "train": ...}`` dataclasses, the data section extending ``config.DataConfig`` and the
  train section ``config.TrainConfig``.
- 1 ``load_raw_data(data_config)`` -> ``{"train"|"validation"|"test": split}``.
- 2 ``build_preprocessing(config, train_split)`` -> ``{name: adapted layer}``;
  ``make_dataset(split, preprocessing, config, shuffle=False)`` -> a batched
  ``tf.data.Dataset`` of ``(features, targets[, sample_weights])``.
- 3 ``build_model(config, preprocessing)`` -> a compiled functional model.
- 5 ``evaluate(predictors, raw_data, config, output_dir)`` -> a JSON-able dict with the
  model's and a baseline's metrics; ``predictors`` maps each signature name to
  ``predict({input name: values}) -> {output name: array}`` (``export.batch_predictors``),
  over the in-memory serving functions in training and over the export in
  ``seq-templates evaluate``.
- 6 ``build_serving(model, preprocessing, config)`` -> ``(archive, endpoints, assets)``:
  an ``ExportArchive``, ``{signature name: tf.function}`` with ``serving_default`` among
  them, and the ``assets.extra/`` files the export carries (name to text or JSON-able).
- 7 ``example_inputs(raw_data, config)`` -> ``{signature name: {input name: values}}``: what
  the parity check and the contract tests send to the export (a signature with a
  ``seed`` input is given one).
- ``main(argv=None)`` -> exit status (``lifecycle.train(module, argv)``).

Optional (called when present):

- ``auto_settings(config)`` -> ``auto_settings.Choice`` values: settings that follow the
  data, read off the training split (``seq_templates/auto_settings.py``); applied to the
  keys the user did not give, for real data only, before anything else reads the config.
- ``check_settings(config)``: raises ``SeqTemplatesError`` for settings that do not go
  together, before any data is read.
- ``training_callbacks(preprocessing, config, raw_data)`` -> more Keras callbacks for
  ``fit`` (an app's own validation score for ``train.monitor``, state resets).
- ``summary(metrics)`` -> the line printed after evaluation.
- ``HEADLINE``: ``(metric, "max"|"min", model path, baseline paths)`` into ``evaluate``'s metrics
  (``evaluation/report.py``): validation is then scored too, and ``metrics.json`` and the last
  lines say whether the model beat its best baseline on validation and on test.
- ``read_prediction_file(path, config)`` -> ``[(where, input)]`` for ``predict --input-file``
  on a run directory; ``describe_prediction(record, config)`` -> the record with readable
  fields added (entity spans, forecast timestamps).
"""

import importlib.util
import pathlib
import sys

from seq_templates import errors

REQUIRED_ATTRIBUTES = ("TASK", "CONFIG_SECTIONS")
REQUIRED = ("load_raw_data", "build_preprocessing", "make_dataset", "build_model", "evaluate", "build_serving",
            "example_inputs", "main")
OPTIONAL = ("auto_settings", "check_settings", "training_callbacks", "summary", "read_prediction_file",
            "describe_prediction")


def apps_directory():
    """Returns the folder of bundled apps (installed copy or the checkout's ``apps/``)."""
    package_folder = pathlib.Path(__file__).resolve().parent
    for candidate in (package_folder / "apps", package_folder.parent / "apps"):
        if candidate.is_dir() and any(candidate.glob("*/*_app.py")):
            return candidate
    raise errors.SeqTemplatesError(
        "No bundled apps found; reinstall seq-templates (pip install .) from a full checkout."
    )


def list_templates():
    """Returns the names of the bundled templates, sorted."""
    return sorted(path.parent.name for path in apps_directory().glob("*/*_app.py")
                  if path.stem == f"{path.parent.name}_app")


def template_folder(task):
    """Returns the folder of a bundled template.

    Raises:
        SeqTemplatesError: No template has that name.
    """
    folder = apps_directory() / task
    if not (folder / f"{task}_app.py").is_file():
        raise errors.SeqTemplatesError(
            f"Unknown template '{task}'; available templates are {', '.join(list_templates())}, "
            "or pass the path of an app file (something_app.py)."
        )
    return folder


def app_path(task_or_path):
    """Resolves a template name or an app file path to the app file."""
    candidate = pathlib.Path(task_or_path)
    if candidate.suffix == ".py":
        if not candidate.is_file():
            raise errors.SeqTemplatesError(f"App file '{candidate}' does not exist; check the path.")
        return candidate.resolve()
    return template_folder(str(task_or_path)) / f"{task_or_path}_app.py"


def load_app(task_or_path):
    """Imports an app module from its file and checks it has the app functions.

    Args:
        task_or_path: A bundled template name (``sentiment``) or an app file path.

    Returns:
        The module.

    Raises:
        SeqTemplatesError: The file is missing or lacks an app function.
    """
    path = app_path(task_or_path)
    module_name = f"seq_templates_app_{path.stem}_{abs(hash(str(path)))}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[module_name]
        raise
    missing = [name for name in REQUIRED if not callable(getattr(module, name, None))]
    missing += [name for name in REQUIRED_ATTRIBUTES if not hasattr(module, name)]
    missing += [f"{name} (not callable)" for name in OPTIONAL
                if hasattr(module, name) and not callable(getattr(module, name))]
    if missing:
        del sys.modules[module_name]
        raise errors.SeqTemplatesError(
            f"{path} is not an app: it lacks {', '.join(missing)}; start from "
            "`seq-templates new TASK DIR`."
        )
    return module


def load_run_app(run_path):
    """The app a run directory was trained with: its recorded app file, else the bundled template.

    Raises:
        SeqTemplatesError: ``run_path`` is not a run directory, or its app cannot be found.
    """
    from seq_templates import run_directory

    info = run_directory.read_run_info(run_path)
    app_file = pathlib.Path(info.get("app", ""))
    return load_app(str(app_file) if app_file.is_file() else info["task"])
