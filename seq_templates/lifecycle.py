"""The life of a training run, shared by every app: :func:`train` runs an app's regions in order.

An app file holds the code of every step, in region order (1 load ... 7 check);
``main`` hands the module to :func:`train`, which calls the regions one after the
other and does the chores around them (seeds, the run directory, ``config.yaml`` and
``run.json``, saving and restoring preprocessing on ``--resume``, checkpoints,
``model.keras``, ``metrics.json``, the export and the parity check)::

    config, raw_data = load_raw_data(data)                              # 1. load
    preprocessing = build_preprocessing(config, raw_data["train"])       # 2. preprocess
    model = build_model(config, preprocessing)                           # 3. build model
    fit(model, make_dataset(train), make_dataset(validation))            # 4. train -> model.keras
    serving = serving_from_run(app, run directory)                       # from model.keras alone
    metrics = evaluate(serving predictors, raw_data, config, run dir)    # 5. evaluate
    export/N = serving archive + assets                                  # 6. export
    check the reloaded export answers like the serving functions         # 7. check

**One source of truth per run.** Training selects the weights (best epoch on
``train.monitor``, weight averaging) inside ``training.fit``; ``model.keras`` is written
after that, and everything later derives from ``model.keras`` + ``preprocessing.json``
through :func:`load_trained`: evaluation in training, ``export/1``, ``seq-templates
export`` (``export/2`` answers exactly like ``export/1``), ``seq-templates evaluate``
(through the export). An interrupted run is the one exception, as it has no ``model.keras``
yet: ``--resume`` restores ``preprocessing.json`` (the same ``state.load``) and the last
epoch's checkpoint, with early stopping's best weights beside it, brought forward to the last step
backup when the run was killed mid-epoch.

Data is loaded before the run directory exists, so bad data leaves nothing behind.

**Several workers** (``train.strategy``, :mod:`seq_templates.distribute`): every worker runs the
regions up to training alike; only the chief keeps a run directory and goes on to evaluate and
export. The other workers train in a scratch folder that is removed when their training ends.
"""

import contextlib
import dataclasses
import datetime
import gc
import json
import pathlib
import sys
import tempfile

from seq_templates import apps_loader
from seq_templates import auto_settings
from seq_templates import config as config_module
from seq_templates import distribute
from seq_templates import errors
from seq_templates import export
from seq_templates import run_directory
from seq_templates import train_arguments
from seq_templates import training
from seq_templates.preprocessing import state



@dataclasses.dataclass
class Trained:
    """What a run directory holds, read by :func:`load_trained` (the one reader).

    Attributes:
        config: The resolved configuration (``config.yaml``).
        preprocessing: ``{name: layer}`` restored from ``preprocessing.json``.
        model: The trained network from ``model.keras`` (its selected weights).
    """

    config: dict
    preprocessing: dict
    model: object


@dataclasses.dataclass
class Serving:
    """An app's serving graph: what ``build_serving`` returns, ready to evaluate and export.

    Attributes:
        archive: The ``keras.export.ExportArchive`` with the endpoints added.
        endpoints: ``{signature name: tf.function}``, ``serving_default`` among them.
        assets: ``assets.extra/`` files the app adds (name to text, or to JSON-able data).
    """

    archive: object
    endpoints: dict
    assets: dict

    def predictors(self):
        """``{signature name: predict}`` over whole splits (``export.batch_predictors``)."""
        return export.batch_predictors(self.endpoints)


def load_trained(app, run_path):
    """Reads a run's configuration, preprocessing and trained model: every verb's one way in.

    Args:
        app: The run's app module.
        run_path: The run directory (complete, or ``.partial`` while training).

    Returns:
        A :class:`Trained`.
    """
    import keras

    run_path = pathlib.Path(run_path)
    for name in ("config.yaml", "preprocessing.json", "model.keras"):
        if not (run_path / name).is_file():
            raise errors.SeqTemplatesError(f"'{run_path}' has no {name}; pass a run directory made by "
                                           "seq-templates train (an interrupted one finishes with --resume).")
    config = config_module.load(app.CONFIG_SECTIONS, run_path / "config.yaml")
    return Trained(config, state.load(run_path / "preprocessing.json"),
                   keras.saving.load_model(run_path / "model.keras"))


def serving_from_run(app, run_path):
    """The app's serving graph over the run's ``model.keras`` and ``preprocessing.json``.

    Returns:
        ``(config, Serving)``.
    """
    trained = load_trained(app, run_path)
    archive, endpoints, assets = app.build_serving(trained.model, trained.preprocessing, trained.config)
    return trained.config, Serving(archive, endpoints, dict(assets or {}))


def write_export(serving, config, metrics, export_root):
    """Writes the next SavedModel version with the app's assets, ``config.json``, ``metrics.json``
    and the request bounds the server takes as this model's defaults (``request_limits.json``:
    ``limits.export_defaults``, when it derives any)."""
    from seq_templates.serving import limits

    assets = {**serving.assets, "config.json": config_module.to_dict(config)}
    if metrics is not None:
        assets["metrics.json"] = metrics
    recorded = limits.export_defaults(serving.assets)
    if recorded is not None:
        assets[limits.EXPORT_FILE] = recorded
    return export.write(serving.archive, export_root, assets)


def train(app, argv=None, extra_callbacks=()):
    """Runs an app's seven regions in order (its ``main``); returns the exit status 0.

    Args:
        app: The app module (``sys.modules[__name__]`` in its ``main``).
        argv: Command-line arguments (None for ``sys.argv[1:]``).
        extra_callbacks: More Keras callbacks for ``fit``, after the app's own (the tuner's
            pruning callback, which reads the app's validation score from the logs).
    """
    run = start(argv, app.CONFIG_SECTIONS, app.TASK, app.__file__,
                description=(app.__doc__ or app.TASK).strip().splitlines()[0])
    if hasattr(app, "check_settings"):
        app.check_settings(run.config)  # the user's settings, before any data is read
    if hasattr(app, "auto_settings"):
        run.choose_settings(app)  # settings that follow the data, before anything else reads them
        if hasattr(app, "check_settings"):
            app.check_settings(run.config)
    config = run.config
    raw_data = app.load_raw_data(config["data"])  # 1. load (before any folder is made)
    print(f"Data: {', '.join(f'{name} {_count(split)}' for name, split in raw_data.items())}")
    with run.directory():
        preprocessing = run.preprocessing(app.build_preprocessing, raw_data["train"])  # 2. preprocess
        run.fit_to_budget(app, preprocessing, raw_data["train"])  # auto widths the budget allows
        config = run.config
        train_dataset = app.make_dataset(raw_data["train"], preprocessing, config, shuffle=True)
        validation_dataset = app.make_dataset(raw_data["validation"], preprocessing, config)
        model = run.model(app.build_model, preprocessing)  # 3. build model (the checkpoint's on --resume)
        callbacks = (app.training_callbacks(preprocessing, config, raw_data)
                     if hasattr(app, "training_callbacks") else []) + list(extra_callbacks)
        run.fit(model, train_dataset, validation_dataset, callbacks=callbacks)  # 4. train -> model.keras
        if not run.is_chief:  # the chief evaluates and exports; this worker's scratch folder goes
            return 0
        serving = run.serving(app)  # from model.keras, as `seq-templates export` builds it
        metrics = run.record_metrics(evaluate_splits(app, serving.predictors(), raw_data, config,  # 5.
                                                     run.path))
        if hasattr(app, "summary"):
            print(app.summary(metrics))
        print_versus_baseline(metrics)
        version_path = run.export(serving)  # 6. export
        run.check_export(version_path, serving.endpoints, app.example_inputs(raw_data, config))  # 7. check
    return 0


def evaluate_splits(app, predictors, raw_data, config, run_path):
    """The app's ``evaluate`` on test, and, with a ``HEADLINE``, the model beside its best baseline.

    With ``app.HEADLINE`` the validation split is scored the same way (its plots and samples go to
    ``validation/`` in the run directory) and the metrics get ``versus_baseline``: ``{"validation":
    ..., "test": ...}`` of ``report.versus_baseline``.

    Returns:
        The test metrics (what ``metrics.json`` holds).
    """
    from seq_templates.evaluation import report

    metrics = app.evaluate(predictors, raw_data, config, run_path)
    headline = getattr(app, "HEADLINE", None)
    if headline is not None:
        validation = app.evaluate(predictors, {**raw_data, "test": raw_data["validation"]}, config,
                                  pathlib.Path(run_path) / "validation")
        metrics["versus_baseline"] = {"validation": report.versus_baseline(validation, headline),
                                      "test": report.versus_baseline(metrics, headline)}
    return metrics


def print_versus_baseline(metrics, file=None):
    """Prints whether the model beat its best baseline on validation and on test (a WARNING if not)."""
    from seq_templates.evaluation import report

    for split, comparison in (metrics.get("versus_baseline") or {}).items():
        print(report.describe(split, comparison), file=file, flush=True)


def _count(split):
    """Examples in a split: the length of its first column, or of the split itself (a text)."""
    return getattr(split, "rows", None) or (len(split[0]) if isinstance(split, tuple) else len(split))


def start(argv, section_classes, task, app_file, description=None):
    """Parses the training arguments, seeds every generator and returns the :class:`Run`.

    Args:
        argv: Command-line arguments (None for ``sys.argv[1:]``).
        section_classes: The app's ``CONFIG_SECTIONS``.
        task: The template name (default run directory ``runs/<task>-<time>``).
        app_file: The app's ``__file__``; its ``configs/`` folder holds the presets.
        description: Shown by ``--help``.

    Returns:
        A :class:`Run` whose directory is not created yet.

    Raises:
        SeqTemplatesError: Bad arguments, config files or values.
    """
    app_file = pathlib.Path(app_file).resolve()
    arguments = train_arguments.parse(argv, section_classes, task, description=description,
                                      configs_folder=app_file.parent / "configs")
    if arguments.preset:
        print(f"Settings for this dataset: {arguments.preset} (under --config/--set; --no-preset skips it)")
    check_dataset_task(getattr(arguments.config["data"], "dataset", None), task)
    if arguments.resumed_changes:
        changed = ", ".join(f"{key}={_lookup(arguments.config, key)!r}" for key in arguments.resumed_changes)
        print(f"Resuming with changed settings: {changed}")
    # Before TensorFlow runs anything: a multi-worker strategy sets collective operations up first.
    distribution = distribute.setup(arguments.config["train"].strategy)
    training.set_seed(arguments.config["train"].seed)
    return Run(arguments, task, app_file, distribution)


def check_dataset_task(dataset, task):
    """Refuses a bundled template's run on a dataset recipe written for another bundled template.

    Raises:
        SeqTemplatesError: Naming the dataset's format and the template that reads it.
    """
    from seq_templates.data import registry

    templates = apps_loader.list_templates()
    if not dataset or task not in templates:
        return
    recipe = registry.get_recipe(dataset)
    owner = recipe.get("task")
    if owner in templates and owner != task:
        raise errors.SeqTemplatesError(
            f"Dataset '{dataset}' holds {owner} data (format {recipe.get('format', '?')}), which the {task} "
            f"template does not read: run `seq-templates train {owner} --dataset {dataset}`, or pick a {task} "
            "dataset (`seq-templates list`) or your own file (--data PATH).")


def _lookup(config, key):
    section, name = key.split(".", 1)
    return getattr(config[section], name)


class Run:
    """One training run: its configuration, its directory and what it has produced so far.

    Args:
        arguments: The parsed :class:`~seq_templates.train_arguments.TrainArguments`.
        task: The template name.
        app_file: The app file (recorded in ``run.json`` so ``evaluate``/``export`` find it).
        distribution: The :class:`~seq_templates.distribute.Distribution` training runs under;
            None: one process on one device.
    """

    def __init__(self, arguments, task, app_file, distribution=None):
        self.arguments = arguments
        self.task = task
        self.app_file = pathlib.Path(app_file)
        self.distribution = distribution
        self.path = None  # the folder being written: <output-dir>.partial while the run is open
        self.metrics = None
        self.version_path = None
        self.auto_choices = []  # the auto_settings.Choice values applied (run.json lists them)
        self.budget_rule = None  # an auto_settings.WithinBudget left for fit_to_budget
        self._checkpoint = None

    @property
    def config(self):
        """The resolved configuration (dict of section name to dataclass)."""
        return self.arguments.config

    @property
    def output_dir(self):
        """The run directory once complete."""
        return self.arguments.output_dir

    @property
    def is_chief(self):
        """Whether this process writes the run directory (every process but a multi-worker run's others)."""
        return self.distribution is None or self.distribution.is_chief

    @property
    def _strategy(self):
        return self.distribution.strategy if self.distribution is not None else None

    @property
    def _resume_path(self):
        """Where ``--resume`` reads the interrupted run: the chief's ``.partial`` folder, for every worker."""
        return self.path if self.is_chief else run_directory.partial_path(self.output_dir)

    def choose_settings(self, app):
        """Applies the app's ``auto_settings(config)`` to the keys the user did not give; prints why.

        Only for real data on a new run with ``train.auto_settings`` on (``auto_settings.applies``).
        The chosen values replace the configuration's, so ``config.yaml`` holds them as plain values.
        """
        from seq_templates.data import registry

        data_config = self.config["data"]
        recipe = (registry.get_recipe(data_config.dataset) if data_config.dataset and not data_config.path
                  else None)
        if not auto_settings.applies(self.config, recipe, self.arguments.resume):
            return
        choices = app.auto_settings(self.config)
        config, self.auto_choices, kept = auto_settings.apply(self.config, app.CONFIG_SECTIONS, choices,
                                                              self.arguments.given_keys)
        self.arguments.config = config
        self.budget_rule = auto_settings.budget_rule(choices, self.arguments.given_keys)
        print(auto_settings.describe(self.auto_choices, kept, config), flush=True)
        training.set_seed(config["train"].seed)  # as if the hook had drawn nothing

    def fit_to_budget(self, app, preprocessing, train_split):
        """Narrows the auto widths to the widest whose epochs fit ``train.max_minutes``, timed here.

        Each candidate width (widest first, until one fits) is built with ``app.build_model`` and
        trained for a few batches of ``app.make_dataset``; the model is then thrown away. The
        chosen width goes into ``config.yaml`` and its timings into ``run.json``. Nothing to do
        without an ``auto_settings.WithinBudget`` (a user's width, or the narrowest already).
        """
        if self.budget_rule is None:
            return

        def seconds_per_token(config):
            print(f"Timing training steps at width {_lookup(config, self.budget_rule.keys[0])}...", flush=True)
            with distribute.building(config["train"]):  # timed in this process alone, mixed precision or not
                model = app.build_model(config, preprocessing)
            seconds = training.seconds_per_token(model, app.make_dataset(train_split, preprocessing, config,
                                                                         shuffle=True))
            del model
            gc.collect()
            # Every worker of a multi-worker run takes the slowest worker's time: they choose alike.
            return distribute.agree(seconds, self._strategy, "MAX")

        choices, _ = auto_settings.narrow_to_budget(self.budget_rule, self.config, seconds_per_token)
        config, applied, _ = auto_settings.apply(self.config, app.CONFIG_SECTIONS, choices, set())
        chosen = {choice.key: choice for choice in applied}
        self.auto_choices = [chosen.pop(choice.key, choice) for choice in self.auto_choices] + list(chosen.values())
        self.arguments.config = config
        print(auto_settings.describe(applied, [], config, title="Widths within the training budget"), flush=True)
        config_module.save(config, self.path / "config.yaml")
        self._write_run_info()
        training.set_seed(config["train"].seed)  # the run's model starts as if nothing had been timed

    @contextlib.contextmanager
    def directory(self):
        """Opens ``<output-dir>.partial``, writes ``config.yaml`` and ``run.json``, renames it when done.

        A user error inside the block removes the partial folder (a new run) or
        keeps it (a resumed one); an interruption keeps it for ``--resume``. A multi-worker run's
        other workers get a scratch folder instead, removed when the block ends.

        Yields:
            The partial folder (also ``self.path``).
        """
        if not self.is_chief:
            with tempfile.TemporaryDirectory(prefix=f"seq-templates-{self.task}-worker-") as scratch:
                self.path = pathlib.Path(scratch)
                config_module.save(self.config, self.path / "config.yaml")
                yield self.path
            return
        with run_directory.open_run(self.output_dir, self.arguments.resume) as path:
            self.path = path
            config_module.save(self.config, path / "config.yaml")
            self._write_run_info()
            yield path
        self.path = self.output_dir
        print(f"Run directory: {self.output_dir}")
        if self.version_path is not None:
            print(f"Exported SavedModel: {self.output_dir / 'export' / self.version_path.name}")

    def _write_run_info(self):
        info_path = self.path / "run.json"
        now = datetime.datetime.now().isoformat(timespec="seconds")
        if self.arguments.resume and info_path.is_file():
            info = json.loads(info_path.read_text(encoding="utf-8"))
            info.setdefault("resumed", []).append(
                {"at": now, "changed": {key: _lookup(self.config, key) for key in self.arguments.resumed_changes}})
        else:
            info = {"task": self.task, "app": str(self.app_file), "started": now}
            if self.auto_choices:
                info["auto_settings"] = {choice.key: {"value": choice.value, "reason": choice.reason}
                                         for choice in self.auto_choices}
        run_directory.write_json(info, info_path)

    def preprocessing(self, build, train_split):
        """Region 2: ``build(config, train_split)`` adapts the layers; on resume they are restored instead.

        Returns:
            ``{name: layer}``, also saved as ``preprocessing.json``.
        """
        state_path = self._resume_path / "preprocessing.json"
        if self.arguments.resume and state_path.is_file():
            return state.load(state_path)
        layers = build(self.config, train_split)
        state.save(layers, self.path / "preprocessing.json")
        return layers

    def model(self, build, preprocessing):
        """Region 3: ``build(config, preprocessing)``, or the checkpoint's model on resume.

        On resume the model is the last epoch's checkpoint brought forward to the step backup
        saved after it, if any (``training.load_checkpoint``; a run killed before its first
        epoch's checkpoint gets the backup in a newly built model).

        Either is made under the run's ``tf.distribute`` strategy (its variables mirrored on every
        replica) and, with ``train.mixed_precision``, the ``mixed_float16`` policy.

        Returns:
            The compiled ``keras.Model`` (its summary is printed unless ``train.verbose=0``).
        """
        train_config = self.config["train"]
        with distribute.building(train_config, self._strategy):
            self._checkpoint = (training.load_checkpoint(self._resume_path, lambda: build(self.config, preprocessing),
                                                         epochs=train_config.epochs)
                                if self.arguments.resume else None)
            if self._checkpoint is not None:
                epochs, steps = self._checkpoint.epochs_completed, self._checkpoint.steps_completed
                print(f"Resuming after epoch {epochs}" + (f" and {steps} steps of epoch {epochs + 1}" if steps else "")
                      + f" from {self._resume_path / 'checkpoints'}", flush=True)
                model = self._checkpoint.model
            else:
                model = build(self.config, preprocessing)
        if train_config.mixed_precision:
            distribute.check_float32_outputs(model)
        if self.distribution is not None and self.distribution.name != "one_device":
            print(f"Strategy: {self.distribution.name}, {self.distribution.num_replicas} replicas; each takes "
                  f"1/{self.distribution.num_replicas} of every batch of {train_config.batch_size}", flush=True)
        if self.config["train"].verbose != 0:
            model.summary(print_fn=lambda line, **_: print(line))
        return model

    def fit(self, model, train_dataset, validation_dataset, callbacks=None):
        """Region 4: trains with checkpoints, selection on ``train.monitor`` and history; saves ``model.keras``.

        ``model.keras`` is written after the last post-training choice (the best epoch's
        weights, the weight average), all made inside ``training.fit``.

        Args:
            model: The compiled model.
            train_dataset: Batched training dataset.
            validation_dataset: Batched validation dataset, or None.
            callbacks: More Keras callbacks for ``training.fit`` (an app's own, such as a metric
                scored on the validation split after every epoch).

        Returns:
            The history (dict of metric name to per-epoch values).
        """
        history = training.fit(model, train_dataset, validation_dataset, self.config["train"], self.path,
                               checkpoint=self._checkpoint, callbacks=callbacks)
        model.save(self.path / "model.keras")
        return history

    def record_metrics(self, metrics):
        """Region 5: writes ``metrics.json`` (also exported in ``assets.extra/``); returns ``metrics``."""
        self.metrics = metrics
        run_directory.write_json(metrics, self.path / "metrics.json")
        return metrics

    def serving(self, app):
        """The app's serving graph rebuilt from this run's ``model.keras`` (:func:`serving_from_run`)."""
        _, serving = serving_from_run(app, self.path)
        return serving

    def export(self, serving):
        """Region 6: writes the next SavedModel version (:func:`write_export`); returns its folder."""
        self.version_path = write_export(serving, self.config, self.metrics, self.path / "export")
        return self.version_path

    def check_export(self, version_path, endpoints, example_inputs):
        """Region 7: reloads the export and checks every signature answers as in memory; drops checkpoints.

        A signature with a ``seed`` input (sampled outputs) is called twice in memory with
        the example's seed first: the answers must agree before the export is compared.

        Args:
            version_path: The export version folder.
            endpoints: ``{signature name: tf.function}`` from the app's ``build_serving``.
            example_inputs: ``{signature name: {input name: values}}`` from the app.

        Returns:
            The largest absolute difference over floating-point outputs.

        Raises:
            RuntimeError: The export answers differently, or sampling ignores the seed.
        """
        largest = 0.0
        count = 0
        for signature_name, inputs in example_inputs.items():
            function = endpoints[signature_name]
            tensors = input_tensors(function, inputs)
            expected = export.to_numpy(function(**tensors))
            if "seed" in tensors:
                again = export.to_numpy(function(**tensors))
                if any(not (expected[name] == again[name]).all() for name in expected):
                    raise RuntimeError(f"{signature_name} answers differently for the same seed; sampling "
                                       "must draw from stateless random ops seeded by the `seed` input.")
            largest = max(largest, export.check_parity(version_path, tensors, expected,
                                                       signature_name=signature_name))
            count += len(next(iter(inputs.values())))
        training.remove_checkpoints(self.path)
        print(f"Export parity: max |difference| {largest:.2e} over {count} inputs "
              f"({', '.join(example_inputs)})")
        return largest


def input_tensors(function, inputs):
    """Converts ``{input name: values}`` to tensors for ``function``'s input signature."""
    specs = export.input_specs(function)
    return {name: export.to_tensor(values, specs[name]) for name, values in inputs.items()}


def export_run(run_path, export_root=None):
    """``seq-templates export``: the next version from ``model.keras``, as training wrote ``export/1``.

    Returns:
        The version folder.

    Raises:
        SeqTemplatesError: ``run_path`` is an unfinished (``.partial``) or damaged run, or
            ``export_root`` is a file.
    """
    run_path = pathlib.Path(run_path)
    if run_path.name.endswith(run_directory.PARTIAL_SUFFIX) and run_path.name != run_directory.PARTIAL_SUFFIX:
        finished = run_path.with_name(run_path.name[:-len(run_directory.PARTIAL_SUFFIX)])
        task = run_directory.read_run_info(run_path)["task"]
        raise errors.SeqTemplatesError(
            f"'{run_path}' is an unfinished run (a run trains in a {run_directory.PARTIAL_SUFFIX} folder, renamed "
            f"when it is complete); finish it with seq-templates train {task} --resume --output-dir {finished}, "
            f"then export '{finished}'.")
    export_root = pathlib.Path(export_root) if export_root else run_path / "export"
    if export_root.exists() and not export_root.is_dir():
        raise errors.SeqTemplatesError(
            f"'{export_root}' is a file, not a folder of export versions; give --export-dir a folder (a new one, "
            "or one holding versions 1, 2, ...).")
    app = apps_loader.load_run_app(run_path)
    config, serving = serving_from_run(app, run_path)
    metrics_path = run_path / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else None
    return write_export(serving, config, metrics, export_root)


def evaluate_run(run_path):
    """``seq-templates evaluate``: scores the run's export on its test split; rewrites ``metrics.json``.

    The app's ``evaluate`` gets the export's signatures, batched as in training, so it
    reproduces the metrics training wrote.

    Returns:
        The metrics.
    """
    run_path = pathlib.Path(run_path)
    app = apps_loader.load_run_app(run_path)
    config = config_module.load(app.CONFIG_SECTIONS, run_path / "config.yaml")
    raw_data = app.load_raw_data(config["data"])
    predictors = export.batch_predictors(export.load_signatures(run_path))
    metrics = evaluate_splits(app, predictors, raw_data, config, run_path)
    run_directory.write_json(metrics, run_path / "metrics.json")
    print_versus_baseline(metrics, file=sys.stderr)  # stdout carries the metrics as JSON
    return metrics
