"""Inputs for the municipality's IAMA and DPIA: the facts the software knows, by question.

Not an assessment: the municipality answers the questions itself. This file
arranges what the software can state truthfully about the version along the
parts of the IAMA (Impact Assessment Mensenrechten en Algoritmes) and the items
of a DPIA (GDPR Art. 35(7)), and says plainly where the software knows nothing.
"""

from __future__ import annotations

from stratum_ml.docs.facts import VersionFacts, names
from stratum_ml.docs.register import source_tables
from stratum_ml.docs.technical import (
    _join,
    changes_since_previous,
    frontier_text,
    precision_text,
    weighting_text,
)

__all__ = ["assessment_inputs_markdown"]

_MUNICIPALITY = "_Only the municipality can answer this._"


def assessment_inputs_markdown(facts: VersionFacts) -> str:
    """The IAMA and DPIA inputs of a version, in Markdown."""
    run, config = facts.run, facts.run.config
    k = run.headline_k
    gate = config.get("fairness", {}) if isinstance(config.get("fairness"), dict) else {}
    attributes = names(gate.get("attributes"), "every audited attribute")
    acceptance = facts.acceptance
    trade_off = (
        f"The fairness gate failed and the risk was accepted in writing on {acceptance.at[:10]}: "
        f"{acceptance.reason}"
        if acceptance is not None
        else {
            True: "The fairness gate passed.",
            False: "The fairness gate failed; no acceptance is recorded, so promotion refuses it.",
            None: "No fairness verdict is recorded.",
        }[run.fairness_passed]
    )
    return _join(
        [
            f"# Assessment inputs (IAMA, DPIA): {facts.name} version {facts.version}",
            "_Facts the software holds, for the municipality's own assessments. Not an "
            "assessment and not legal advice._",
            "## IAMA part 1: why (purpose, reasons, lawful basis, values)",
            "- Purpose as built: order dwellings by the probability that a home visit finds a "
            "violation, so that limited visits go where they are most needed.",
            f"- Lawful basis, public values, alternatives: {_MUNICIPALITY}",
            "## IAMA part 2: what (data and the algorithm)",
            f"- Sources used: {', '.join(source_tables(run))}; features: {len(run.features)} "
            f"approved features of set `{run.feature_set}`.",
            f"- Method: LightGBM, {config.get('calibration', '?')} calibration, "
            f"{weighting_text(config)}; mitigation: {config.get('mitigation', '?')}.",
            f"- Accuracy: {precision_text(run.precision(k), k)}.",
            "- Explanation: per address the features that moved its score most (exact TreeSHAP, "
            "log-odds), with Dutch and English reason texts.",
            "## IAMA part 3: how (implementation, human rights)",
            "- Human decision: analysts record a decision per address; case handlers record the "
            "outcome of a visit; the score is not evidence.",
            f"- Equal treatment: fairness gate on {attributes}. {trade_off}",
            *([f"- {frontier_text(facts)}"] if facts.frontier is not None else []),
            f"- Fundamental-rights weighing, objection and redress: {_MUNICIPALITY}",
            "## DPIA",
            "- **Data categories and sources:** dwelling data (BAG), registrations of residents "
            "as keyed pseudonyms (BRP), water and energy use per address, businesses at an "
            "address (Handelsregister), ownership as pseudonyms (Kadaster), reports, past "
            "visits and their outcomes. Tables in this version: "
            f"{', '.join(source_tables(run))}.",
            "- **Pseudonymisation:** BSNs, names and owner numbers are replaced by keyed "
            "pseudonyms before the data reaches the software (`stratum pseudonymise`); "
            "re-identification is a separate step, logged in the audit log.",
            "- **Protected attributes (AI Act Art. 10(5)):** "
            f"{attributes} are joined per address only for the bias audit, never as features, "
            "and reported only for groups of at least "
            f"{gate.get('min_group_size', '?')} addresses.",
            "- **Fairness results and the chosen trade-off:** gated metrics "
            f"{names(gate.get('metrics'), '?')} within "
            f"[{gate.get('min_ratio', '?')}, {gate.get('max_ratio', '?')}]. "
            + (
                "Selection-rate parity is audited and reported but not gated: where the share "
                "of violations differs between groups, equal selection rates would mean "
                "visiting more dwellings without a violation in one group. "
                if "selection_rate" not in (gate.get("metrics") or ())
                else "Selection-rate parity is gated. "
            )
            + trade_off,
            "- **Roles and access:** API keys per role (analyst, case_handler, application, "
            "admin); the work list carries no person data; the dossier is for case handlers only.",
            "- **Retention:** the software keeps every stored scoring run, decision and the "
            "audit log without an end date; it deletes nothing by itself. Retention periods: "
            f"{_MUNICIPALITY}",
            "- **Changes since the previous version:**",
            *changes_since_previous(facts),
            f"- **Necessity, proportionality, data subjects' rights, DPO advice:** {_MUNICIPALITY}",
        ]
    )
