"""The ``seq-templates`` command: list, train, tune, prepare, evaluate, predict, export, new, serve.

Mistakes a user can fix print one line (``error: ...``) and exit with status 2;
nothing half-written is left behind. TensorFlow is imported only by the verbs
that need it, so ``list``, ``new`` and ``--help`` answer at once.

The entry point :func:`main` (and only it) imports TensorFlow quietly for the
verbs that need it: TensorFlow's C++ log lines (oneDNN notices, CUDA probing on a
machine without a GPU, the harmless AVX-512 fallback) would bury the one-line
errors promised here. Nothing else in the package changes process-wide state.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import sys

from seq_templates import __version__
from seq_templates import errors

USER_ERROR_EXIT = 2
INTERRUPTED_EXIT = 130
TENSORFLOW_VERBS = ("train", "tune", "prepare", "evaluate", "predict", "export", "serve")
PREPARED_TEMPLATES = ("sentiment", "ner", "translation", "text_generation", "forecasting")  # bundled apps that prepare


def _import_tensorflow_quietly():
    """Imports TensorFlow with its C++ start-up log lines silenced (called by :func:`main` only).

    While it loads and probes devices, TensorFlow logs to file descriptor 2 whatever
    TF_CPP_MIN_LOG_LEVEL says, so descriptor 2 points at /dev/null for the import
    alone. Later, oneDNN logs at ERROR level that it falls back to Eigen kernels on
    CPUs without AVX-512, which is harmless, so the level defaults to 3; failing
    operations still raise Python exceptions. Set TF_CPP_MIN_LOG_LEVEL=0 to see
    every line.
    """
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved_descriptor = os.dup(2)
    null_descriptor = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null_descriptor, 2)
    try:
        import tensorflow

        tensorflow.config.list_physical_devices()  # device probing logs happen here, once
    finally:
        os.dup2(saved_descriptor, 2)
        os.close(saved_descriptor)
        os.close(null_descriptor)


def run_main(function, argv=None):
    """Runs ``function(argv)``, turning user errors into one line and exit status 2.

    Args:
        function: An app's ``main`` or a CLI verb.
        argv: Its arguments.

    Returns:
        The exit status.
    """
    try:
        return function(argv) or 0
    except errors.SeqTemplatesError as error:
        print(f"error: {error}", file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        print("interrupted.", file=sys.stderr)
        return INTERRUPTED_EXIT
    except OSError as error:  # a path the system refuses: a file where a folder goes, no permission, ...
        where = f"'{error.filename}': " if error.filename else ""
        print(f"error: {where}{error.strerror or error}; check the path (and that it is yours to write).",
              file=sys.stderr)
        return USER_ERROR_EXIT


def _command_list(arguments):
    from seq_templates import apps_loader
    from seq_templates.data import registry

    print("templates:")
    for task in apps_loader.list_templates():
        print(f"  {task:<24} {apps_loader.template_folder(task) / (task + '_app.py')}")
    print("datasets:")
    for recipe in registry.list_recipes():
        print(f"  {recipe['name']:<24} {recipe.get('task', ''):<16} {registry.availability(recipe):<22} "
              f"{recipe.get('title', '')}")
    return 0


def _command_train(arguments, rest):
    from seq_templates import apps_loader

    app = apps_loader.load_app(arguments.task)
    return app.main(rest)


def _command_tune(arguments, argv):
    from seq_templates import tuning

    if arguments.trials < 1 or arguments.max_minutes <= 0 or arguments.jobs < 1:
        raise errors.SeqTemplatesError("tune expects --trials >= 1, --max-minutes > 0 and --jobs >= 1, received "
                                       f"{arguments.trials}, {arguments.max_minutes}, {arguments.jobs}.")
    train_arguments = [*(["--data", arguments.data] if arguments.data else []),
                       *(["--dataset", arguments.dataset] if arguments.dataset else []),
                       *(argument for path in arguments.config for argument in ("--config", path)),
                       *(argument for override in arguments.overrides for argument in ("--set", override))]
    study_dir = arguments.study_dir or pathlib.Path("runs") / f"tune-{pathlib.Path(arguments.task).stem}"
    tuning.tune(arguments.task, train_arguments, arguments.trials, arguments.max_minutes, study_dir,
                jobs=arguments.jobs, seed=arguments.seed, worker_argv=argv)
    return 0


def _command_prepare(arguments):
    from seq_templates import apps_loader
    from seq_templates import train_arguments
    from seq_templates.data import prepared

    app = apps_loader.load_app(arguments.task)
    if not hasattr(app, "stream_examples") and not hasattr(app, "prepare_data"):
        raise errors.SeqTemplatesError(
            f"The {app.TASK} template does not read prepared data yet ({', '.join(PREPARED_TEMPLATES)} do); "
            "train it on the file itself.")
    limits = {"sample_rows": prepared.SAMPLE_ROWS, "max_heldout_rows": prepared.MAX_HELDOUT_ROWS,
              **getattr(app, "PREPARED_LIMITS", {})}  # an app's own defaults (text: pieces, not rows)
    for name in ("sample_rows", "max_heldout_rows"):
        if getattr(arguments, name) is None:
            setattr(arguments, name, limits[name])
    if arguments.sample_rows < 1 or arguments.max_heldout_rows < 1 or arguments.shard_mb <= 0:
        raise errors.SeqTemplatesError("prepare expects --sample-rows >= 1, --max-heldout-rows >= 1 and "
                                       f"--shard-mb > 0, received {arguments.sample_rows}, "
                                       f"{arguments.max_heldout_rows}, {arguments.shard_mb}.")
    parsed = train_arguments.parse(
        ["--data", arguments.data, *(argument for path in arguments.config for argument in ("--config", path)),
         *(argument for override in arguments.overrides for argument in ("--set", override))],
        app.CONFIG_SECTIONS, app.TASK, configs_folder=pathlib.Path(app.__file__).parent / "configs")
    data_config = parsed.config["data"]
    size, lines = prepared.measure(data_config.path)
    print(f"prepare: reading {data_config.path} ({size / 2 ** 20:,.1f} MB, about {lines:,} lines) into "
          f"{arguments.output}", flush=True)
    if hasattr(app, "prepare_data"):  # an app that writes its own prepared data (a series: whole windows)
        app.prepare_data(data_config, arguments.output, sample_rows=arguments.sample_rows,
                         max_heldout_rows=arguments.max_heldout_rows, shard_megabytes=arguments.shard_mb,
                         source_bytes=size, source_rows=lines)
        print(f"Prepared: {arguments.output}; train with `seq-templates train {arguments.task} --data "
              f"{arguments.output}`")
        return 0
    splits = {"train": app.stream_examples(data_config, data_config.path)}
    for name in ("validation", "test"):
        if getattr(data_config, f"{name}_path"):
            splits[name] = app.stream_examples(data_config, getattr(data_config, f"{name}_path"))
    prepared.prepare(
        arguments.output, app.PREPARED_COLUMNS, splits,
        estimated_rows=-(-size // limits["row_bytes"]) if "row_bytes" in limits else lines,  # rows: lines, or pieces
        fractions={"test": data_config.test_fraction, "validation": data_config.validation_fraction},
        seed=data_config.split_seed, sample_rows=arguments.sample_rows, max_heldout_rows=arguments.max_heldout_rows,
        shard_megabytes=arguments.shard_mb, source_bytes=size, task=app.TASK,
        source={"data": dataclasses.asdict(data_config)})
    print(f"Prepared: {arguments.output}; train with `seq-templates train {arguments.task} --data "
          f"{arguments.output}`")
    return 0


def _command_evaluate(arguments):
    from seq_templates import lifecycle

    metrics = lifecycle.evaluate_run(arguments.run)
    print(json.dumps(metrics, indent=2, default=str))
    return 0


def _command_export(arguments):
    from seq_templates import lifecycle

    version_path = lifecycle.export_run(arguments.run, arguments.export_dir)
    print(f"Exported SavedModel: {version_path}")
    return 0


def _parse_value(value, spec, where):
    """A string input takes the text as it is; a numeric one takes JSON (already parsed in a JSON object).

    A numeric value must be finite: JSON's ``NaN``, ``Infinity`` and ``-Infinity`` (which Python's
    ``json`` reads) are refused, as the server refuses them, rather than answered with NaN.
    """
    if spec.dtype.name == "string":
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise errors.SeqTemplatesError(
                f"{where}: {value!r} is not valid JSON; input '{spec.name}' takes {spec.dtype.name} values, "
                "e.g. '[1.0, 2.5, 3.0]'."
            ) from None
    non_finite = _first_non_finite(value)
    if non_finite is not None:
        raise errors.SeqTemplatesError(
            f"{where}: input '{spec.name}' holds {json.dumps(non_finite)}, which is not a finite number; give "
            f"finite {spec.dtype.name} values (fill in a missing value before predicting).")
    return value


def _first_non_finite(value):
    """The first float of a JSON value (nested lists) that is NaN or infinite, or None."""
    import math

    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return item
        if isinstance(item, (list, tuple)):
            pending.extend(reversed(item))
    return None


def _parse_parameters(parameters, specs):
    """``--param NAME=VALUE`` pairs, checked against the signature's inputs."""
    values = {}
    for parameter in parameters:
        name, separator, value = parameter.partition("=")
        if not separator or not name:
            raise errors.SeqTemplatesError(
                f"--param {parameter!r}: expected NAME=VALUE, e.g. --param temperature=0.7.")
        if name not in specs:
            raise errors.SeqTemplatesError(
                f"--param {name}: the signature has no input '{name}'; its inputs are "
                f"{', '.join(sorted(specs))} (choose another with --signature).")
        values[name] = _parse_value(value, specs[name], f"--param {name}")
    _check_decoding_values(values)
    return values


def _check_decoding_values(values):
    """The server's rules for decoding inputs (``beam_width`` >= 1, ``top_p`` in (0, 1], ...), as one line."""
    from seq_templates.serving import error_codes
    from seq_templates.serving import limits

    numbers = {name: value for name, value in values.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)}
    try:
        limits.check_values(numbers)
    except error_codes.ServingError as error:
        raise errors.SeqTemplatesError(error.message) from None


def _json_record(text, specs):
    """``text`` as a JSON object keyed by input names, or None when it is not one."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and record and set(record) <= set(specs) else None


def _parse_inputs(raw_inputs, specs, fixed, defaults):
    """One example per INPUT: a raw value or a record of input values.

    Args:
        raw_inputs: ``(where, value)`` pairs; a value is a string or an already-parsed ``dict``
            of input values (keys starting with ``_`` are context an app's ``read_prediction_file``
            leaves for its ``describe_prediction``, which finds them in the record's ``input``).
            When one input is left to give per example (the others are fixed or have
            defaults), a string is taken as that input's value as it is, unless it is
            a JSON object keyed by input names; otherwise it must be such an object.
        specs: The signature's input specs by name.
        fixed: Values given once for the whole request (``--param``); they win over records.
        defaults: The export's recorded defaults, used for inputs an example does not give.

    Returns:
        The request's columns, by input name.
    """
    per_example = {name: spec for name, spec in specs.items() if name not in fixed}
    required = [name for name in per_example if name not in defaults]
    columns = {name: [] for name in per_example}
    for where, raw in raw_inputs:
        record = raw if isinstance(raw, dict) else _json_record(raw, specs)
        if record is None and len(required) == 1:
            record = {required[0]: raw}
        if isinstance(record, dict):  # "_"-keys are the app's context for describe_prediction, not inputs
            record = {name: value for name, value in record.items() if not name.startswith("_")}
        if not isinstance(record, dict) or not set(required) <= set(record) or not set(record) <= set(specs):
            raise errors.SeqTemplatesError(
                f"{where}: the model takes several inputs; give each example as a JSON object with the keys "
                f"{', '.join(sorted(required))} (optional: {', '.join(sorted(set(specs) - set(required))) or 'none'}), "
                f"received {str(raw)[:80]!r}.")
        for name, spec in per_example.items():
            value = record[name] if name in record else defaults[name]
            columns[name].append(_parse_value(value, spec, where))
    for name, spec in per_example.items():
        if spec.shape.rank == 0:  # one value per call (e.g. a seed): every example must give the same
            values = {json.dumps(value) for value in columns[name]}
            if len(values) > 1:
                raise errors.SeqTemplatesError(
                    f"Input '{name}' takes one value for the whole request; the examples give {len(values)} "
                    "different ones. Give the same value in every example.")
            columns[name] = columns[name][0]
    for name, value in fixed.items():
        columns[name] = value if specs[name].shape.rank == 0 else [value] * len(raw_inputs)
    return columns


def _run_app(path):
    """The app and config of a run directory, or ``(None, None)`` for a bare export folder."""
    from seq_templates import apps_loader
    from seq_templates import config as config_module

    run_path = pathlib.Path(path)
    if not (run_path / "run.json").is_file() or not (run_path / "config.yaml").is_file():
        return None, None
    try:
        app = apps_loader.load_run_app(run_path)
    except errors.SeqTemplatesError:  # the app file moved: predict needs only the export
        return None, None
    return app, config_module.load(app.CONFIG_SECTIONS, run_path / "config.yaml")


def _call_export(predict, columns):
    """Calls the export; a value its graph rejects (a checked setting) is a one-line user error.

    The call runs in a daemon thread while this one waits, so Ctrl-C stops ``predict`` at once
    (a TensorFlow op holds a KeyboardInterrupt back until it returns: a long generation would
    ignore it for minutes); the abandoned call ends with the process.
    """
    import threading

    import tensorflow as tf

    answer = {}

    def call():
        try:
            answer["outputs"] = predict(columns)
        except BaseException as error:  # noqa: BLE001 - raised again in the waiting thread
            answer["error"] = error

    worker = threading.Thread(target=call, name="seq-templates-predict", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    try:
        if "error" in answer:
            raise answer["error"]
        return answer["outputs"]
    except tf.errors.InvalidArgumentError as error:
        lines = [line.strip() for line in str(error.message).splitlines() if line.strip()]
        reason = next((line for line in lines if "Expected" in line), lines[0] if lines else "invalid input")
        raise errors.SeqTemplatesError(f"The model rejected the input: {reason[:300]}") from None


def _command_predict(arguments):
    from seq_templates import batch_predict

    scorer = batch_predict.Scorer(arguments.model, arguments.signature, arguments.param, arguments.batch_size)
    raw_inputs = [(f"INPUT {index + 1}", value) for index, value in enumerate(arguments.inputs)]
    if arguments.output_file:  # streamed in batches, written through a temporary file
        batch_predict.predict_to_file(scorer, raw_inputs, arguments.input_file, arguments.output_file)
        return 0
    if arguments.input_file:
        raw_inputs += list(scorer.read_input_file(arguments.input_file))
    if not raw_inputs:
        raise errors.SeqTemplatesError("No inputs: give INPUT arguments or --input-file FILE.")
    records = scorer.score(raw_inputs)
    for note in scorer.notes:
        print(f"note: {note}", file=sys.stderr)
    for record in records:
        print(batch_predict.json_line(record))
    return 0


def _command_serve(arguments):
    from seq_templates.serving import server

    return server.run(arguments)


def _command_new(arguments):
    from seq_templates import apps_loader

    source = apps_loader.template_folder(arguments.task)
    destination = pathlib.Path(arguments.directory)
    if destination.exists() and not destination.is_dir():
        raise errors.SeqTemplatesError(
            f"'{destination}' is a file; give a new folder (or an empty one) for the app.")
    if destination.exists() and any(destination.iterdir()):
        raise errors.SeqTemplatesError(
            f"'{destination}' exists and is not empty; choose a new folder for the app."
        )
    temporary = destination.with_name(f".{destination.name}.tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    shutil.copytree(source, temporary, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "__init__.py"))
    if destination.exists():
        destination.rmdir()
    temporary.rename(destination)
    app_file = destination / f"{arguments.task}_app.py"
    print(f"Copied the {arguments.task} template to {destination}/")
    print(f"Edit {app_file}, then run: seq-templates train {app_file}   (or: python {app_file})")
    return 0


def build_parser():
    """Returns the ``seq-templates`` argument parser."""
    from seq_templates import train_arguments

    parser = argparse.ArgumentParser(
        prog="seq-templates",
        description="Keras 3 / TensorFlow RNN templates for sequence problems.",
    )
    parser.add_argument("--version", action="version", version=f"seq-templates {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    verbs.add_parser("list", help="list templates and datasets",
                     description="List the bundled templates and the registered datasets.")

    train = verbs.add_parser(
        "train", help="train a template or app file", epilog=train_arguments.EPILOG,
        description="Train TASK (a bundled template) or APP.py (an app file) into a run directory: "
                    "config.yaml, model.keras, export/1/, metrics.json, history.json, plots/, logs/.")
    train.add_argument("task", metavar="TASK|APP.py")
    train_arguments.add_arguments(train)

    tune = verbs.add_parser(
        "tune", help="search a template's settings with Optuna (TPE, median pruning)",
        description="Run (or continue) an Optuna study over TASK's search_space.yaml: every trial a run "
                    "directory under --study-dir, scored on the validation split's headline figure; the "
                    "study in STUDY/study.db continues where a killed tune stopped; STUDY/best.yaml is the "
                    "best trial's config (for --config); plots/ has the history and the importances.")
    tune.add_argument("task", metavar="TASK|APP.py")
    source = tune.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="PATH", help="a local data file")
    source.add_argument("--dataset", metavar="NAME", help="a registered dataset")
    tune.add_argument("--trials", type=int, default=20, help="trials the study holds when done (default 20)")
    tune.add_argument("--max-minutes", type=float, default=60.0,
                      help="the study's training budget; each trial gets MAX_MINUTES * JOBS / TRIALS")
    tune.add_argument("--jobs", type=int, default=1, help="worker processes on the same study (default 1)")
    tune.add_argument("--study-dir", metavar="DIR", help="the study folder (default runs/tune-TASK)")
    tune.add_argument("--config", metavar="FILE", action="append", default=[],
                      help="a config file every trial starts from; repeatable")
    tune.add_argument("--set", metavar="SECTION.KEY=VALUE", action="append", default=[], dest="overrides",
                      help="a value every trial keeps; repeatable")
    tune.add_argument("--seed", type=int, default=42, help="the sampler's seed")

    prepare = verbs.add_parser(
        "prepare", help="write a data file larger than memory as sharded TFRecords that train streams",
        description="Read --data (local or gs://...) one row at a time into sharded TFRecords under --output: "
                    "held-out splits carved by a seeded hash (or data.validation_path/test_path), a seeded sample "
                    "of training rows for vocabularies and auto settings, prepared.json last. Then `seq-templates "
                    "train TASK --data OUTPUT` streams the training rows. forecasting reads a series a chunk of rows "
                    "at a time onto its time grid and writes records of consecutive steps, its last steps whole "
                    "(the held-out blocks) and a sample of steps (the normalization).")
    prepare.add_argument("task", metavar="TASK|APP.py")
    prepare.add_argument("--data", metavar="PATH", required=True,
                         help="the data file (sentiment: CSV/TSV/JSONL; ner: CoNLL; translation: source<TAB>target; "
                              "text_generation: plain text; forecasting: CSV/TSV/Parquet with a time column)")
    prepare.add_argument("--output", metavar="DIR", required=True, help="a new folder (local or gs://...)")
    prepare.add_argument("--config", metavar="FILE", action="append", default=[],
                         help="a config file whose data section says how to read the file; repeatable")
    prepare.add_argument("--set", metavar="SECTION.KEY=VALUE", action="append", default=[], dest="overrides",
                         help="a data setting (data.text_column=review, data.validation_fraction=0.01); repeatable")
    prepare.add_argument("--sample-rows", type=int, default=None,
                         help="training rows kept as the seeded sample vocabularies are adapted on (default 100000; "
                              "text_generation: 1000 pieces of about 4 KB; forecasting: steps)")
    prepare.add_argument("--max-heldout-rows", type=int, default=None,
                         help="about the most rows a carved validation or test split takes (default 50000; "
                              "translation: 5000 pairs; text_generation: 100 pieces; forecasting: the last steps "
                              "kept whole for the validation and test blocks)")
    prepare.add_argument("--shard-mb", type=float, default=64.0,
                         help="megabytes of source text per training shard (default 64)")

    evaluate = verbs.add_parser("evaluate", help="re-evaluate a run's export on its test split",
                                description="Score RUN's exported model on the test split; "
                                            "rewrites RUN/metrics.json.")
    evaluate.add_argument("run", metavar="RUN")

    predict = verbs.add_parser(
        "predict", help="predict through an exported SavedModel",
        description="Feed raw INPUTs to the SavedModel of RUN (or an export folder) and print one "
                    "JSON line per input. Uses only the export, as TF Serving would. A one-input model "
                    "takes each INPUT as it is (a string, or JSON for numbers: '[1.5, 2.0]'); a model "
                    "with several inputs takes a JSON object per INPUT keyed by input name.")
    predict.add_argument("model", metavar="RUN|EXPORT")
    predict.add_argument("inputs", metavar="INPUT", nargs="*")
    predict.add_argument("--input-file", metavar="FILE", help="read one input per line from FILE")
    predict.add_argument("--output-file", metavar="FILE",
                         help="stream the inputs through the export in batches (bounded memory) and write one "
                              "JSON line per input to FILE, renamed into place when complete; progress on stderr")
    predict.add_argument("--batch-size", metavar="N", type=int, default=512,
                         help="inputs per call of the export (default 512)")
    predict.add_argument("--signature", default="serving_default",
                         help="the SavedModel signature to call (default serving_default)")
    predict.add_argument("--param", metavar="NAME=VALUE", action="append", default=[],
                         help="a value for the signature's input NAME, the same for every example "
                              "(e.g. --signature generate --param temperature=0.7); inputs not given "
                              "take the defaults the export records in assets.extra/serving.json")

    export = verbs.add_parser("export", help="export a run's model.keras as a new SavedModel version",
                              description="Rebuild the serving graph from RUN/model.keras and "
                                          "RUN/preprocessing.json, as training built export/1 (it answers "
                                          "the same); write the next version under RUN/export (or "
                                          "--export-dir).")
    export.add_argument("run", metavar="RUN")
    export.add_argument("--export-dir", metavar="DIR", help="folder of versions (default RUN/export)")

    from seq_templates.serving import server

    serve = verbs.add_parser(
        "serve", help="serve exports through the TensorFlow Serving REST API",
        description="Serve RUN's export (or an export folder, or several models) through TensorFlow "
                    "Serving's REST API: GET /v1/models/NAME[/metadata], POST /v1/models/NAME:predict. "
                    "New version folders are served without a restart. See docs/serving.md.")
    server.add_arguments(serve)

    new = verbs.add_parser("new", help="copy a template out to adapt",
                           description="Copy the TASK template (app file, README, configs) into DIR.")
    new.add_argument("task", metavar="TASK")
    new.add_argument("directory", metavar="DIR")

    from seq_templates import launch

    launch.add_arguments(verbs)  # `launch --workers N -- train ...`: local multi-worker training
    return parser


def _dispatch(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] == "train":
        # `train` forwards everything after TASK to the app's own main().
        arguments, _ = parser.parse_known_args(argv[:2] if len(argv) >= 2 and not argv[1].startswith("-")
                                               else argv)
        return _command_train(arguments, argv[2:])
    arguments = parser.parse_args(argv)
    if arguments.verb == "tune":
        return _command_tune(arguments, argv)
    if arguments.verb == "launch":
        return arguments.run(arguments)
    commands = {"list": _command_list, "prepare": _command_prepare, "evaluate": _command_evaluate,
                "predict": _command_predict, "export": _command_export, "new": _command_new, "serve": _command_serve}
    return commands[arguments.verb](arguments)


def main(argv=None):
    """Entry point of the ``seq-templates`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TENSORFLOW_VERBS and not {"-h", "--help"} & set(argv[:2]):
        _import_tensorflow_quietly()
    return run_main(_dispatch, argv)


if __name__ == "__main__":
    sys.exit(main())
