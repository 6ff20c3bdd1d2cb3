"""``stratum docs``: write or check the documentation pack of a model version.

Exit status: 0 written (missing register fields are listed) or check passed;
1 check failed or the version's run lacks what the documentation needs; 2 bad usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from stratum_ml.cli.common import console, fail

out = Console()


def docs(
    model: Annotated[
        str | None, typer.Option(help="Version number or alias (champion, challenger, ...).")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder to write the pack to.")
    ] = None,
    check: Annotated[
        Path | None, typer.Option(help="Check a written pack instead (exit 1 if it fails).")
    ] = None,
    organisation: Annotated[
        Path | None,
        typer.Option(help="The municipality's part (YAML), e.g. examples/organisation.yaml."),
    ] = None,
    thresholds: Annotated[
        Path | None,
        typer.Option(help="Drift thresholds in force (YAML, as for `stratum run`)."),
    ] = None,
    model_name: Annotated[
        str | None, typer.Option(help="Registered model; default: $STRATUM_MODEL_NAME.")
    ] = None,
    log: Annotated[
        bool, typer.Option(help="Log the pack to the version's MLflow run and tag its hash.")
    ] = True,
) -> None:
    """Write the documentation pack of a version (--model, --out), or check one (--check)."""
    if check is not None:
        if model is not None or out_dir is not None:
            raise fail("--check takes a pack folder only; leave out --model and --out")
        _check(check)
        return
    if model is None or out_dir is None:
        raise fail("give --model and --out to write a pack, or --check DIR to check one")
    from stratum_ml.cli.monitor import _thresholds
    from stratum_ml.config import get_settings
    from stratum_ml.docs.organisation import read_organisation
    from stratum_ml.docs.pack import write_pack
    from stratum_ml.model.store import client_for, configure_mlflow

    try:
        org = read_organisation(organisation)
    except ValueError as exc:
        raise fail(str(exc)) from None
    limits = _thresholds(thresholds)
    settings = get_settings()
    configure_mlflow(settings)
    name = model_name or settings.model_name
    try:
        pack = write_pack(
            model,
            out_dir,
            model_name=name,
            settings=settings,
            client=client_for(settings),
            organisation=org,
            thresholds=limits,
            log=log,
        )
    except LookupError as exc:
        raise fail(str(exc.args[0] if exc.args else exc), 1) from None
    except ValueError as exc:
        raise fail(str(exc), 1) from None
    out.print(f"wrote the documentation pack to {pack.folder} (sha256 {pack.sha256})")
    if pack.uri:
        out.print(f"logged to {pack.uri}; the version is tagged with the pack's hash")
    if pack.missing:
        out.print(
            "[bold yellow]register entry incomplete[/]: required fields missing: "
            + ", ".join(pack.missing)
            + " (fill them in the organisation file and run `stratum docs` again)"
        )


def _check(folder: Path) -> None:
    from stratum_ml.docs.pack import check_pack

    problems = check_pack(folder)
    if problems:
        console.print(f"[bold red]FAILED[/] {folder}: {len(problems)} problem(s)")
        for problem in problems:
            console.print(f"  - {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    out.print(f"[bold green]OK[/] {folder}: the pack is complete and the register entry conforms")
