"""The ASGI app (Starlette): TensorFlow Serving's REST API over a model repository.

Routes, as TF Serving's ``http_rest_api_util.cc`` matches them (case-insensitive):

- ``GET  /v1/models/<name>[/versions/<v>|/labels/<label>]``: version status
  (``{"model_version_status": [...]}``);
- ``GET  /v1/models/<name>[/versions/<v>|/labels/<label>]/metadata``: signature defs;
- ``POST /v1/models/<name>[/versions/<v>|/labels/<label>]:predict``: row or columnar predict;
- ``HEAD`` of any ``GET`` path: its status code and headers, no body (``curl -I`` health checks);
- ``GET /healthz`` (not TF Serving's): 200 ``{"status": "ok", "models": {name: [versions]}}`` while
  some version of some model is available, else 503 ``{"error": ...}``.

Every failure answers ``{"error": "<message>"}`` with the HTTP status TF Serving
maps its status code to (400 bad request or over a :mod:`limits` bound, 404 unknown
model or version, 413 body over the limit, 429 batching queue full, 500 the model
call failed, 503 shutting down, 504 past the request deadline). Model calls run on
a thread pool, merged by the :mod:`batching` module when batching is on; a long
generation runs as several calls (:mod:`chunking`), checked between two; JSON
decoding and encoding follow :mod:`json_tensors`. Each model's bounds are
:class:`limits.Limits` with its export's recorded bounds and its ``request_limits`` in.

Shutting down (``app.state.drain_deadline`` set, by ``server.run`` on SIGTERM or
Ctrl-C): new requests get 503 at once; requests in flight are answered until the
drain deadline, then 503. ``app.state.in_flight`` and ``app.state.cut_short``
count what was running and what the drain cut.
"""

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import re
import time

from starlette import applications
from starlette import responses
from starlette import routing

from seq_templates.serving import batching
from seq_templates.serving import chunking
from seq_templates.serving import error_codes
from seq_templates.serving import json_tensors
from seq_templates.serving import limits as limits_module

LOGGER = logging.getLogger("seq_templates.serving")
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024

_PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.IGNORECASE)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.IGNORECASE)
_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
HEALTH_PATH = "/healthz"


def _json_response(document, status_code=200, headers=None):
    body = document if isinstance(document, bytes) else json.dumps(document, indent=2, ensure_ascii=False).encode()
    return responses.Response(body, status_code=status_code, media_type="application/json", headers=headers)


def _error_response(error):
    headers = {"connection": "close"} if error.code == error_codes.PAYLOAD_TOO_LARGE else None
    return _json_response(error.to_json(), error.http_status, headers)


def _version_number(text):
    if text is None:
        return None
    number = int(text)
    if number >= 2 ** 63:
        raise error_codes.invalid_argument(f"Failed to convert version: {text} to numeric.")
    return number


async def _read_body(request, limit):
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    message = "The request body exceeds the server's limit of {limit} bytes (seq-templates serve --max-body-bytes)."
    if declared.isdigit() and int(declared) > limit:
        raise error_codes.ServingError(error_codes.PAYLOAD_TOO_LARGE, message.format(limit=limit))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise error_codes.ServingError(error_codes.PAYLOAD_TOO_LARGE, message.format(limit=limit))
        chunks.append(chunk)
    return b"".join(chunks)


SHUTTING_DOWN = ("The server is shutting down and stopped waiting for this request (its drain timeout passed); "
                 "send it again when the server is back.")


def _stop_error(deadline, seconds, where, state):
    """The error that ends a request now, or None: 503 past the shutdown's drain deadline, 504 past its own.

    ``seconds`` and ``where`` (the deadline's setting) word the 504; a 503 is counted in
    ``state.cut_short``.
    """
    now, drain = time.monotonic(), state.drain_deadline
    if drain is not None and now >= drain:
        state.cut_short += 1
        return error_codes.ServingError(error_codes.UNAVAILABLE, SHUTTING_DOWN)
    if now >= deadline:
        return error_codes.ServingError(
            "DEADLINE_EXCEEDED", f"The request was not answered within {seconds:g} s ({where}); it was "
            "abandoned. Ask for less (fewer rows, a shorter max_length).")
    return None


CLIENT_GONE = "The client closed the connection; its request was dropped."


async def _answer_within(call, seconds, state, disconnected=None,
                         where="seq-templates serve --request-timeout-seconds", deadline=None):
    """Awaits ``call`` until it is done, ``seconds`` pass (504), the shutdown's drain deadline (503)
    or the client goes away (``await disconnected()`` is true; 499, which nobody receives).

    A call given up is cancelled: one still queued never runs; one already running in a
    model thread finishes there and its answer is discarded (a generation run in chunks
    starts no further chunk). ``where`` names the deadline's setting in the 504;
    ``deadline`` (``time.monotonic()``) is when ``seconds`` run out, by default from now.
    """
    task = asyncio.ensure_future(call)
    deadline = time.monotonic() + seconds if deadline is None else deadline
    while True:  # checked every 50 ms: most calls are answered within the first wait
        await asyncio.wait({task}, timeout=max(0.0, min(0.05, deadline - time.monotonic())))
        if task.done():
            return task.result()
        if disconnected is not None and await disconnected():
            task.cancel()
            raise error_codes.ServingError("CANCELLED", CLIENT_GONE)
        error = _stop_error(deadline, seconds, where, state)
        if error is not None:
            task.cancel()
            raise error


def build_app(repository, batching_parameters=None, max_body_bytes=DEFAULT_MAX_BODY_BYTES, num_threads=None,
              limits=None, given_limits=()):
    """Returns the Starlette app serving ``repository``.

    Args:
        repository: A :class:`repository.Repository` (its versions already loaded;
            the app's lifespan starts and stops its watcher thread).
        batching_parameters: :class:`config_files.BatchingParameters` to merge
            concurrent requests, or None to call the model once per request.
        max_body_bytes: Larger request bodies are answered with 413.
        num_threads: Threads running model calls (default: 2 per CPU, at least 4).
        limits: The per-request :class:`limits.Limits` (default: its defaults).
        given_limits: The bounds given as ``serve`` flags: they win over a model's own
            ``request_limits`` (its :class:`config_files.ModelConfig`).
    """
    limits = limits or limits_module.Limits()
    executor = concurrent.futures.ThreadPoolExecutor(
        max_workers=num_threads or max(4, 2 * (os.cpu_count() or 1)), thread_name_prefix="seq-templates-model")
    batcher = batching.Batcher(batching_parameters, executor) if batching_parameters else None
    state = None  # app.state, set below

    def run_call(signature, inputs, rows):
        """One model call: through the batcher when batching is on, else on a model thread."""
        if batcher is not None:
            return batcher.call(signature, inputs, rows)
        return asyncio.get_running_loop().run_in_executor(executor, signature.call, inputs)

    async def predict(model_name, version, label, method, body, disconnected=None):
        model = repository.find(model_name)
        loaded, not_served = None, None  # the version that answers, found first for the bounds it records
        if model is not None:
            try:
                loaded = model.resolve(version if label is None else model.label_version(label))
            except error_codes.ServingError as error:
                not_served = error  # raised below, after the body is read, as before
        bounds = limits if model is None else limits.for_model(
            model.name, getattr(model.config, "request_limits", {}), given_limits,
            getattr(loaded, "recorded_limits", None))
        limits_module.check_body(body, bounds)  # a huge text is refused before it is parsed
        document = json_tensors.parse(body)
        signature_name = json_tensors.signature_name(document)
        if model is None:
            request = f"Specific({model_name}, {version})" if version is not None else f"Latest({model_name})"
            raise error_codes.not_found(f"Servable not found for request: {request}")
        if not_served is not None:
            raise not_served
        if method != "predict":
            raise error_codes.invalid_argument(
                f"The {method} API needs a signature with method_name tensorflow/serving/{method}; the exports of "
                "seq-templates have predict signatures: use :predict.")
        signature = loaded.signatures.get(signature_name)
        if signature is None:
            raise error_codes.invalid_argument(f'Serving signature name: "{signature_name}" not found in signature def')
        request = json_tensors.decode_predict(document, signature.input_specs)
        limits_module.check_request(request.inputs, bounds)
        seconds, where = bounds.request_timeout_seconds, bounds.where("request_timeout_seconds")
        deadline = time.monotonic() + seconds
        if chunking.should_chunk(signature, request.inputs, bounds.generate_chunk_length):
            async def before_chunk():  # between two chunks: stop for the deadline, the drain or a client gone
                error = _stop_error(deadline, seconds, where, state)
                if error is None and disconnected is not None and await disconnected():
                    error = error_codes.ServingError("CANCELLED", CLIENT_GONE)
                if error is not None:
                    raise error

            call = chunking.generate(lambda inputs: run_call(signature, inputs, len(inputs["prompt"])),
                                     request.inputs, bounds.generate_chunk_length, before_chunk)
        else:
            call = run_call(signature, request.inputs, request.rows)
        outputs = await _answer_within(call, seconds, state, disconnected, where, deadline)
        return json_tensors.encode_predict(outputs, request.request_format)

    def status(model_name, version, label, subresource):
        if not model_name:
            raise error_codes.invalid_argument("Missing model name in request.")
        model = repository.find(model_name)
        if model is None:
            if subresource:
                request = f"Specific({model_name}, {version})" if version is not None else f"Latest({model_name})"
                raise error_codes.not_found(f"Servable not found for request: {request}")
            if version is not None:
                raise error_codes.not_found(f"Could not find version {version} of model {model_name}")
            raise error_codes.not_found(f"Could not find any versions of model {model_name}")
        if label is not None:
            version = model.label_version(label)
        if subresource:
            return model.resolve(version).metadata()
        return {"model_version_status": model.status(version)}

    def health():
        available = {}
        for name, model in repository.models.items():
            try:
                versions = [entry["version"] for entry in model.status() if entry["state"] == "AVAILABLE"]
            except error_codes.ServingError:  # no version seen yet
                versions = []
            if versions:
                available[name] = versions
        if not available:
            raise error_codes.ServingError(error_codes.UNAVAILABLE, "No model version is available.")
        return {"status": "ok", "models": available}

    async def handle(request):
        if state.drain_deadline is not None:
            return _error_response(error_codes.ServingError(error_codes.UNAVAILABLE, "The server is shutting down."))
        state.in_flight += 1
        try:
            answer = await answer_request(request)
        finally:
            state.in_flight -= 1
        if request.method == "HEAD":  # the GET's status and headers, without the body
            return responses.Response(status_code=answer.status_code, headers={
                key: value for key, value in answer.headers.items() if key != "content-length"})
        return answer

    async def answer_request(request):
        path = request.url.path
        method = "GET" if request.method == "HEAD" else request.method
        try:
            if method == "GET" and path.lower() == HEALTH_PATH:
                return _json_response(health())
            if method == "POST":
                match = _PREDICT_PATH.fullmatch(path)
                if match:
                    name, version_text, label, api = match.groups()
                    version = _version_number(version_text)
                    body = await _read_body(request, max_body_bytes)
                    return _json_response(await predict(name, version, label, api.lower(), body,
                                                        request.is_disconnected))
            elif method == "GET":
                match = _STATUS_PATH.fullmatch(path)
                if match:
                    name, version_text, label, subresource = match.groups()
                    return _json_response(status(name, _version_number(version_text), label, subresource))
            if not path.lower().startswith("/v1/"):
                raise error_codes.not_found(f"Malformed request: {method} {path} (the API is under /v1/models/)")
            raise error_codes.invalid_argument(f"Malformed request: {method} {path}")
        except error_codes.ServingError as error:
            return _error_response(error)
        except Exception as error:  # noqa: BLE001 - a bug answers 500 and the server keeps serving
            LOGGER.exception("Internal error answering %s %s", method, path)
            return _error_response(error_codes.ServingError(error_codes.INTERNAL,
                                                            f"Internal error: {type(error).__name__}: {error}"))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        repository.start_watching()
        try:
            yield
        finally:
            repository.stop_watching()
            if batcher is not None:
                await batcher.close()

    app = applications.Starlette(routes=[routing.Route("/{path:path}", handle, methods=_METHODS)], lifespan=lifespan)
    app.state.repository = repository
    app.state.batcher = batcher
    app.state.executor = executor
    app.state.limits = limits
    app.state.drain_deadline = None  # time.monotonic() after which requests in flight get 503
    app.state.in_flight = 0
    app.state.cut_short = 0
    state = app.state
    return app
