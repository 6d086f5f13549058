"""The exception tree groups errors by what the caller does next."""

from __future__ import annotations

from crmsync import errors


def test_groups() -> None:
    assert issubclass(errors.ThrottledError, errors.RetryLaterError)
    assert issubclass(errors.ValidationFailedError, errors.RecordError)
    assert issubclass(errors.DatabaseNotMigratedError, errors.FatalError)
    assert issubclass(errors.UnknownFieldError, errors.InputError)


def test_structured_context_in_repr() -> None:
    exc = errors.ThrottledError("slow down", retry_after=2.5, entity="lead", status=429)
    assert exc.retry_after == 2.5
    assert exc.status == 429
    assert "entity='lead'" in repr(exc)
