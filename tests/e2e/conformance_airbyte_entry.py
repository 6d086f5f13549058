"""Airbyte's Microsoft Dataverse source, with only its sign-in host redirected.

Run with the Python of the connector's own virtual environment (the conformance test makes it),
with the connector's usual arguments (``check --config c.json``, ``discover``, ``read``).
The connector asks Microsoft Entra ID for tokens at ``https://login.microsoftonline.com``;
requests to that host go to ``CONFORMANCE_SIGNIN_BASE`` (the emulator, which serves the same
token path). Nothing else of the connector is changed.
"""

from __future__ import annotations

import os
from typing import Any

import requests
from source_microsoft_dataverse.run import run

SIGNIN_HOST = "https://login.microsoftonline.com"
_send = requests.Session.request


def _redirected(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
    if isinstance(url, str) and url.startswith(SIGNIN_HOST + "/"):
        url = os.environ["CONFORMANCE_SIGNIN_BASE"] + url[len(SIGNIN_HOST) :]
    return _send(self, method, url, *args, **kwargs)


requests.Session.request = _redirected  # type: ignore[method-assign]

if __name__ == "__main__":
    run()
