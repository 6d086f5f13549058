"""The one exception tree of crmsync.

Exceptions are grouped by what the caller does next, and carry structured fields (entity,
record id, HTTP status, Dynamics error code) rather than only text. Secrets never appear in
messages or reprs.

::

    CrmsyncError                      base of everything crmsync raises on purpose
    ├── FatalError                    stop: the operation cannot succeed until a human acts
    │   ├── ConfigurationError        bad or missing setting
    │   │   └── SecretKeyError        the key of the secrets stored in the database is wrong
    │   ├── DatabaseNotMigratedError  schema missing or outdated ("run crmsync db upgrade")
    │   ├── AuthenticationError       credentials refused by Dynamics / the identity provider
    │   └── PermissionDeniedError     the sync user lacks a privilege
    ├── RetryLaterError               transient: retry the same thing after a pause
    │   ├── ThrottledError            429 / service protection, carries retry_after
    │   ├── TransientServerError      5xx, timeout, dropped connection
    │   └── LeaseHeldError            another process holds the sync lease
    ├── RecordError                   skip this record, record the failure, carry on
    │   ├── ValidationFailedError     Dynamics or the marketing store rejected the values
    │   ├── PreconditionFailedError   ETag mismatch: re-read and re-merge
    │   └── RecordNotFoundError       the record does not exist (any more)
    ├── DeltaTokenExpiredError        change-tracking token rejected: reconcile the entity
    ├── SyncInterruptedError          the user interrupted the sync: stop after the work in hand
    ├── InputError                    a caller (API, CLI) sent something malformed
    │   ├── UnknownFieldError
    │   └── InvalidValueError
    └── AccessError                   an admin-UI / admin-API caller may not do this
        ├── SignInRefusedError        wrong e-mail or password, locked, or too many attempts
        └── RoleRefusedError          signed in, but the role does not allow the change
"""

from __future__ import annotations


class CrmsyncError(Exception):
    """Base of all crmsync errors.

    ``entity``, ``record_id``, ``status`` and ``code`` are optional structured context; ``code``
    is the Dynamics or marketing error code when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        entity: str | None = None,
        record_id: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.entity = entity
        self.record_id = record_id
        self.status = status
        self.code = code

    def __repr__(self) -> str:
        parts = [repr(self.message)]
        for name in ("entity", "record_id", "status", "code"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


class FatalError(CrmsyncError):
    """The operation cannot succeed until a human changes something."""


class ConfigurationError(FatalError):
    """A setting is missing or invalid."""


class SecretKeyError(ConfigurationError):
    """The key that encrypts secrets stored in the database is missing, unreadable or not the
    one they were encrypted with."""


class DatabaseNotMigratedError(FatalError):
    """The database schema is missing or older than this version of crmsync."""


class AuthenticationError(FatalError):
    """Credentials were refused."""


class PermissionDeniedError(FatalError):
    """The acting user lacks a privilege."""


class RetryLaterError(CrmsyncError):
    """A transient failure: retry the same operation later.

    ``retry_after`` is the server's requested pause in seconds, when it gave one.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, **context: object
    ) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ThrottledError(RetryLaterError):
    """Service protection limit hit (HTTP 429)."""


class TransientServerError(RetryLaterError):
    """5xx, timeout or dropped connection."""


class LeaseHeldError(RetryLaterError):
    """Another process is running a sync cycle on this database."""


class RecordError(CrmsyncError):
    """This record failed; record the failure and carry on with the others."""


class ValidationFailedError(RecordError):
    """The values were rejected (by Dynamics or by the marketing store)."""


class PreconditionFailedError(RecordError):
    """The record changed since it was read (ETag mismatch)."""


class RecordNotFoundError(RecordError):
    """The record does not exist."""


class DeltaTokenExpiredError(CrmsyncError):
    """A change-tracking token was rejected; the entity must be reconciled in full."""


class SyncInterruptedError(CrmsyncError):
    """The sync was interrupted (Ctrl-C) between two units of work; what was committed stays,
    and the next run continues from there."""


class InputError(CrmsyncError):
    """A caller sent malformed input."""


class UnknownFieldError(InputError):
    """A field name that the catalog does not know."""


class InvalidValueError(InputError):
    """A value of the wrong type or out of range for its field."""


class AccessError(CrmsyncError):
    """An admin-UI or admin-API caller may not do what it asked."""


class SignInRefusedError(AccessError):
    """Sign-in refused: one message for a wrong e-mail or password, a disabled or locked
    account; ``retry_after`` (seconds) when the caller must wait."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RoleRefusedError(AccessError):
    """The signed-in user's role (viewer) does not allow a change."""
