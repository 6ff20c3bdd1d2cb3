"""Server-side sessions of the web app, kept in the operational store.

``/app/login`` takes an API key, checks it like the API does
(:meth:`~stratum_ml.serving.auth.KeyStore.authenticate`) and starts a session:
a random token goes to the browser in a cookie (HttpOnly, SameSite=Strict,
Secure when served over TLS); the store keeps only its SHA-256, with the key id,
role and key name, a CSRF token and the page language (``app_sessions``). Every
service worker reads the same rows, so a session started in one worker is known
in all. A session ends at ``/app/logout``, after :data:`DEFAULT_IDLE_MINUTES`
without a request (``STRATUM_APP_IDLE_MINUTES``), or when its key is revoked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select, update

from stratum_ml.serving.auth import Principal, Role
from stratum_ml.store import Store
from stratum_ml.store.tables import AppSessionRow

#: the session cookie's name
COOKIE = "stratum_session"
#: minutes without a request after which a session ends
DEFAULT_IDLE_MINUTES = 30
#: a session's ``last_seen_at`` is written again at most this often
TOUCH_SECONDS = 30

Language = Literal["nl", "en"]


def idle_minutes() -> int:
    """``STRATUM_APP_IDLE_MINUTES`` (default :data:`DEFAULT_IDLE_MINUTES`), at least 1."""
    raw = os.environ.get("STRATUM_APP_IDLE_MINUTES", "")
    try:
        value = int(raw) if raw else DEFAULT_IDLE_MINUTES
    except ValueError:
        raise ValueError(f"STRATUM_APP_IDLE_MINUTES must be a whole number, not {raw!r}") from None
    if value < 1:
        raise ValueError("STRATUM_APP_IDLE_MINUTES must be at least 1")
    return value


def token_hash(token: str) -> str:
    """The SHA-256 (hex) under which a session token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    """A live session: who, the form token and the page language."""

    token_sha256: str
    principal: Principal
    csrf_token: str
    language: Language

    def csrf_ok(self, sent: str | None) -> bool:
        """Whether a form carried this session's CSRF token."""
        return sent is not None and hmac.compare_digest(sent, self.csrf_token)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SessionStore:
    """Start, find, re-language and end sessions in the operational store.

    Parameters
    ----------
    store
        The operational store.
    idle
        How long a session lives without a request.
    """

    def __init__(self, store: Store, idle: dt.timedelta) -> None:
        self.store = store
        self.idle = idle

    def start(self, principal: Principal, language: Language) -> str:
        """Start a session for an authenticated caller; returns the cookie token."""
        token = secrets.token_urlsafe(32)
        now = _now()
        with self.store.transaction() as session:
            session.add(
                AppSessionRow(
                    token_sha256=token_hash(token),
                    key_id=principal.key_id,
                    role=principal.role.value,
                    key_name=principal.name,
                    csrf_token=secrets.token_urlsafe(32),
                    language=language,
                    created_at=now,
                    last_seen_at=now,
                    ended_at=None,
                )
            )
        return token

    def find(self, token: str | None) -> Session | None:
        """The live session of a cookie token (seen now); None when unknown, ended or idle."""
        if not token:
            return None
        digest = token_hash(token)
        now = _now()
        with self.store.transaction() as session:
            row = session.get(AppSessionRow, digest)
            if row is None or row.ended_at is not None:
                return None
            if now - row.last_seen_at > self.idle:
                row.ended_at = now
                return None
            if (now - row.last_seen_at).total_seconds() >= TOUCH_SECONDS:
                row.last_seen_at = now
            language: Language = "en" if row.language == "en" else "nl"
            return Session(
                token_sha256=digest,
                principal=Principal(key_id=row.key_id, name=row.key_name, role=Role(row.role)),
                csrf_token=row.csrf_token,
                language=language,
            )

    def set_language(self, live: Session, language: Language) -> None:
        """Change a session's page language."""
        with self.store.transaction() as session:
            session.execute(
                update(AppSessionRow)
                .where(AppSessionRow.token_sha256 == live.token_sha256)
                .values(language=language)
            )

    def end(self, live: Session) -> None:
        """End a session (logout, or its key was revoked)."""
        with self.store.transaction() as session:
            session.execute(
                update(AppSessionRow)
                .where(AppSessionRow.token_sha256 == live.token_sha256)
                .values(ended_at=_now())
            )

    def live_count(self, key_id: str) -> int:
        """How many sessions of a key are not ended (idle ones included)."""
        with self.store.transaction() as session:
            rows = session.execute(
                select(AppSessionRow.token_sha256).where(
                    AppSessionRow.key_id == key_id, AppSessionRow.ended_at.is_(None)
                )
            ).all()
        return len(rows)
