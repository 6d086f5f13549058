"""The emulator's own secret string: client secrets, passwords and the admin key.

The emulator imports nothing of the product but the code table, so it keeps this small type
of its own rather than the product's settings type.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret string that never shows itself in logs, reprs or tracebacks."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        """Return the secret; call only where it is checked or printed on purpose."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    def __str__(self) -> str:
        return "********" if self._value else ""

    def __bool__(self) -> bool:
        return bool(self._value)
