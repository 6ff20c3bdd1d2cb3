"""Who is calling, and may they: the API key backend of Starlette's authentication middleware.

Installed as ``AuthenticationMiddleware(app, backend=ApiKeyBackend(),
on_error=refuse_key)``. On a protected call the backend

1. authenticates the API key (:meth:`~stratum_ml.serving.auth.KeyStore.authenticate`):
   401 for a missing, malformed, unknown or revoked key or a wrong secret;
2. checks the role against the permission table
   (:func:`~stratum_ml.serving.auth.authorize`): 403;
3. puts the caller on ``scope["user"]`` (a
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

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection
from starlette.responses import Response

from stratum_ml.serving.auth import AuthError, authorize
from stratum_ml.serving.gate.request_state import error_response, request_state

#: the answer when the key file cannot be read
KEY_FILE_DAMAGED = "the API key file is damaged; no request can be authorised"

log = logging.getLogger(__name__)


class KeyRefused(AuthenticationError):
    """A call refused by the backend: ``status`` 401, 403 or 503, and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ApiKeyBackend(AuthenticationBackend):
    """Authenticate the API key of a protected call and authorise its role."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """The caller's role (as auth scope) and principal; None for an unprotected call.

        Raises
        ------
        KeyRefused
            401 (who are you?), 403 (not for your role) or 503 (damaged key file).
        """
        state = request_state(conn.scope)
        if state is None:
            return None
        try:
            principal = state.service.keys.authenticate(conn.headers)
        except AuthError as exc:
            state.key_id = exc.key_id
            raise KeyRefused(exc.status, exc.detail) from None
        except ValueError:  # the key file was replaced by an invalid one
            log.exception("cannot read the API key file")
            raise KeyRefused(503, KEY_FILE_DAMAGED) from None
        state.principal, state.key_id = principal, principal.key_id
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
        state.detail = message
    return error_response(status, message)
