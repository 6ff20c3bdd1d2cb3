"""``stratum subscriptions add|list|remove`` and ``stratum outbox list|deliver|retry``.

Admin commands, from the server's shell, on the operational store in force.
Adding or removing a subscription and retrying a dead letter write an admin
record to the audit log (``$STRATUM_AUDIT_LOG`` or ``<home>/audit.jsonl``) in the
same step, as ``pause`` does: if the record cannot be written, nothing changes.
The record names the subscription id, never the e-mail address or URL.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from stratum_ml.cli.common import admin_audit_recorder, console, fail
from stratum_ml.cli.store import open_operational_store

if TYPE_CHECKING:
    from stratum_ml.notify import Subscription
    from stratum_ml.store import Store

subscriptions_app = typer.Typer(help="Who is told about runs: e-mail addresses and webhooks.")
outbox_app = typer.Typer(help="Notifications on their way: list, deliver, retry dead letters.")

Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _user() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (e.g. a bare container)
        return "cli:unknown"


@contextmanager
def _admin_store() -> Iterator[Store]:
    from stratum_ml.config import get_settings

    store = open_operational_store(get_settings())
    try:
        yield store
    finally:
        store.close()


def _audited(action: str) -> Callable[[str], None]:
    """A callback that writes the admin record of ``action`` (exit 1 if the log is unusable)."""
    return admin_audit_recorder(action, _user())


@contextmanager
def _audit_errors() -> Iterator[None]:
    """Exit 1 when the audit record could not be written (the change was rolled back)."""
    from stratum_ml.serving.audit import AuditLogError

    try:
        yield
    except (AuditLogError, OSError) as exc:
        raise fail(f"cannot write the audit log, so nothing was changed: {exc}", 1) from None


def _described(sub: Subscription) -> str:
    return f"subscription {sub.subscription_id} ({sub.channel}, {sub.role}, {sub.area})"


@subscriptions_app.command("add")
def subscriptions_add(
    email: Annotated[str | None, typer.Option(help="Send e-mail to this address.")] = None,
    webhook: Annotated[str | None, typer.Option(help="POST signed JSON to this https URL.")] = None,
    role: Annotated[
        str, typer.Option(help="analyst, or admin (also told when a run drifts).")
    ] = "analyst",
    district: Annotated[str | None, typer.Option(help="Only this district code.")] = None,
    neighbourhood: Annotated[str | None, typer.Option(help="Only this neighbourhood code.")] = None,
    violation_type: Annotated[
        str | None,
        typer.Option(help="Only this likely violation type (not modelled yet: matches nothing)."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Subscribe an e-mail address or a webhook to the runs' notifications (admin)."""
    from stratum_ml.notify import SubscriptionError, add_subscription

    if (email is None) == (webhook is None):
        raise fail("give exactly one of --email and --webhook")
    if role not in ("analyst", "admin"):
        raise fail(f"--role must be analyst or admin, not {role!r}")
    record = _audited("subscriptions add")
    with _admin_store() as store, _audit_errors():
        try:
            new = add_subscription(
                store,
                "email" if email is not None else "webhook",
                email if email is not None else str(webhook),
                role="admin" if role == "admin" else "analyst",
                created_by=_user(),
                district=district,
                neighbourhood=neighbourhood,
                violation_type=violation_type,
                on_change=lambda sub: record(f"added {_described(sub)}"),
            )
        except SubscriptionError as exc:
            raise fail(str(exc)) from None
    sub = new.subscription
    if as_json:
        typer.echo(json.dumps({**sub.to_dict(), "secret": new.secret}, indent=2))
        return
    typer.echo(f"added {_described(sub)}")
    if sub.violation_type is not None:
        console.print(
            "[yellow]note:[/] the model does not predict a violation type yet, so this "
            "subscription gets no change messages until it does"
        )
    if new.secret is not None:
        typer.echo(f"signing secret (shown once, keep it with the receiver): {new.secret}")


@subscriptions_app.command("list")
def subscriptions_list(
    removed: Annotated[bool, typer.Option(help="Also list removed subscriptions.")] = False,
    as_json: Json = False,
) -> None:
    """The subscriptions, oldest first."""
    from rich.console import Console
    from rich.table import Table

    from stratum_ml.notify import list_subscriptions

    with _admin_store() as store:
        subs = list_subscriptions(store, include_removed=removed)
    if as_json:
        typer.echo(json.dumps([s.to_dict() for s in subs], indent=2))
        return
    if not subs:
        console.print("no subscriptions: `stratum subscriptions add --email ADDRESS` adds one")
        return
    table = Table("id", "channel", "target", "role", "area", "since", "removed")
    for s in subs:
        table.add_row(
            s.subscription_id,
            s.channel,
            s.target,
            s.role,
            s.area,
            s.created_at.isoformat(timespec="minutes"),
            "" if s.removed_at is None else s.removed_at.isoformat(timespec="minutes"),
        )
    Console(width=200).print(table)


@subscriptions_app.command("remove")
def subscriptions_remove(
    subscription_id: Annotated[str, typer.Argument(help="The id (see `subscriptions list`).")],
) -> None:
    """Remove a subscription (admin): no new messages; pending ones are still delivered."""
    from stratum_ml.notify import SubscriptionError, remove_subscription

    record = _audited("subscriptions remove")
    with _admin_store() as store, _audit_errors():
        try:
            sub = remove_subscription(
                store,
                subscription_id,
                removed_by=_user(),
                on_change=lambda s: record(f"removed {_described(s)}"),
            )
        except SubscriptionError as exc:
            raise fail(str(exc)) from None
    typer.echo(f"removed {_described(sub)}")


@outbox_app.command("list")
def outbox_list(
    dead: Annotated[bool, typer.Option("--dead", help="Only dead letters.")] = False,
    state: Annotated[
        str | None, typer.Option(help="Only messages in this state: pending, delivered, dead.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, the newest.")] = 100,
    as_json: Json = False,
) -> None:
    """The outbox, newest first: state, attempts, next attempt, last error."""
    from rich.console import Console
    from rich.table import Table

    from stratum_ml.notify import OutboxError, list_messages

    if dead and state not in (None, "dead"):
        raise fail(f"--dead and --state {state} contradict each other")
    with _admin_store() as store:
        try:
            messages = list_messages(store, state="dead" if dead else state, limit=limit)
        except OutboxError as exc:
            raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps([m.to_dict() for m in messages], indent=2))
        return
    if not messages:
        console.print("the outbox is empty" + (" of dead letters" if dead else ""))
        return
    table = Table("id", "run", "kind", "to", "state", "attempts", "next attempt", "last error")
    for m in messages:
        table.add_row(
            str(m.message_id),
            m.run_id,
            m.kind,
            f"{m.channel} {m.target}",
            m.state,
            str(m.attempts),
            "" if m.state != "pending" else m.next_attempt_at.isoformat(timespec="seconds"),
            m.last_error or "",
        )
    Console(width=200).print(table)


@outbox_app.command("deliver")
def outbox_deliver(as_json: Json = False) -> None:
    """Deliver the notifications that are due (for cron; `stratum run` does it too)."""
    from stratum_ml.config import get_settings
    from stratum_ml.notify import DeliveryConfig, deliver

    settings = get_settings()
    with _admin_store() as store:
        report = deliver(store, DeliveryConfig.from_settings(settings))
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "delivered": list(report.delivered),
                    "retrying": list(report.retrying),
                    "dead": list(report.dead),
                }
            )
        )
        return
    typer.echo(report.sentence())


@outbox_app.command("retry")
def outbox_retry(
    message_id: Annotated[int, typer.Argument(help="A dead letter's id (see `outbox list`).")],
) -> None:
    """Put a dead letter back in the outbox, due now (admin); `outbox deliver` sends it."""
    from stratum_ml.notify import OutboxError, retry_message

    record = _audited("outbox retry")
    with _admin_store() as store, _audit_errors():
        try:
            retry_message(store, message_id, on_change=lambda i: record(f"retried message {i}"))
        except OutboxError as exc:
            raise fail(str(exc)) from None
    typer.echo(f"message {message_id} is due again: `stratum outbox deliver` sends it")
