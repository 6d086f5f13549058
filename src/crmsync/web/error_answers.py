"""The one translation of crmsync's errors into Marketo REST answers (docs/api.md "Errors").

Services below the web layer raise the exceptions of :mod:`crmsync.errors`; a Marketo handler
never catches them. The dispatcher hands every one to :func:`api_error_for`, which looks its
class up in :data:`ANSWERS` (most specific class first) and returns the :class:`ApiError` the
client sees. An error that carries a Marketo code of its own (``"701"``, ``"1006"``...) answers
with it when the table allows; anything the table does not expect from a request answers
``611 System error`` and is logged on the server, with no detail sent to the client.
"""

from __future__ import annotations

from dataclasses import dataclass

from crmsync.errors import (
    CrmsyncError,
    InputError,
    RecordNotFoundError,
    UnknownFieldError,
    ValidationFailedError,
)
from crmsync.web.envelope import ApiError

SYSTEM_ERROR_CODE = "611"

# Every code the Marketo API answers with, each explained in docs/api.md "Errors you may see".
MARKETO_CODES = frozenset(
    {
        "413", "414",
        "601", "602", "605", "606", "607", "609", "610", "611", "612", "615",
        "701", "704", "709",
        "1001", "1003", "1004", "1005", "1006", "1007", "1011", "1013", "1015", "1018",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """How one kind of error is answered.

    ``code`` is the Marketo code; with ``own_code`` an error that carries a Marketo code of its
    own answers with that one instead. ``message`` is a fixed text (``None``: the error's own
    message, which crmsync writes for the API's users). ``http_status`` is 200 for every
    Marketo error (spec marketo-rest.md §1.1). ``unexpected`` answers are logged.
    """

    code: str
    message: str | None = None
    http_status: int = 200
    own_code: bool = True
    unexpected: bool = False


UNEXPECTED = ErrorAnswer(SYSTEM_ERROR_CODE, "System error", own_code=False, unexpected=True)

# Most specific class first; the last row catches every other crmsync error.
ANSWERS: tuple[tuple[type[CrmsyncError], ErrorAnswer], ...] = (
    (UnknownFieldError, ErrorAnswer("1006")),  # a field name nobody knows
    (InputError, ErrorAnswer("1003")),  # bad parameter, token or value; 701/610/709... own
    (RecordNotFoundError, ErrorAnswer("1013")),  # the object (list) named in the call
    (ValidationFailedError, ErrorAnswer("1003")),  # values the store refused
    # Fatal, retry-later, precondition and delta-token errors are not answers to a request:
    # they come from configuration, the database or Dynamics, and stay on the server.
    (CrmsyncError, UNEXPECTED),
)


def answer_for(error: CrmsyncError) -> ErrorAnswer:
    """The row of :data:`ANSWERS` for ``error``'s class (the first class it is an instance of)."""
    for error_class, answer in ANSWERS:
        if isinstance(error, error_class):
            return answer
    return UNEXPECTED  # unreachable: the last row matches every CrmsyncError


def api_error_for(error: CrmsyncError) -> ApiError:
    """The Marketo answer to ``error``: the code, the message and the HTTP status."""
    answer = answer_for(error)
    code = answer.code
    if answer.own_code and error.code in MARKETO_CODES:
        code = error.code
    message = answer.message if answer.message is not None else error.message
    return ApiError(code, message, http_status=answer.http_status)
