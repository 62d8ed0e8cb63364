"""`AsyncFeedbackClient`: the same operations as `FeedbackClient`, for asyncio code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, Self

import httpx

from feedback_client import _core
from feedback_client._core import DEFAULT_TIMEOUT, Call, ClientConfig, DateLike, ListFilters, RetryPolicy
from feedback_client.client import ProgressCallback
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


class AsyncFeedbackClient:
    """A client of one feedback service endpoint for asyncio; see `FeedbackClient` for the operations.

    Use it as an async context manager, or ``await aclose()``.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = ClientConfig.resolve(endpoint, api_key, timeout)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http = httpx.AsyncClient(base_url=self.config.endpoint, timeout=timeout, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: Call) -> Any:
        headers = call.headers(self.config)
        for attempt in range(self.retry.attempts):
            try:
                response = await self._http.request(
                    call.method, call.path, params=call.params, json=call.body, headers=headers
                )
                return _core.read_answer(call, response)
            except httpx.TransportError as transport_error:
                error: FeedbackError = _core.connection_error(call, transport_error)
            except FeedbackError as answer_error:
                error = answer_error
            if attempt + 1 >= self.retry.attempts or not self.retry.retryable(error):
                raise error
            await self._sleep(self.retry.delay(attempt, error.retry_after))
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    async def issue_token(
        self,
        run_id: str,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        agent: str | None = None,
        context: Mapping[str, Any] | None = None,
        ttl_seconds: int | None = None,
    ) -> IssuedToken:
        call = _core.issue_token(
            run_id,
            user_id=user_id,
            session_id=session_id,
            agent=agent,
            context=context,
            ttl_seconds=ttl_seconds,
        )
        return _core.parsed(IssuedToken, await self._send(call), call)

    async def send_feedback(
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
        return _core.parsed(FeedbackRecord, await self._send(call), call)

    async def get_my_feedback(self, token: str, *, user_id: str | None = None) -> FeedbackRecord | None:
        call = _core.my_feedback("GET", token, user_id)
        try:
            return _core.parsed(FeedbackRecord, await self._send(call), call)
        except NotFound:
            return None

    async def retract(self, token: str, *, user_id: str | None = None) -> bool:
        try:
            await self._send(_core.my_feedback("DELETE", token, user_id))
        except NotFound:
            return False
        return True

    async def record_feedback(
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
        return _core.parsed(FeedbackRecord, await self._send(call), call)

    async def import_feedback(
        self,
        items: Iterable[BackendFeedback | Mapping[str, Any]],
        *,
        batch_size: int = _core.MAX_BATCH,
        concurrency: int = 4,
        on_progress: ProgressCallback | None = None,
    ) -> ImportReport:
        """As `FeedbackClient.import_feedback`: at most ``concurrency`` batches in flight."""
        report = ImportReport()
        rejected: list[ImportFailure] = []
        progress = _core.Progress(on_progress, rejected)
        width = max(1, concurrency)
        running: set[asyncio.Task[_core.ChunkResult]] = set()
        sizes: dict[asyncio.Task[_core.ChunkResult], int] = {}

        def collect(done: set[asyncio.Task[_core.ChunkResult]]) -> None:
            for task in done:
                report.add(*task.result().counts())
                progress.advance(sizes.pop(task))
                running.discard(task)

        try:
            for chunk in _core.chunks(items, batch_size, rejected):
                if len(running) >= width:
                    done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    collect(done)
                task = asyncio.create_task(self._send_chunk(chunk))
                running.add(task)
                sizes[task] = len(chunk.items)
            if running:
                done, _ = await asyncio.wait(running)
                collect(done)
        finally:
            for task in running:
                task.cancel()
        progress.advance(0)
        report.failures.extend(rejected)
        report.failures.sort(key=lambda failure: failure.index)
        return report

    async def _send_chunk(self, chunk: _core.Chunk) -> _core.ChunkResult:
        call = _core.batch(chunk.items)
        try:
            answer = _core.parsed(BatchAnswer, await self._send(call), call)
        except (Unauthorized, Forbidden):
            raise  # nothing else would be written either
        except FeedbackError as error:
            return _core.ChunkResult.failed(chunk, error)
        return _core.ChunkResult.answered(chunk, answer)

    async def list_feedback_pages(
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
    ) -> AsyncIterator[FeedbackPage]:
        filters = ListFilters(start, end, outcome, session_id, user_id, agent, source)
        while True:
            call = _core.list_page(filters, page_size, cursor)
            page = _core.parsed(FeedbackPage, await self._send(call), call)
            yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def list_feedback(
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
    ) -> AsyncIterator[FeedbackRecord]:
        async for page in self.list_feedback_pages(
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
            for record in page.items:
                yield record

    async def get_run_feedback(
        self, run_id: str, *, page_size: int = _core.MAX_PAGE
    ) -> AsyncIterator[FeedbackRecord]:
        cursor: str | None = None
        while True:
            call = _core.run_page(run_id, page_size, cursor)
            page = _core.parsed(FeedbackPage, await self._send(call), call)
            for record in page.items:
                yield record
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def get_feedback(self, run_id: str, user_id: str) -> FeedbackRecord | None:
        call = _core.run_user("GET", run_id, user_id)
        try:
            return _core.parsed(FeedbackRecord, await self._send(call), call)
        except NotFound:
            return None

    async def delete_feedback(self, run_id: str, user_id: str) -> bool:
        try:
            await self._send(_core.run_user("DELETE", run_id, user_id))
        except NotFound:
            return False
        return True

    async def stats(
        self,
        *,
        start: DateLike | None = None,
        end: DateLike | None = None,
        agent: str | None = None,
        granularity: Granularity = "day",
    ) -> Stats:
        call = _core.stats(start, end, agent, granularity)
        return _core.parsed(Stats, await self._send(call), call)

    async def erase_user(self, user_id: str, *, until_complete: bool = True) -> Erasure:
        call = _core.erase_user(user_id)
        deleted = 0
        while True:
            round_ = _core.parsed(Erasure, await self._send(call), call)
            deleted += round_.deleted
            if round_.complete or not until_complete:
                return Erasure(deleted=deleted, complete=round_.complete)
