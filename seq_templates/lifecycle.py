"""The life of a training run, shared by every app: ``main`` calls it region by region.

An app's ``main`` still reads top to bottom as the seven regions; the chores
around them (seeds, the run directory, ``config.yaml`` and ``run.json``, saving
and restoring preprocessing on ``--resume``, checkpoints, ``model.keras``,
``metrics.json``, export assets, the parity check and cleanup) live here::

    run = lifecycle.start(argv, CONFIG_SECTIONS, TASK, __file__)
    raw_data = load_raw_data(run.config["data"])                       # 1. load
    with run.directory():
        preprocessing = run.preprocessing(build_preprocessing, raw_data["train"])  # 2.
        ...make_dataset...
        model = run.model(build_model, preprocessing)                  # 3. build model
        run.fit(model, train_dataset, validation_dataset)              # 4. train
        archive, endpoints = build_serving(model, preprocessing, run.config)
        metrics = run.record_metrics(evaluate(...))                    # 5. evaluate
        version_path = run.export(archive, assets)                     # 6. export
        run.check_export(version_path, endpoints, example_inputs(raw_data, run.config))  # 7. check

Data is loaded before the run directory exists, so bad data leaves nothing behind.
"""

import contextlib
import datetime
import json
import pathlib

import tensorflow as tf

from seq_templates import config as config_module
from seq_templates import export
from seq_templates import run_directory
from seq_templates import train_arguments
from seq_templates import training
from seq_templates.preprocessing import state

# The seed the parity check gives a signature with a `seed` input that the example inputs leave out.
PARITY_SEED = 1234


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
    if arguments.resumed_changes:
        changed = ", ".join(f"{key}={_lookup(arguments.config, key)!r}" for key in arguments.resumed_changes)
        print(f"Resuming with changed settings: {changed}")
    training.set_seed(arguments.config["train"].seed)
    return Run(arguments, task, app_file)


def _lookup(config, key):
    section, name = key.split(".", 1)
    return getattr(config[section], name)


class Run:
    """One training run: its configuration, its directory and what it has produced so far.

    Args:
        arguments: The parsed :class:`~seq_templates.train_arguments.TrainArguments`.
        task: The template name.
        app_file: The app file (recorded in ``run.json`` so ``evaluate``/``export`` find it).
    """

    def __init__(self, arguments, task, app_file):
        self.arguments = arguments
        self.task = task
        self.app_file = pathlib.Path(app_file)
        self.path = None  # the folder being written: <output-dir>.partial while the run is open
        self.metrics = None
        self.version_path = None
        self._checkpoint = None

    @property
    def config(self):
        """The resolved configuration (dict of section name to dataclass)."""
        return self.arguments.config

    @property
    def output_dir(self):
        """The run directory once complete."""
        return self.arguments.output_dir

    @contextlib.contextmanager
    def directory(self):
        """Opens ``<output-dir>.partial``, writes ``config.yaml`` and ``run.json``, renames it when done.

        A user error inside the block removes the partial folder (a new run) or
        keeps it (a resumed one); an interruption keeps it for ``--resume``.

        Yields:
            The partial folder (also ``self.path``).
        """
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
        run_directory.write_json(info, info_path)

    def preprocessing(self, build, train_split):
        """Region 2: ``build(config, train_split)`` adapts the layers; on resume they are restored instead.

        Returns:
            ``{name: layer}``, also saved as ``preprocessing.json``.
        """
        state_path = self.path / "preprocessing.json"
        if self.arguments.resume and state_path.is_file():
            return state.load(state_path)
        layers = build(self.config, train_split)
        state.save(layers, state_path)
        return layers

    def model(self, build, preprocessing):
        """Region 3: ``build(config, preprocessing)``, or the checkpoint's model on resume.

        Returns:
            The compiled ``keras.Model`` (its summary is printed unless ``train.verbose=0``).
        """
        self._checkpoint = training.load_checkpoint(self.path) if self.arguments.resume else None
        if self._checkpoint is not None:
            print(f"Resuming after epoch {self._checkpoint.epochs_completed} from {self.path / 'checkpoints'}")
            model = self._checkpoint.model
        else:
            model = build(self.config, preprocessing)
        if self.config["train"].verbose != 0:
            model.summary(print_fn=lambda line, **_: print(line))
        return model

    def fit(self, model, train_dataset, validation_dataset, callbacks=None):
        """Region 4: trains with checkpoints, early stopping and history; saves ``model.keras``.

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

    def export(self, archive, assets=None):
        """Region 6: writes the next SavedModel version with ``config.json``/``metrics.json`` in ``assets.extra/``.

        Args:
            archive: The app's ``ExportArchive`` with its endpoints.
            assets: More ``assets.extra/`` files (name to text, or to JSON-able data).

        Returns:
            The version folder.
        """
        assets = {**(assets or {}), "config.json": config_module.to_dict(self.config)}
        if self.metrics is not None:
            assets["metrics.json"] = self.metrics
        self.version_path = export.write(archive, self.path / "export", assets)
        return self.version_path

    def check_export(self, version_path, endpoints, example_inputs, seed=PARITY_SEED):
        """Region 7: reloads the export and checks every signature answers as in memory; drops checkpoints.

        A signature with a ``seed`` input (sampled outputs) is checked in its
        deterministic mode: both sides get the same fixed ``seed``, and two
        in-memory calls must agree before the export is compared.

        Args:
            version_path: The export version folder.
            endpoints: ``{signature name: tf.function}`` from the app's ``build_serving``.
            example_inputs: ``{signature name: {input name: values}}`` from the app.
            seed: The seed given to a ``seed`` input the example inputs leave out.

        Returns:
            The largest absolute difference over floating-point outputs.

        Raises:
            RuntimeError: The export answers differently, or sampling ignores the seed.
        """
        largest = 0.0
        count = 0
        for signature_name, inputs in example_inputs.items():
            function = endpoints[signature_name]
            tensors = seeded_inputs(function, inputs, seed)
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


def seeded_inputs(function, inputs, seed=PARITY_SEED):
    """Converts ``{input name: values}`` to tensors for ``function``; adds ``seed`` where it takes one."""
    specs = export.input_specs(function)
    tensors = {name: export.to_tensor(values, specs[name]) for name, values in inputs.items()}
    if "seed" in specs and "seed" not in tensors:
        spec = specs["seed"]
        if spec.shape.rank == 0:
            tensors["seed"] = tf.constant(seed, dtype=spec.dtype)
        else:
            count = len(next(iter(inputs.values())))
            tensors["seed"] = tf.fill([count], tf.constant(seed, dtype=spec.dtype))
    return tensors
