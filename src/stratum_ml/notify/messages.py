"""The messages a run sends: counts per subscription's area and a link, nothing about persons.

Each active subscription gets, per run, at most one ``changes`` message: how
many addresses in its area entered or left the work list (the top K), moved more
than the run's ``changes_min_move`` places, and are on it now, with a link to the
run in the service. An address that left the list and is no longer scored counts
in the area it had in the previous run. A subscription whose area has nothing on
the list and nothing changed gets no message. Admin subscriptions also get a
``drift`` message when the run has drifted: the drift reasons in words.

Messages are made from what the run stored (``run_items``, ``run_changes``, the
run's drift result) inside the run's own transaction, and written to the outbox
there (:func:`enqueue_run_messages`): a stored run always has its messages, and
a message never exists without its run. They hold counts, codes of districts
and neighbourhoods, dates, the model version and the run id, never an address id
or anything about a person.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from stratum_ml.monitoring.drift import DriftResult
from stratum_ml.notify.subscriptions import Subscription, from_row
from stratum_ml.store.tables import (
    OutboxRow,
    RunChangeRow,
    RunItemRow,
    ScoringRunRow,
    SubscriptionRow,
)

#: the change counts a message reports, in the order it reports them
COUNTED = ("entered", "left", "moved_up", "moved_down")


@dataclass(frozen=True)
class Message:
    """One message to one subscription.

    Attributes
    ----------
    kind : {"changes", "drift"}
    subject : str
        The e-mail subject.
    body : str
        The text (the e-mail body; also ``text`` in the webhook's JSON).
    payload : dict
        The webhook's JSON, without the delivery's ``sent_at`` and ``message_id``.
    """

    kind: str
    subject: str
    body: str
    payload: dict[str, Any] = field(default_factory=dict)


def run_link(public_url: str, run_id: str) -> str:
    """The service's page of a run: ``<public_url>/app/?run=<run_id>``."""
    return f"{public_url.rstrip('/')}/app/?run={run_id}"


@dataclass(frozen=True)
class _RunFacts:
    """What a run's messages are made from: the run and the areas of its list and changes."""

    run: ScoringRunRow
    on_list: Sequence[tuple[str | None, str | None]]
    changes: Sequence[tuple[str, str | None, str | None]]


def _facts(session: Session, run_id: str) -> _RunFacts:
    run = session.scalars(select(ScoringRunRow).where(ScoringRunRow.run_id == run_id)).one()
    on_list = [
        (d, n)
        for d, n in session.execute(
            select(RunItemRow.district, RunItemRow.neighbourhood).where(
                RunItemRow.run_id == run_id, RunItemRow.rank <= run.top_k
            )
        )
    ]
    now, before = aliased(RunItemRow), aliased(RunItemRow)
    changes = [
        (c, d, n)
        for c, d, n in session.execute(
            select(
                RunChangeRow.change,
                RunChangeRow.district,
                func.coalesce(now.neighbourhood, before.neighbourhood),
            )
            .outerjoin(now, and_(now.run_id == run_id, now.address_id == RunChangeRow.address_id))
            .outerjoin(
                before,
                and_(
                    before.run_id == RunChangeRow.previous_run_id,
                    before.address_id == RunChangeRow.address_id,
                ),
            )
            .where(RunChangeRow.run_id == run_id)
        )
    ]
    return _RunFacts(run, on_list, changes)


def _in_area(sub: Subscription, district: str | None, neighbourhood: str | None) -> bool:
    if sub.district is not None:
        return district == sub.district
    if sub.neighbourhood is not None:
        return neighbourhood == sub.neighbourhood
    # likely violation type: not modelled yet, so nothing is known to match
    return sub.violation_type is None


def _filter(sub: Subscription) -> dict[str, str | None]:
    return {
        "district": sub.district,
        "neighbourhood": sub.neighbourhood,
        "violation_type": sub.violation_type,
    }


def _changes_message(facts: _RunFacts, sub: Subscription, link: str) -> Message | None:
    run = facts.run
    counts = Counter(c for c, d, n in facts.changes if _in_area(sub, d, n))
    on_list = sum(_in_area(sub, d, n) for d, n in facts.on_list)
    numbers = {name: counts.get(name, 0) for name in COUNTED} | {"on_list": on_list}
    if not any(numbers.values()):
        return None
    area = sub.area
    head = f"Scoring run {run.run_id} as of {run.as_of} ({run.model_name} v{run.model_version})"
    lines = [head]
    if run.previous_run_id is None:
        lines.append(f"This is the first run of {run.model_name}: nothing to compare with.")
        subject = f"stratum run {run.as_of}: {on_list} addresses on the work list in {area}"
    else:
        lines += [
            f"Against the previous run {run.previous_run_id}, in {area}:",
            f"- {numbers['entered']} addresses new on the list",
            f"- {numbers['left']} addresses off the list",
            f"- {numbers['moved_up']} addresses moved up more than {run.changes_min_move} places",
            f"- {numbers['moved_down']} addresses moved down more than "
            f"{run.changes_min_move} places",
        ]
        subject = (
            f"stratum run {run.as_of}: {numbers['entered']} addresses new on the list in {area}"
        )
    lines += [
        f"{on_list} addresses of {area} are on the work list (top {run.top_k}).",
        f"Open the run: {link}",
        "This message holds counts only; the addresses are in the service.",
    ]
    payload = {
        "event": "run.changes",
        "run_id": run.run_id,
        "as_of": run.as_of.isoformat(),
        "model": {"name": run.model_name, "version": run.model_version},
        "previous_run_id": run.previous_run_id,
        "filter": _filter(sub),
        "top_k": run.top_k,
        "min_move": run.changes_min_move,
        "counts": numbers,
        "link": link,
    }
    return Message("changes", subject, "\n".join(lines), payload)


def _drift_message(facts: _RunFacts, link: str) -> Message | None:
    run = facts.run
    if not run.drifted or run.drift is None:
        return None
    reasons = list(DriftResult.from_json(run.drift).reasons)
    model = f"{run.model_name} v{run.model_version}"
    lines = [
        f"Scoring run {run.run_id} as of {run.as_of} has drifted from the training data "
        f"of {model}:",
        *(f"- {reason}" for reason in reasons),
        "Its ranking may no longer be trustworthy: look at the drift in the service, and "
        "consider `stratum pause --reason ...` until the model is retrained.",
        f"Open the run: {link}",
    ]
    payload = {
        "event": "run.drifted",
        "run_id": run.run_id,
        "as_of": run.as_of.isoformat(),
        "model": {"name": run.model_name, "version": run.model_version},
        "reasons": reasons,
        "link": link,
    }
    subject = f"stratum run {run.as_of}: drifted from the training data of {model}"
    return Message("drift", subject, "\n".join(lines), payload)


def messages_for_run(
    session: Session, run_id: str, subscriptions: list[Subscription], *, public_url: str
) -> list[tuple[Subscription, Message]]:
    """The messages a stored run sends to each subscription (nothing written).

    Parameters
    ----------
    session : Session
        A session that sees the run (its own transaction, before commit, will do).
    run_id : str
    subscriptions : list of Subscription
        The active subscriptions.
    public_url : str
        ``Settings.public_url``, for the link.

    Returns
    -------
    list of (Subscription, Message)
    """
    facts = _facts(session, run_id)
    link = run_link(public_url, run_id)
    drift = _drift_message(facts, link)
    out: list[tuple[Subscription, Message]] = []
    for sub in subscriptions:
        changes = _changes_message(facts, sub, link)
        if changes is not None:
            out.append((sub, changes))
        if drift is not None and sub.role == "admin":
            out.append((sub, drift))
    return out


def enqueue_run_messages(
    session: Session, run_id: str, *, public_url: str, now: dt.datetime | None = None
) -> int:
    """Write a stored run's messages to the outbox, in the caller's transaction.

    :func:`stratum_ml.runs.create_run` calls this in the transaction that stores
    the run, so the run and its messages are committed together or not at all.

    Returns
    -------
    int
        The number of messages written (due at once).
    """
    at = now or dt.datetime.now(dt.UTC)
    subscriptions = [
        from_row(row)
        for row in session.scalars(
            select(SubscriptionRow)
            .where(SubscriptionRow.removed_at.is_(None))
            .order_by(SubscriptionRow.seq)
        )
    ]
    if not subscriptions:
        return 0
    messages = messages_for_run(session, run_id, subscriptions, public_url=public_url)
    session.add_all(
        OutboxRow(
            subscription_id=sub.subscription_id,
            run_id=run_id,
            kind=message.kind,
            subject=message.subject,
            body=message.body,
            payload=json.dumps(message.payload, sort_keys=True),
            created_at=at,
            state="pending",
            attempts=0,
            next_attempt_at=at,
        )
        for sub, message in messages
    )
    return len(messages)
