"""Signing keys kept outside the audit log and outside MLflow, and HMAC signatures with them.

Two records are signed so that whoever can edit where they are kept cannot forge them:

* ``audit-anchor``: checkpoints of the audit log's head
  (:mod:`stratum_ml.serving.audit_anchor`), kept in the operational store and in MLflow;
* ``promotion``: promotion records (:mod:`stratum_ml.model.promotion`), kept in MLflow.

Each key is 32 random bytes in a file of its own, ``<keys dir>/<purpose>.key``,
where the keys dir is ``$STRATUM_SIGNING_KEYS_DIR`` or ``<STRATUM_HOME>/keys``.
The folder is created 0700 and the file 0600 on first use; a key file that group
or others can read is refused. The signature is HMAC-SHA256 over the canonical JSON
of a record (sorted keys, no spaces, ASCII).

A signature protects only as far as the key stays away from who could edit the
signed records: put the keys dir on another account's or a secret mount where the
MLflow UI's users and the log's writers cannot read it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from stratum_ml.config import Settings, get_settings

__all__ = [
    "KEY_BYTES",
    "SigningKeyError",
    "canonical",
    "keys_dir",
    "load_signing_key",
    "sign",
    "signature_ok",
]

#: length of a signing key
KEY_BYTES = 32
#: the signing keys there are
PURPOSES = ("audit-anchor", "promotion")


class SigningKeyError(RuntimeError):
    """A signing key cannot be read or created safely; the message says why."""


def keys_dir(settings: Settings | None = None) -> Path:
    """Where signing keys live: ``$STRATUM_SIGNING_KEYS_DIR`` or ``<home>/keys``."""
    env = os.environ.get("STRATUM_SIGNING_KEYS_DIR")
    return Path(env) if env else (settings or get_settings()).home / "keys"


def _check_rights(path: Path) -> None:
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise SigningKeyError(f"{path} is not a regular file")
    if mode & 0o077:
        raise SigningKeyError(
            f"{path} has mode {stat.S_IMODE(mode):04o}: a signing key must be readable by its "
            f"owner only; run `chmod 600 {path}`"
        )


def load_signing_key(
    purpose: str, *, create: bool = True, settings: Settings | None = None
) -> bytes:
    """The signing key for ``purpose``, created (0600, in a 0700 folder) when missing.

    Parameters
    ----------
    purpose
        ``audit-anchor`` or ``promotion``.
    create
        Create the key when there is none; when False a missing key is an error.
    settings
        Whose home holds the keys (when ``STRATUM_SIGNING_KEYS_DIR`` is not set);
        default: from the environment.

    Raises
    ------
    SigningKeyError
        When the key is missing (and ``create`` is False), readable by others, or damaged.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown signing key purpose {purpose!r}; one of {', '.join(PURPOSES)}")
    folder = keys_dir(settings)
    path = folder / f"{purpose}.key"
    if not path.exists():
        if not create:
            raise SigningKeyError(f"no {purpose} signing key at {path}")
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = folder / f".{purpose}.key.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_bytes(KEY_BYTES).hex() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)  # whatever the umask
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.link(tmp, path)  # never overwrite a key
        finally:
            tmp.unlink(missing_ok=True)
    _check_rights(path)
    try:
        key = bytes.fromhex(path.read_text("ascii").strip())
    except (OSError, UnicodeDecodeError, ValueError):
        raise SigningKeyError(f"{path} is not a signing key file (64 hex digits)") from None
    if len(key) != KEY_BYTES:
        raise SigningKeyError(f"{path}: a signing key holds {KEY_BYTES} bytes")
    return key


def canonical(record: Mapping[str, object]) -> bytes:
    """The canonical JSON of a record: sorted keys, no spaces, ASCII."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def sign(key: bytes, record: Mapping[str, object]) -> str:
    """HMAC-SHA256 (hex) of the canonical JSON of ``record``.

    Examples
    --------
    >>> len(sign(b"k" * 32, {"seq": 1}))
    64
    """
    return hmac.new(key, canonical(record), hashlib.sha256).hexdigest()


def signature_ok(key: bytes, record: Mapping[str, object], signature: str) -> bool:
    """Whether ``signature`` is the signature of ``record`` (compared in constant time)."""
    return hmac.compare_digest(sign(key, record), str(signature))
