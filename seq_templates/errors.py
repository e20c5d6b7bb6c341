"""The error type for mistakes a user can make and fix.

Anything a user can cause (a bad path, a wrong column, empty data, an unknown
label, a bad config value, a malformed request) raises :class:`SeqTemplatesError`
with a message that names the thing and says how to fix it. It subclasses
``ValueError`` so library callers can catch either. The CLI prints the message as
one line and exits with status 2; any other exception is a bug and keeps its
traceback.
"""


class SeqTemplatesError(ValueError):
    """A user-fixable problem; the message names the culprit and the fix."""
