"""What the gate's middlewares and the endpoints share about one protected call.

:class:`RequestState` is made once per call by the audit middleware and kept
in the ASGI scope under :data:`STATE_KEY`; the authentication middleware, the
body guard and the endpoint fill it in, and the audit record is made of it.
The accepted caller is also the Starlette user, ``scope["user"]``
(:func:`caller`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope

from stratum_ml.serving.api_models import ApiRequest, ErrorDetail, ErrorResponse
from stratum_ml.serving.app_state import ServiceState
from stratum_ml.serving.auth import Endpoint, Principal

#: the scope key under which the :class:`RequestState` of a protected call is kept
STATE_KEY = "stratum"

#: returns the service's loaded state, or None while the service is starting
StateProvider = Callable[[], ServiceState | None]


@dataclass(frozen=True)
class Route:
    """A protected route: its endpoint (for roles and the log) and its request model."""

    endpoint: Endpoint
    request_model: type[ApiRequest]


@dataclass
class RequestState:
    """One protected call, as far as it is known; its audit record is made of it.

    Attributes
    ----------
    route
        The route called.
    service
        The service's loaded state (keys, limits, audit log, model version).
    key_id
        The id of the caller's key, once the key store knows it (also for a
        wrong secret or a revoked key); None otherwise.
    principal
        The caller, once authenticated (also when then refused for its role).
    address_ids
        The address ids the request asks for, once its body passed the request
        model; None before (and for a refused body: nothing a caller sends that
        failed validation is recorded).
    listed_ids
        Address ids the endpoint listed in its answer (the priority list).
    detail
        Why the call was refused, for the audit record; empty when answered.
    body
        The body as read (only its keyed hash is ever recorded); None until read.
    body_size
        Its size in bytes, or the size it declared when it was too large to read.
    """

    route: Route
    service: ServiceState
    key_id: str | None = None
    principal: Principal | None = None
    address_ids: list[str] | None = None
    listed_ids: list[str] = field(default_factory=list)
    detail: str = ""
    body: bytes | None = field(default=None, repr=False)
    body_size: int | None = None

    def audited_ids(self) -> list[str]:
        """Every address id the call asked for or was answered with."""
        return [*(self.address_ids or []), *self.listed_ids]


def request_state(scope: Scope) -> RequestState | None:
    """The call's :class:`RequestState`; None for a call the gate does not protect."""
    state = scope.get(STATE_KEY)
    return state if isinstance(state, RequestState) else None


def caller(scope: Scope) -> Principal:
    """The authenticated caller of a protected call (``scope["user"]``).

    Raises
    ------
    RuntimeError
        When the call did not pass the authentication middleware.
    """
    user = scope.get("user")
    if not isinstance(user, Principal):
        raise RuntimeError("no authenticated caller: the gate's middlewares are not installed")
    return user


class Refusal(Exception):
    """A call the gate answers itself with a 4xx or 5xx error (and headers, such as ``Allow``)."""

    def __init__(
        self,
        status: int,
        message: str,
        detail: list[ErrorDetail] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = headers


def error_response(
    status: int,
    message: str,
    detail: list[ErrorDetail] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The JSON error answer every refusal uses."""
    body = ErrorResponse(error=message, detail=detail)
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers
    )


def protected_routes(service: Any) -> dict[str, Route]:
    """Path -> :class:`Route` for every API of a BentoML service class.

    Each API must be named after an :class:`~stratum_ml.serving.auth.Endpoint`
    (ValueError otherwise) and take one :class:`ApiRequest` (TypeError otherwise):
    the gate validates with the same model BentoML does.
    """
    prefix = (getattr(service, "path_prefix", None) or "").rstrip("/")
    routes: dict[str, Route] = {}
    for name, method in service.apis.items():
        if not issubclass(method.input_spec, ApiRequest):
            raise TypeError(f"API {name!r} must take one ApiRequest model as its input")
        routes[f"{prefix}{method.route}"] = Route(Endpoint(name), method.input_spec)
    return routes


async def read_body(receive: Receive, headers: Headers, limit: int) -> bytes:
    """The whole request body, at most ``limit`` bytes.

    Raises
    ------
    Refusal
        413 when the body is (or is declared) larger than ``limit``; 400 when
        the client disconnects before it has sent the body.
    """
    too_large = Refusal(413, f"the request body exceeds {limit} bytes")
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise Refusal(400, "the client disconnected before sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
