"""``stratum score`` and ``serve``: the champion's priority list, as a file or a service."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stratum_ml.cli.common import console, fail, guard_date, load, load_model, parse_date

if TYPE_CHECKING:
    from stratum_ml.features.catalogue import Language


def score(
    sources: Annotated[Path, typer.Option(help="Validated source folder.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Scoring date YYYY-MM-DD.")],
    out: Annotated[Path, typer.Option(help="Priority list (.csv or .parquet).")],
    top: Annotated[int, typer.Option(min=1, help="Explain the top K dwellings.")] = 100,
    model: Annotated[str, typer.Option(help="Alias or version to score with.")] = "champion",
    language: Annotated[str, typer.Option(help="en or nl")] = "en",
) -> None:
    """Score every dwelling as of a date with the champion; explain the top K.

    The date may not lie after the extract date of the sources.
    """
    from stratum_ml.io import write_frame_atomic
    from stratum_ml.scoring.scorer import Scorer

    if language not in ("en", "nl"):
        raise fail(f"--language must be en or nl, not {language!r}")
    lang: Language = "nl" if language == "nl" else "en"
    ref = parse_date(as_of, "--as-of")
    tables = load(sources)
    guard_date(ref, tables)
    risk_model, info = load_model(model)
    with console.status(f"scoring as of {ref}"):
        try:
            scorer = Scorer.from_sources(risk_model, tables, ref)
        except ValueError as exc:
            raise fail(str(exc), 1) from None
        frame = scorer.to_frame(top, language=lang)
    frame.insert(1, "model_version", info.version)
    write_frame_atomic(frame, out)
    console.print(
        f"scored {len(frame):,} dwellings as of {ref} with {info.name} v{info.version}; "
        f"top {min(top, len(frame))} explained; wrote {out}"
    )


def serve(
    sources: Annotated[Path, typer.Option(help="Validated source folder to score.")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 3000,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Serve the champion's run of this date YYYY-MM-DD, made when missing "
            "(default: its latest stored run; the extract date when none is stored).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes, 1 to 32 (default: one per core, at most 2). They "
            "share the audit log, the store and the rate limits.",
        ),
    ] = None,
) -> None:
    """Serve the champion's stored run with BentoML on 127.0.0.1: scores, work lists, dossiers.

    Without --as-of it serves the champion's latest stored run (made as of the extract
    date of the sources when there is none); with --as-of, its run of that date, made
    when missing. A date after the extract date is refused before the server starts.
    A newer run or a new champion is picked up without a restart.
    """
    from stratum_ml.serving.launch import LaunchError
    from stratum_ml.serving.launch import serve as launch

    ref = parse_date(as_of, "--as-of") if as_of else None
    try:
        code = launch(sources, port=port, as_of=ref, workers=workers)
    except LaunchError as exc:
        raise fail(str(exc), exc.exit_code) from None
    raise typer.Exit(code)
