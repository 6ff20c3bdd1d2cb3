"""Who is calling, and may they: the API key backend of Starlette's authentication middleware.

Installed as ``AuthenticationMiddleware(app, backend=ApiKeyBackend(),
on_error=refuse_key)``. On a protected call the backend

0. applies the rate limits (:mod:`~stratum_ml.serving.gate.limits`; 429 with
   ``Retry-After``): per client address for every call, per client address for
   calls with a missing, unknown or wrong key (a tighter limit, against key
   guessing and log filling), and per key id;
1. refuses a key locked out after repeated wrong secrets
   (:mod:`~stratum_ml.serving.key_lockout`; 401), and records a wrong secret
   sent with a known key id, locking the key at the limit (the call's audit
   record says so);
2. authenticates the API key (:meth:`~stratum_ml.serving.auth.KeyStore.authenticate`):
   401 for a missing, malformed, unknown or revoked key or a wrong secret;
3. checks the role against the permission table
   (:func:`~stratum_ml.serving.auth.authorize`): 403;
4. puts the caller on ``scope["user"]`` (a
   :class:`~stratum_ml.serving.auth.Principal`) and its role as the auth scope
   (``scope["auth"].scopes == [role]``).

A key file that was replaced by an invalid one is a 503, with the details in
the server log only. Whatever is learnt about the caller (the key id, also of a
refused key) goes to the call's
:class:`~stratum_ml.serving.gate.request_state.RequestState` for the audit
record. Calls the gate does not protect pass with no user.
"""

from __future__ import annotations

import logging

import anyio.to_thread
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection
from starlette.responses import Response

from stratum_ml.serving.app_state import ServiceState
from stratum_ml.serving.auth import AuthError, Principal, authorize
from stratum_ml.serving.gate.limits import RateLimiter, service_limiter
from stratum_ml.serving.gate.request_state import RequestState, error_response, request_state
from stratum_ml.serving.key_lockout import LockoutPolicy, is_locked, record_wrong_secret

#: the answer when the key file cannot be read
KEY_FILE_DAMAGED = "the API key file is damaged; no request can be authorised"

log = logging.getLogger(__name__)


#: the answer to a locked key
KEY_LOCKED = (
    "this API key is locked after repeated wrong secrets; an admin unlocks it with "
    "`stratum keys unlock KEY_ID`"
)
#: the audit detail of the wrong secret that locked a key
KEY_NOW_LOCKED = "invalid API key; the key is now locked after repeated wrong secrets"


def count_refused_key(
    service: ServiceState, limiter: RateLimiter, exc: AuthError, client: str
) -> str | None:
    """Count a refused key, for an API call or a login alike.

    The refusal costs a token of the client address's bad-key bucket; a wrong secret of
    a known key id is recorded and locks the key id at the limit
    (:mod:`stratum_ml.serving.key_lockout`).

    Returns
    -------
    str or None
        :data:`KEY_LOCKED` when the key id was locked already, :data:`KEY_NOW_LOCKED`
        when this wrong secret locked it, else None.
    """
    serving = service.serving
    limiter.take("bad key", client, serving.bad_keys_per_minute / 60.0, serving.bad_keys_burst)
    if exc.key_id is None or not exc.wrong_secret:
        return None
    if is_locked(service.store, exc.key_id):
        return KEY_LOCKED
    policy = LockoutPolicy(serving.key_lock_after, serving.key_lock_window_s)
    if record_wrong_secret(service.store, exc.key_id, policy):
        log.warning("API key %s locked after repeated wrong secrets", exc.key_id)
        return KEY_NOW_LOCKED
    return None


class KeyRefused(AuthenticationError):
    """A call refused by the backend: ``status`` 401, 403, 429 or 503, and why."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.audit_detail = message


def _too_many(wait: int, whose: str) -> KeyRefused:
    return KeyRefused(429, f"too many requests {whose}; retry after {wait} s", retry_after=wait)


class ApiKeyBackend(AuthenticationBackend):
    """Rate-limit, authenticate the API key of a protected call and authorise its role.

    Parameters
    ----------
    limiter
        The token buckets; by default the service's (``ServiceState.limiter``, shared
        by its workers), else a new in-memory :class:`RateLimiter` of this process.
    """

    def __init__(self, limiter: RateLimiter | None = None) -> None:
        self._own = limiter or RateLimiter()
        self._given = limiter is not None

    def limiter(self, state: RequestState) -> RateLimiter:
        """The buckets a call counts against."""
        return self._own if self._given else service_limiter(state.service, self._own)

    def _limit_address(self, state: RequestState, client: str) -> None:
        serving = state.service.serving
        bad = (serving.bad_keys_per_minute / 60.0, serving.bad_keys_burst)
        limiter = self.limiter(state)
        if wait := limiter.peek("bad key", client, *bad):
            raise _too_many(wait, "with bad API keys from this address")
        if wait := limiter.take(
            "address", client, serving.rate_per_address, serving.burst_per_address
        ):
            raise _too_many(wait, "from this address")

    def _identify(self, state: RequestState, conn: HTTPConnection) -> Principal:
        """The caller of a key that is known, not revoked and not locked.

        Cheap enough for the event loop: a ``stat`` of the key file (read again only when
        it changed), one SHA-256, and the lock-out read kept until the store changes
        (:meth:`~stratum_ml.store.Store.memo`); no thread hand-off on the common path.

        Raises
        ------
        AuthError
            For a missing, malformed, unknown or revoked key or a wrong secret.
        KeyRefused
            503 for a damaged key file, 401 for a locked key.
        """
        try:
            principal = state.service.keys.authenticate(conn.headers)
        except ValueError:  # the key file was replaced by an invalid one
            log.exception("cannot read the API key file")
            raise KeyRefused(503, KEY_FILE_DAMAGED) from None
        state.key_id = principal.key_id
        if is_locked(state.service.store, principal.key_id):
            raise KeyRefused(401, KEY_LOCKED)
        return principal

    def _refusal(self, state: RequestState, exc: AuthError, client: str) -> KeyRefused:
        """Count a refused key (:func:`count_refused_key`); the refusal to raise."""
        state.key_id = exc.key_id
        lock = count_refused_key(state.service, self.limiter(state), exc, client)
        if lock == KEY_LOCKED:
            return KeyRefused(401, KEY_LOCKED)
        refused = KeyRefused(exc.status, exc.detail)
        if lock == KEY_NOW_LOCKED:
            refused.audit_detail = KEY_NOW_LOCKED
        return refused

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """The caller's role (as auth scope) and principal; None for an unprotected call.

        Raises
        ------
        KeyRefused
            401 (who are you?), 403 (not for your role), 429 (too many requests) or
            503 (damaged key file).
        """
        state = request_state(conn.scope)
        if state is None:
            return None
        client = conn.client.host if conn.client is not None else "unknown"
        self._limit_address(state, client)
        try:
            principal = self._identify(state, conn)
        except AuthError as exc:  # a write to the store: in a thread
            raise await anyio.to_thread.run_sync(self._refusal, state, exc, client) from None
        serving = state.service.serving
        if wait := self.limiter(state).take(
            "key", principal.key_id, serving.rate_per_key, serving.burst_per_key
        ):
            raise _too_many(wait, "with this API key")
        state.principal = principal
        try:
            authorize(principal, state.route.endpoint)
        except AuthError as exc:
            raise KeyRefused(exc.status, exc.detail) from None
        return AuthCredentials([principal.role.value]), principal


def refuse_key(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    """The JSON error answer to a refused key (``on_error`` of the middleware)."""
    status, message = (exc.status, exc.message) if isinstance(exc, KeyRefused) else (401, str(exc))
    state = request_state(conn.scope)
    if state is not None:
        state.detail = exc.audit_detail if isinstance(exc, KeyRefused) else message
    retry = exc.retry_after if isinstance(exc, KeyRefused) else None
    headers = {"Retry-After": str(retry)} if retry is not None else None
    return error_response(status, message, headers=headers)
