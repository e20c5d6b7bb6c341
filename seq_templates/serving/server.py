"""``seq-templates serve``: its options, which models they name, and the uvicorn server that runs the app.

The options mirror TensorFlow Serving's flags (``--model_name``/``--model_base_path``,
``--model_config_file``, ``--enable_batching``/``--batching_parameters_file``,
``--file_system_poll_wait_seconds``, ``--rest_api_port``), spelled with hyphens.
The server binds to 127.0.0.1 unless ``--host`` says otherwise. Each request is
bounded (:mod:`limits`: ``--max-input-bytes``, ``--max-rows``,
``--max-generate-length``, ``--request-timeout-seconds``, each also recorded by an
export or set per model in the model config file), and a long generation runs in
chunks of ``--generate-chunk-length`` steps (:mod:`chunking`). SIGTERM (or Ctrl-C)
stops accepting connections and lets the requests in flight finish for up to
``--drain-timeout-seconds``: then it exits with status 0 when every one was
answered, or answers the rest 503 and exits with status 1 at once, saying which.
"""

import argparse
import json
import logging
import os
import pathlib
import signal
import socket
import sys
import time

from seq_templates import errors
from seq_templates.serving import config_files
from seq_templates.serving import limits as limits_module
from seq_templates.serving import repository as repository_module

LOGGER = logging.getLogger("seq_templates.serving")


def port_number(text):
    """``--port``'s type: an integer from 0 to 65535 (0: any free port), else argparse's one-line error."""
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expects a port from 0 to 65535, received {text!r}")
    return number


def add_arguments(parser):
    """Adds the ``serve`` options to an ``argparse`` parser."""
    parser.add_argument("path", metavar="RUN|EXPORT_BASE", nargs="?",
                        help="a run directory, an export base (numeric version folders inside) or one version folder")
    parser.add_argument("--name", metavar="NAME",
                        help="the model name in URLs (default: the run's template, else the folder's name)")
    parser.add_argument("--model", metavar="NAME=PATH", action="append", default=[],
                        help="serve another model; repeat for several")
    parser.add_argument("--model-config-file", metavar="FILE",
                        help="TF Serving's models.config (model_config_list { config { name base_path "
                             "model_version_policy version_labels } }) instead of RUN and --model")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=port_number, default=8501, help="REST port (default 8501, as TF Serving)")
    batching = parser.add_argument_group("batching", "merge concurrent requests into one model call "
                                                     "(TF Serving's --enable_batching)")
    batching.add_argument("--enable-batching", action="store_true", help="turn server-side batching on")
    batching.add_argument("--batching-parameters-file", metavar="FILE",
                          help="TF Serving's batching parameters file (max_batch_size { value: 32 } ...); "
                               "implies --enable-batching")
    defaults = config_files.BatchingParameters()
    batching.add_argument("--max-batch-size", type=int, default=None,
                          help=f"most rows per merged call (default {defaults.max_batch_size})")
    batching.add_argument("--batch-timeout-ms", type=float, default=None,
                          help="how long a batch that is not full waits for more requests "
                               f"(default {defaults.batch_timeout_micros / 1000:g})")
    batching.add_argument("--num-batch-threads", type=int, default=None,
                          help=f"merged calls running at once (default {defaults.num_batch_threads})")
    batching.add_argument("--max-enqueued-batches", type=int, default=None,
                          help=f"waiting batches beyond this answer 429 (default {defaults.max_enqueued_batches})")
    parser.add_argument("--file-system-poll-wait-seconds", type=float, default=1.0, metavar="SECONDS",
                        help="how often base paths are checked for new versions (0: never; default 1)")
    parser.add_argument("--max-body-bytes", type=int, default=16 * 1024 * 1024, metavar="BYTES",
                        help="larger request bodies are refused with 413 (default 16 MiB)")
    bounds = parser.add_argument_group("bounds", "what one request may ask (over a bound: 400 naming it); "
                                                 "an export's assets.extra/request_limits.json sets its model's "
                                                 "own, a model's request_limits in --model-config-file wins over "
                                                 "it, and a flag given here wins over both")
    defaults = limits_module.Limits()
    bounds.add_argument("--max-input-bytes", type=int, default=None, metavar="BYTES",
                        help=f"longest text per input element (default {defaults.max_input_bytes:,})")
    bounds.add_argument("--max-rows", type=int, default=None, metavar="ROWS",
                        help=f"rows per request (default {defaults.max_rows:,})")
    bounds.add_argument("--max-generate-length", type=int, default=None, metavar="STEPS",
                        help=f"largest max_length a request may ask (default {defaults.max_generate_length:,})")
    bounds.add_argument("--request-timeout-seconds", type=float, default=None,
                        metavar="SECONDS", help="a request not answered by then gets a 504 and is abandoned "
                                                f"(default {defaults.request_timeout_seconds:g})")
    bounds.add_argument("--generate-chunk-length", type=int, default=None, metavar="STEPS",
                        help="a generation asking for more steps runs as calls of this many, so a deadline or "
                             "a shutdown stops it between two (where the export allows it; default "
                             f"{defaults.generate_chunk_length:,})")
    parser.add_argument("--model-threads", type=int, default=None, metavar="N",
                        help="threads running model calls; more requests wait in a queue (default: 2 per CPU core, "
                             "at least 4)")
    parser.add_argument("--drain-timeout-seconds", type=float, default=DRAIN_SECONDS, metavar="SECONDS",
                        help="on SIGTERM or Ctrl-C, how long requests in flight may finish before they get a 503 "
                             f"and the server exits (default {DRAIN_SECONDS:g})")


def request_limits(arguments):
    """The :class:`limits.Limits` of the ``serve`` options.

    Raises:
        SeqTemplatesError: A bound that is not positive.
    """
    values = {name: getattr(arguments, name) for name in limits_module.BOUNDS
              if getattr(arguments, name, None) is not None}
    for name, value in {**values, "drain_timeout_seconds": arguments.drain_timeout_seconds}.items():
        if not value > 0:
            raise errors.SeqTemplatesError(f"--{name.replace('_', '-')} must be above 0, received {value}.")
    return limits_module.Limits(**values)


def given_limits(arguments):
    """The bounds given as flags: they win over a model's own ``request_limits`` and its export's."""
    return {name for name in limits_module.BOUNDS if getattr(arguments, name, None) is not None}


def resolve_model_path(path):
    """Where a served model's versions live.

    Args:
        path: A run directory (its ``export/``), an export base of numeric version
            folders, or one version folder (served alone).

    Returns:
        ``(base_path, version or None, default name)``.

    Raises:
        SeqTemplatesError: No version folder is found there.
    """
    path = pathlib.Path(path)
    if (path / "saved_model.pb").is_file():
        if not path.name.isdigit():
            raise errors.SeqTemplatesError(
                f"'{path}' holds a SavedModel but is not a numeric version folder; TF Serving serves "
                f"<base>/<version>/, so move it to e.g. {path}/1/ and pass {path}.")
        base, _, name = resolve_model_path(path.parent)
        return base, int(path.name), name
    run_info = path / "run.json"
    if repository_module.version_folders(path / "export"):
        task = None
        if run_info.is_file():
            try:
                task = json.loads(run_info.read_text(encoding="utf-8")).get("task")
            except (OSError, ValueError):
                task = None
        return path / "export", None, task or path.name
    if repository_module.version_folders(path):
        return path, None, (path.parent.name if path.name == "export" else path.name)
    raise errors.SeqTemplatesError(
        f"No SavedModel versions found at '{path}'; pass a run directory, its export/ folder (numeric version "
        "folders inside) or a version folder holding saved_model.pb.")


def _check_name(name, where):
    if not name or "/" in name or ":" in name:
        raise errors.SeqTemplatesError(f"{where}: model name {name!r} must be non-empty without '/' or ':'.")
    return name


def model_configs(arguments):
    """The :class:`config_files.ModelConfig` list the ``serve`` options name.

    Raises:
        SeqTemplatesError: No model, a malformed ``--model``, a repeated name, or
            ``--model-config-file`` mixed with the other ways.
    """
    if arguments.model_config_file:
        if arguments.path or arguments.model or arguments.name:
            raise errors.SeqTemplatesError("--model-config-file names every model; drop RUN, --name and --model.")
        configs = config_files.read_model_config_file(arguments.model_config_file)
        for config in configs:
            _check_name(config.name, arguments.model_config_file)
            if not repository_module.version_folders(config.base_path) and \
                    repository_module.version_folders(config.base_path / "export"):
                config.base_path = config.base_path / "export"  # a run directory
        return configs
    configs = []
    entries = [(arguments.name, arguments.path, "RUN")] if arguments.path else []
    if arguments.name and not arguments.path:
        raise errors.SeqTemplatesError("--name names the model of RUN; give RUN too (or use --model NAME=PATH).")
    for entry in arguments.model:
        name, separator, path = entry.partition("=")
        if not separator or not name or not path:
            raise errors.SeqTemplatesError(f"--model {entry!r}: expected NAME=PATH, e.g. --model sentiment=runs/s1.")
        entries.append((name, path, f"--model {entry}"))
    if not entries:
        raise errors.SeqTemplatesError("Nothing to serve: give RUN (or an export folder), --model NAME=PATH or "
                                       "--model-config-file FILE.")
    for name, path, where in entries:
        base, version, default_name = resolve_model_path(path)
        config = config_files.ModelConfig(name=_check_name(name or default_name, where), base_path=base)
        if version is not None:
            config.version_policy, config.versions = config_files.SPECIFIC, (version,)
        configs.append(config)
    names = [config.name for config in configs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise errors.SeqTemplatesError(f"Model name(s) {', '.join(repeated)} given twice; name each model once "
                                       "(--name for RUN, NAME= for --model).")
    return configs


def batching_parameters(arguments):
    """The :class:`config_files.BatchingParameters` the options ask for, or None when batching is off."""
    flags = {"max_batch_size": arguments.max_batch_size, "num_batch_threads": arguments.num_batch_threads,
             "max_enqueued_batches": arguments.max_enqueued_batches,
             "batch_timeout_micros": None if arguments.batch_timeout_ms is None
             else int(round(arguments.batch_timeout_ms * 1000))}
    given = {name: value for name, value in flags.items() if value is not None}
    if arguments.batching_parameters_file:
        parameters = config_files.read_batching_parameters_file(arguments.batching_parameters_file)
        values = {name: getattr(parameters, name) for name in config_files.BATCHING_FIELDS}
        values.update(given)
        return config_files.BatchingParameters(**values)
    if not arguments.enable_batching:
        if given:
            raise errors.SeqTemplatesError(f"--{next(iter(given)).replace('_', '-')} is a batching setting; add "
                                           "--enable-batching.")
        return None
    return config_files.BatchingParameters(**given)


def load_repository(configs, poll_interval_seconds):
    """Builds the repository and loads every model's versions once.

    Raises:
        SeqTemplatesError: A model has no version that loads (its error is named).
    """
    repository = repository_module.Repository(configs, poll_interval_seconds)
    repository.refresh()
    for model in repository.models.values():
        if not model.available_versions():
            try:
                states = model.status()
            except Exception:  # noqa: BLE001 - no version seen at all
                states = []
            problems = "; ".join(state["status"]["error_message"] for state in states
                                 if state["status"]["error_message"])
            raise errors.SeqTemplatesError(
                f"Model '{model.name}': no version could be loaded from {model.config.base_path}"
                + (f" ({problems})" if problems else " (no numeric version folder matches its version policy)") + ".")
    return repository


def _listening_socket(host, port):
    """Binds the server's socket first, so a busy port is a one-line user error."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise errors.SeqTemplatesError(f"Could not listen on {host}:{port} ({error.strerror or error}); pick another "
                                       "--port or stop what uses it.") from None
    return listener


def run(arguments):
    """Serves the models the ``serve`` options name until SIGTERM or Ctrl-C; returns the exit status."""
    import uvicorn

    from seq_templates.serving import app as app_module

    configs = model_configs(arguments)
    parameters = batching_parameters(arguments)
    bounds = request_limits(arguments)
    if arguments.model_threads is not None and arguments.model_threads < 1:
        raise errors.SeqTemplatesError(f"--model-threads must be at least 1, received {arguments.model_threads}.")
    if arguments.max_body_bytes < 1:
        raise errors.SeqTemplatesError(f"--max-body-bytes must be at least 1, received {arguments.max_body_bytes}.")
    if not LOGGER.handlers:  # version loads and failures, one line each on stderr
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        LOGGER.addHandler(handler)
        LOGGER.setLevel(logging.INFO)
        LOGGER.propagate = False
    listener = _listening_socket(arguments.host, arguments.port)
    repository = load_repository(configs, arguments.file_system_poll_wait_seconds)
    app = app_module.build_app(repository, parameters, arguments.max_body_bytes, arguments.model_threads,
                               limits=bounds, given_limits=given_limits(arguments))
    for model in repository.models.values():
        versions = ", ".join(str(version) for version in model.available_versions())
        print(f"Serving '{model.name}' (version {versions}) from {model.config.base_path} at "
              f"http://{arguments.host}:{arguments.port}/v1/models/{model.name}", flush=True)
    print("Batching: " + ("off" if parameters is None else
                          f"on (max_batch_size {parameters.max_batch_size}, batch_timeout_micros "
                          f"{parameters.batch_timeout_micros}, num_batch_threads {parameters.num_batch_threads}, "
                          f"max_enqueued_batches {parameters.max_enqueued_batches})"), flush=True)
    drain = arguments.drain_timeout_seconds
    config = uvicorn.Config(app, host=arguments.host, port=arguments.port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=drain + 2, lifespan="on")
    server = _draining_server(config, app.state, drain)
    # uvicorn handles SIGTERM/SIGINT (stop accepting, finish in-flight requests, shut down) and then
    # re-raises the signal to the handler it found; a quiet one makes that a normal exit.
    previous = {number: signal.signal(number, lambda *_: None) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[listener])
    finally:
        listener.close()
        for number, handler_function in previous.items():
            signal.signal(number, handler_function)
    if not server.started:
        raise errors.SeqTemplatesError(f"The server on {arguments.host}:{arguments.port} did not start; see the "
                                       "messages above.")
    return _stopped(app.state, drain)


DRAIN_SECONDS = 30.0


def _draining_server(config, state, drain_seconds):
    """uvicorn's server, starting the app's drain clock (``state.drain_deadline``) when told to exit."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig, frame):
            if state.drain_deadline is None:
                state.drain_deadline = time.monotonic() + drain_seconds
            super().handle_exit(sig, frame)

    return DrainingServer(config)


def _stopped(state, drain):
    """Says what the shutdown did; exits at once (status 1) when model threads still run a cut request."""
    state.executor.shutdown(wait=False, cancel_futures=True)
    if not state.cut_short:
        print("Stopped: every request in flight was answered.", flush=True)
        return 0
    print(f"Stopped after the {drain:g}-second drain timeout: {state.cut_short} request(s) in flight were "
          "answered 503 (seq-templates serve --drain-timeout-seconds waits longer).", flush=True)
    sys.stderr.flush()
    os._exit(1)  # a model thread may still run a long call: waiting for it is what the drain timeout bounds
