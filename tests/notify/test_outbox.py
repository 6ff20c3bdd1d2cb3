"""Runs made with the library notify subscribers through the outbox, on SQLite and PostgreSQL.

Delivery goes to a real SMTP server (aiosmtpd) and a real HTTP receiver on
127.0.0.1; time is moved on by passing ``now``, so back-off needs no sleeping.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from stratum_ml.monitoring.drift import DriftThresholds
from stratum_ml.notify import (
    SIGNATURE_HEADER,
    DeliveryConfig,
    OutboxError,
    add_subscription,
    deliver,
    list_messages,
    retry_message,
    run_link,
    verify_signature,
)
from stratum_ml.notify.transports import TIMESTAMP_HEADER
from stratum_ml.runs import RunModel, RunSummary, create_run
from stratum_ml.store import Store
from stratum_ml.store.tables import OutboxRow, RunItemRow
from stratum_ml.synthetic.generate import Municipality
from tests.notify.conftest import Mailbox, Receiver
from tests.runs.conftest import FIRST, SECOND

TOP = 100
DISTRICT = "WK047900"  # the one district of the runs' town
#: any score shift alarms: the run counts as drifted
DRIFTING = DriftThresholds(ks_statistic=1e-6)


def _two_runs(
    town: Municipality, model: RunModel, store: Store, settings, thresholds=None
) -> tuple[RunSummary, RunSummary]:
    first = create_run(
        town.sources, FIRST, model, store, settings=settings, top_k=TOP, thresholds=thresholds
    )
    second = create_run(
        town.sources, SECOND, model, store, settings=settings, top_k=TOP, thresholds=thresholds
    )
    assert first.stored_now and second.stored_now
    return first, second


def _bodies(store: Store) -> list[str]:
    with store.transaction() as session:
        return [
            text
            for row in session.scalars(select(OutboxRow))
            for text in (row.subject, row.body, row.payload)
        ]


def _person_and_address_values(town: Municipality, store: Store) -> set[str]:
    """Every address id, person id, surname key, postcode and owner id the messages could leak."""
    s = town.sources
    values = set(s.addresses["address_id"]) | set(s.addresses["postcode"])
    values |= set(s.registrations["person_id"]) | set(s.registrations["surname_key"])
    if s.ownership is not None:
        values |= set(s.ownership["owner_id"])
    with store.transaction() as session:
        values |= set(session.scalars(select(RunItemRow.address_id)))
    return {str(v) for v in values if isinstance(v, str) and len(str(v)) >= 5}


def test_a_run_notifies_by_email_and_signed_webhook_with_counts_and_a_link_only(
    runs_town: Municipality,
    run_model: RunModel,
    store: Store,
    notify_settings,
    mailbox: Mailbox,
    receiver: Receiver,
    delivery: DeliveryConfig,
) -> None:
    receiver.start()
    neighbourhood = str(runs_town.sources.addresses["neighbourhood_code"].mode()[0])
    mail = add_subscription(
        store, "email", "wijkteam@example.org", role="analyst", created_by="t", district=DISTRICT
    )
    hook = add_subscription(
        store, "webhook", receiver.url, role="admin", created_by="t", neighbourhood=neighbourhood
    )
    add_subscription(  # nothing there: no message
        store, "email", "elsewhere@example.org", role="analyst", created_by="t", district="WK1"
    )
    add_subscription(  # not modelled yet: no message
        store, "email", "vt@example.org", role="analyst", created_by="t", violation_type="fire"
    )
    first, second = _two_runs(runs_town, run_model, store, notify_settings)

    messages = list_messages(store)
    assert {(m.subscription_id, m.run_id, m.kind) for m in messages} == {
        (sub.subscription.subscription_id, run.run_id, "changes")
        for sub in (mail, hook)
        for run in (first, second)
    }
    assert all(m.state == "pending" and m.attempts == 0 for m in messages)

    report = deliver(store, delivery)
    assert len(report.delivered) == 4 and not report.retrying and not report.dead
    assert all(m.state == "delivered" for m in list_messages(store))
    assert deliver(store, delivery).sentence() == "notifications: nothing due"

    # e-mail: the district's counts against the previous run, and the link
    assert len(mailbox.received) == 2
    recipients, email = mailbox.received[-1]
    assert recipients == ["wijkteam@example.org"]
    text = email.get_payload(decode=True).decode()  # type: ignore[union-attr]
    entered = second.changes["entered"]
    assert f"{entered} addresses new on the list in district {DISTRICT}" in email["Subject"]
    assert f"- {entered} addresses new on the list" in text
    assert f"Against the previous run {first.run_id}" in text
    assert run_link("https://stratum.example.org/", second.run_id) in text
    assert f"https://stratum.example.org/app/?run={second.run_id}" in text

    # webhook: signed body with a timestamp, counts for the neighbourhood
    assert len(receiver.received) == 2
    headers, body = receiver.received[-1]
    assert hook.secret is not None
    data = verify_signature(hook.secret, body, headers[SIGNATURE_HEADER])
    assert headers[TIMESTAMP_HEADER] == data["sent_at"]
    assert data["event"] == "run.changes" and data["run_id"] == second.run_id
    assert data["filter"]["neighbourhood"] == neighbourhood
    assert set(data["counts"]) == {"entered", "left", "moved_up", "moved_down", "on_list"}
    assert 0 < data["counts"]["on_list"] <= TOP
    with pytest.raises(ValueError, match="does not match"):
        verify_signature("0" * 64, body, headers[SIGNATURE_HEADER])
    with pytest.raises(ValueError, match="does not match"):
        verify_signature(
            hook.secret, body.replace(b"run.changes", b"run.chang3s"), headers[SIGNATURE_HEADER]
        )
    with pytest.raises(ValueError, match="a replay"):
        later = dt.datetime.fromisoformat(data["sent_at"]) + dt.timedelta(hours=1)
        verify_signature(hook.secret, body, headers[SIGNATURE_HEADER], now=later)

    # no person data, no address ids, anywhere a message went
    sent = (
        _bodies(store)
        + [m.as_string() for _, m in mailbox.received]
        + [b.decode() for _, b in receiver.received]
    )
    leaks = {v for v in _person_and_address_values(runs_town, store) if any(v in t for t in sent)}
    assert leaks == set()


def test_a_drifted_run_tells_the_admins_why_and_only_them(
    runs_town: Municipality,
    run_model: RunModel,
    store: Store,
    notify_settings,
    delivery: DeliveryConfig,
    mailbox: Mailbox,
) -> None:
    admin = add_subscription(
        store, "email", "beheer@example.org", role="admin", created_by="t", violation_type="fire"
    )
    analyst = add_subscription(store, "email", "a@example.org", role="analyst", created_by="t")
    first, second = _two_runs(runs_town, run_model, store, notify_settings, DRIFTING)
    assert second.drifted
    kinds = {(m.subscription_id, m.kind) for m in list_messages(store)}
    assert kinds == {
        (admin.subscription.subscription_id, "drift"),
        (analyst.subscription.subscription_id, "changes"),
    }
    deliver(store, delivery)
    drift_mails = [m for _, m in mailbox.received if "drifted" in m["Subject"]]
    assert len(drift_mails) == 2
    text = drift_mails[-1].get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "has drifted from the training data of stratum-risk v1" in text
    assert "KS" in text or "score" in text
    sent = [m.as_string() for _, m in mailbox.received]
    leaks = {v for v in _person_and_address_values(runs_town, store) if any(v in t for t in sent)}
    assert leaks == set()


def test_a_receiver_that_is_down_gets_the_message_after_it_comes_back(
    runs_town: Municipality,
    run_model: RunModel,
    store: Store,
    notify_settings,
    receiver: Receiver,
    delivery: DeliveryConfig,
) -> None:
    hook = add_subscription(store, "webhook", receiver.url, role="analyst", created_by="t")
    _two_runs(runs_town, run_model, store, notify_settings)
    # the clock starts when the messages became due (queued with the run, at the real now)
    t0 = max(m.next_attempt_at for m in list_messages(store))

    down = deliver(store, delivery, now=t0)  # nobody listens
    assert len(down.retrying) == 2 and not down.delivered
    waiting = list_messages(store, state="pending")
    assert all(m.attempts == 1 and "cannot be reached" in (m.last_error or "") for m in waiting)
    assert {m.next_attempt_at for m in waiting} == {t0 + dt.timedelta(seconds=60)}

    receiver.start()
    assert deliver(store, delivery, now=t0 + dt.timedelta(seconds=30)).delivered == ()
    back = deliver(store, delivery, now=t0 + dt.timedelta(seconds=60))
    assert len(back.delivered) == 2 and len(receiver.received) == 2
    assert hook.secret is not None
    for headers, body in receiver.received:
        verify_signature(
            hook.secret, body, headers[SIGNATURE_HEADER], now=t0 + dt.timedelta(seconds=61)
        )
    assert all(m.state == "delivered" and m.attempts == 2 for m in list_messages(store))


def test_dead_letter_after_the_last_attempt_then_the_admin_retries(
    runs_town: Municipality,
    run_model: RunModel,
    store: Store,
    notify_settings,
    receiver: Receiver,
    delivery: DeliveryConfig,
) -> None:
    receiver.status = 500
    receiver.start()
    add_subscription(store, "webhook", receiver.url, role="admin", created_by="t")
    first = create_run(
        runs_town.sources, FIRST, run_model, store, settings=notify_settings, top_k=TOP
    )
    (message,) = list_messages(store)
    t = message.next_attempt_at  # due since it was queued with the run
    waits = []
    for _ in range(delivery.max_attempts):
        report = deliver(store, delivery, now=t)
        (row,) = list_messages(store)
        waits.append(row.next_attempt_at - t)
        t = row.next_attempt_at
    assert report.dead == (message.message_id,)
    assert waits[:2] == [dt.timedelta(seconds=60), dt.timedelta(seconds=120)]
    (dead,) = list_messages(store, state="dead")
    assert (
        dead.attempts == delivery.max_attempts
        and dead.last_error == "the webhook answered HTTP 500"
    )
    assert dead.run_id == first.run_id
    assert deliver(store, delivery, now=t + dt.timedelta(days=30)).sentence() == (
        "notifications: nothing due"
    )
    with pytest.raises(OutboxError, match="no message 999"):
        retry_message(store, 999)

    receiver.status = 204
    audited: list[int] = []
    retry_message(store, dead.message_id, now=t, on_change=audited.append)
    assert audited == [dead.message_id]
    assert deliver(store, delivery, now=t).delivered == (dead.message_id,)
    assert list_messages(store, state="dead") == []
    with pytest.raises(OutboxError, match="is delivered, not dead"):
        retry_message(store, dead.message_id)
    assert len(receiver.received) == delivery.max_attempts + 1
    assert json.loads(receiver.received[-1][1])["message_id"] == dead.message_id
