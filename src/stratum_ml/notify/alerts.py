"""Alerts to the admins: a message that belongs to no scoring run, sent at once.

The outbox (:mod:`stratum_ml.notify.outbox`) carries the messages of runs. An
alert, such as "the champion alias was moved outside `stratum promote`", is
sent straight away to every admin subscription (e-mail or signed webhook),
best effort: a failed delivery is logged and counted, not retried, since the
service says the same on its ``model`` endpoint and in its log for as long as
the problem lasts. An alert holds no person data and no address ids.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

from stratum_ml.notify.outbox import DeliveryConfig
from stratum_ml.notify.transports import DeliveryFailed, send_email, send_webhook
from stratum_ml.store import Store
from stratum_ml.store.tables import SubscriptionRow

__all__ = ["alert_admins"]

log = logging.getLogger(__name__)


def alert_admins(store: Store, config: DeliveryConfig, subject: str, text: str) -> int:
    """Send an alert to every active admin subscription; return how many received it.

    Parameters
    ----------
    store
        The operational store (its subscriptions).
    config
        How to reach the SMTP server.
    subject, text
        The message (no person data, no address ids).
    """
    with store.transaction() as session:
        rows = list(
            session.scalars(
                select(SubscriptionRow).where(
                    SubscriptionRow.role == "admin", SubscriptionRow.removed_at.is_(None)
                )
            )
        )
        targets = [(r.channel, r.target, r.secret) for r in rows]
    delivered = 0
    now = dt.datetime.now(dt.UTC)
    for channel, target, secret in targets:
        try:
            if channel == "email":
                send_email(config.smtp, target, subject, text)
            else:
                assert secret is not None  # the table's check: a webhook has a secret
                payload = {"event": "service.alert", "subject": subject, "text": text}
                send_webhook(target, secret, payload, 0, now)
        except (DeliveryFailed, OSError) as exc:
            log.warning("an admin alert could not be delivered (%s): %s", channel, exc)
            continue
        delivered += 1
    return delivered
