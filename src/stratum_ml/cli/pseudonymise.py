"""``stratum pseudonymise``, ``stratum reidentify`` and ``stratum keys pseudonym create|rotate``.

The data steward's commands: they read raw extracts and the pseudonymisation
key, which the service and the analysts never hold. No command prints a key;
only ``reidentify`` prints an identity, to the steward's terminal (stdout), after
recording the look-up in the audit log.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stratum_ml.cli.common import console, fail

if TYPE_CHECKING:
    from stratum_ml.pseudonymise.keys import PseudonymKey
    from stratum_ml.pseudonymise.mapping import Mapping

pseudonym_app = typer.Typer(
    help="Create and rotate the pseudonymisation key (the data steward's).", no_args_is_help=True
)

KeyFile = Annotated[Path, typer.Option("--key-file", help="The pseudonymisation key file.")]
MappingFile = Annotated[
    Path, typer.Option(help="The raw -> contract mapping (see examples/mapping.yaml).")
]


def _key(path: Path) -> PseudonymKey:
    from stratum_ml.pseudonymise.keys import KeyFileError, load_key_file

    try:
        return load_key_file(path)
    except KeyFileError as exc:
        raise fail(str(exc)) from None


def _mapping(path: Path) -> Mapping:
    from stratum_ml.pseudonymise.mapping import MappingError, load_mapping

    try:
        return load_mapping(path)
    except MappingError as exc:
        raise fail(str(exc)) from None


def pseudonymise(
    raw: Annotated[Path, typer.Option(help="Folder with the raw extracts (CSV/Parquet).")],
    mapping: MappingFile,
    out: Annotated[Path, typer.Option(help="Source folder to create.")],
    key_file: KeyFile,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet")] = "parquet",
    chunk_rows: Annotated[int, typer.Option(min=1000, help="Rows held in memory at a time.")] = (
        100_000
    ),
) -> None:
    """Pseudonymise raw extracts into a source folder that `stratum validate` accepts."""
    from stratum_ml.pseudonymise.keys import KeyFileError
    from stratum_ml.pseudonymise.run import PseudonymisationError
    from stratum_ml.pseudonymise.run import pseudonymise as run
    from stratum_ml.sources.extract import ExtractDateError

    if fmt not in ("csv", "parquet"):
        raise fail(f"--format must be csv or parquet, not {fmt!r}")
    key, spec = _key(key_file), _mapping(mapping)
    try:
        report = run(raw, spec, out, key, fmt=fmt, chunk_rows=chunk_rows)
    except (PseudonymisationError, ExtractDateError) as exc:
        raise fail(str(exc), 1) from None
    except (KeyFileError, FileExistsError) as exc:
        raise fail(str(exc)) from None
    console.print(report.summary(), highlight=False, markup=False)


def reidentify(
    pseudonym: Annotated[str, typer.Option(help="The pseudonym to re-identify.")],
    raw: Annotated[Path, typer.Option(help="The raw extracts the pseudonym was made from.")],
    key_file: KeyFile,
    mapping: MappingFile,
    case: Annotated[str, typer.Option(help="The case id the look-up is for.")] = "",
    reason: Annotated[str, typer.Option(help="Why the law allows it (>= 20 characters).")] = "",
) -> None:
    """Print the identity behind a pseudonym (data steward only); recorded in the audit log.

    Who (the OS user), when, which pseudonym, the case and the reason are
    written to the audit log ($STRATUM_AUDIT_LOG or <home>/audit.jsonl) before
    the identity is shown; the identity itself is never written there.
    """
    from stratum_ml.pseudonymise.reidentify import ReidentificationRefused
    from stratum_ml.pseudonymise.reidentify import reidentify as run
    from stratum_ml.serving.audit import AuditLog, AuditLogError, default_audit_log

    key, spec = _key(key_file), _mapping(mapping)
    try:
        audit = AuditLog(default_audit_log())
        result = run(pseudonym, raw, spec, key, case_id=case, reason=reason, audit=audit)
    except ReidentificationRefused as exc:
        raise fail(str(exc)) from None
    except AuditLogError as exc:
        raise fail(f"{exc}; nothing was looked up", 1) from None
    console.print(f"recorded in the audit log as record {result.audit_seq}", highlight=False)
    if not result.matches:
        typer.echo(f"{pseudonym}: not found in {raw} with key {key.key_id}")
        raise typer.Exit(1)
    for m in result.matches:
        typer.echo(
            f"{pseudonym} ({result.domain}) = {' | '.join(m.values)}  "
            f"[{m.raw_file}.{m.raw_column}, {m.rows} row(s)]"
        )


@pseudonym_app.command("create")
def key_create(
    out: Annotated[Path, typer.Option(help="The key file to create (mode 0600).")],
) -> None:
    """Create a pseudonymisation key file (256 bits; never printed)."""
    from stratum_ml.pseudonymise.keys import KeyFileError, PseudonymKey, write_key_file

    key = PseudonymKey.new()
    try:
        write_key_file(key, out)
    except KeyFileError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"created pseudonym key {key.key_id} in {out} (mode 0600). Keep it with the data "
        "steward, outside every source folder, and back it up: without it, new extracts "
        "no longer link to the history.",
        highlight=False,
    )


@pseudonym_app.command("rotate")
def key_rotate(
    key: Annotated[Path, typer.Option(help="The current (old) key file.")],
    out: Annotated[Path, typer.Option(help="The new key file to create.")],
    mapping: MappingFile,
    raw: Annotated[list[Path], typer.Option(help="A raw folder of the history (repeat).")],
    sources: Annotated[
        list[Path], typer.Option(help="The source folder made from the --raw at the same place.")
    ],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet")] = "parquet",
) -> None:
    """Create a new key and re-pseudonymise every source folder of the history with it.

    Keyed hashes cannot be re-keyed without the raw values, so each source folder
    is made again from the raw extracts it came from (no old -> new translation
    table is ever written). All folders are replaced only when all are done.
    """
    from stratum_ml.pseudonymise.keys import KeyFileError
    from stratum_ml.pseudonymise.rotate import rotate_key
    from stratum_ml.pseudonymise.run import PseudonymisationError

    if len(raw) != len(sources):
        raise fail(f"give one --sources per --raw ({len(raw)} --raw, {len(sources)} --sources)")
    old, spec = _key(key), _mapping(mapping)
    try:
        report = rotate_key(old, out, spec, list(zip(raw, sources, strict=True)), fmt=fmt)
    except PseudonymisationError as exc:
        raise fail(str(exc), 1) from None
    except KeyFileError as exc:
        raise fail(str(exc)) from None
    console.print(report.summary(), highlight=False, markup=False)
