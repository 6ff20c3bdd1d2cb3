"""Idempotency keys: a retried write stores nothing twice and gets the first answer.

A client that writes (a decision, a visit outcome) may send a key of its own
choosing with the request (the service reads the ``Idempotency-Key`` header).
The key is stored with the row, unique per table. A request that comes again
with the same key stores nothing and is answered with the row stored the first
time; the same key with a *different* request (other content or another
caller) is refused with :class:`IdempotencyKeyReused`.
"""

from __future__ import annotations

import re

from stratum_ml.store.tables import MAX_IDEMPOTENCY_KEY_LENGTH

_KEY = re.compile(rf"[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_LENGTH}}}")


class IdempotencyKeyReused(ValueError):
    """An idempotency key sent again with a different request; nothing was stored."""


def check_idempotency_key(key: str) -> str:
    """The key, or a ValueError when it is not 1 to 255 printable ASCII characters.

    Examples
    --------
    >>> check_idempotency_key("3f1c2b9e-7d44-4c8e-9a51-0e6f2d8b7a10")
    '3f1c2b9e-7d44-4c8e-9a51-0e6f2d8b7a10'
    """
    if not _KEY.fullmatch(key):
        raise ValueError(
            f"Idempotency-Key: must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII "
            "characters without spaces (a UUID is a good choice)"
        )
    return key


def reused(what: str) -> IdempotencyKeyReused:
    """The error for a key sent again with a different ``what`` request (the key is not echoed)."""
    return IdempotencyKeyReused(
        f"this Idempotency-Key was already used for a different {what} request (other "
        "content or another caller); nothing was stored. Use a new key for a new request."
    )
