"""The HTTP/1.1 protocol crmsync's server speaks: uvicorn's h11 protocol, with JSON refusals.

uvicorn answers a request it cannot parse — raw non-ASCII bytes in the request target, a
malformed request line or header — itself, before the application sees it, with a plain-text
``400 Invalid HTTP request received.``. Marketo clients parse every reply as JSON (spec
marketo-rest.md §9.4), so :class:`JsonErrorsH11Protocol` sends the API's failure envelope
instead, still with HTTP 400, and closes the connection as uvicorn does.
"""

from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from crmsync.web.envelope import dumps, failure

INVALID_REQUEST_CODE = "400"
INVALID_REQUEST_MESSAGE = "Invalid HTTP request"


def invalid_request_body() -> bytes:
    """The JSON body of the answer to an unparsable HTTP request."""
    return dumps(failure(INVALID_REQUEST_CODE, INVALID_REQUEST_MESSAGE))


class JsonErrorsH11Protocol(H11Protocol):
    """uvicorn's h11 protocol whose answer to an unparsable request is the JSON envelope."""

    def send_400_response(self, msg: str) -> None:
        """Answer HTTP 400 with ``{"success": false, "errors": [{"code": "400", ...}]}``."""
        body = invalid_request_body()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
        ]
        try:
            for event in (
                h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event) or b"")
        except h11.LocalProtocolError:
            # h11 cannot frame a reply in this state (e.g. a response was already started):
            # the connection is closed without one, as uvicorn would.
            pass
        self.transport.close()
