"""The gate in front of every endpoint: three ASGI middlewares that BentoML runs first.

In the order a call meets them (:mod:`stratum_ml.serving.service` adds them
with ``add_asgi_middleware``, outermost first):

1. :class:`AuditMiddleware` (:mod:`~stratum_ml.serving.gate.auditing`) makes
   the call's :class:`RequestState` and, once the answer's status is known,
   writes the audit record (time, key id, role, endpoint, address ids, model
   version, status) and makes it durable *before* the answer leaves; 503 when
   it cannot. Outermost, so that it records the refusals of the two below;
2. Starlette's ``AuthenticationMiddleware`` with :class:`ApiKeyBackend`
   (:mod:`~stratum_ml.serving.gate.authentication`): the API key (401), the
   role (403), the caller on ``scope["user"]`` and its role as auth scope;
3. :class:`BodyGuard` (:mod:`~stratum_ml.serving.gate.body_guard`): body size
   (413), POST (405), JSON (415) and the endpoint's request model with the
   batch limit in force (400, 422).

So a caller is judged before its body: a call without a valid key, or with a
role that may not call the endpoint, is refused before its body is read or
checked (its body is then read only for the audit record's address ids). A
damaged API key file is a 503 (audited) and an error escaping an endpoint a
500 (audited), both with the details in the server log only.

Not gated: answers that BentoML's own outer middlewares give before the gate
runs (a request over the traffic timeout or concurrency limit); they are in
BentoML's access log.

Errors are JSON ``{"error": "<what is wrong>", "detail": [{"loc", "msg",
"type"}]}``; they never echo the rejected values and never hold a stack trace.
BentoML's own ``/readyz``, ``/livez``, ``/healthz``, ``/metrics``, ``/docs.json``
and ``/schema.json`` are public and do not pass the gate.
"""

from __future__ import annotations

from stratum_ml.serving.gate.auditing import AuditMiddleware
from stratum_ml.serving.gate.authentication import ApiKeyBackend, KeyRefused, refuse_key
from stratum_ml.serving.gate.body_guard import BodyGuard
from stratum_ml.serving.gate.request_state import (
    STATE_KEY,
    Refusal,
    RequestState,
    Route,
    StateProvider,
    caller,
    error_response,
    protected_routes,
    request_state,
)

__all__ = [
    "STATE_KEY",
    "ApiKeyBackend",
    "AuditMiddleware",
    "BodyGuard",
    "KeyRefused",
    "Refusal",
    "RequestState",
    "Route",
    "StateProvider",
    "caller",
    "error_response",
    "protected_routes",
    "refuse_key",
    "request_state",
]
