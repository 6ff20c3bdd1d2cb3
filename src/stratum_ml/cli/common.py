"""What every command shares: the error console, failing with an exit code, dates, sources.

The library is imported inside the helpers, so that ``stratum --help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from collections.abc import Callable

    from stratum_ml.config import Settings
    from stratum_ml.model.registry import ModelVersionInfo
    from stratum_ml.model.risk_model import RiskModel
    from stratum_ml.sources.tables import SourceTables

#: progress, notes and errors go to stderr; results to stdout
console = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` and return the exit to raise (2: bad usage, 1: bad data)."""
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def admin_audit_recorder(action: str, who: str) -> Callable[[str], None]:
    """A function that appends the record of an admin command to the service's audit log.

    The log is opened now, so a command exits 1 before it changes anything when the
    log cannot be continued. Each call of the returned function appends one record
    (role ``admin``, no key: the shell's ``who`` is in the detail) and raises the
    log's error if it cannot be written, so the caller's transaction rolls back.
    """
    from stratum_ml.serving.audit import AuditLog, AuditLogError, default_audit_log

    try:
        audit = AuditLog(default_audit_log())
    except (AuditLogError, OSError) as exc:
        raise fail(f"cannot continue the audit log, so nothing was changed: {exc}", 1) from None

    def record(what: str) -> None:
        audit.append(
            key_id=None,
            role="admin",
            endpoint=action,
            address_ids=[],
            model_version=None,
            status=200,
            detail=f"command line, {who}: {what}",
        )

    return record


def parse_date(value: str, option: str) -> dt.date:
    """An ISO date, or exit 2 naming the option."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option}: {value!r} is not a date in the form YYYY-MM-DD") from None


def load(sources: Path) -> SourceTables:
    """The validated source tables, or exit 1 (contract broken) or 2 (no such folder)."""
    from stratum_ml.sources import SourceValidationError, load_sources

    try:
        return load_sources(sources)
    except SourceValidationError as exc:
        raise fail(str(exc), 1) from None
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise fail(str(exc)) from None


def guard_date(as_of: dt.date, tables: SourceTables, option: str = "--as-of") -> dt.date:
    """``as_of``, or exit 2 when it lies after the extract date of the sources.

    Every command that takes a date calls this (``sources.extract.guard_as_of``);
    sources whose extract date cannot be known exit 1.
    """
    from stratum_ml.sources import (
        AsOfAfterExtractError,
        ExtractDateError,
        extract_date,
        guard_as_of,
    )

    try:
        extract = extract_date(tables)
    except ExtractDateError as exc:
        raise fail(str(exc), 1) from None
    try:
        return guard_as_of(as_of, extract, what=option)
    except AsOfAfterExtractError as exc:
        raise fail(str(exc)) from None


#: the alias resolved through the signed promotion records, not the registry alone
CHAMPION_ALIAS = "champion"


def verified_champion_version(settings: Settings) -> str:
    """The champion whose promotion record verifies; exit 2 when there is none.

    Problems with the registry (an alias moved outside ``stratum promote``, ...) are
    printed as warnings.
    """
    from stratum_ml.serving.champion_watch import ChampionUnverified, verified_info

    try:
        info, check = verified_info(settings)
    except ChampionUnverified as exc:
        raise fail(f"no champion model: {exc}") from None
    for problem in check.problems:
        console.print(f"[bold yellow]warning:[/] registry: {problem}", highlight=False)
    return info.version


def load_model(alias_or_version: str) -> tuple[RiskModel, ModelVersionInfo]:
    """A registered version of the settings' model, or exit 2 saying where it was looked for."""
    from stratum_ml.config import get_settings
    from stratum_ml.model.registry import load_risk_model

    settings = get_settings()
    if alias_or_version == CHAMPION_ALIAS:
        alias_or_version = verified_champion_version(settings)
    try:
        return load_risk_model(settings.model_name, alias_or_version, settings)
    except Exception as exc:  # noqa: BLE001 - mlflow raises its own exception types
        raise fail(
            f"no model {settings.model_name}@{alias_or_version} in {settings.tracking_uri}: {exc}"
        ) from None


def say_absent(absent: dict[str, list[str]]) -> None:
    """Name the features left out because an optional source table is missing."""
    by_table: dict[str, list[str]] = {}
    for feature, tables in absent.items():
        for table in tables:
            by_table.setdefault(table, []).append(feature)
    for table, names in by_table.items():
        console.print(
            f"[yellow]note:[/] {table} is not in the source folder; {len(names)} features "
            f"are absent (not zero-filled): {', '.join(names)}"
        )


def recover_after_crash(settings: Settings) -> None:
    """What a killed process left: stale temp files under the home folder, RUNNING runs.

    Called at the start of ``train`` (the service does the same at its start).
    """
    from stratum_ml.io import remove_stale_temp_files
    from stratum_ml.model.store import interrupted_runs_failed

    for path in remove_stale_temp_files(settings.home):
        console.print(f"removed {path}, left by an interrupted write")
    for run_id in interrupted_runs_failed(settings):
        console.print(f"MLflow run {run_id} was left RUNNING by a killed process: marked FAILED")


#: ``--engine`` of the commands that build features (features, run)
EngineOption = Annotated[
    str,
    typer.Option(
        help="How the features are built: local (in memory), partitioned (one partition of "
        "addresses at a time, memory bounded by a partition) or dask (the same partitions "
        "on a Dask cluster). Every engine gives the same result."
    ),
]
#: ``--partitions`` beside ``--engine``
PartitionsOption = Annotated[
    int | None,
    typer.Option(
        min=1, help="Partitions of the addresses (default: ~50k addresses per partition)."
    ),
]
#: ``--scheduler`` beside ``--engine dask``
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        help="Dask scheduler address (with --engine dask); default: a local cluster of "
        "2 worker processes."
    ),
]


def check_engine(engine: str, scheduler: str | None) -> None:
    """Refuse an unknown ``--engine``, or ``--scheduler`` without ``--engine dask``."""
    from stratum_ml.features.partitioned import ENGINES

    if engine not in ENGINES:
        raise fail(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if scheduler is not None and engine != "dask":
        raise fail("--scheduler needs --engine dask")
