"""``stratum keys`` and ``stratum audit``: administer API keys and check the audit log.

Paths default to ``$STRATUM_API_KEYS_FILE`` / ``$STRATUM_AUDIT_LOG``, else
``<STRATUM_HOME>/api_keys.json`` / ``<STRATUM_HOME>/audit.jsonl``. The library
modules are imported inside the commands, so that ``stratum --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from stratum_ml.cli.common import console as err
from stratum_ml.cli.common import fail

keys_app = typer.Typer(
    help="Create, list, revoke and unlock the API keys of the scoring service.",
    no_args_is_help=True,
)
audit_app = typer.Typer(
    help="Show and verify the service's audit log (AI Act art. 12).", no_args_is_help=True
)
ONCE_WARNING = (
    "[bold yellow]Store this key now:[/] it is shown only once and cannot be recovered; "
    "only its hash is kept."
)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="analyst, case_handler, application or admin.")],
    name: Annotated[str, typer.Option(help="Who or what holds the key.")],
) -> None:
    """Create an API key and print it once."""
    from stratum_ml.serving.auth import create_key, default_keys_file

    path = default_keys_file()
    try:
        key_id, key = create_key(path, role, name)
    except ValueError as exc:
        raise fail(str(exc)) from None
    err.print(ONCE_WARNING)
    typer.echo(key)
    err.print(f"created key {key_id} ({role}, {name!r}) in {path}")


@keys_app.command("list")
def keys_list() -> None:
    """List the keys (never their secrets)."""
    from stratum_ml.serving.auth import default_keys_file, list_keys

    table = Table(
        Column("key id", no_wrap=True, min_width=16),
        Column("name", overflow="fold"),
        "role",
        "created (UTC)",
        "revoked (UTC)",
    )
    for k in list_keys(default_keys_file()):
        revoked = "-" if k.revoked_at is None else f"{k.revoked_at:%Y-%m-%d %H:%M:%S}"
        table.add_row(k.key_id, k.name, k.role.value, f"{k.created_at:%Y-%m-%d %H:%M:%S}", revoked)
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (see `keys list`).")],
) -> None:
    """Revoke a key; a running service refuses it from its next request on."""
    from stratum_ml.serving.auth import default_keys_file, revoke_key

    try:
        info = revoke_key(default_keys_file(), key_id)
    except LookupError as exc:
        raise fail(str(exc), 1) from None
    err.print(f"key {info.key_id} ({info.role.value}, {info.name!r}) revoked at {info.revoked_at}")


def _shell_user() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (e.g. a bare container)
        return "cli:unknown"


@keys_app.command("unlock")
def keys_unlock(
    key_id: Annotated[str, typer.Argument(help="The key id (see `keys locked`).")],
) -> None:
    """Unlock a key the service locked after repeated wrong secrets (audited)."""
    from stratum_ml.cli.common import admin_audit_recorder
    from stratum_ml.cli.store import open_operational_store
    from stratum_ml.config import get_settings
    from stratum_ml.serving.auth import default_keys_file, list_keys
    from stratum_ml.serving.key_lockout import is_locked, unlock

    if key_id not in {k.key_id for k in list_keys(default_keys_file())}:
        raise fail(f"no key with id {key_id!r}", 1)
    who = _shell_user()
    record = admin_audit_recorder("keys unlock", who)
    store = open_operational_store(get_settings())
    try:
        if not is_locked(store, key_id):
            err.print(f"key {key_id} is not locked; nothing changed")
            return
        record(f"unlocked key {key_id}")  # audited first: no unlock without its record
        unlock(store, key_id, who)
    finally:
        store.close()
    err.print(f"key {key_id} unlocked")


@keys_app.command("locked")
def keys_locked() -> None:
    """List the keys the service locked after repeated wrong secrets."""
    from stratum_ml.cli.store import open_operational_store
    from stratum_ml.config import get_settings
    from stratum_ml.serving.key_lockout import locked_keys

    store = open_operational_store(get_settings())
    try:
        locked = locked_keys(store)
    finally:
        store.close()
    if not locked:
        err.print("no key is locked")
    for key_id, since in sorted(locked.items()):
        typer.echo(f"{key_id}  locked since {since:%Y-%m-%d %H:%M:%S} UTC")


@keys_app.command("demo")
def keys_demo() -> None:
    """Create one demo key per role (revoking earlier demo keys) and print them once."""
    from stratum_ml.serving.auth import bootstrap_demo_keys, default_keys_file

    keys = bootstrap_demo_keys(default_keys_file())
    err.print(ONCE_WARNING)
    for role, key in keys.items():
        typer.echo(f"{role.value}: {key}")


LogPath = Annotated[
    Path | None,
    typer.Argument(help="The audit log; default $STRATUM_AUDIT_LOG or <home>/audit.jsonl."),
]


def _log_path(path: Path | None) -> Path:
    from stratum_ml.serving.audit import default_audit_log

    path = path or default_audit_log()
    if not path.is_file():
        raise fail(f"no audit log at {path}")
    return path


@audit_app.command("verify")
def audit_verify(path: LogPath = None) -> None:
    """Check every line and the hash chain; exit 1 when the log was tampered with."""
    from stratum_ml.serving.audit import verify_log

    path = _log_path(path)
    result = verify_log(path)
    if result.ok:
        typer.echo(f"ok: {result.n_records} records, chain intact; last hash {result.last_hash}")
        raise typer.Exit(0)
    typer.echo(
        f"TAMPERED: {path}, line {result.first_bad_line}: {result.reason} "
        f"({result.n_records} intact record(s) before it)"
    )
    raise typer.Exit(1)


@audit_app.command("show")
def audit_show(
    path: LogPath = None,
    last: Annotated[int, typer.Option(min=1, help="Number of records, newest last.")] = 20,
) -> None:
    """Show the last records, one a line: time, key, role, endpoint, status, addresses."""
    from stratum_ml.serving.audit import read_last

    path = _log_path(path)
    try:
        records = read_last(path, last)
    except ValueError:
        raise fail(f"{path} has a damaged line; run `stratum audit verify {path}`", 1) from None
    for r in records:
        typer.echo(
            f"{r['seq']:>6}  {r['time']}  key {r['key_id'] or '-'} ({r['role'] or 'no role'})  "
            f"{r['endpoint']} -> {r['status']}  model {r['model_version'] or '-'}  "
            f"addresses [{' '.join(r['address_ids'])}]"
            + (f"  {r['detail']}" if r["detail"] else "")
        )
