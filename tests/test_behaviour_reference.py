"""docs/behaviour.md explains every behaviour number the code and tests cite.

Code comments, docstrings and tests cite ``B1``…``B49``; a contributor looks each one up in the
behaviour reference, so each needs exactly one entry there, and the page's links must lead
somewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "behaviour.md"
HIGHEST = 49


def _entries() -> list[int]:
    text = REFERENCE.read_text(encoding="utf-8")
    return [int(n) for n in re.findall(r"^### B([0-9]+) ", text, flags=re.MULTILINE)]


def test_every_behaviour_number_has_one_entry_in_order() -> None:
    assert _entries() == list(range(1, HIGHEST + 1))


def test_every_number_cited_in_code_and_tests_is_in_the_reference() -> None:
    cited: dict[int, str] = {}
    for folder in ("src", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            for match in re.finditer(r"\bB([0-9]{1,3})\b", text):
                if "noqa" not in text[match.start() - 8 : match.start()]:  # ruff's B006 ...
                    cited.setdefault(int(match.group(1)), str(path.relative_to(ROOT)))
    documented = set(_entries())
    assert {n: where for n, where in cited.items() if n not in documented} == {}


def test_the_reference_links_to_pages_that_exist() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert targets, "the reference links to the other guides"
    missing = [t for t in targets if not (REFERENCE.parent / t).exists()]
    assert missing == []
