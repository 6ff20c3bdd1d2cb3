"""``stratum db upgrade|current`` and ``stratum decisions list``: the operational store.

The store is migrated and the CSV stores of an earlier version are imported
whenever it is opened (by ``serve``, ``train`` and these commands), so
``db upgrade`` is only needed to migrate ahead of time, e.g. a shared
PostgreSQL database before the services start.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from stratum_ml.cli.common import console, fail

if TYPE_CHECKING:
    from stratum_ml.config import Settings
    from stratum_ml.store import Store

db_app = typer.Typer(help="The operational store (decisions, visit outcomes): migrations.")
decisions_app = typer.Typer(help="Analysts' decisions recorded through the service.")


def open_operational_store(settings: Settings) -> Store:
    """The migrated store of the settings (old CSV stores imported), or exit 1 saying why."""
    from stratum_ml.store import StoreError, open_store

    try:
        return open_store(settings.store_url, legacy_home=settings.home)
    except StoreError as exc:
        raise fail(str(exc), 1) from None


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the operational store to this version (also done on every start)."""
    from stratum_ml.config import get_settings
    from stratum_ml.store.migrate import current_revision

    store = open_operational_store(get_settings())
    try:
        typer.echo(f"{store.url}: at revision {current_revision(store.engine)}")
    finally:
        store.close()


@db_app.command("current")
def db_current() -> None:
    """Show the operational store in force and its revision, without changing anything."""
    from stratum_ml.config import get_settings
    from stratum_ml.store import StoreError, create_store_engine, redacted
    from stratum_ml.store.migrate import current_revision, head_revision

    settings = get_settings()
    try:
        engine = create_store_engine(settings.store_url)
        try:
            current = current_revision(engine)
        finally:
            engine.dispose()
    except StoreError as exc:
        raise fail(str(exc), 1) from None
    except Exception as exc:  # noqa: BLE001 - the driver's own errors, e.g. no server
        raise fail(f"cannot read {redacted(settings.store_url)}: {exc}", 1) from None
    head = head_revision()
    state = "up to date" if current == head else f"this version migrates it to {head}"
    typer.echo(f"{redacted(settings.store_url)}: at revision {current or 'none'} ({state})")


@decisions_app.command("list")
def decisions_list(
    address: Annotated[
        str | None, typer.Option("--address", help="Only this address id's decisions.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, the latest.")] = 100,
    run: Annotated[
        str | None, typer.Option("--run", help="Only the decisions taken on this scoring run.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Stored decisions, oldest first: who decided what about which address, and which is open."""
    from rich.console import Console
    from rich.table import Table

    from stratum_ml.config import get_settings
    from stratum_ml.serving.decisions import DecisionStore

    store = open_operational_store(get_settings())
    try:
        history = DecisionStore(store).history(address, limit=limit, run_id=run)
    finally:
        store.close()
    if as_json:
        rows = [
            {
                "decision_id": d.decision_id,
                "address_id": d.address_id,
                "decision": d.decision,
                "reason": d.reason,
                "note": d.note,
                "decided_at": d.decided_at.isoformat(),
                "decided_by": d.decided_by,
                "role": d.role,
                "key_name": d.key_name,
                "model_version": d.model_version,
                "scoring_date": d.scoring_date.isoformat(),
                "rank_at_decision": d.rank_at_decision,
                "probability_at_decision": d.probability_at_decision,
                "supersedes": d.supersedes,
                "superseded_by": d.superseded_by,
                "run_id": d.run_id,
                "open": d.is_open,
            }
            for d in history
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not history:
        console.print("no decisions" + (f" on address {address}" if address else ""))
        return
    table = Table("decided at", "address", "decision", "by", "open", "decision id", "reason")
    for d in history:
        who = f"{d.key_name} ({d.role})" if d.role else d.decided_by
        table.add_row(
            d.decided_at.isoformat(timespec="minutes"),
            d.address_id,
            d.decision,
            who,
            "open" if d.is_open else f"superseded by {d.superseded_by}",
            d.decision_id,
            d.reason + (f": {d.note}" if d.note else ""),
        )
    Console(width=200).print(table)
