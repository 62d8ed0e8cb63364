"""`FeedbackClient`: the service's HTTP API from synchronous Python code."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Self

import httpx

from feedback_client import _core
from feedback_client._core import DEFAULT_TIMEOUT, Call, ClientConfig, DateLike, ListFilters, RetryPolicy
from feedback_client.errors import FeedbackError, Forbidden, NotFound, Unauthorized
from feedback_client.models import (
    BackendFeedback,
    BatchAnswer,
    Erasure,
    FeedbackPage,
    FeedbackRecord,
    FeedbackValues,
    Granularity,
    ImportFailure,
    ImportReport,
    IssuedToken,
    Outcome,
    Stats,
)

ProgressCallback = Callable[[int], None]
"""Called with the number of input items just processed (written or failed)."""


class FeedbackClient:
    """A client of one feedback service endpoint.

    ``endpoint`` and ``api_key`` default to ``FEEDBACK_ENDPOINT`` and ``FEEDBACK_API_KEY``; the key is
    needed by every operation except the token ones (``send_feedback``, ``get_my_feedback``, ``retract``),
    which a frontend-facing process can call without it. Use it as a context manager, or ``close()`` it.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = ClientConfig.resolve(endpoint, api_key, timeout)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.config.endpoint, timeout=timeout, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: Call) -> Any:
        headers = call.headers(self.config)
        for attempt in range(self.retry.attempts):
            try:
                response = self._http.request(
                    call.method, call.path, params=call.params, json=call.body, headers=headers
                )
                return _core.read_answer(call, response)
            except httpx.TransportError as transport_error:
                error: FeedbackError = _core.connection_error(call, transport_error)
            except FeedbackError as answer_error:
                error = answer_error
            if attempt + 1 >= self.retry.attempts or not self.retry.retryable(error):
                raise error
            self._sleep(self.retry.delay(attempt, error.retry_after))
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    # ------------------------------------------------------------------------------- tokens and votes

    def issue_token(
        self,
        run_id: str,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        agent: str | None = None,
        context: Mapping[str, Any] | None = None,
        ttl_seconds: int | None = None,
    ) -> IssuedToken:
        """A feedback token for one AI response (run), to hand to the browser (scope ``tokens:write``)."""
        call = _core.issue_token(
            run_id,
            user_id=user_id,
            session_id=session_id,
            agent=agent,
            context=context,
            ttl_seconds=ttl_seconds,
        )
        return _core.parsed(IssuedToken, self._send(call), call)

    def send_feedback(
        self,
        token: str,
        *,
        outcome: Outcome | None = None,
        score: int | None = None,
        weight: float | None = None,
        comment: str | None = None,
        details: Mapping[str, Any] | None = None,
        tags: list[str] | None = None,
        source: str | None = None,
        user_id: str | None = None,
    ) -> FeedbackRecord:
        """Submits (or changes) the token's user's feedback, as the browser would; fields left None keep
        their stored value."""
        values = FeedbackValues(
            outcome=outcome,
            score=score,
            weight=weight,
            comment=comment,
            details=dict(details) if details is not None else None,
            tags=tags,
            source=source,
        )
        call = _core.send_feedback(token, values, user_id)
        return _core.parsed(FeedbackRecord, self._send(call), call)

    def get_my_feedback(self, token: str, *, user_id: str | None = None) -> FeedbackRecord | None:
        """The token's user's feedback on its run, or None if there is none."""
        call = _core.my_feedback("GET", token, user_id)
        try:
            return _core.parsed(FeedbackRecord, self._send(call), call)
        except NotFound:
            return None

    def retract(self, token: str, *, user_id: str | None = None) -> bool:
        """Takes the token's user's feedback back; False if there was none."""
        try:
            self._send(_core.my_feedback("DELETE", token, user_id))
        except NotFound:
            return False
        return True

    # ------------------------------------------------------------------------------- backend writes

    def record_feedback(
        self,
        run_id: str,
        user_id: str,
        *,
        outcome: Outcome | None = None,
        score: int | None = None,
        weight: float | None = None,
        comment: str | None = None,
        details: Mapping[str, Any] | None = None,
        tags: list[str] | None = None,
        source: str | None = None,
        session_id: str | None = None,
        agent: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> FeedbackRecord:
        """Writes a user's feedback on a run from the backend, no token needed (scope ``feedback:write``;
        ``source`` defaults to ``backend``)."""
        item = BackendFeedback(
            run_id=run_id,
            user_id=user_id,
            outcome=outcome,
            score=score,
            weight=weight,
            comment=comment,
            details=dict(details) if details is not None else None,
            tags=tags,
            source=source,
            session_id=session_id,
            agent=agent,
            context=dict(context) if context is not None else None,
        )
        call = _core.record_feedback(item)
        return _core.parsed(FeedbackRecord, self._send(call), call)

    def import_feedback(
        self,
        items: Iterable[BackendFeedback | Mapping[str, Any]],
        *,
        batch_size: int = _core.MAX_BATCH,
        concurrency: int = 4,
        on_progress: ProgressCallback | None = None,
    ) -> ImportReport:
        """Writes many records in batches, ``concurrency`` requests at a time.

        Items are read lazily (a large file is never held whole). An item that fails (here or at the
        service) is reported in ``failures`` with its input position; the others are written. A batch
        that fails as a whole (after the retries) fails each of its items; a credential the service
        refuses stops the import with that error.
        """
        report = ImportReport()
        rejected: list[ImportFailure] = []  # filled by the chunking, as it reads the items
        progress = _core.Progress(on_progress, rejected)
        width = max(1, concurrency)
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="feedback-import") as pool:
            running: dict[Future[_core.ChunkResult], int] = {}
            for chunk in _core.chunks(items, batch_size, rejected):
                if len(running) >= width:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        report.add(*future.result().counts())
                        progress.advance(running.pop(future))
                running[pool.submit(self._send_chunk, chunk)] = len(chunk.items)
            for future in list(running):
                report.add(*future.result().counts())
                progress.advance(running.pop(future))
        progress.advance(0)
        report.failures.extend(rejected)
        report.failures.sort(key=lambda failure: failure.index)
        return report

    def _send_chunk(self, chunk: _core.Chunk) -> _core.ChunkResult:
        call = _core.batch(chunk.items)
        try:
            answer = _core.parsed(BatchAnswer, self._send(call), call)
        except (Unauthorized, Forbidden):
            raise  # nothing else would be written either
        except FeedbackError as error:
            return _core.ChunkResult.failed(chunk, error)
        return _core.ChunkResult.answered(chunk, answer)

    # ------------------------------------------------------------------------------------- queries

    def list_feedback_pages(
        self,
        *,
        start: DateLike | None = None,
        end: DateLike | None = None,
        outcome: Outcome | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        agent: str | None = None,
        source: str | None = None,
        page_size: int = _core.MAX_PAGE,
        cursor: str | None = None,
    ) -> Iterator[FeedbackPage]:
        """The project's feedback page by page, newest first; each page's ``next_cursor`` resumes after
        it (pass it back as ``cursor`` with the same filters)."""
        filters = ListFilters(start, end, outcome, session_id, user_id, agent, source)
        while True:
            call = _core.list_page(filters, page_size, cursor)
            page = _core.parsed(FeedbackPage, self._send(call), call)
            yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def list_feedback(
        self,
        *,
        start: DateLike | None = None,
        end: DateLike | None = None,
        outcome: Outcome | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        agent: str | None = None,
        source: str | None = None,
        page_size: int = _core.MAX_PAGE,
        cursor: str | None = None,
    ) -> Iterator[FeedbackRecord]:
        """Every record matching the filters, newest first, following the cursors as it goes."""
        for page in self.list_feedback_pages(
            start=start,
            end=end,
            outcome=outcome,
            session_id=session_id,
            user_id=user_id,
            agent=agent,
            source=source,
            page_size=page_size,
            cursor=cursor,
        ):
            yield from page.items

    def get_run_feedback(self, run_id: str, *, page_size: int = _core.MAX_PAGE) -> Iterator[FeedbackRecord]:
        """Every user's feedback on one run, ordered by user id."""
        cursor: str | None = None
        while True:
            call = _core.run_page(run_id, page_size, cursor)
            page = _core.parsed(FeedbackPage, self._send(call), call)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def get_feedback(self, run_id: str, user_id: str) -> FeedbackRecord | None:
        """One user's feedback on one run, or None."""
        call = _core.run_user("GET", run_id, user_id)
        try:
            return _core.parsed(FeedbackRecord, self._send(call), call)
        except NotFound:
            return None

    def delete_feedback(self, run_id: str, user_id: str) -> bool:
        """Removes one record as an administrator; False if there was none."""
        try:
            self._send(_core.run_user("DELETE", run_id, user_id))
        except NotFound:
            return False
        return True

    def stats(
        self,
        *,
        start: DateLike | None = None,
        end: DateLike | None = None,
        agent: str | None = None,
        granularity: Granularity = "day",
    ) -> Stats:
        """Exact counts per UTC day (or in total) of the project's current feedback."""
        call = _core.stats(start, end, agent, granularity)
        return _core.parsed(Stats, self._send(call), call)

    def erase_user(self, user_id: str, *, until_complete: bool = True) -> Erasure:
        """Erases every record of a named user in the project. The service erases a very large history
        over several requests; this repeats the request until none is left (unless told not to)."""
        call = _core.erase_user(user_id)
        deleted = 0
        while True:
            round_ = _core.parsed(Erasure, self._send(call), call)
            deleted += round_.deleted
            if round_.complete or not until_complete:
                return Erasure(deleted=deleted, complete=round_.complete)
