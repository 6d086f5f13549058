"""``$batch`` writes: the work behind :meth:`DynamicsClient.write_batch`.

Requests are chunked into ``$batch`` requests of ``batch_size`` with
``Prefer: odata.continue-on-error`` (spec §6), sent with bounded concurrency, and every part is
parsed into a :class:`WriteResult`. Only what is retryable is retried, per part: throttled and
transient parts (and whole batches that timed out or dropped) go round again after the pause the
server asked for, through the one retry loop (:class:`~crmsync.dynamics.retry.Retrier`);
everything else is final. A create refused as a duplicate is checked with a GET:
the record with the client-chosen key exists, so it was created by an earlier attempt (B33).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from crmsync.dynamics.batch import (
    EncodedRequest,
    Target,
    encode_batch,
    encode_request,
    is_duplicate_create,
    parse_batch_response,
    result_from_part,
)
from crmsync.dynamics.classify import parse_error_body
from crmsync.dynamics.retry import Retry
from crmsync.dynamics.transport import Transport
from crmsync.dynamics.types import (
    CrmRecord,
    LookupValue,
    WriteKind,
    WriteRequest,
    WriteResult,
    WriteStatus,
)
from crmsync.errors import (
    ConfigurationError,
    CrmsyncError,
    FatalError,
    InputError,
    RetryLaterError,
    ThrottledError,
    ValidationFailedError,
)

RETRYABLE = frozenset({WriteStatus.THROTTLED, WriteStatus.TRANSIENT})


class RecordAccess(Protocol):
    """What the writer needs besides the transport: where writes go, and record reads to
    verify an answer that was lost (:class:`~crmsync.dynamics.client.DynamicsClient`)."""

    def target(self, logical_name: str) -> Target:
        """Where writes to a table go."""
        ...

    def entity_set_of(self, logical_name: str) -> str:
        """The URL entity set of a table."""
        ...

    def get(self, entity_set: str, id: str, select: Sequence[str]) -> CrmRecord:
        """Read one record (raises when it does not exist)."""
        ...

    def exists(self, entity_set: str, id: str) -> CrmRecord | None:
        """The record if it exists, else ``None``."""
        ...


class BatchWriter:
    """One ``write_batch`` call: chunk, send, parse, retry per part, verify duplicates."""

    def __init__(self, transport: Transport, records: RecordAccess, batch_size: int) -> None:
        self._transport = transport
        self._records = records
        self._batch_size = batch_size
        self._targets: dict[str, Target] = {}

    def _target(self, entity: str) -> Target:
        if entity not in self._targets:
            self._targets[entity] = self._records.target(entity)
        return self._targets[entity]

    def write(self, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        """Every request's final result, in the order given."""
        results: list[WriteResult | None] = [None] * len(requests)
        encoded: dict[int, EncodedRequest] = {}
        for index, request in enumerate(requests):
            try:
                target = self._target(request.entity)
                encoded[index] = encode_request(
                    request, target, self._transport.service_root, self._records.entity_set_of
                )
            except (ValueError, ConfigurationError, InputError) as exc:
                # This write cannot be expressed (unknown table, missing relationship): it
                # fails alone; transient metadata failures propagate and nothing is lost.
                results[index] = WriteResult(
                    request_id=request.request_id,
                    entity=request.entity,
                    record_id=request.record_id,
                    status=WriteStatus.VALIDATION_ERROR,
                    message=str(exc),
                )
        pending = sorted(encoded)
        unknown_outcome: set[int] = set()

        def send_round() -> Retry | None:
            nonlocal pending
            chunks = [
                pending[i : i + self._batch_size] for i in range(0, len(pending), self._batch_size)
            ]
            retry: list[int] = []
            pause: float | None = None
            for index, result in self._send_chunks(chunks, requests, encoded):
                if result.status in RETRYABLE:
                    retry.append(index)
                    if result.retry_after is not None:
                        pause = max(pause or 0.0, result.retry_after)
                    if result.http_status is None:
                        # Timed out or dropped: the server may have applied it (B33).
                        unknown_outcome.add(index)
                results[index] = result
            pending = sorted(retry)
            if not retry:
                return None
            reason = f"{len(retry)} of {len(requests)} writes throttled or failed transiently"
            return Retry(reason, pause, count=len(retry))

        if pending:
            # When no retry is left, the last round's results stand (throttled, transient).
            self._transport.retrier.run(send_round, lambda last: None, what="$batch")
        final: list[WriteResult] = []
        for index, request in enumerate(requests):
            outcome = results[index]
            assert outcome is not None
            if outcome.status is not WriteStatus.OK and is_duplicate_create(request, outcome):
                outcome = self._verify_created(request, outcome)
            elif index in unknown_outcome:
                outcome = self._verify_applied(request, outcome)
            final.append(outcome)
        return final

    def _send_chunks(
        self,
        chunks: list[list[int]],
        requests: Sequence[WriteRequest],
        encoded: dict[int, EncodedRequest],
    ) -> list[tuple[int, WriteResult]]:
        if len(chunks) == 1:
            return self._send_chunk(chunks[0], requests, encoded)
        workers = min(len(chunks), self._transport.budget.snapshot().max_concurrency)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(self._send_chunk, chunk, requests, encoded) for chunk in chunks]
            outcomes: list[tuple[int, WriteResult]] = []
            for future in futures:
                outcomes.extend(future.result())
        return outcomes

    def _send_chunk(
        self,
        chunk: list[int],
        requests: Sequence[WriteRequest],
        encoded: dict[int, EncodedRequest],
    ) -> list[tuple[int, WriteResult]]:
        boundary, body = encode_batch([encoded[index] for index in chunk])
        try:
            response = self._transport.send(
                "POST",
                "$batch",
                kind="batch",
                headers={
                    "Content-Type": f'multipart/mixed; boundary="{boundary}"',
                    "Prefer": "odata.continue-on-error",
                },
                content=body,
                # A batch without continue-on-error answers 400 with the failing part inside.
                accept_statuses=frozenset({400}),
                # Retries happen here, per part, so that finished parts are never re-sent.
                no_retry=True,
            )
        except FatalError:
            raise
        except RetryLaterError as exc:
            return [(index, self._whole_batch_failure(requests[index], exc)) for index in chunk]
        except CrmsyncError as exc:
            if exc.status == 413 and len(chunk) > 1:
                # Payload too large (spec §0): send the two halves separately.
                middle = len(chunk) // 2
                first = self._send_chunk(chunk[:middle], requests, encoded)
                return first + self._send_chunk(chunk[middle:], requests, encoded)
            status = WriteStatus.VALIDATION_ERROR
            return [
                (index, self._whole_batch_failure(requests[index], exc, status)) for index in chunk
            ]
        content_type = response.headers.get("Content-Type", "")
        if response.status_code == 400 and not content_type.lower().startswith("multipart/"):
            # The batch itself was refused (malformed): every write in it fails, no retry.
            answer = parse_error_body(response.content)
            refused = ValidationFailedError(
                answer.message or "Dynamics refused the $batch request",
                status=400,
                code=answer.code or None,
            )
            status = WriteStatus.VALIDATION_ERROR
            return [
                (index, self._whole_batch_failure(requests[index], refused, status))
                for index in chunk
            ]
        try:
            parts = parse_batch_response(content_type, response.content)
        except ValueError as exc:
            error = RetryLaterError(f"unreadable $batch response: {exc}")
            return [(index, self._whole_batch_failure(requests[index], error)) for index in chunk]
        by_content_id = {part.content_id: part for part in parts if part.content_id}
        outcomes: list[tuple[int, WriteResult]] = []
        for position, index in enumerate(chunk):
            request = requests[index]
            part = by_content_id.get(str(position + 1))
            if part is None and len(by_content_id) < len(parts):
                part = parts[position] if position < len(parts) else None
            if part is None:
                missing = RetryLaterError("no answer for this request in the $batch response")
                outcomes.append((index, self._whole_batch_failure(request, missing)))
                continue
            result = result_from_part(request, self._target(request.entity), part)
            outcomes.append((index, result))
        if any(result.status is WriteStatus.THROTTLED for _, result in outcomes):
            self._transport.budget.record_throttled()  # once per answer, however many parts
        return outcomes

    @staticmethod
    def _whole_batch_failure(
        request: WriteRequest,
        error: CrmsyncError,
        status: WriteStatus | None = None,
    ) -> WriteResult:
        if status is None:
            status = (
                WriteStatus.THROTTLED
                if isinstance(error, ThrottledError)
                else WriteStatus.TRANSIENT
            )
        retry_after = error.retry_after if isinstance(error, RetryLaterError) else None
        return WriteResult(
            request_id=request.request_id,
            entity=request.entity,
            record_id=request.record_id,
            status=status,
            http_status=error.status,
            error_code=error.code,
            message=error.message,
            retry_after=retry_after,
        )

    def _verify_applied(self, request: WriteRequest, refused: WriteResult) -> WriteResult:
        """After an attempt with an unknown outcome, a 412 on an update or a 404 on a delete
        may only mean the earlier attempt landed: check the record before reporting failure.
        """
        kind = request.kind
        if kind is WriteKind.DELETE and refused.status is WriteStatus.NOT_FOUND:
            return _ok(request, refused, etag=None)
        if kind is not WriteKind.UPDATE or refused.status is not WriteStatus.PRECONDITION_FAILED:
            return refused
        try:
            current = self._records.get(request.entity, request.record_id, list(request.values))
        except CrmsyncError:
            return refused
        for name, wanted in request.values.items():
            have = current.values.get(name)
            if isinstance(wanted, LookupValue) and isinstance(have, LookupValue):
                if wanted.id.lower() != have.id.lower():
                    return refused
            elif have != wanted:
                return refused
        return _ok(request, refused, etag=current.etag)

    def _verify_created(self, request: WriteRequest, refused: WriteResult) -> WriteResult:
        """A duplicate-key answer to a create: the record exists if a GET finds it (B33)."""
        try:
            found = self._records.exists(request.entity, request.record_id)
        except CrmsyncError:
            return refused
        if found is None:
            return refused
        return WriteResult(
            request_id=request.request_id,
            entity=request.entity,
            record_id=request.record_id,
            status=WriteStatus.CREATED_ALREADY,
            etag=found.etag,
            http_status=refused.http_status,
            error_code=refused.error_code,
            message=refused.message,
        )


def _ok(request: WriteRequest, verified: WriteResult, *, etag: str | None) -> WriteResult:
    return WriteResult(
        request_id=request.request_id,
        entity=request.entity,
        record_id=request.record_id,
        status=WriteStatus.OK,
        etag=etag,
        http_status=verified.http_status,
        message="applied by an earlier attempt whose answer was lost",
    )
