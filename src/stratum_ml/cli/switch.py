"""``stratum pause`` and ``stratum resume``: the model's kill switch, from the server's shell.

Both act on the operational store in force (``STRATUM_DATABASE_URL``, default
SQLite under ``STRATUM_HOME``), so every running service answers from the
fallback ranking from its next request on, without a restart. Both write an
admin record to the service's audit log (``$STRATUM_AUDIT_LOG`` or
``<home>/audit.jsonl``) in the same step: if the record cannot be written,
nothing is changed. The OS user running the command is recorded as who did it.
"""

from __future__ import annotations

import getpass
import json
from typing import TYPE_CHECKING, Annotated

import typer

from stratum_ml.cli.common import admin_audit_recorder, console, fail
from stratum_ml.cli.store import open_operational_store

if TYPE_CHECKING:
    from stratum_ml.store.switch import Actor, SwitchChange

Json = Annotated[bool, typer.Option("--json", help="Print the switch's state as JSON.")]


def _who() -> Actor:
    from stratum_ml.store.switch import Actor

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (e.g. a bare container)
        user = "unknown"
    return Actor("cli", user)


def _flip(action: str, reason: str | None, as_json: bool) -> None:
    from stratum_ml.config import get_settings
    from stratum_ml.serving.audit import AuditLogError
    from stratum_ml.store.switch import SwitchError, pause, resume

    settings = get_settings()
    who = _who()
    write = admin_audit_recorder(action, who.describe())

    def record(change: SwitchChange) -> None:
        write(reason or "-")

    store = open_operational_store(settings)
    try:
        if action == "pause":
            change = pause(store, reason or "", who, on_change=record)
        else:
            change = resume(store, who, reason, on_change=record)
    except SwitchError as exc:
        raise fail(str(exc)) from None
    except (AuditLogError, OSError) as exc:
        raise fail(f"cannot write the audit log, so nothing was changed: {exc}", 1) from None
    finally:
        store.close()
    if as_json:
        state = change.state
        typer.echo(
            json.dumps(
                {
                    "changed": change.changed,
                    "paused": state is not None,
                    "since": None if state is None else state.since.isoformat(),
                    "by": None if state is None else state.by.describe(),
                    "reason": None if state is None else state.reason,
                    "message": change.message,
                }
            )
        )
    else:
        console.print(change.message)


def pause(
    reason: Annotated[
        str,
        typer.Option(
            help="Why (at least 10 characters, no person data); shown with every fallback list."
        ),
    ],
    as_json: Json = False,
) -> None:
    """Pause the model: every list becomes the fallback ranking (reports in the past year)."""
    _flip("pause", reason, as_json)


def resume(
    reason: Annotated[
        str | None, typer.Option(help="Why the model may run again (optional).")
    ] = None,
    as_json: Json = False,
) -> None:
    """End the pause: lists are the model's again."""
    _flip("resume", reason, as_json)
