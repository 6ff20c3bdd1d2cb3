"""The model card of a trained model.

Both are written from a :class:`~stratum_ml.training.outcome.TrainingOutcome`
and logged with its MLflow run, so every registered version carries its own.
The model card (markdown) is for the people who use, review and audit the
model. The Algoritmeregister entry logged beside it is written by
:mod:`stratum_ml.docs` (publication standard 1.0.0), the same generator as
``stratum docs``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from stratum_ml.config import Settings
from stratum_ml.training.outcome import TrainingOutcome
from stratum_ml.training.refit import plan_weighting_sentence

__all__ = ["FrontierNote", "frontier_card_stub", "frontier_choice_card", "model_card_markdown"]

#: the heading of the card's section on a fairness-frontier point
FRONTIER_HEADING = "## Fairness-frontier point"
#: the heading of the section a chosen point's card gets when it is registered
CHOICE_HEADING = "## Chosen from the fairness frontier"


@dataclass(frozen=True)
class FrontierNote:
    """What a frontier point's card says about the point (``training.frontier``).

    Attributes
    ----------
    point : int
        The point's number in its training run's frontier table.
    multiplier : float
        The Lagrange multiplier of the constraint (0: no pressure; the sign gives the
        direction).
    attribute : str
        The protected attribute the constraint equalises false-positive rates over.
    tradeoff : str
        The point's estimated trade-off, one sentence
        (:func:`~stratum_ml.training.frontier_point.frontier_tradeoff`).
    """

    point: int
    multiplier: float
    attribute: str
    tradeoff: str

    @property
    def constraint(self) -> str:
        """The constraint in one line (also the version tag ``frontier_constraint``)."""
        return (
            f"fairlearn GridSearch, FalsePositiveRateParity on {self.attribute}, "
            f"Lagrange multiplier {self.multiplier:g}"
        )


def _frontier_section(note: FrontierNote) -> list[str]:
    return [
        FRONTIER_HEADING,
        f"**This model is point {note.point} of the fairness frontier** of its training run, "
        "not the model that training registered. Constraint: "
        f"{note.constraint} (false-positive-rate parity between the groups of `{note.attribute}`"
        "; the attribute set the weights and labels of the fit and is used in training only, "
        "never at scoring). The number of boosting rounds is the split model's; the point is "
        "calibrated on the tune visits and measured on the holdout like the model: its "
        "evaluation is its own, not the model's.",
        f"Estimated trade-off: {note.tradeoff}.",
        "A point is put to use only when a person chooses it with `stratum promote "
        "--frontier-point N --reason ...`; the choice, its reason, who made it and when are "
        "recorded with the version and in the signed promotion decision.",
    ]


def frontier_card_stub(model_name: str, note: FrontierNote) -> str:
    """The card of a point whose training run wrote none (trained before points had cards)."""
    return _join(
        [
            f"# Model card: {model_name}",
            "_The training run that logged this point predates the points' own cards: this "
            "card holds the frontier section and the choice only. The point's evaluation is "
            "its run's `evaluation/report.json`, its fairness verdict `fairness/verdict.json`._",
            *_frontier_section(note),
        ]
    )


def frontier_choice_card(
    card: str,
    *,
    model_name: str,
    version: str,
    source_version: str,
    source_run: str,
    reason: str,
    chosen_by: str,
    chosen_at: str,
) -> str:
    """A frontier point's card as registered: titled with its version, with the choice.

    Parameters
    ----------
    card : str
        The point's card as its training run wrote it (:func:`model_card_markdown`
        with a :class:`FrontierNote`), titled without a version.
    model_name, version : str
        The registered model and the version the point was registered as.
    source_version, source_run : str
        The version (and training run) whose frontier the point belongs to.
    reason, chosen_by, chosen_at : str
        The written reason given with ``promote --frontier-point``, who gave it and when.

    Returns
    -------
    str
        Markdown: the title names the version, and a section on the choice follows the
        card's frontier section (or its introduction).
    """
    lines = card.splitlines()
    if lines and lines[0].startswith("# Model card: "):
        lines[0] = f"# Model card: {model_name} version {version}"
    choice = [
        "",
        CHOICE_HEADING,
        "",
        f"Registered as version {version} from the frontier of version {source_version} "
        f"(training run `{source_run}`) when `{chosen_by}` chose it at {chosen_at}, with "
        f"this reason: {reason}",
        "",
        "Whether it was then promoted is recorded in the version's promotion decision (the "
        "same checks as any version: its own fairness gate, and the paired comparison with "
        "the champion).",
    ]
    start = lines.index(FRONTIER_HEADING) if FRONTIER_HEADING in lines else 0
    after = [i for i, line in enumerate(lines) if line.startswith("## ") and i > start]
    at = after[0] - 1 if after else len(lines)  # before the blank line ahead of the heading
    return "\n".join([*lines[:at], *choice, *lines[at:]]).rstrip("\n") + "\n"


_CHECK_COLUMNS = (
    "attribute",
    "metric",
    "group",
    "reference_group",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "status",
)


def package_version() -> str:
    """The installed stratum_ml version (``"unknown"`` from an uninstalled source tree)."""
    try:
        return version("stratum_ml")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def _fmt(value: Any) -> str:
    """One table cell: floats to 3 decimals, missing as an empty cell, pipes escaped."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.3f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _join(blocks: Sequence[str]) -> str:
    """Blocks separated by blank lines, except consecutive bullets (one tight list)."""
    text = blocks[0]
    for before, block in itertools.pairwise(blocks):
        tight = before.startswith("- ") and block.startswith("- ")
        text += ("\n" if tight else "\n\n") + block
    return text + "\n"


def _model_name(outcome: TrainingOutcome, model_name: str | None) -> str:
    default: str = Settings.model_fields["model_name"].default
    return model_name or outcome.config.model_name or default


def _final_fit_en(outcome: TrainingOutcome) -> list[str]:
    """The card's paragraph on the final fit (English)."""
    final = outcome.final_fit
    if final is None:
        return [
            "The registered model is the split model itself: the model the evaluation "
            "below measured."
        ]
    parts = ", ".join(f"{n} {part}" for part, n in final.visits_by_part.items())
    return [
        "**The registered model is not the evaluated model.** After the evaluation, the "
        f"same recipe was refitted on all {final.n_visits} labelled visits "
        f"({final.n_violations} with a violation) from {final.fit_from} to {final.fit_until}"
        + (f" ({parts})" if parts else "")
        + ", including the visits recorded through the service, so the newest outcomes "
        f"reach the trees. Its {final.n_rounds} boosting rounds and its calibration were "
        f"chosen by cross-fitting over {final.n_folds} folds grouped by address (best rounds "
        f"of the folds {', '.join(str(r) for r in final.fold_rounds)}, their mean scaled to "
        "the full data; the calibrator fitted on out-of-fold scores). The reported "
        "evaluation is that of the split model, which never saw the holdout.",
        plan_weighting_sentence(final),
    ]


def model_card_markdown(
    outcome: TrainingOutcome,
    version: str | None = None,
    *,
    model_name: str | None = None,
    metrics: Mapping[str, float] | None = None,
    frontier: FrontierNote | None = None,
) -> str:
    """A model card for one trained model, in markdown.

    Sections: intended use and users, out-of-scope uses, data and period,
    features, performance (the honest precision@k with its interval beside the
    naive one), fairness (the gate's verdict and checks), limitations, and
    human-oversight instructions.

    Parameters
    ----------
    outcome : TrainingOutcome
        The trained, evaluated and audited model.
    version : str, optional
        Registered version the card belongs to, when known.
    model_name : str, optional
        Registered model name; default: the run config's, else the settings' default.
    metrics : mapping of str to float, optional
        The metrics logged with the run (``tracking.metrics_of``), listed in full.
    frontier : FrontierNote, optional
        The card of a fairness-frontier point (``outcome`` then holds the point's model
        and report): a section says so, with its constraint and estimated trade-off.

    Returns
    -------
    str
        Markdown text.
    """
    config = outcome.config
    headline = outcome.headline
    naive = outcome.naive.get(config.headline_k)
    catalogue = outcome.feature_set.catalogue()
    name = _model_name(outcome, model_name)
    title = f"{name} version {version}" if version else name
    parts: list[str] = [
        f"# Model card: {title}",
        f"_Written by stratum_ml {package_version()} from the training run. It describes "
        "this version only; every retrained version has its own card._",
    ]
    if frontier is not None:
        parts += _frontier_section(frontier)

    parts += [
        "## Intended use and users",
        "- **Purpose:** put the addresses of a municipality in order of how likely a home "
        "visit there finds a violation of the housing and registration rules (address fraud, "
        "illegal room rental, overcrowding, labour exploitation), so that the limited "
        "number of visits go where they are most needed.",
        "- **Output:** per address a calibrated probability that a visit finds a violation, "
        "its rank, and the two or three features that contributed most (reasons).",
        "- **Users:** the data scientist who trains, evaluates and defends the model; the "
        "analyst who reviews the priority list (no person data) and proposes addresses; the "
        "case handler who prepares a visit. Decisions stay with the enforcement team.",
        "## Out-of-scope uses",
        "- Any decision about a person or household (a fine, a deregistration, a benefit, "
        "a permit) taken on the score: the score only says where to look.",
        "- Treating a high score as evidence, or showing it to residents as an accusation.",
        "- Scoring people rather than addresses, or using it for other kinds of violation "
        "than the visit outcomes it was trained on.",
        "- Use in another municipality, or long after its training period, without "
        "retraining and re-evaluating it there.",
        "- Scoring from features computed any other way than by stratum_ml's as-of rule "
        "(features as known on the scoring date).",
    ]

    parts += ["## Data and period", _table(["period", "value"], outcome.periods.items())]
    parts.append(
        "Labels: one row per past visit with outcome violation or no violation "
        "(inconclusive visits are left out); features as of the visit date, so a visit's own "
        "after-effects cannot reach its features. The split is by time: trees are fitted on "
        "the earliest visits, early stopping and calibration use the next ones, and the "
        "holdout (the latest) is used only for evaluation."
    )
    parts += _final_fit_en(outcome)
    if outcome.row_counts:
        parts += ["Rows per source table:", _table(["table", "rows"], outcome.row_counts.items())]
    if outcome.fingerprints:
        parts += [
            "Source files (sha256), so the exact data can be identified later:",
            _table(["file", "sha256"], sorted(outcome.fingerprints.items())),
        ]

    features = outcome.feature_set.features
    parts += [
        "## Features",
        f"{len(features)} features (feature set `{outcome.feature_set.name}`), each approved "
        "in the feature catalogue:",
        _table(
            ["feature", "theme", "unit", "description"],
            (
                (f, catalogue[f].theme, catalogue[f].unit, catalogue[f].description)
                for f in features
            ),
        ),
    ]
    refused = [e for e in catalogue if not e.approved]
    excluded = [f for f in config.exclude_features if f in catalogue]
    parts.append(
        "Protected attributes (origin, gender, ...) are never model features; they are "
        "joined only for the fairness audit."
    )
    if refused:
        parts.append("Catalogue features that are not approved, and so never used:")
        parts += [f"- `{e.name}`: {e.justification}" for e in refused]
    if excluded:
        parts.append("Excluded by the run config: " + ", ".join(f"`{f}`" for f in excluded) + ".")

    parts.append("## Performance")
    if outcome.final_fit is not None:
        parts.append(
            "**Every number in this section measures the split model** (trees fitted on "
            f"{outcome.periods.get('train_from')} .. {outcome.periods.get('train_until')}), "
            "not the registered model: the registered model was refitted on the holdout "
            "visits too, so no visit is left to measure it on honestly. The refit uses the "
            "same recipe on more and newer visits; it is expected to do at least as well."
        )
    if math.isnan(headline.estimate):
        parts.append(f"**Honest precision@{config.headline_k}: no estimate** ({headline.region}).")
    elif headline.widened or not headline.estimable:
        k = config.headline_k
        parts.append(
            f"**Honest precision@{k}: not estimable.** Only {max(headline.n_in_top_k, 0)} "
            f"random-sample visits fell in the top {k}, too few to estimate its precision. "
            f"What is known: precision@{k} lies between {headline.bound_low:.3f} and "
            f"{headline.bound_high:.3f} (the unvisited addresses of the top {k} counted as all "
            "without, and as all with, a violation). The estimate "
            f"{headline.estimate:.3f} [{headline.ci_low:.3f}, {headline.ci_high:.3f}] "
            f"describes the wider top {headline.region_k}, not the top {k} "
            f"({headline.region}); do not read it as precision@{k}."
        )
    else:
        parts.append(
            f"**Honest precision@{config.headline_k}: {headline.estimate:.3f} "
            f"[{headline.ci_low:.3f}, {headline.ci_high:.3f}]** ({headline.confidence:.0%} "
            f"interval), from the random-sample visits of the holdout period: {headline.region}."
        )
    if naive is not None:
        parts.append(
            f"Naive precision@{config.headline_k} on all holdout visits: {naive.estimate:.3f} "
            f"(top {naive.n} of {naive.n_visited} visited addresses). It is biased by which "
            "addresses earlier policy chose to visit; read the honest estimate."
        )
    parts.append(
        _table(
            ["k", "honest", "interval", "random visits", "region", "naive"],
            (
                (
                    k,
                    est.estimate if est.estimable else "not estimable",
                    f"[{_fmt(est.ci_low)}, {_fmt(est.ci_high)}]"
                    if est.estimable
                    else f"[{_fmt(est.bound_low)}, {_fmt(est.bound_high)}] worst/best case",
                    est.n if est.estimable else max(est.n_in_top_k, 0),
                    f"top {est.region_k}" if est.estimable else f"top {k} (too few visits)",
                    outcome.naive[k].estimate if k in outcome.naive else None,
                )
                for k, est in sorted(outcome.honest.items())
            ),
        )
    )
    if metrics:
        parts += [
            "All logged metrics:",
            _table(["metric", "value"], sorted(metrics.items())),
        ]

    verdict = outcome.fairness_verdict
    gate = config.fairness
    parts += [
        "## Fairness",
        f"Gate verdict: **{'passed' if verdict.passed else 'FAILED'}**. Every group's "
        f"{', '.join(gate.metrics)} divided by its reference group's must lie within "
        f"[{gate.min_ratio:g}, {gate.max_ratio:g}]; groups under {gate.min_group_size} "
        "addresses are skipped and their numbers suppressed.",
    ]
    if verdict.reasons:
        parts += ["Failed checks:", *(f"- {r}" for r in verdict.reasons)]
    if verdict.notes:
        parts += ["Notes:", *(f"- {n}" for n in verdict.notes)]
    if not verdict.checks.empty:
        checks = verdict.checks.reindex(columns=list(_CHECK_COLUMNS))
        rows = checks.astype(object).where(checks.notna(), None).itertuples(index=False)
        parts.append(_table(_CHECK_COLUMNS, rows))
    parts.append(
        "The full audit (per group: selection rate, false positive and negative rates, "
        "precision, with bootstrap intervals) and the proxy check are logged as tables with "
        "the run."
    )

    parts += [
        "## Limitations",
        "- **Selective labels.** Outcomes exist only for visited addresses, and most visits "
        "were chosen by earlier policy. Only the random-sample visits give an unbiased view; "
        "the honest estimate rests on them, and its interval is wide when they are few. "
        "Keep a share of visits random, or the model will only learn from its own choices.",
        "- **Synthetic or real.** A model trained on a generated municipality "
        "(`stratum generate`) shows that the pipeline works; its numbers say nothing about a "
        "real municipality.",
        "- **Calibration drift.** Probabilities were calibrated on visits of the tuning "
        "period. When visit policy, rules or the population change, they drift: check them "
        "against new random-sample visits and retrain regularly.",
        "- **Reasons explain the raw score.** The reasons are exact TreeSHAP contributions in "
        "log-odds; they say what moved the score, not what caused a violation.",
        "- **Registers lag and err.** A feature is only as good as the register behind it; "
        "a wrong registration can raise or lower a score.",
    ]
    if headline.widened:
        parts.append(
            f"- **Headline estimate widened.** Too few random-sample visits fell in the top "
            f"{config.headline_k}; the estimate covers the top {headline.region_k} instead."
        )

    parts += [
        "## Human oversight",
        "- A score is a reason to look, never a decision. Nobody is visited, fined or "
        "deregistered because of a score alone.",
        "- A person decides which addresses are visited, and records why, also when they "
        "follow the list and when they deviate from it.",
        "- The inspector establishes the outcome of a visit on what is found, independently "
        "of the score; the score is not evidence and is not put in a file as such.",
        "- Residents can object to and appeal any decision taken after a visit, and can ask "
        "which data about them was used; the municipality publishes how.",
        "- A new version replaces the champion only through `stratum promote`, which refuses "
        "it unless its honest precision is not worse than the champion's beyond the interval "
        "of their paired difference on the same visits and the fairness gate passed, or a "
        "person's written acceptance of the failed gate is recorded on the version.",
    ]
    return _join(parts)
