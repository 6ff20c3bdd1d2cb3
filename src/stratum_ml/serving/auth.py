"""API keys, roles and the endpoint permission table of the scoring service.

Every protected request carries an API key, either as ``Authorization: Bearer
<key>`` or as ``X-API-Key: <key>``. The key names its role; the role decides
which endpoints it may call. No key, a malformed key, an unknown key or a
revoked key is refused with 401; a known key whose role may not call the
endpoint is refused with 403. BentoML's own ``/healthz``, ``/livez``,
``/readyz`` and ``/metrics`` are public and never pass through here.

Permission table (:data:`PERMISSIONS`)::

    endpoint        analyst  case_handler  application  admin
    score           yes      yes           yes          yes
    priority_list   yes      -             -            yes
    explain         yes      yes           -            yes
    dossier         -        yes           -            -
    feedback        -        yes           -            -
    model           yes      yes           yes          yes
    summary         yes      -             -            yes
    decision        yes      -             -            yes
    decisions       yes      -             -            yes
    pause           -        -             -            yes

Why this table:

- *analyst* ranks addresses municipality-wide and reads the reasons, sees how
  the top of the list spreads over areas (small counts withheld), and records
  the human decision to pass an address on for a visit or not; the analyst
  sees no person data, so no dossier, and records no visit outcomes. The
  analyst reads decisions back (``decisions``): their own and colleagues',
  to see what is open on an address before deciding again.
- *case_handler* prepares the visit of one address assigned to them: its
  score, its explanation and its dossier, and records the outcome afterwards.
  No priority list: a visit does not need the ranking of the whole
  municipality, and a role that sees (pseudonymised) person data should not
  also browse which addresses rank highest (data minimisation, GDPR art.
  5(1)(c)).
- *application* is another system that sends address ids and gets scores with
  their top reasons; the model endpoint documents what it is calling.
- *admin* operates the service and may use every address-level endpoint
  (the analyst's included), but not the two that the service specification
  reserves for case handlers: the dossier (person data, need-to-know) and
  feedback (visit outcomes become training labels and must come from the
  person who made the visit). Reading decisions back goes with recording
  them: analyst and admin. Not the case handler: decisions list which
  addresses were chosen for visits municipality-wide, which is the ranking
  by another name (see above); the visit assignment reaches them through the
  municipality's case system. Keys are managed with ``stratum keys`` on the
  server, not over the API. Only the admin pauses and resumes the model (the
  kill switch, ``pause``; also ``stratum pause`` on the server): it changes
  what every other caller is answered.

Keys look like ``stk_<key_id>_<secret>``: a 16-hex-digit key id, which is
not secret and is what the audit log records, and 32 random bytes (43
characters of URL-safe base64). The key file (:func:`default_keys_file`)
holds per key only its id, name, role, creation and revocation time, a random
salt and the SHA-256 of salt + secret; it is rewritten atomically with mode
0600. The secret itself is shown once, by :func:`create_key`, and stored
nowhere.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.authentication import BaseUser

from stratum_ml.config import get_settings
from stratum_ml.io import atomic_path


class Role(StrEnum):
    """What a key may do; see the permission table in the module docstring."""

    ANALYST = "analyst"
    CASE_HANDLER = "case_handler"
    APPLICATION = "application"
    ADMIN = "admin"


class Endpoint(StrEnum):
    """The protected endpoints of the scoring service."""

    SCORE = "score"
    PRIORITY_LIST = "priority_list"
    EXPLAIN = "explain"
    DOSSIER = "dossier"
    FEEDBACK = "feedback"
    MODEL = "model"
    SUMMARY = "summary"
    DECISION = "decision"
    DECISIONS = "decisions"
    PAUSE = "pause"


PERMISSIONS: Mapping[Role, frozenset[Endpoint]] = MappingProxyType(
    {
        Role.ANALYST: frozenset(
            {
                Endpoint.SCORE,
                Endpoint.PRIORITY_LIST,
                Endpoint.EXPLAIN,
                Endpoint.MODEL,
                Endpoint.SUMMARY,
                Endpoint.DECISION,
                Endpoint.DECISIONS,
            }
        ),
        Role.CASE_HANDLER: frozenset(
            {Endpoint.SCORE, Endpoint.EXPLAIN, Endpoint.DOSSIER, Endpoint.FEEDBACK, Endpoint.MODEL}
        ),
        Role.APPLICATION: frozenset({Endpoint.SCORE, Endpoint.MODEL}),
        Role.ADMIN: frozenset(
            {
                Endpoint.SCORE,
                Endpoint.PRIORITY_LIST,
                Endpoint.EXPLAIN,
                Endpoint.MODEL,
                Endpoint.SUMMARY,
                Endpoint.DECISION,
                Endpoint.DECISIONS,
                Endpoint.PAUSE,
            }
        ),
    }
)
"""Endpoints each role may call; anything not listed is refused with 403."""

KEY_PREFIX = "stk_"
_KEY_RE = re.compile(r"stk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_NAME_MAX = 100


class AuthError(Exception):
    """A refused request: ``status`` is 401 (who are you?) or 403 (not for your role).

    ``key_id`` is set when the key id is known to the key store, so that the
    audit log can record which key was refused; it is never the key itself.
    ``wrong_secret`` is True when a known key id came with a wrong secret (the
    service counts those towards the key's lock-out).
    """

    def __init__(
        self,
        status: Literal[401, 403],
        detail: str,
        key_id: str | None = None,
        *,
        wrong_secret: bool = False,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.key_id = key_id
        self.wrong_secret = wrong_secret


@dataclass(frozen=True)
class Principal(BaseUser):
    """The caller behind an accepted key; the service's ``scope["user"]`` (a Starlette user)."""

    key_id: str
    name: str
    role: Role

    @property
    def is_authenticated(self) -> bool:
        """Always True: a principal is made only for an accepted key."""
        return True

    @property
    def display_name(self) -> str:
        """The key's name, e.g. ``"team wonen - j.jansen"``."""
        return self.name

    @property
    def identity(self) -> str:
        """The key id (what the audit log records)."""
        return self.key_id


class KeyInfo(BaseModel):
    """What may be shown about a key: never its secret or hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    name: str
    role: Role
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None


class _KeyRecord(KeyInfo):
    """One entry of the key file."""

    salt: str = Field(pattern=r"^[0-9a-f]{32}$")
    secret_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    def info(self) -> KeyInfo:
        return KeyInfo.model_validate(self.model_dump(exclude={"salt", "secret_sha256"}))


class _KeyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    keys: list[_KeyRecord] = Field(default_factory=list)


def default_keys_file() -> Path:
    """The key file in force: ``$STRATUM_API_KEYS_FILE`` or ``<home>/api_keys.json``."""
    env = os.environ.get("STRATUM_API_KEYS_FILE")
    return Path(env) if env else get_settings().home / "api_keys.json"


def _digest(salt: bytes, secret: str) -> bytes:
    # A fast salted SHA-256, not a slow KDF (scrypt/PBKDF2). A slow KDF makes
    # guessing a low-entropy *password* from a stolen hash expensive; these
    # secrets are 256 bits from `secrets`, so guessing is infeasible at any hash
    # speed, and a 100 ms KDF would only add 100 ms to every request. The salt
    # rules out precomputed tables all the same.
    return hashlib.sha256(salt + secret.encode("ascii")).digest()


def _read(path: Path) -> _KeyFile:
    if not path.exists():
        return _KeyFile()
    try:
        return _KeyFile.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise ValueError(f"{path}: not a valid API key file:\n{exc}") from None


@contextmanager
def _transaction(path: Path) -> Iterator[_KeyFile]:
    """Yield the key file's content under an exclusive lock; write it back atomically (0600).

    The lock (on a ``.lock`` file beside it, since the key file itself is
    replaced on every write) keeps two admin commands from losing each
    other's changes, such as a revocation.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        content = _read(path)
        yield content
        with atomic_path(path) as tmp:
            tmp.write_text(content.model_dump_json(indent=2) + "\n", encoding="utf-8")
            os.chmod(tmp, 0o600)
    finally:
        os.close(lock_fd)  # releases the lock


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _new_key(content: _KeyFile, role: Role | str, name: str) -> tuple[str, str]:
    """Add a new key to ``content``; return its id and the key string."""
    try:
        role = Role(role)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {role!r}; choose one of: {choices}") from None
    name = name.strip()
    if not name or len(name) > _NAME_MAX or not name.isprintable():
        raise ValueError(f"key name must be 1 to {_NAME_MAX} printable characters")
    taken = {k.key_id for k in content.keys}
    key_id = secrets.token_hex(8)
    while key_id in taken:
        key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    record = _KeyRecord(
        key_id=key_id,
        name=name,
        role=role,
        created_at=_now(),
        salt=salt.hex(),
        secret_sha256=_digest(salt, secret).hex(),
    )
    content.keys.append(record)
    return key_id, f"{KEY_PREFIX}{key_id}_{secret}"


def create_key(store_path: str | os.PathLike[str], role: Role | str, name: str) -> tuple[str, str]:
    """Create a key for ``role``; return ``(key_id, key)``.

    The key is returned once and stored nowhere: only its salted hash is kept.

    Parameters
    ----------
    store_path
        The key file; created (mode 0600) when missing.
    role
        A :class:`Role` or its name.
    name
        Who or what holds the key, e.g. ``"team wonen - j.jansen"``.

    Returns
    -------
    tuple of str
        The key id (safe to log and show) and the key (secret).

    Raises
    ------
    ValueError
        For an unknown role or an empty, too long or unprintable name.
    """
    with _transaction(Path(store_path)) as content:
        return _new_key(content, role, name)


def revoke_key(store_path: str | os.PathLike[str], key_id: str) -> KeyInfo:
    """Revoke a key; it is kept, marked revoked, so that audit records stay attributable.

    Revoking a revoked key changes nothing. A running service refuses the key
    from its next request on (see :meth:`KeyStore.authenticate`).

    Raises
    ------
    LookupError
        When no key has this id.
    """
    with _transaction(Path(store_path)) as content:
        for i, record in enumerate(content.keys):
            if record.key_id == key_id:
                if record.revoked_at is None:
                    record = content.keys[i] = record.model_copy(update={"revoked_at": _now()})
                return record.info()
        raise LookupError(f"no key with id {key_id!r}")  # leaves the file untouched


def list_keys(store_path: str | os.PathLike[str]) -> list[KeyInfo]:
    """All keys, revoked ones included, oldest first; without secrets or hashes."""
    return [record.info() for record in _read(Path(store_path)).keys]


def bootstrap_demo_keys(store_path: str | os.PathLike[str]) -> dict[Role, str]:
    """Create one key per role, named ``demo-<role>``, and return them.

    Keys of an earlier demo (same names, still active) are revoked first, so
    that running the demo again leaves exactly one live demo key per role.
    """
    with _transaction(Path(store_path)) as content:
        demo_names = {f"demo-{role.value}" for role in Role}
        content.keys = [
            k.model_copy(update={"revoked_at": _now()})
            if k.name in demo_names and k.revoked_at is None
            else k
            for k in content.keys
        ]
        return {role: _new_key(content, role, f"demo-{role.value}")[1] for role in Role}


def _key_from_headers(headers: Mapping[str, str]) -> str:
    """The key from ``Authorization: Bearer`` or ``X-API-Key`` (header names in any case)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    found: set[str] = set()
    if (authorization := lowered.get("authorization")) is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthError(401, "the Authorization header must be 'Bearer <API key>'")
        found.add(value.strip())
    if (api_key := lowered.get("x-api-key")) is not None:
        found.add(api_key.strip())
    if not found:
        raise AuthError(401, "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'")
    if len(found) > 1:
        raise AuthError(401, "the Authorization and X-API-Key headers carry different keys")
    return found.pop()


class KeyStore:
    """The keys of a key file, as the service checks them on every request.

    A check costs one dictionary lookup (by the key id inside the key), one
    SHA-256 and one ``stat`` of the key file: when the file has changed (a
    key created or revoked), it is read again, so a revocation takes effect
    from the next request on without a restart. If the file disappears, every
    key is refused.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._keys: dict[str, _KeyRecord] = {}
        self._refresh()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeyStore:
        """Open the key file at ``path``.

        Raises
        ------
        FileNotFoundError
            When there is no key file: a service without keys is misconfigured.
        ValueError
            When the file is not a valid key file.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"no API key file at {path}; create keys with `stratum keys create` "
                "or `stratum keys demo`"
            )
        return cls(path)

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._keys = None, {}
            return
        # Every write replaces the file (new inode, new mtime) and lengthens it.
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._keys = {k.key_id: k for k in _read(self.path).keys}
            self._stamp = stamp

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Return the caller behind the request's key.

        Parameters
        ----------
        headers
            The request headers (any mapping; names are matched case-insensitively).

        Raises
        ------
        AuthError
            With status 401 for a missing, malformed, unknown or revoked key.
        ValueError
            When the key file has been changed into an invalid one.
        """
        match = _KEY_RE.fullmatch(_key_from_headers(headers))
        if match is None:
            raise AuthError(401, "malformed API key")
        key_id, secret = match.groups()
        self._refresh()
        record = self._keys.get(key_id)
        if record is None:
            raise AuthError(401, "invalid API key")
        expected = bytes.fromhex(record.secret_sha256)
        if not hmac.compare_digest(_digest(bytes.fromhex(record.salt), secret), expected):
            raise AuthError(401, "invalid API key", key_id=key_id, wrong_secret=True)
        if record.revoked_at is not None:
            raise AuthError(401, "this API key has been revoked", key_id=key_id)
        return Principal(key_id=key_id, name=record.name, role=record.role)

    def principal_of(self, key_id: str) -> Principal | None:
        """The caller behind a key id that is known and not revoked (None otherwise).

        For callers authenticated earlier with the secret (a web-app session): a key
        revoked since then stops working from the next request on.
        """
        self._refresh()
        record = self._keys.get(key_id)
        if record is None or record.revoked_at is not None:
            return None
        return Principal(key_id=key_id, name=record.name, role=record.role)


def authorize(principal: Principal, endpoint: Endpoint) -> None:
    """Refuse with 403 unless ``principal``'s role may call ``endpoint``.

    Raises
    ------
    AuthError
        With status 403, naming the role and the endpoint.
    """
    endpoint = Endpoint(endpoint)  # an unknown endpoint is a programming error: ValueError
    if endpoint not in PERMISSIONS[principal.role]:
        raise AuthError(
            403,
            f"role {principal.role.value!r} may not use the {endpoint.value!r} endpoint",
            key_id=principal.key_id,
        )
