"""The model repository: version folders found, loaded, swapped and reported as TF Serving does.

Each served model has a base path of numeric version folders (``export/1/``,
``export/2/``, ...). :meth:`Repository.refresh` (called at start and then every
``poll_interval_seconds`` by a background thread) lists them, decides which
versions should serve from the model's version policy (by default the newest
one, as TF Serving), loads new ones with ``tf.saved_model.load`` and unloads the
ones no longer wanted, but only once a wanted version is available: a version
that fails to load is reported in the status with its error and the version
before it keeps serving (TF Serving's availability-preserving policy). A failed
version is tried again when its files change.

The model runs only through its SavedModel signatures; nothing here imports an
app or re-implements preprocessing.
"""

import dataclasses
import json
import logging
import pathlib
import re
import threading
import typing

from seq_templates.serving import chunking
from seq_templates.serving import config_files
from seq_templates.serving import error_codes
from seq_templates.serving import limits

LOGGER = logging.getLogger("seq_templates.serving")

# ModelVersionStatus.State names (tensorflow_serving/apis/get_model_status.proto).
START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


class Signature:
    """One signature of a loaded version, called with numpy inputs.

    Attributes:
        name: The signature name (``serving_default``, ...).
        input_specs: ``{input name: tf.TensorSpec}``.
        output_specs: ``{output name: tf.TensorSpec}``.
        batchable: Whether rows of several requests may be merged into one call;
            set to False by the batcher when merging cannot give each caller the
            answer it would get alone.
        merging_verified: Set by the batcher once a merged call answered like
            separate calls.
        resumable: Whether a long generation may run as several calls, each continuing
            the text of the one before (:mod:`chunking`); set from the export's declaration.
    """

    def __init__(self, name, function):
        self.name = name
        self.function = function
        self.input_specs = dict(function.structured_input_signature[1])
        self.output_specs = dict(function.structured_outputs)
        self.batchable = True
        self.merging_verified = False
        self.resumable = False

    def call(self, inputs):
        """Runs the signature.

        Args:
            inputs: ``{input name: numpy array or Python value}`` for every input.

        Returns:
            ``{output name: numpy array}`` (strings as bytes).

        Raises:
            ServingError: INVALID_ARGUMENT when TensorFlow rejects the inputs, INTERNAL
                (HTTP 500) for any other failure inside the model.
        """
        import tensorflow as tf

        try:
            tensors = {name: tf.constant(value, dtype=self.input_specs[name].dtype) for name, value in inputs.items()}
            outputs = self.function(**tensors)
            return {name: tensor.numpy() for name, tensor in outputs.items()}
        except tf.errors.InvalidArgumentError as error:
            raise error_codes.invalid_argument(_short_message(error)) from None
        except tf.errors.OpError as error:
            raise error_codes.ServingError(error_codes.INTERNAL,
                                           f"The model call failed: {_short_message(error)}") from None
        except Exception as error:  # noqa: BLE001 - any failure inside the model is answered with a 500
            raise error_codes.ServingError(error_codes.INTERNAL,
                                           f"The model call failed: {type(error).__name__}: {error}") from None


def _short_message(error):
    """A TensorFlow error's message without the Python stack of the node that raised it."""
    message = getattr(error, "message", None) or str(error)
    lines = [line for line in message.splitlines() if line.strip()]
    if lines and lines[0].startswith("Graph execution error"):
        kept = [line for line in lines[1:]
                if not line.startswith(("  ", "Detected at node", "<stack traces unavailable>"))]
        lines = kept or lines
    text = re.sub(r"\s*\[Op:[^\]]*\]$", "", " ".join(line.strip() for line in lines))
    return f"{type(error).__name__}: {text}"[:2000]


def read_signature_defs(version_path):
    """The signature defs of ``saved_model.pb`` as TF Serving's metadata API prints them (proto3 JSON)."""
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((pathlib.Path(version_path) / "saved_model.pb").read_bytes())
    meta_graph = next((graph for graph in saved_model.meta_graphs if "serve" in graph.meta_info_def.tags),
                      saved_model.meta_graphs[0])

    def tensor_info(info):
        return {"dtype": types_pb2.DataType.Name(info.dtype),
                "tensor_shape": {"dim": [{"size": str(dim.size), "name": dim.name} for dim in info.tensor_shape.dim],
                                 "unknown_rank": info.tensor_shape.unknown_rank},
                "name": info.name}

    return {name: {"inputs": {key: tensor_info(value) for key, value in definition.inputs.items()},
                   "outputs": {key: tensor_info(value) for key, value in definition.outputs.items()},
                   "method_name": definition.method_name,
                   "defaults": {}}
            for name, definition in meta_graph.signature_def.items()}


class LoadedVersion:
    """One version in memory: its signatures and its metadata.

    Attributes:
        model_name: The served name.
        version: The version number.
        path: The version folder.
        signatures: ``{signature name: Signature}``.
        signature_defs: The metadata API's ``signature_def`` map.
        recorded_limits: The bounds its export records (:func:`limits.read_recorded`), or None.
    """

    def __init__(self, model_name, version, path):
        import tensorflow as tf

        self.model_name = model_name
        self.version = version
        self.path = pathlib.Path(path)
        self.recorded_limits = limits.read_recorded(
            path, f"version {version}'s assets.extra/{limits.EXPORT_FILE}")  # a bad file fails the load, named
        self.signature_defs = read_signature_defs(path)
        self._loaded = tf.saved_model.load(str(path))
        self.signatures = {name: Signature(name, function) for name, function in self._loaded.signatures.items()}
        for name in _resumable_names(self.path):
            if name in self.signatures and chunking.fits(self.signatures[name]):
                self.signatures[name].resumable = True

    def metadata(self):
        """The answer of ``GET /v1/models/<name>[/versions/<v>]/metadata``."""
        return {"model_spec": {"name": self.model_name, "signature_name": "", "version": str(self.version)},
                "metadata": {"signature_def": {"signature_def": self.signature_defs}}}


def _resumable_names(version_path):
    """The signatures ``assets.extra/serving.json`` declares resumable (:mod:`chunking`); none when unreadable."""
    try:
        serving = json.loads((version_path / "assets.extra" / "serving.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):  # no file (a hand-made export): every call runs whole
        return []
    names = serving.get(chunking.RESUMABLE_KEY) if isinstance(serving, dict) else None
    return [name for name in names if isinstance(name, str)] if isinstance(names, list) else []


@dataclasses.dataclass
class VersionState:
    """What the status API reports for one version, and the loaded version while it serves."""

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""
    fingerprint: typing.Any = None
    loaded: typing.Optional[LoadedVersion] = None

    def to_json(self):
        return {"version": str(self.version), "state": self.state,
                "status": {"error_code": self.error_code, "error_message": self.error_message}}


def version_folders(base_path):
    """``{version: folder}`` of the numeric folders under ``base_path`` (none if it does not exist)."""
    base_path = pathlib.Path(base_path)
    if not base_path.is_dir():
        return {}
    return {int(item.name): item for item in base_path.iterdir()
            if item.name.isdigit() and item.is_dir() and int(item.name) < 2 ** 63}


def _fingerprint(folder):
    """Changes when a version folder's SavedModel files change (so a failed load is tried again)."""
    stamps = []
    for item in (folder / "saved_model.pb", folder / "variables" / "variables.index"):
        try:
            stat = item.stat()
            stamps.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append(None)
    return tuple(stamps)


class ServedModel:
    """One model name: its versions' states and the loaded ones.

    Args:
        config: The model's :class:`config_files.ModelConfig`.
        loader: Builds a loaded version from ``(name, version, path)``
            (:class:`LoadedVersion`; tests may pass another).
    """

    def __init__(self, config, loader=LoadedVersion):
        self.config = config
        self._loader = loader
        self._states = {}
        self._lock = threading.Lock()

    @property
    def name(self):
        return self.config.name

    def _aspired(self, present):
        if self.config.version_policy == config_files.ALL:
            return set(present)
        if self.config.version_policy == config_files.SPECIFIC:
            return set(present) & set(self.config.versions)
        return set(sorted(present)[-self.config.num_versions:])

    def _set(self, version, **changes):
        with self._lock:
            state = self._states.get(version) or VersionState(version, START)
            self._states[version] = dataclasses.replace(state, **changes)

    def refresh(self):
        """Loads the wanted versions that are not loaded yet, then unloads the unwanted ones.

        Returns:
            True when anything changed.
        """
        present = version_folders(self.config.base_path)
        aspired = self._aspired(present)
        changed = False
        for version in sorted(aspired, reverse=True):  # the newest first: it serves by default
            fingerprint = _fingerprint(present[version])
            current = self._states.get(version)
            if current is not None and (current.state == AVAILABLE or
                                        (current.error_code != "OK" and current.fingerprint == fingerprint)):
                continue
            changed = True
            self._set(version, state=LOADING, error_code="OK", error_message="", fingerprint=fingerprint)
            try:
                loaded = self._loader(self.name, version, present[version])
            except Exception as error:  # noqa: BLE001 - any load failure is reported in the status
                message = f"Failed to load version {version} of model {self.name} from {present[version]}: " \
                          f"{_short_message(error)}"
                LOGGER.warning("%s", message)
                self._set(version, state=END, error_code=error_codes.UNKNOWN, error_message=message)
                continue
            self._set(version, state=AVAILABLE, loaded=loaded)
            LOGGER.info("Serving version %s of model %s from %s", version, self.name, present[version])
        with self._lock:
            states = dict(self._states)
        if any(states[version].state == AVAILABLE for version in aspired if version in states):
            for version, state in states.items():
                if state.state == AVAILABLE and version not in aspired:
                    changed = True
                    self._set(version, state=UNLOADING)
                    self._set(version, state=END, loaded=None)
                    LOGGER.info("Unloaded version %s of model %s", version, self.name)
        return changed

    def status(self, version=None):
        """The ``model_version_status`` list, newest first.

        Raises:
            ServingError: NOT_FOUND when the model (or that version) has never been seen.
        """
        with self._lock:
            states = dict(self._states)
        if version is not None:
            if version not in states:
                raise error_codes.not_found(f"Could not find version {version} of model {self.name}")
            return [states[version].to_json()]
        if not states:
            raise error_codes.not_found(f"Could not find any versions of model {self.name}")
        return [states[number].to_json() for number in sorted(states, reverse=True)]

    def label_version(self, label):
        """The version a label names.

        Raises:
            ServingError: INVALID_ARGUMENT for a label the config does not define.
        """
        if label not in self.config.version_labels:
            raise error_codes.invalid_argument(f"Unrecognized servable version label: {label}")
        return self.config.version_labels[label]

    def available_versions(self):
        with self._lock:
            return sorted(version for version, state in self._states.items() if state.state == AVAILABLE)

    def resolve(self, version=None):
        """The loaded version to answer with: ``version``, or the newest available one.

        Raises:
            ServingError: NOT_FOUND, worded as TF Serving's servable manager words it.
        """
        with self._lock:
            if version is None:
                available = [state for state in self._states.values() if state.state == AVAILABLE]
                if available:
                    return max(available, key=lambda state: state.version).loaded
                raise error_codes.not_found(f"Servable not found for request: Latest({self.name})")
            state = self._states.get(version)
            if state is not None and state.state == AVAILABLE:
                return state.loaded
        raise error_codes.not_found(f"Servable not found for request: Specific({self.name}, {version})")


class Repository:
    """Every served model, and the thread that watches their base paths.

    Args:
        model_configs: :class:`config_files.ModelConfig` list.
        poll_interval_seconds: How often base paths are scanned for new versions
            (TF Serving's ``--file_system_poll_wait_seconds``); 0 disables watching.
        loader: Passed to each :class:`ServedModel`.
    """

    def __init__(self, model_configs, poll_interval_seconds=1.0, loader=LoadedVersion):
        self.models = {config.name: ServedModel(config, loader) for config in model_configs}
        self.poll_interval_seconds = poll_interval_seconds
        self._stop = threading.Event()
        self._thread = None

    def find(self, name):
        """The :class:`ServedModel` called ``name``, or None."""
        return self.models.get(name)

    def refresh(self):
        """Scans every base path once; returns True when anything changed."""
        changed = False
        for model in self.models.values():
            try:
                changed = model.refresh() or changed
            except Exception:  # noqa: BLE001 - a broken folder must not stop the watcher
                LOGGER.exception("Scanning %s for model %s failed", model.config.base_path, model.name)
        return changed

    def start_watching(self):
        """Starts the background thread that calls :meth:`refresh` every ``poll_interval_seconds``."""
        if self.poll_interval_seconds <= 0 or self._thread is not None:
            return
        self._stop.clear()

        def watch():
            while not self._stop.wait(self.poll_interval_seconds):
                self.refresh()

        self._thread = threading.Thread(target=watch, name="seq-templates-version-watcher", daemon=True)
        self._thread.start()

    def stop_watching(self):
        """Stops the watcher thread (waits for a scan in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
