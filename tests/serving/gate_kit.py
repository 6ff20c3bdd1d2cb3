"""What the fast tests of the gate's middlewares share: a small service state and a dummy app.

The middlewares read seven things of the service's state: its key store, its
audit log, its limits, its operational store (key lock-outs), the key that
hashes refused bodies, its model version and its shared rate-limit buckets.
:class:`FakeService` holds real ones (in a temporary folder), and nothing else: no
model, no data, no BentoML.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from stratum_ml.serving.api_models import (
    DossierRequest,
    ModelRequest,
    PriorityListRequest,
    ScoreRequest,
)
from stratum_ml.serving.app_state import ServiceState, ServingSettings
from stratum_ml.serving.audit import AuditLog
from stratum_ml.serving.auth import Endpoint, KeyStore, Role, create_key
from stratum_ml.serving.gate import STATE_KEY, RequestState, Route, request_state
from stratum_ml.serving.gate.limits import RateLimiter
from stratum_ml.store import Store, open_store

with warnings.catch_warnings():
    # starlette 1.x would rather drive its test client with httpx2; httpx (installed,
    # bentoml's client uses it) works the same
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient as TestClient  # for the tests, warning-free

MODEL_VERSION = "7"
BODY_KEY = b"k" * 32
MAX_BODY_BYTES = 1024
MAX_BATCH_SIZE = 3
ROUTES = {
    "/score": Route(Endpoint.SCORE, ScoreRequest),
    "/priority_list": Route(Endpoint.PRIORITY_LIST, PriorityListRequest),
    "/dossier": Route(Endpoint.DOSSIER, DossierRequest),
    "/model": Route(Endpoint.MODEL, ModelRequest),
}
A, B, C = "0479010000000001", "0479010000000002", "0479010000000003"


@dataclass
class FakeService:
    """The part of :class:`ServiceState` the gate reads."""

    keys: KeyStore
    audit: AuditLog
    serving: ServingSettings
    keys_file: Path
    key_ids: dict[Role, str]
    secrets: dict[Role, str]
    store: Store
    body_key: bytes = BODY_KEY
    model_version: str = MODEL_VERSION
    #: the buckets shared by the workers (a file), as the service's; None: none
    limiter: RateLimiter | None = None

    def as_state(self) -> ServiceState:
        """This stand-in, typed as what the middlewares expect."""
        return cast(ServiceState, self)

    def records(self) -> list[dict[str, object]]:
        """The audit log's records, oldest first."""
        return [json.loads(line) for line in self.audit.path.read_text("utf-8").splitlines()]


def fake_service(folder: Path, **serving: Any) -> FakeService:
    """A key per role, an empty audit log, a SQLite store and small limits, under ``folder``.

    ``serving`` overrides settings of :class:`ServingSettings` (rate limits, ...).
    """
    keys_file = folder / "api_keys.json"
    key_ids: dict[Role, str] = {}
    secrets: dict[Role, str] = {}
    for role in Role:
        key_ids[role], secrets[role] = create_key(keys_file, role, f"test {role.value}")
    return FakeService(
        keys=KeyStore.load(keys_file),
        audit=AuditLog(folder / "audit.jsonl"),
        serving=ServingSettings(
            **{"max_body_bytes": MAX_BODY_BYTES, "max_batch_size": MAX_BATCH_SIZE, **serving}
        ),
        keys_file=keys_file,
        key_ids=key_ids,
        secrets=secrets,
        store=open_store(f"sqlite:///{folder / 'stratum.db'}"),
    )


class WithState:
    """Makes each protected call's :class:`RequestState`, as the audit middleware does.

    For testing the authentication middleware and the body guard on their own;
    ``last`` is the state of the latest call.
    """

    def __init__(self, app: ASGIApp, service: FakeService) -> None:
        self.app, self.service = app, service
        self.last: RequestState | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = ROUTES.get(scope.get("path", "")) if scope["type"] == "http" else None
        if route is not None:
            self.last = scope[STATE_KEY] = RequestState(route, self.service.as_state())
        await self.app(scope, receive, send)


async def _echo(request: Request) -> JSONResponse:
    """What the endpoint sees: the caller, its auth scopes and the body it was handed."""
    user = request.scope.get("user")
    auth = request.scope.get("auth")
    body = await request.body()
    state = request_state(request.scope)
    if state is not None and request.url.path == "/priority_list":
        state.listed_ids = [B, C]
    return JSONResponse(
        {
            "user": getattr(user, "identity", None) if user and user.is_authenticated else None,
            "name": user.display_name if user and user.is_authenticated else None,
            "scopes": list(auth.scopes) if auth else None,
            "body": body.decode(),
        }
    )


def echo_app() -> Starlette:
    """A dummy app that answers every protected path (and a public one) with :func:`_echo`."""
    paths = [*ROUTES, "/readyz"]
    return Starlette(routes=[StarletteRoute(p, _echo, methods=["GET", "POST"]) for p in paths])


def bearer(key: str) -> dict[str, str]:
    """The header that carries ``key``."""
    return {"Authorization": f"Bearer {key}"}
