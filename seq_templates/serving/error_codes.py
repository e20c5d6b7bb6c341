"""Errors the server answers with: TensorFlow's status codes, their HTTP statuses, TF Serving's envelope.

TensorFlow Serving turns every failed call into a TensorFlow status (a code from
``tensorflow/core/protobuf/error_codes.proto`` and a message) and answers with the
HTTP status its ``http_server.cc`` maps that code to, the body being
``{"error": "<message>"}``. :class:`ServingError` carries the same pair, so the
request decoding, the model repository and the ASGI app raise one kind of error
and the app answers it in one place.
"""

import json

INVALID_ARGUMENT = "INVALID_ARGUMENT"
NOT_FOUND = "NOT_FOUND"
RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
FAILED_PRECONDITION = "FAILED_PRECONDITION"
UNAVAILABLE = "UNAVAILABLE"
INTERNAL = "INTERNAL"
UNKNOWN = "UNKNOWN"
# Not a TensorFlow code: the body-size limit is enforced by the HTTP layer, before any decoding.
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"

HTTP_STATUS = {
    INVALID_ARGUMENT: 400,
    FAILED_PRECONDITION: 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    NOT_FOUND: 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    PAYLOAD_TOO_LARGE: 413,
    RESOURCE_EXHAUSTED: 429,
    "CANCELLED": 499,
    INTERNAL: 500,
    UNKNOWN: 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    UNAVAILABLE: 503,
    "DEADLINE_EXCEEDED": 504,
}


class ServingError(Exception):
    """A failed request: a TensorFlow status code and a message worded like TF Serving's.

    Attributes:
        code: The status code name, e.g. ``"INVALID_ARGUMENT"``.
        message: What went wrong, for the ``error`` field of the answer.
    """

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self):
        """The HTTP status TF Serving answers this code with."""
        return HTTP_STATUS.get(self.code, 500)

    def to_json(self):
        """The answer's body: ``{"error": message}`` as UTF-8 JSON (a lone surrogate quoted from a request
        becomes "?")."""
        return json.dumps({"error": self.message}, ensure_ascii=False).encode("utf-8", errors="replace")


def invalid_argument(*parts):
    """A ``ServingError`` with code INVALID_ARGUMENT (HTTP 400); the parts are joined like ``StrCat``."""
    return ServingError(INVALID_ARGUMENT, "".join(str(part) for part in parts))


def not_found(*parts):
    """A ``ServingError`` with code NOT_FOUND (HTTP 404)."""
    return ServingError(NOT_FOUND, "".join(str(part) for part in parts))
