"""``stratum promote``: move ``champion`` to the challenger, or say exactly why not.

The library is imported inside the command, so that ``stratum --help`` stays fast.
Exit status: 0 promoted, 1 refused.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

out = Console()


def promote_command(
    version: Annotated[
        str | None, typer.Option(help="Version to promote; default: the current challenger.")
    ] = None,
    model_name: Annotated[
        str | None, typer.Option(help="Registered model; default: $STRATUM_MODEL_NAME.")
    ] = None,
    tolerance: Annotated[
        float,
        typer.Option(
            min=0.0, help="How far the challenger's honest precision may fall below the champion's."
        ),
    ] = 0.0,
    accept_fairness_risk: Annotated[
        str | None,
        typer.Option(
            help="Promote although the fairness gate failed, with your written reason "
            "(>= 30 characters); recorded on the version with your user name."
        ),
    ] = None,
) -> None:
    """Promote the challenger to champion if it is fair and not worse than the champion."""
    from stratum_ml.config import get_settings
    from stratum_ml.training.registry import promote

    settings = get_settings()
    name = model_name or settings.model_name
    result = promote(
        name,
        version,
        settings=settings,
        tolerance=tolerance,
        accept_fairness_risk=accept_fairness_risk,
    )
    if result.promoted:
        out.print(f"[bold green]PROMOTED[/] {name} version {result.new_champion} is the champion.")
        if result.previous_champion is not None:
            out.print(
                f"The previous champion, version {result.previous_champion}, stays loadable as "
                f"models:/{name}@previous_champion."
            )
    else:
        subject = f"version {result.challenger}" if result.challenger else "promotion"
        out.print(
            f"[bold red]REFUSED[/] {name} {subject}: the champion is unchanged "
            f"({result.new_champion or 'none'})."
        )
    for reason in result.reasons:
        out.print(f"  - {reason}", highlight=False, soft_wrap=True)
    raise typer.Exit(0 if result.promoted else 1)
