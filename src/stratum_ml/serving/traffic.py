"""BentoML's traffic timeout, with its timer cancelled once the answer starts.

BentoML (1.4.40) answers 504 when no answer has started within ``traffic.timeout``
seconds (60 by default) through its ``TimeoutMiddleware``, which schedules a timer per
request and never cancels it. Every request so leaves a timer on the event loop for the
whole timeout, and the timer holds the request's future and the context it was made in
(the request's OpenTelemetry span, its attributes and locks). At 400 requests a second
that is some 25,000 requests' objects alive at any time: they outlive the young
generations, and each full collection of the garbage collector walks them while every
request waits. Measured on the service with one worker and 32 clients: a full
collection every ~1.6 s, growing from 8 to 42 ms within 10 s (``bench/serving.py``; the
notes in ``bench/results/serving_notes.md``).

:class:`RequestTimeout` does what BentoML's does (the same 504 answer, the same
place in the middleware stack, the endpoint's task cancelled) and cancels its timer as
soon as the answer starts or the endpoint ends. :func:`install` puts it where BentoML
looks its timeout middleware up when it builds the app; the service module calls it at
import, before BentoML builds the app in a worker.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bentoml._internal.server.http import traffic as _bentoml_traffic
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratum_ml.serving.gate.request_state import error_response

#: BentoML's own timeout middleware, as imported before :func:`install` replaced it
BENTOML_TIMEOUT_MIDDLEWARE: Any = _bentoml_traffic.TimeoutMiddleware


class RequestTimeout:
    """ASGI middleware: a 504 when no answer has started within ``timeout`` seconds.

    Parameters
    ----------
    app
        The application it wraps.
    timeout
        Seconds (BentoML's ``traffic.timeout``).
    """

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(self.timeout, _time_out, started)

        async def send_started(message: Message) -> None:
            if not started.done():
                started.set_result(None)
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, send_started))
        # an endpoint that ends without answering (it raised) must not wait out the timer
        task.add_done_callback(lambda _: None if started.done() else started.set_result(None))
        try:
            await started
        except TimeoutError:
            if task.cancel():
                message = f"Not able to process the request in {self.timeout} seconds"
                await error_response(504, message)(scope, receive, send)
            return
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            timer.cancel()
        await task


def _time_out(started: asyncio.Future[None]) -> None:
    if not started.done():
        started.set_exception(TimeoutError())


def install() -> None:
    """Make BentoML build its apps with :class:`RequestTimeout` as the timeout middleware.

    BentoML's app factory imports ``TimeoutMiddleware`` from this module of its own each
    time it lists its middlewares, so setting the name there is enough. Idempotent.
    """
    bentoml_traffic: Any = _bentoml_traffic
    bentoml_traffic.TimeoutMiddleware = RequestTimeout


__all__ = ["BENTOML_TIMEOUT_MIDDLEWARE", "RequestTimeout", "install"]
