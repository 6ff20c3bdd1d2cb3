"""Notifications: tell subscribers what a run changed in their area, through an outbox.

``subscriptions``  who is told: an e-mail address or a webhook URL, a role, a filter
``messages``       what a run sends (counts and a link, never person data or address
                   ids), written to the outbox in the run's own transaction
``transports``     e-mail over SMTP; webhooks with an HMAC-SHA256-signed, timestamped body
``outbox``         :func:`deliver` what is due, retries with exponential back-off, dead
                   letters that the admin lists and retries

:func:`stratum_ml.runs.create_run` writes a run's messages; ``stratum run`` then
delivers; ``stratum outbox deliver`` (cron) delivers what is due later.
"""

from __future__ import annotations

from stratum_ml.notify.messages import Message, enqueue_run_messages, messages_for_run, run_link
from stratum_ml.notify.outbox import (
    DeliveryConfig,
    DeliveryReport,
    OutboxError,
    OutboxMessage,
    deliver,
    list_messages,
    retry_message,
)
from stratum_ml.notify.subscriptions import (
    NewSubscription,
    Subscription,
    SubscriptionError,
    add_subscription,
    check_target,
    list_subscriptions,
    remove_subscription,
)
from stratum_ml.notify.transports import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryFailed,
    SmtpConfig,
    sign,
    verify_signature,
)

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "DeliveryConfig",
    "DeliveryFailed",
    "DeliveryReport",
    "Message",
    "NewSubscription",
    "OutboxError",
    "OutboxMessage",
    "Subscription",
    "SubscriptionError",
    "SmtpConfig",
    "add_subscription",
    "check_target",
    "deliver",
    "enqueue_run_messages",
    "list_messages",
    "list_subscriptions",
    "messages_for_run",
    "remove_subscription",
    "retry_message",
    "run_link",
    "sign",
    "verify_signature",
]
