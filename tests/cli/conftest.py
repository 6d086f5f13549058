"""Fixtures of the command-line tests: the emulated org the ``crmsync fields`` tests share
(defined in ``fields_support``)."""

from __future__ import annotations

from fields_support import fields_org

__all__ = ["fields_org"]
