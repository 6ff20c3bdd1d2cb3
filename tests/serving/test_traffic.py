"""The service's timeout middleware (fast): a 504 as BentoML's, and nothing of a request
left on the event loop once it is answered (BentoML's kept it for the whole timeout)."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import weakref
from typing import Any

import pytest
from bentoml._internal.server.http import traffic as bentoml_traffic
from starlette.types import Message, Receive, Scope, Send

from stratum_ml.serving import traffic
from stratum_ml.serving.traffic import RequestTimeout

#: what an outer middleware (BentoML's OpenTelemetry one) puts in the request's context
REQUEST_SPAN: contextvars.ContextVar[object] = contextvars.ContextVar("request_span")


class _Span:
    """Stands for the request's objects held in its context."""


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _call(middleware: Any) -> tuple[list[Message], bool]:
    """One request through ``middleware`` inside a context holding a span: the messages
    sent, and whether the span was freed once the request was answered (looked at while
    the event loop still runs, as a service's does)."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def request() -> weakref.ref[_Span]:
        span = _Span()
        REQUEST_SPAN.set(span)
        await middleware({"type": "http", "path": "/score"}, receive, send)
        return weakref.ref(span)

    async def main() -> bool:
        ref = await asyncio.create_task(request(), context=contextvars.Context())
        await asyncio.sleep(0.1)
        gc.collect()
        return ref() is None

    return sent, asyncio.run(main())


def test_an_answered_request_leaves_nothing_behind() -> None:
    sent, freed = _call(RequestTimeout(_answer, timeout=60.0))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert freed  # its timer was cancelled: its context (the span) is free


def test_bentomls_own_middleware_keeps_the_request_for_the_whole_timeout() -> None:
    """Why the replacement exists (once BentoML cancels its timer, this test fails and
    the replacement can go)."""
    sent, freed = _call(traffic.BENTOML_TIMEOUT_MIDDLEWARE(_answer, timeout=60.0))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert not freed


def test_a_request_past_the_timeout_is_a_504_and_its_endpoint_is_cancelled() -> None:
    cancelled: list[bool] = []

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    sent, _ = _call(RequestTimeout(slow, timeout=0.05))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 504
    assert "0.05 seconds" in json.loads(sent[1]["body"])["error"]
    assert cancelled == [True]


def test_an_endpoint_that_fails_before_answering_does_not_wait_out_the_timer() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("broken endpoint")

    loop_time: list[float] = []

    async def run() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(RuntimeError, match="broken endpoint"):
            await RequestTimeout(broken, timeout=30.0)({"type": "http"}, _no_receive, _no_send)
        loop_time.append(loop.time() - start)

    asyncio.run(run())
    assert loop_time[0] < 5.0


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


async def _no_send(message: Message) -> None:
    raise AssertionError("nothing is sent")


def test_the_service_builds_its_app_with_the_corrected_middleware() -> None:
    traffic.install()
    assert bentoml_traffic.TimeoutMiddleware is RequestTimeout
