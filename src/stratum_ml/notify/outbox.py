"""The transactional outbox: deliver what is due, retry with back-off, dead-letter, retry by hand.

Messages are written by the run's transaction (:mod:`stratum_ml.notify.messages`)
as ``pending`` and due at once. :func:`deliver` sends what is due:

1. it *claims* the due messages in one short transaction, moving their
   ``next_attempt_at`` a lease ahead (on PostgreSQL with ``FOR UPDATE SKIP
   LOCKED``, so deliverers running at once never take the same message; a
   deliverer that dies leaves its claim to expire);
2. it sends each, outside any transaction;
3. it records each outcome in its own transaction: ``delivered``; or, after a
   failure, the next attempt ``backoff_s * 2**(attempts - 1)`` seconds on (at most
   a day), and ``dead`` once ``max_attempts`` attempts have failed.

Delivery is at least once: a deliverer that dies between sending and recording
sends that message again when its claim expires (a webhook receiver can drop the
repeat by ``message_id``). :func:`list_messages` shows the outbox, e.g. the dead
letters; :func:`retry_message` puts a dead one back as due now.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from stratum_ml.config import Settings
from stratum_ml.notify.transports import DeliveryFailed, SmtpConfig, send_email, send_webhook
from stratum_ml.store import Store
from stratum_ml.store.tables import MESSAGE_STATES, OutboxRow, SubscriptionRow

#: the longest wait between two attempts
MAX_BACKOFF = dt.timedelta(days=1)


class OutboxError(ValueError):
    """An outbox request that cannot be done; the message says why."""


@dataclass(frozen=True)
class DeliveryConfig:
    """How :func:`deliver` sends and retries.

    Attributes
    ----------
    smtp : SmtpConfig
    max_attempts : int
        Failed attempts after which a message is dead.
    backoff_s : float
        Wait after the first failure; doubled after each further one.
    lease : datetime.timedelta
        How long a claimed message is left to its deliverer.
    """

    smtp: SmtpConfig
    max_attempts: int = 8
    backoff_s: float = 60.0
    lease: dt.timedelta = dt.timedelta(minutes=5)

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryConfig:
        """The configuration of ``STRATUM_SMTP_*`` and ``STRATUM_NOTIFY_*``."""
        password = settings.smtp_password
        return cls(
            smtp=SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_from,
                starttls=settings.smtp_starttls,
                username=settings.smtp_username,
                password=None if password is None else password.get_secret_value(),
            ),
            max_attempts=settings.notify_max_attempts,
            backoff_s=settings.notify_backoff_s,
        )

    def backoff(self, attempts: int) -> dt.timedelta:
        """The wait after the ``attempts``-th failed attempt."""
        seconds = self.backoff_s * 2.0 ** min(attempts - 1, 32)
        return min(dt.timedelta(seconds=seconds), MAX_BACKOFF)


@dataclass(frozen=True)
class OutboxMessage:
    """One message in the outbox, as the admin sees it."""

    message_id: int
    subscription_id: str
    channel: str
    target: str
    run_id: str
    kind: str
    subject: str
    state: str
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    last_attempt_at: dt.datetime | None
    last_error: str | None
    delivered_at: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            name: value.isoformat() if isinstance(value, dt.datetime) else value
            for name, value in self.__dict__.items()
        }


@dataclass(frozen=True)
class DeliveryReport:
    """What one :func:`deliver` call did: message ids per outcome."""

    delivered: tuple[int, ...] = ()
    retrying: tuple[int, ...] = ()
    dead: tuple[int, ...] = ()

    def sentence(self) -> str:
        """The outcome in words, e.g. ``"notifications: 2 delivered, 1 to retry"``."""
        if not (self.delivered or self.retrying or self.dead):
            return "notifications: nothing due"
        parts = [f"{len(self.delivered)} delivered"]
        if self.retrying:
            parts.append(f"{len(self.retrying)} failed and will be retried")
        if self.dead:
            parts.append(
                f"{len(self.dead)} failed for the last time (see `stratum outbox list --dead`)"
            )
        return "notifications: " + ", ".join(parts)


@dataclass(frozen=True)
class _Claimed:
    message_id: int
    channel: str
    target: str
    secret: str | None
    subject: str
    body: str
    payload: dict[str, Any]


def _claim(store: Store, config: DeliveryConfig, now: dt.datetime, limit: int) -> list[_Claimed]:
    with store.transaction() as session:
        rows = session.execute(
            select(OutboxRow, SubscriptionRow)
            .join(SubscriptionRow, SubscriptionRow.subscription_id == OutboxRow.subscription_id)
            .where(OutboxRow.state == "pending", OutboxRow.next_attempt_at <= now)
            .order_by(OutboxRow.next_attempt_at, OutboxRow.message_id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=OutboxRow)
        ).all()
        claimed = []
        for message, sub in rows:
            message.next_attempt_at = now + config.lease
            claimed.append(
                _Claimed(
                    message.message_id,
                    sub.channel,
                    sub.target,
                    sub.secret,
                    message.subject,
                    message.body,
                    json.loads(message.payload),
                )
            )
    return claimed


def _send(config: DeliveryConfig, message: _Claimed, now: dt.datetime) -> None:
    if message.channel == "email":
        send_email(config.smtp, message.target, message.subject, message.body)
    else:
        assert message.secret is not None  # the table's check: a webhook has a secret
        payload = {**message.payload, "text": message.body}
        send_webhook(message.target, message.secret, payload, message.message_id, now)


def _record(
    store: Store, config: DeliveryConfig, message_id: int, now: dt.datetime, error: str | None
) -> str:
    with store.transaction() as session:
        row = session.get_one(OutboxRow, message_id, with_for_update=True)
        row.attempts += 1
        row.last_attempt_at = now
        if error is None:
            row.state, row.delivered_at, row.last_error = "delivered", now, None
        else:
            row.last_error = error
            if row.attempts >= config.max_attempts:
                row.state = "dead"
            else:
                row.next_attempt_at = now + config.backoff(row.attempts)
        return row.state


def deliver(
    store: Store, config: DeliveryConfig, *, now: dt.datetime | None = None, limit: int = 100
) -> DeliveryReport:
    """Send the messages that are due, and record each outcome.

    Parameters
    ----------
    store : Store
    config : DeliveryConfig
        Usually ``DeliveryConfig.from_settings(get_settings())``.
    now : datetime.datetime, optional
        The time of this round (default: now, UTC); a message is due when its
        ``next_attempt_at`` is not after it.
    limit : int, default 100
        At most this many messages in this call (a cron job calls again).

    Returns
    -------
    DeliveryReport
    """
    at = now or dt.datetime.now(dt.UTC)
    delivered: list[int] = []
    retrying: list[int] = []
    dead: list[int] = []
    for message in _claim(store, config, at, limit):
        try:
            _send(config, message, at)
            error = None
        except DeliveryFailed as exc:
            error = str(exc)
        state = _record(store, config, message.message_id, at, error)
        {"delivered": delivered, "pending": retrying, "dead": dead}[state].append(
            message.message_id
        )
    return DeliveryReport(tuple(delivered), tuple(retrying), tuple(dead))


def list_messages(
    store: Store, *, state: str | None = None, limit: int = 100
) -> list[OutboxMessage]:
    """The outbox, newest first.

    Parameters
    ----------
    store : Store
    state : {"pending", "delivered", "dead"}, optional
        Only messages in this state.
    limit : int, default 100

    Raises
    ------
    OutboxError
        When ``state`` is not one of the states.
    """
    if state is not None and state not in MESSAGE_STATES:
        raise OutboxError(f"a message state is one of {', '.join(MESSAGE_STATES)}, not {state!r}")
    query = (
        select(OutboxRow, SubscriptionRow.channel, SubscriptionRow.target)
        .join(SubscriptionRow, SubscriptionRow.subscription_id == OutboxRow.subscription_id)
        .order_by(OutboxRow.message_id.desc())
        .limit(limit)
    )
    if state is not None:
        query = query.where(OutboxRow.state == state)
    with store.transaction() as session:
        return [
            OutboxMessage(
                message_id=row.message_id,
                subscription_id=row.subscription_id,
                channel=channel,
                target=target,
                run_id=row.run_id,
                kind=row.kind,
                subject=row.subject,
                state=row.state,
                attempts=row.attempts,
                created_at=row.created_at,
                next_attempt_at=row.next_attempt_at,
                last_attempt_at=row.last_attempt_at,
                last_error=row.last_error,
                delivered_at=row.delivered_at,
            )
            for row, channel, target in session.execute(query)
        ]


def retry_message(
    store: Store,
    message_id: int,
    *,
    now: dt.datetime | None = None,
    on_change: Callable[[int], None] | None = None,
) -> None:
    """Put a dead message back in the outbox, due now, with a fresh count of attempts.

    Parameters
    ----------
    store : Store
    message_id : int
    now : datetime.datetime, optional
        When it becomes due (default: now, UTC).
    on_change : callable, optional
        Called with the id inside the transaction, before commit (the CLI audits
        there): if it raises, nothing changes.

    Raises
    ------
    OutboxError
        When there is no such message or it is not dead.
    """
    with store.transaction() as session:
        row = session.get(OutboxRow, message_id, with_for_update=True)
        if row is None:
            raise OutboxError(f"there is no message {message_id} in the outbox")
        if row.state != "dead":
            raise OutboxError(
                f"message {message_id} is {row.state}, not dead: only a dead letter is retried "
                "by hand (pending ones are retried by `stratum outbox deliver` when due)"
            )
        row.state = "pending"
        row.attempts = 0
        row.next_attempt_at = now or dt.datetime.now(dt.UTC)
        if on_change is not None:
            on_change(message_id)
