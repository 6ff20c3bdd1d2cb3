"""The pseudonymisation key file: one 256-bit secret, readable by its owner only.

The file is JSON::

    {"kind": "stratum-ml pseudonym key", "version": 1, "key_id": "3f9c0a7e12b4d6e8",
     "created_at": "2026-11-02T09:00:00+00:00", "secret": "<64 hex digits>"}

``key_id`` is a public fingerprint (:func:`~stratum_ml.pseudonymise.pseudonym.key_id`)
that commands print to say which key they used; the secret itself is never
printed, logged, sent to MLflow or put in an error message. The file is created
with mode 0600, never overwritten, and refused inside a source folder (the
folder the model and the service read); a key file whose mode lets anyone but
its owner read it is refused when loaded.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from stratum_ml.pseudonymise.pseudonym import key_id
from stratum_ml.sources.contract import EXTRACT_DECLARATION, TABLES

KIND = "stratum-ml pseudonym key"
SECRET_BYTES = 32


class KeyFileError(ValueError):
    """A key file that cannot be written or used; the message never holds the secret."""


@dataclass(frozen=True)
class PseudonymKey:
    """A loaded key: its secret (never shown), its public id and where it came from."""

    secret: bytes = field(repr=False)
    key_id: str
    path: Path | None = None

    @classmethod
    def new(cls) -> PseudonymKey:
        """A fresh random key (``secrets.token_bytes``, 256 bits)."""
        secret = secrets.token_bytes(SECRET_BYTES)
        return cls(secret=secret, key_id=key_id(secret))


def looks_like_source_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a contract table file or an extract declaration."""
    if not folder.is_dir():
        return False
    for entry in folder.iterdir():
        if entry.name == EXTRACT_DECLARATION.file:
            return True
        if entry.suffix in (".csv", ".parquet") and entry.stem in TABLES:
            return True
    return False


def check_outside(path: Path, folders: list[Path] | tuple[Path, ...] = ()) -> None:
    """Refuse a key path inside a source folder, or inside one of ``folders``.

    Raises
    ------
    KeyFileError
        When a folder above ``path`` is a source folder or one of ``folders``.
    """
    resolved = path.resolve()
    for folder in folders:
        top = folder.resolve()
        if top == resolved or top in resolved.parents:
            raise KeyFileError(
                f"{path} lies inside {folder}: keep the pseudonym key outside every "
                "source folder (it must never travel with the data)"
            )
    for parent in resolved.parents:
        if looks_like_source_folder(parent):
            raise KeyFileError(
                f"{path} lies inside the source folder {parent}: keep the pseudonym key "
                "outside every source folder (it must never travel with the data)"
            )


def write_key_file(key: PseudonymKey, path: str | os.PathLike[str]) -> Path:
    """Write ``key`` to a new file with mode 0600, atomically; return its path.

    Raises
    ------
    KeyFileError
        When ``path`` exists or lies inside a source folder.
    """
    path = Path(path)
    if path.exists():
        raise KeyFileError(f"{path} already exists; a key file is never overwritten")
    check_outside(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "kind": KIND,
        "version": 1,
        "key_id": key.key_id,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "secret": key.secret.hex(),
    }
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(body, indent=2) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)  # whatever the umask
        os.link(tmp, path)  # fails if ``path`` appeared meanwhile: never overwrite
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; a key file is never overwritten") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def check_key_rights(path: Path) -> None:
    """Refuse a key file that is not a regular file readable by its owner only.

    Raises
    ------
    KeyFileError
        When group or others have any right on the file.
    """
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise KeyFileError(f"{path} is not a regular file")
    if mode & 0o077:
        raise KeyFileError(
            f"{path} has mode {stat.S_IMODE(mode):04o}: a pseudonym key must be readable by "
            f"its owner only; run `chmod 600 {path}`"
        )


def load_key_file(path: str | os.PathLike[str]) -> PseudonymKey:
    """Read a key file, checking its rights and its content.

    Raises
    ------
    KeyFileError
        When the file is missing, readable by others, or not a pseudonym key file.
    """
    path = Path(path)
    if not path.is_file():
        raise KeyFileError(f"no pseudonym key file at {path}")
    check_key_rights(path)
    problem = f"{path} is not a stratum-ml pseudonym key file"
    try:
        body = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise KeyFileError(problem) from None
    if not isinstance(body, dict) or body.get("kind") != KIND or body.get("version") != 1:
        raise KeyFileError(problem)
    try:
        secret = bytes.fromhex(str(body["secret"]))
    except (KeyError, ValueError):
        raise KeyFileError(f"{problem} (its secret is missing or not hex)") from None
    if len(secret) < SECRET_BYTES:
        raise KeyFileError(f"{path}: the secret is shorter than 256 bits")
    if body.get("key_id") != key_id(secret):
        raise KeyFileError(f"{path}: key_id does not match the secret (the file was edited)")
    return PseudonymKey(secret=secret, key_id=key_id(secret), path=path)
