"""The ``stratum`` command line: a thin typer app, each command calls the library.

===================  ========================================================
module             commands
===================  ========================================================
:mod:`.data`         ``validate``, ``generate``, ``features``
:mod:`.model`        ``train``, ``evaluate``, ``promote``, ``compare``
:mod:`.score`        ``score``, ``serve``
:mod:`.runs`         ``run``, ``runs list|show``, ``changes``
:mod:`.plan`         ``plan`` (export, ``--explain``, ``decline``), ``feedback import``
:mod:`.monitor`      ``drift``
:mod:`.admin`        ``keys create|list|revoke|demo``, ``audit verify|show``
:mod:`.store`        ``db upgrade|current``, ``decisions list``
:mod:`.switch`       ``pause``, ``resume`` (the kill switch)
:mod:`.notify`       ``subscriptions add|list|remove``, ``outbox list|deliver|retry``
:mod:`.pseudonymise` ``pseudonymise``, ``reidentify``, ``keys pseudonym create|rotate``
:mod:`.docs`         ``docs`` (the documentation pack of a version)
===================  ========================================================

Commands import the library inside their bodies, so that ``stratum --help``
stays fast. Errors the user can act on are one ``error:`` line on stderr and
exit 2 (bad usage) or 1 (bad data, refused).
"""

from __future__ import annotations

import typer

from stratum_ml.cli import (
    admin,
    data,
    docs,
    model,
    monitor,
    notify,
    plan,
    pseudonymise,
    runs,
    score,
    store,
    switch,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="stratum",
    help="Point-in-time risk scoring for municipal address and housing enforcement.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _private_state() -> None:
    """What every command writes is its owner's only; the state folder is made so."""
    from pydantic import ValidationError

    from stratum_ml.config import get_settings, restrict_umask, secure_home

    restrict_umask()
    try:
        home = get_settings().home
    except ValidationError:  # a bad STRATUM_* setting: the command says so itself
        return
    secure_home(home, create=False)


app.command()(data.validate)
app.command()(data.generate)
app.command()(data.features)
app.command()(model.promote)
app.add_typer(admin.keys_app, name="keys")
app.add_typer(admin.audit_app, name="audit")
app.add_typer(store.db_app, name="db")
app.add_typer(store.decisions_app, name="decisions")
app.command()(model.train)
app.command()(score.score)
app.command()(model.evaluate)
app.command()(model.compare)
app.command()(score.serve)
app.command()(monitor.drift)
app.command()(runs.run)
app.add_typer(runs.runs_app, name="runs")
app.command()(runs.changes)
app.add_typer(plan.plan_app, name="plan")
app.add_typer(plan.feedback_app, name="feedback")
app.command()(switch.pause)
app.command()(switch.resume)
app.add_typer(notify.subscriptions_app, name="subscriptions")
app.add_typer(notify.outbox_app, name="outbox")
app.command()(pseudonymise.pseudonymise)
app.command()(pseudonymise.reidentify)
admin.keys_app.add_typer(pseudonymise.pseudonym_app, name="pseudonym")
app.command()(docs.docs)


def main() -> None:  # pragma: no cover - entry point
    """Run the app (``python -m stratum_ml.cli``)."""
    app()
