"""Admin alerts (issue 11, item 7): sent at once to the admin subscriptions only."""

from __future__ import annotations

import json

from stratum_ml.notify.alerts import alert_admins
from stratum_ml.notify.outbox import DeliveryConfig
from stratum_ml.notify.subscriptions import add_subscription, remove_subscription
from stratum_ml.store import Store
from tests.notify.conftest import Mailbox, Receiver


def test_an_alert_reaches_every_admin_and_no_analyst(
    store: Store, mailbox: Mailbox, receiver: Receiver, delivery: DeliveryConfig
) -> None:
    receiver.start()
    add_subscription(store, "email", "beheer@example.org", role="admin", created_by="t")
    add_subscription(store, "webhook", receiver.url, role="admin", created_by="t")
    add_subscription(store, "email", "wijkteam@example.org", role="analyst", created_by="t")
    gone = add_subscription(store, "email", "oud@example.org", role="admin", created_by="t")
    remove_subscription(store, gone.subscription.subscription_id, removed_by="t")
    sent = alert_admins(store, delivery, "registry", "the champion alias was moved")
    assert sent == 2
    assert [to for to, _ in mailbox.received] == [["beheer@example.org"]]
    (headers, body) = receiver.received[0]
    assert json.loads(body)["text"] == "the champion alias was moved"


def test_an_unreachable_admin_does_not_stop_the_others(
    store: Store, mailbox: Mailbox, receiver: Receiver, delivery: DeliveryConfig
) -> None:
    add_subscription(store, "webhook", receiver.url, role="admin", created_by="t")  # down
    add_subscription(store, "email", "beheer@example.org", role="admin", created_by="t")
    assert alert_admins(store, delivery, "registry", "text") == 1
    assert len(mailbox.received) == 1
