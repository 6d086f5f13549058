"""API error messages speak plainly: no behaviour codes such as ``B29`` reach a client."""

from __future__ import annotations

import re

from marketo_harness import MarketoHarness

CODE = re.compile(r"\b[BR][0-9]{1,3}\b")


def test_refused_company_delete_explains_itself_without_codes(marketo: MarketoHarness) -> None:
    """Deleting a Dynamics-owned company is refused with a plain sentence."""
    refused = marketo.post_json("/rest/v1/companies/delete.json", {"input": [{"id": 1}]})
    [error] = refused["errors"]
    assert error["code"] == "1003"
    assert "deleted in Dynamics" in error["message"]
    assert not CODE.search(error["message"]), error["message"]
