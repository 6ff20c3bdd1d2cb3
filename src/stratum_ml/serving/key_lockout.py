"""Lock an API key out after repeated wrong secrets; an admin unlocks it.

A key's id is not secret (it is in every audit record), so a caller may send a
real key id with guessed secrets. Each wrong secret sent with a known key id
is a ``wrong_secret`` row of ``key_lockout_events`` in the operational store;
when a key has :attr:`LockoutPolicy.max_wrong` of them within
:attr:`LockoutPolicy.window_s` seconds (counted since its last unlock), a
``locked`` row is added and every call with that key is refused (401), with
the right secret too, until an admin runs ``stratum keys unlock KEY_ID``
(an ``unlocked`` row; audited). Since the rows are in the store, a lock-out
holds in every worker and survives a restart. While a key is locked, its wrong
secrets are not recorded again, so the rows stay bounded.

A lock-out is also a way to stop a legitimate key: anyone who knows a key id
can lock it. That is the price of the lock-out; the admin sees it in the
audit log (the key id and the client's refusals) and unlocks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stratum_ml.store.store import Store
from stratum_ml.store.tables import KeyLockoutEventRow

__all__ = ["LockoutPolicy", "is_locked", "locked_keys", "record_wrong_secret", "unlock"]


@dataclass(frozen=True)
class LockoutPolicy:
    """When a key is locked: ``max_wrong`` wrong secrets within ``window_s`` seconds."""

    max_wrong: int = 10
    window_s: float = 900.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _latest_lock_event(session: Session, key_id: str) -> KeyLockoutEventRow | None:
    return session.scalars(
        select(KeyLockoutEventRow)
        .where(
            KeyLockoutEventRow.key_id == key_id,
            KeyLockoutEventRow.event.in_(("locked", "unlocked")),
        )
        .order_by(KeyLockoutEventRow.seq.desc())
        .limit(1)
    ).first()


def is_locked(store: Store, key_id: str) -> bool:
    """True when the key is locked out (its latest lock event is ``locked``); read again
    only when something was committed to the store since (:meth:`Store.memo`)."""

    def read() -> bool:
        with store.reading() as session:
            latest = _latest_lock_event(session, key_id)
        return latest is not None and latest.event == "locked"

    return store.memo(("is_locked", key_id), read)


def record_wrong_secret(
    store: Store, key_id: str, policy: LockoutPolicy, now: dt.datetime | None = None
) -> bool:
    """Record a wrong secret sent with ``key_id``; True when this one locks the key.

    Nothing is recorded while the key is locked already.
    """
    now = now or _now()
    with store.transaction() as session:
        latest = _latest_lock_event(session, key_id)
        if latest is not None and latest.event == "locked":
            return False
        since = now - dt.timedelta(seconds=policy.window_s)
        if latest is not None and latest.at > since:
            since = latest.at  # an unlock starts the count afresh
        session.add(KeyLockoutEventRow(key_id=key_id, event="wrong_secret", at=now, actor=None))
        session.flush()
        wrong = session.scalar(
            select(func.count())
            .select_from(KeyLockoutEventRow)
            .where(
                KeyLockoutEventRow.key_id == key_id,
                KeyLockoutEventRow.event == "wrong_secret",
                KeyLockoutEventRow.at > since,
            )
        )
        if int(wrong or 0) < policy.max_wrong:
            return False
        session.add(KeyLockoutEventRow(key_id=key_id, event="locked", at=now, actor=None))
    return True


def unlock(store: Store, key_id: str, actor: str) -> bool:
    """Unlock a locked key; False (nothing stored) when it is not locked."""
    with store.transaction() as session:
        latest = _latest_lock_event(session, key_id)
        if latest is None or latest.event != "locked":
            return False
        session.add(KeyLockoutEventRow(key_id=key_id, event="unlocked", at=_now(), actor=actor))
    return True


def locked_keys(store: Store) -> dict[str, dt.datetime]:
    """The locked key ids and since when."""
    with store.transaction() as session:
        rows = session.scalars(
            select(KeyLockoutEventRow)
            .where(KeyLockoutEventRow.event.in_(("locked", "unlocked")))
            .order_by(KeyLockoutEventRow.seq)
        ).all()
    latest: dict[str, KeyLockoutEventRow] = {r.key_id: r for r in rows}
    return {k: r.at for k, r in latest.items() if r.event == "locked"}
