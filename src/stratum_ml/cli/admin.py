"""``stratum keys`` and ``stratum audit``: administer API keys and check the audit log.

Paths default to ``$STRATUM_API_KEYS_FILE`` / ``$STRATUM_AUDIT_LOG``, else
``<STRATUM_HOME>/api_keys.json`` / ``<STRATUM_HOME>/audit.jsonl``. The library
modules are imported inside the commands, so that ``stratum --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from stratum_ml.cli.common import console as err
from stratum_ml.cli.common import fail

if TYPE_CHECKING:
    from stratum_ml.serving.audit_anchor import Checkpoint
    from stratum_ml.store import Store

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


def _anchor_sources(path: Path) -> tuple[list[Checkpoint], Store | None, list[str]]:
    """The log's checkpoints (store and MLflow), the store, and notes on what was not read.

    Only stores that exist are read: verifying never creates a database.
    """
    from stratum_ml.config import get_settings
    from stratum_ml.serving.audit_anchor import mlflow_checkpoints, stored_checkpoints
    from stratum_ml.store import StoreError, open_store

    settings = get_settings()
    checkpoints: list[Checkpoint] = []
    notes: list[str] = []
    store: Store | None = None
    if settings.database_url or (settings.home / "stratum.db").is_file():
        try:
            store = open_store(settings.store_url, legacy_home=settings.home)
            checkpoints.extend(stored_checkpoints(store, path))
        except StoreError as exc:
            notes.append(f"the operational store cannot be read ({exc})")
    else:
        notes.append(f"no operational store under {settings.home}")
    if settings.mlflow_uri or (settings.home / "mlflow.db").is_file():
        try:
            checkpoints.extend(mlflow_checkpoints(settings, path))
        except Exception as exc:  # the MLflow store is a second, optional anchor
            notes.append(f"the MLflow store cannot be read ({type(exc).__name__})")
    return checkpoints, store, notes


@audit_app.command("verify")
def audit_verify(path: LogPath = None) -> None:
    """Check every line, the hash chain and the log against its signed checkpoints (kept in
    the operational store and MLflow); exit 1 when the log was tampered with."""
    from stratum_ml.serving.audit import default_audit_log
    from stratum_ml.serving.audit_anchor import ANCHOR_PURPOSE, verify_anchored
    from stratum_ml.signing import SigningKeyError, load_signing_key

    path = path or default_audit_log()
    checkpoints, store, notes = _anchor_sources(path)
    if not path.is_file() and not checkpoints:
        raise fail(f"no audit log at {path}")
    try:
        key = load_signing_key(ANCHOR_PURPOSE, create=False)
    except SigningKeyError as exc:
        if checkpoints:
            raise fail(f"the checkpoints cannot be checked: {exc}", 1) from None
        key = b""
    try:
        report = verify_anchored(path, checkpoints, key=key, store=store)
    finally:
        if store is not None:
            store.close()
    for line in report.not_committed:
        err.print(f"not committed: {line}", markup=False, highlight=False)
    for line in notes:
        err.print(f"note: {line}", markup=False, highlight=False)
    if report.ok:
        anchored = (
            "no checkpoint of it yet"
            if report.latest is None
            else f"agrees with {report.n_checkpoints} signed checkpoint(s), the latest "
            f"{report.latest.describe()} at record {report.latest.head_seq}"
        )
        typer.echo(
            f"ok: {report.n_records} records, chain intact; last hash {report.last_hash}; "
            f"{anchored}"
        )
        raise typer.Exit(0)
    problems = ([report.chain_problem] if report.chain_problem else []) + report.problems
    for problem in problems:
        typer.echo(f"TAMPERED: {path}, {problem}")
    typer.echo(f"({report.n_records} intact record(s) at the start of the log)")
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Take a signed checkpoint of the log's head now (the service takes them itself at
    start, stop, daily and with every scoring run)."""
    from stratum_ml.cli.store import open_operational_store
    from stratum_ml.config import get_settings
    from stratum_ml.serving.audit import AuditLog, AuditLogError
    from stratum_ml.serving.audit_anchor import take_checkpoint
    from stratum_ml.signing import SigningKeyError

    store = open_operational_store(get_settings())
    try:
        checkpoint = take_checkpoint(AuditLog(_log_path(None)), store, "manual")
    except (AuditLogError, SigningKeyError) as exc:
        raise fail(str(exc), 1) from None
    finally:
        store.close()
    typer.echo(
        f"checkpoint of {checkpoint.log} at record {checkpoint.head_seq} "
        f"({checkpoint.head_hash}) stored"
    )


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
