"""Subscriptions: who is told about runs, how, and about which part of the town.

A subscription is an e-mail address or a webhook URL, a role (``analyst`` or
``admin``) and at most one filter: a district code, a neighbourhood code or a
likely violation type. The violation-type filter is stored but matches nothing
yet: the model does not predict a violation type, so such a subscription gets
no change messages until it does (an admin one still gets drift messages).

A webhook gets its own signing secret, made here and shown once, when the
subscription is created (see :mod:`stratum_ml.notify.transports`). It is kept
in the store, because delivery signs with it: whoever can read the store can
read it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from sqlalchemy import select

from stratum_ml.store import Store
from stratum_ml.store.tables import SubscriptionRow

Channel = Literal["email", "webhook"]
Role = Literal["analyst", "admin"]

#: a plain mailbox: no spaces, no line breaks (no header injection), one @, a dotted domain
_EMAIL = re.compile(r"[^@\s<>,;\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
#: district and neighbourhood codes, violation types: short words
_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class SubscriptionError(ValueError):
    """A subscription that cannot be added or removed; the message says why."""


@dataclass(frozen=True)
class Subscription:
    """One subscription as stored.

    Attributes
    ----------
    subscription_id : str
    channel : {"email", "webhook"}
    target : str
        The e-mail address or the webhook URL.
    role : {"analyst", "admin"}
    district, neighbourhood, violation_type : str or None
        The filter (at most one is set; none means the whole town).
    created_at : datetime.datetime
    created_by : str
    removed_at : datetime.datetime or None
    """

    subscription_id: str
    channel: str
    target: str
    role: str
    district: str | None
    neighbourhood: str | None
    violation_type: str | None
    created_at: dt.datetime
    created_by: str
    removed_at: dt.datetime | None

    @property
    def area(self) -> str:
        """The filter in words: ``"district WK047903"``, ``"the whole town"``, ..."""
        if self.district is not None:
            return f"district {self.district}"
        if self.neighbourhood is not None:
            return f"neighbourhood {self.neighbourhood}"
        if self.violation_type is not None:
            return f"likely violation type {self.violation_type}"
        return "the whole town"

    def to_dict(self) -> dict[str, object]:
        """The subscription as JSON-ready values (no secret)."""
        return {
            "subscription_id": self.subscription_id,
            "channel": self.channel,
            "target": self.target,
            "role": self.role,
            "district": self.district,
            "neighbourhood": self.neighbourhood,
            "violation_type": self.violation_type,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "removed_at": None if self.removed_at is None else self.removed_at.isoformat(),
        }


@dataclass(frozen=True)
class NewSubscription:
    """A subscription just added, with its webhook secret (shown this once; None for e-mail)."""

    subscription: Subscription
    secret: str | None


def from_row(row: SubscriptionRow) -> Subscription:
    """The stored row as a :class:`Subscription` (without its secret)."""
    return Subscription(
        subscription_id=row.subscription_id,
        channel=row.channel,
        target=row.target,
        role=row.role,
        district=row.district,
        neighbourhood=row.neighbourhood,
        violation_type=row.violation_type,
        created_at=row.created_at,
        created_by=row.created_by,
        removed_at=row.removed_at,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_target(channel: str, target: str) -> None:
    """Refuse an address that cannot be a subscription's target, with a sentence.

    An e-mail address is one plain mailbox. A webhook URL is ``https://``, or
    ``http://`` to this machine only (``localhost``, ``127.0.0.0/8``, ``::1``; for
    tests and local relays): notifications never travel unencrypted.

    Raises
    ------
    SubscriptionError
    """
    if channel == "email":
        if len(target) > 254 or _EMAIL.fullmatch(target) is None:
            raise SubscriptionError(
                "the e-mail address is not one plain address like name@example.org"
            )
        return
    if channel != "webhook":
        raise SubscriptionError(f"a subscription is by email or webhook, not {channel!r}")
    if len(target) > 2000 or any(c.isspace() for c in target):
        raise SubscriptionError("the webhook URL is too long or contains spaces")
    parts = urlsplit(target)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise SubscriptionError("the webhook URL has an invalid port")
    host = parts.hostname or ""
    if not host:
        raise SubscriptionError("the webhook URL names no host; give https://host/path")
    if parts.username or parts.password:
        raise SubscriptionError("the webhook URL may not carry a user name or password")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and _is_loopback(host):
        return
    if parts.scheme == "http":
        raise SubscriptionError(
            f"the webhook URL must use https: plain http is allowed only to this machine "
            f"(localhost, 127.0.0.1, ::1), not to {host}"
        )
    raise SubscriptionError(f"the webhook URL must start with https://, not {parts.scheme!r}")


def _check_filter(
    district: str | None, neighbourhood: str | None, violation_type: str | None
) -> None:
    given = {
        name: value
        for name, value in (
            ("district", district),
            ("neighbourhood", neighbourhood),
            ("violation type", violation_type),
        )
        if value is not None
    }
    if len(given) > 1:
        raise SubscriptionError(
            f"give at most one filter, not {' and '.join(given)}: add a subscription per filter"
        )
    for name, value in given.items():
        if _CODE.fullmatch(value) is None:
            raise SubscriptionError(
                f"the {name} filter must be a code of letters, digits, '_', '.' or '-' (at most 64)"
            )


def add_subscription(
    store: Store,
    channel: Channel,
    target: str,
    *,
    role: Role,
    created_by: str,
    district: str | None = None,
    neighbourhood: str | None = None,
    violation_type: str | None = None,
    on_change: Callable[[Subscription], None] | None = None,
) -> NewSubscription:
    """Add a subscription.

    Parameters
    ----------
    store : Store
    channel : {"email", "webhook"}
    target : str
        The e-mail address, or the webhook URL (see :func:`check_target`).
    role : {"analyst", "admin"}
        Admin subscriptions are also told when a run has drifted.
    created_by : str
        Who added it (recorded).
    district, neighbourhood, violation_type : str, optional
        At most one filter; none for the whole town.
    on_change : callable, optional
        Called with the new subscription inside the transaction, before it is
        committed (the CLI writes the audit record there): if it raises, nothing
        is stored.

    Returns
    -------
    NewSubscription
        With the webhook's signing secret, which is not shown again.

    Raises
    ------
    SubscriptionError
        When the target, the role or the filter is not acceptable.
    """
    if role not in ("analyst", "admin"):
        raise SubscriptionError(f"the role must be analyst or admin, not {role!r}")
    check_target(channel, target)
    _check_filter(district, neighbourhood, violation_type)
    secret = secrets.token_hex(32) if channel == "webhook" else None
    row = SubscriptionRow(
        subscription_id=f"sub-{secrets.token_hex(6)}",
        channel=channel,
        target=target,
        role=role,
        district=district,
        neighbourhood=neighbourhood,
        violation_type=violation_type,
        secret=secret,
        created_at=dt.datetime.now(dt.UTC),
        created_by=created_by,
    )
    with store.transaction() as session:
        session.add(row)
        session.flush()
        subscription = from_row(row)
        if on_change is not None:
            on_change(subscription)
    return NewSubscription(subscription, secret)


def list_subscriptions(store: Store, *, include_removed: bool = False) -> list[Subscription]:
    """The subscriptions, oldest first (removed ones only when asked)."""
    query = select(SubscriptionRow).order_by(SubscriptionRow.seq)
    if not include_removed:
        query = query.where(SubscriptionRow.removed_at.is_(None))
    with store.transaction() as session:
        return [from_row(row) for row in session.scalars(query)]


def remove_subscription(
    store: Store,
    subscription_id: str,
    *,
    removed_by: str,
    on_change: Callable[[Subscription], None] | None = None,
) -> Subscription:
    """Remove a subscription: it gets no new messages; its pending ones are still delivered.

    Parameters
    ----------
    store : Store
    subscription_id : str
    removed_by : str
        Who removed it (recorded).
    on_change : callable, optional
        Called inside the transaction, as with :func:`add_subscription`.

    Raises
    ------
    SubscriptionError
        When there is no such subscription, or it was removed before.
    """
    with store.transaction() as session:
        row = session.scalars(
            select(SubscriptionRow)
            .where(SubscriptionRow.subscription_id == subscription_id)
            .with_for_update()
        ).first()
        if row is None:
            raise SubscriptionError(f"there is no subscription {subscription_id!r}")
        if row.removed_at is not None:
            raise SubscriptionError(
                f"subscription {subscription_id} was removed on {row.removed_at:%Y-%m-%d %H:%M} UTC"
            )
        row.removed_at = dt.datetime.now(dt.UTC)
        row.removed_by = removed_by
        session.flush()
        subscription = from_row(row)
        if on_change is not None:
            on_change(subscription)
    return subscription
