"""Subscriptions: what is accepted, what is refused with a sentence, removal."""

from __future__ import annotations

import pytest

from stratum_ml.notify import (
    SubscriptionError,
    add_subscription,
    check_target,
    list_subscriptions,
    remove_subscription,
)
from stratum_ml.store import Store


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.org/stratum",
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]:9000/x",
    ],
)
def test_https_and_loopback_http_webhooks_are_accepted(url: str) -> None:
    check_target("webhook", url)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://hooks.example.org/stratum", "must use https.*not to hooks.example.org"),
        ("http://10.0.0.5/hook", "must use https"),
        ("ftp://example.org/x", "must start with https://"),
        ("https:///nohost", "names no host"),
        ("https://user:pw@example.org/", "user name or password"),
        ("https://example.org/a b", "spaces"),
        ("https://example.org:99999/", "invalid port"),
    ],
)
def test_other_webhooks_are_refused_with_a_sentence(url: str, says: str) -> None:
    with pytest.raises(SubscriptionError, match=says):
        check_target("webhook", url)


@pytest.mark.parametrize(
    "address", ["nobody", "a@b", "a b@example.org", "x@example.org\r\nBcc: y@example.org"]
)
def test_malformed_email_addresses_are_refused(address: str) -> None:
    with pytest.raises(SubscriptionError, match="one plain address"):
        check_target("email", address)


def test_add_list_and_remove(store: Store) -> None:
    mail = add_subscription(
        store, "email", "wijk@example.org", role="analyst", created_by="t", district="WK001"
    )
    hook = add_subscription(
        store, "webhook", "https://hooks.example.org/x", role="admin", created_by="t"
    )
    assert mail.secret is None and hook.secret is not None and len(hook.secret) == 64
    assert mail.subscription.area == "district WK001"
    assert hook.subscription.area == "the whole town"
    listed = list_subscriptions(store)
    assert [s.subscription_id for s in listed] == [
        mail.subscription.subscription_id,
        hook.subscription.subscription_id,
    ]
    assert "secret" not in listed[1].to_dict()

    removed = remove_subscription(store, mail.subscription.subscription_id, removed_by="t")
    assert removed.removed_at is not None
    assert [s.subscription_id for s in list_subscriptions(store)] == [
        hook.subscription.subscription_id
    ]
    assert len(list_subscriptions(store, include_removed=True)) == 2
    with pytest.raises(SubscriptionError, match="was removed on"):
        remove_subscription(store, mail.subscription.subscription_id, removed_by="t")
    with pytest.raises(SubscriptionError, match="no subscription 'sub-nope'"):
        remove_subscription(store, "sub-nope", removed_by="t")


def test_a_refused_subscription_or_a_failing_audit_stores_nothing(store: Store) -> None:
    with pytest.raises(SubscriptionError, match="at most one filter"):
        add_subscription(
            store,
            "email",
            "a@example.org",
            role="analyst",
            created_by="t",
            district="WK001",
            neighbourhood="BU00010001",
        )
    with pytest.raises(SubscriptionError, match="analyst or admin"):
        add_subscription(store, "email", "a@example.org", role="boss", created_by="t")  # type: ignore[arg-type]

    def broken_audit(_: object) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        add_subscription(
            store, "email", "a@example.org", role="admin", created_by="t", on_change=broken_audit
        )
    assert list_subscriptions(store, include_removed=True) == []
