"""Technical file (AI Act Annex IV), instructions for use (Art. 13), monitoring plan (Art. 72).

Each Annex IV item states the evidence the software holds for the version, read
from its run (:class:`~stratum_ml.docs.facts.VersionFacts`); what only the
provider can supply (harmonised standards, the declaration of conformity, ...)
is in a part marked *to be completed by the provider*.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from stratum_ml.docs.facts import Precision, VersionFacts, names
from stratum_ml.docs.register import catalogue_rows, source_tables
from stratum_ml.monitoring.drift import DriftThresholds

__all__ = [
    "TO_COMPLETE",
    "instructions_markdown",
    "monitoring_plan_markdown",
    "frontier_text",
    "precision_text",
    "technical_file_markdown",
    "weighting_text",
]

#: the marker of every part only the provider can complete
TO_COMPLETE = "TO BE COMPLETED BY THE PROVIDER"
#: run-config keys under which a design of visits (a planned random share) would live
DESIGN_KEYS = ("designed_visits", "visit_design", "random_visits", "random_share")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _f(value: float | None) -> str:
    return "?" if value is None else f"{value:.3f}"


def precision_text(p: Precision | None, k: int) -> str:
    """The honest precision at ``k`` in English; a number only under the region it is about."""
    if p is None:
        return f"precision@{k}: the report holds no honest estimate for k={k}"
    if p.is_precision_at_k:
        ties = f" (top {p.region_k} with ties at the cut-off)" if p.region_k != k else ""
        return (
            f"precision@{k}{ties}: {_f(p.estimate)} [{_f(p.ci_low)}, {_f(p.ci_high)}], "
            f"from {p.n} random-sample visits"
        )
    said = f"precision@{k}: not estimable (too few random-sample visits in the top {k})"
    if p.estimate is None or p.region_k is None:
        return said
    region = (
        f"every scored address ({p.region_k})"
        if p.covers_population
        else f"the top {p.region_k} addresses"
    )
    return (
        f"{said}; the widened estimate covers {region}, not the top {k}: hit rate "
        f"{_f(p.estimate)} [{_f(p.ci_low)}, {_f(p.ci_high)}] from {p.n} random-sample visits"
    )


def weighting_text(config: Mapping[str, Any]) -> str:
    """What the run did about selective labels, from its ``weighting`` setting."""
    if config.get("weighting") == "ipw":
        return (
            "trained with inverse visit-propensity weights, clipped at "
            f"{config.get('ipw_clip', '?')} times the mean"
        )
    return (
        f"no selection weights (weighting: {config.get('weighting', 'unknown')}): every "
        "visited address counts the same, so performance is estimated on random-sample "
        "visits only"
    )


def _run_line(facts: VersionFacts) -> str:
    started = facts.run_started.date().isoformat() if facts.run_started else "unknown date"
    commit = facts.commit or "no commit recorded with the run"
    package = facts.run_tags.get("stratum_ml_version", "unknown")
    return (
        f"training run `{facts.run_id}` ({facts.run_status}), started {started}; "
        f"stratum_ml {package}, commit {commit}"
    )


def _config_flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_config_flat(value, name + "."))
        else:
            flat[name] = json.dumps(value, default=str)
    return flat


def changes_since_previous(facts: VersionFacts) -> list[str]:
    """What differs from the version this one replaced (or would replace)."""
    prev = facts.previous
    if prev is None:
        return ["No previous champion: this is the first version put (or to be put) into use."]
    lines = [f"Compared with version {prev.version} ({_run_line(prev)}):"]
    ours, theirs = _config_flat(facts.run.config), _config_flat(prev.run.config)
    changed = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    lines += [
        f"- run config `{k}`: {theirs.get(k, '(absent)')} -> {ours.get(k, '(absent)')}"
        for k in changed
    ] or ["- run config: unchanged"]
    added = sorted(set(facts.run.features) - set(prev.run.features))
    removed = sorted(set(prev.run.features) - set(facts.run.features))
    if added or removed:
        lines.append(
            f"- features added: {', '.join(added) or 'none'}; "
            f"removed: {', '.join(removed) or 'none'}"
        )
    else:
        lines.append("- features: unchanged")
    same_data = facts.run.fingerprints == prev.run.fingerprints
    lines.append(
        "- source files: " + ("identical fingerprints" if same_data else "different fingerprints")
    )
    k = facts.run.headline_k
    lines.append(f"- this version: {precision_text(facts.run.precision(k), k)}")
    lines.append(f"- version {prev.version}: {precision_text(prev.run.precision(k), k)}")
    lines.append(
        f"- fairness gate: version {prev.version} "
        f"{_verdict_word(prev.run.fairness_passed)}, this version "
        f"{_verdict_word(facts.run.fairness_passed)}"
    )
    return lines


def frontier_text(facts: VersionFacts) -> str | None:
    """That the version is a fairness-frontier point: constraint, trade-off, the choice."""
    f = facts.frontier
    if f is None:
        return None
    source = f"version {f.source_version}" if f.source_version else "a version"
    chosen = (
        f"Chosen by `{f.by}` at {f.at} with this recorded reason: {f.reason}"
        if f.reason
        else "No choice is recorded with it."
    )
    return (
        f"**Fairness-frontier point {f.point}** of the frontier of {source} (training run "
        f"`{f.source_run}`), not the model that training registered. Constraint: "
        f"{f.constraint or 'not recorded'} (the protected attribute is used in training only, "
        f"never at scoring). Estimated trade-off: {f.tradeoff or 'not recorded'}. {chosen}"
    )


def _verdict_word(passed: bool | None) -> str:
    return {True: "passed", False: "FAILED", None: "no verdict recorded"}[passed]


def _precision_rows(facts: VersionFacts) -> list[str]:
    ks = facts.run.config.get("ks") or [facts.run.headline_k]
    return [f"- {precision_text(facts.run.precision(int(k)), int(k))}" for k in ks]


def _fairness_section(facts: VersionFacts) -> list[str]:
    run = facts.run
    gate = run.config.get("fairness", {}) if isinstance(run.config.get("fairness"), dict) else {}
    parts = [
        f"Gate: every group's {names(gate.get('metrics'), '?')} divided by its "
        f"reference group's must lie within [{gate.get('min_ratio', '?')}, "
        f"{gate.get('max_ratio', '?')}] for the attributes "
        f"{names(gate.get('attributes'), 'every audited attribute')} (groups under "
        f"{gate.get('min_group_size', '?')} addresses skipped; significant differences only: "
        f"{gate.get('require_significance', '?')}).",
        f"Verdict: **{_verdict_word(run.fairness_passed)}** ({_run_line(facts)}).",
    ]
    parts += [f"- failed: {r}" for r in run.fairness_reasons]
    checks = run.verdict.get("checks")
    if isinstance(checks, list) and checks:
        columns = ("attribute", "metric", "group", "reference_group", "ratio", "status")
        parts.append(
            _table(
                columns, ([c.get(col) for col in columns] for c in checks if isinstance(c, dict))
            )
        )
    frontier = frontier_text(facts)
    if frontier is not None:
        parts.append(frontier)
    acceptance = facts.acceptance
    if acceptance is not None:
        parts.append(
            f"**Risk accepted** despite the failed gate by `{acceptance.by}` at {acceptance.at}: "
            f"{acceptance.reason}"
        )
    elif run.fairness_passed is False:
        parts.append("No acceptance of the failed gate is recorded: promotion refuses it.")
    flagged = run.report.get("proxy_features_flagged") or []
    parts.append(
        "Proxy check: features flagged as predicting a protected group: "
        + (", ".join(map(str, flagged)) if flagged else "none")
        + f" (threshold AUC {run.config.get('proxy_auc_threshold', '?')})."
    )
    return parts


def technical_file_markdown(facts: VersionFacts) -> str:
    """The technical documentation of the version along AI Act Annex IV, in Markdown."""
    run, config = facts.run, facts.run.config
    k = run.headline_k
    catalogue = catalogue_rows(run)
    tags = facts.tags
    parts: list[str] = [
        f"# Technical file: {facts.name} version {facts.version}",
        "_Generated by `stratum docs` from the version's training run and the registry. Each "
        "item lists the evidence the software holds; parts marked "
        f"**{TO_COMPLETE}** need the provider's own statement._",
        "## 1. General description (Annex IV(1))",
        "- **Intended purpose:** order the dwellings of one municipality by the probability "
        "that a home visit finds a violation of housing and registration rules, so that the "
        "limited visits go where they are most needed. Decisions stay with people.",
        f"- **Version:** {facts.name} version {facts.version} (aliases: "
        f"{', '.join(facts.aliases) or 'none'}); status in the register: {facts.status}.",
        f"- **Provenance:** {_run_line(facts)}"
        + (
            f"; fairness-frontier point {facts.frontier.point} (see Fairness, section 2)."
            if facts.frontier is not None
            else "."
        ),
        f"- **Trained on visits** {tags.get('trained_from', '?')} .. "
        f"{tags.get('trained_until', '?')}.",
        "- **Form:** a Python package with a command line and an HTTP service on the "
        "municipality's own server; the model is an MLflow-registered LightGBM model.",
        f"- **Provider, place on the market, hardware:** {TO_COMPLETE}.",
        "## 2. Design and development (Annex IV(2))",
        "### Design choices (from the run config)",
        f"- Algorithm: LightGBM binary gradient boosting, {config.get('lightgbm', {})}.",
        f"- Calibration: {config.get('calibration', '?')}; weighting: "
        f"{config.get('weighting', '?')} ({weighting_text(config)}); mitigation: "
        f"{config.get('mitigation', '?')}.",
        f"- Time split: {config.get('split', {})}; headline k: {k}; list sizes reported: "
        f"{config.get('ks', '?')}.",
        f"- Feature set `{run.feature_set}`: {len(run.features)} approved features.",
    ]
    if not catalogue.empty:
        columns = [c for c in ("name", "theme", "sources", "description") if c in catalogue]
        parts.append(_table(columns, catalogue[columns].itertuples(index=False)))
    parts += [
        "Protected attributes are never features; they are joined only for the fairness audit "
        "(AI Act Art. 10(5)).",
        "### Data provenance",
        f"Source tables used: {', '.join(source_tables(run))}.",
    ]
    if run.row_counts:
        parts.append(_table(["table", "rows"], sorted(run.row_counts.items())))
    if run.fingerprints:
        parts += [
            "Source files (sha256):",
            _table(["file", "sha256"], sorted(run.fingerprints.items())),
        ]
    else:
        parts.append("The run recorded no source fingerprints.")
    parts += [
        "### Validation and testing",
        f"Evaluated on the latest visits, never trained on ({_run_line(facts)}). The honest "
        "estimate uses only random-sample visits; the naive one (all visits) is biased by "
        "who was chosen for a visit.",
        *_precision_rows(facts),
        "### Fairness",
        *_fairness_section(facts),
        "### Human oversight (Art. 14)",
        "- The score is a reason to look, never a decision; analysts record a decision per "
        "address (pass on for a visit, decline, more information) with who, role and time.",
        "- Case handlers record visit outcomes, established on what is found, not on the score.",
        "- An admin pauses the model at once (kill switch); the service then answers with the "
        "fallback ranking (current practice).",
        "- A version becomes champion only through `stratum promote`, which refuses it unless "
        "the fairness gate passed (or a written acceptance is recorded) and its honest "
        "precision is not worse than the champion's.",
        "### Cybersecurity",
        "- Every service call needs an API key whose role allows the endpoint; every call, "
        "allowed or refused, goes to a hash-chained audit log before the answer leaves.",
        "- Persons and owners appear only as keyed pseudonyms, never as BSN or name; "
        "re-identification is a separate, logged step.",
        "- The service listens on 127.0.0.1 by default; dependencies are pinned.",
        f"- Penetration tests, hosting and access management: {TO_COMPLETE}.",
        "## 3. Monitoring, functioning and control (Annex IV(3), (4))",
        "- Capabilities and limits: see the model card logged with the run and the "
        "instructions for use beside this file. Selective labels, calibration drift and "
        "register errors are the known limits.",
        "- Post-market monitoring: see `monitoring_plan.md`.",
        "## 4. Risk management (Annex IV(5), Art. 9)",
        "- Gates: fairness gate and the honest-precision comparison at promotion; a failed "
        "gate passes only with a written, recorded acceptance.",
        f"- Promotion decision recorded on the version: "
        f"{tags.get('promotion_decision', 'none yet')} "
        f"({tags.get('promotion_checked_at', 'not checked')}).",
        "## 5. Changes since the previous version (Annex IV(6))",
        *changes_since_previous(facts),
        "## 6. To be completed by the provider",
        f"**{TO_COMPLETE}:**",
        "- Harmonised standards or common specifications applied (Annex IV(7)).",
        "- EU declaration of conformity (Annex IV(8), Art. 47).",
        "- Quality management system (Art. 17) and the registration in the EU database (Art. 49).",
        "- The provider's name and address, and the person responsible for this file.",
    ]
    return _join(parts)


def _join(parts: Sequence[str]) -> str:
    text = parts[0]
    for before, block in zip(parts, parts[1:], strict=False):
        tight = before.startswith("- ") and block.startswith("- ")
        text += ("\n" if tight else "\n\n") + block
    return text + "\n"


def instructions_markdown(facts: VersionFacts) -> str:
    """Instructions for use (AI Act Art. 13) for analysts and case handlers."""
    k = facts.run.headline_k
    return _join(
        [
            f"# Instructions for use: {facts.name} version {facts.version}",
            "_For analysts and case handlers (AI Act Art. 13). Generated from the version's run._",
            "## What it does",
            "The list orders dwellings by the probability that a home visit finds a violation "
            "(address fraud, illegal room rental, overcrowding, labour exploitation). Each "
            "address carries its probability, rank and the features that moved its score most.",
            "## How well it works",
            f"- {precision_text(facts.run.precision(k), k)}.",
            f"- Fairness gate: {_verdict_word(facts.run.fairness_passed)}"
            + (" (risk accepted in writing)." if facts.acceptance else "."),
            "- The numbers hold for the period and the municipality the model was trained on "
            f"(visits {facts.tags.get('trained_from', '?')} .. "
            f"{facts.tags.get('trained_until', '?')}).",
            "## Analysts",
            "- Review the list; record a decision per address you act on (pass on for a visit, "
            "decline, more information) and why, also when you follow the list.",
            "- Keep a share of visits random (chosen by lot, not by score): only those let the "
            "model's precision be measured honestly.",
            "- A drift warning on the model page means the population differs from the training "
            "data: report it to the data scientist; do not rely on the scores until checked.",
            "## Case handlers",
            "- The score is not evidence and does not go into a file. Establish the outcome of a "
            "visit on what you find, and record it (it becomes a label for the next training).",
            "- Residents may ask which data was used and may object to any decision taken "
            "after a visit.",
            "## Stopping",
            "- An admin stops the model at once with `stratum pause --reason ...`; the work list "
            "then follows current practice (reports in the past year).",
        ]
    )


def monitoring_plan_markdown(facts: VersionFacts, thresholds: DriftThresholds) -> str:
    """Post-market monitoring plan (AI Act Art. 72) from the runs, thresholds and visit design."""
    runs = facts.scoring_runs
    if len(runs) >= 2:
        dates = [date.fromisoformat(r.as_of) for r in runs if r.as_of[:4].isdigit()]
        gaps = [(b - a).days for a, b in zip(dates, dates[1:], strict=False)]
        cadence = (
            f"{len(runs)} scoring runs recorded for this version, {runs[0].as_of} .. "
            f"{runs[-1].as_of}; median interval {statistics.median(gaps):.0f} days."
            if gaps
            else f"{len(runs)} scoring runs recorded for this version."
        )
    elif runs:
        cadence = f"One scoring run recorded for this version ({runs[0].as_of})."
    else:
        cadence = (
            "No scoring run of this version is recorded yet. The schedule belongs to the "
            "operating system (a monthly `stratum run` from a systemd timer or cron; README, "
            "Scoring runs)."
        )
    drifted = [r.as_of for r in runs if r.drift == "drifted"]
    design = {key: facts.run.config[key] for key in DESIGN_KEYS if key in facts.run.config}
    p = facts.run.precision()
    n_random = p.n if p is not None and p.n is not None else "?"
    design_text = (
        f"Designed visits, from the run config: {design}."
        if design
        else "The run config holds no design of visits: the software does not yet plan a "
        "random share of visits. The honest estimate of this version rests on "
        f"{n_random} random-sample visits in its evaluation region; the municipality must keep "
        "choosing a share of visits by lot for the next evaluation."
    )
    accepted = ", ".join(sorted(thresholds.accepted)) or "none"
    return _join(
        [
            f"# Post-market monitoring plan: {facts.name} version {facts.version}",
            "_AI Act Art. 72. Generated from the version's scoring runs, the drift thresholds "
            "in force and the run config._",
            "## Runs",
            f"- {cadence}",
            "- Runs that reported drift: " + (", ".join(drifted) if drifted else "none") + ".",
            "## Drift thresholds (each run compares the population with the training reference)",
            _table(
                ["threshold", "value"],
                [
                    ("PSI warning (per feature)", thresholds.psi_warn),
                    ("PSI alarm (per feature)", thresholds.psi_alarm),
                    ("missing-rate change alarm", thresholds.missing_rate_change),
                    ("KS statistic of the score, alarm", thresholds.ks_statistic),
                    ("share outside the training range, alarm", thresholds.out_of_range_share),
                    ("fewest values for PSI/KS", thresholds.min_values),
                ],
            ),
            f"Features whose drift is expected (reported, never alarms): {accepted}.",
            "## Visits",
            design_text,
            "## Actions",
            "- An alarm: the data scientist checks the cause within the month; the model may be "
            "paused; retraining goes through the same gates.",
            "- Every retraining: honest evaluation on random-sample visits, fairness gate, "
            "promotion decision recorded; a new documentation pack (`stratum docs`).",
            "- Serious incidents are reported to the market surveillance authority (Art. 73): "
            f"{TO_COMPLETE} (contact and procedure).",
        ]
    )
