"""Response models: what each endpoint answers, and the error every refusal uses.

Contributions and raw scores are in **log-odds** (LightGBM's raw score), not
probability: ``bias_log_odds`` plus every contribution adds up to
``raw_score_log_odds``, and the calibrator turns that into ``probability``.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from stratum_ml.evaluation.explain import Reason
from stratum_ml.serving.api_models.fields import (
    LOG_ODDS_NOTE,
    AreaLevel,
    Decision,
    DecisionReason,
    FeatureValue,
    InspectionReason,
    Outcome,
    Ranking,
    ViolationType,
)
from stratum_ml.sources.contract import OWNER_TYPES, REPORT_CATEGORIES, REPORT_SOURCES


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Response):
    """One reason a request was refused."""

    loc: list[str | int] = Field(description="Where in the request body, e.g. ['address_ids', 3].")
    msg: str
    type: str


class ErrorResponse(_Response):
    """Every 4xx/5xx answer of the service's endpoints."""

    error: str
    detail: list[ErrorDetail] | None = None


class ReasonOut(_Response):
    """One feature's part in a score."""

    feature: str
    theme: str
    value: FeatureValue = Field(description="The feature's value for this address.")
    contribution_log_odds: float
    direction: Literal["raises", "lowers"]
    text: str
    contribution_pp: float | None = Field(
        default=None,
        description="The contribution in percentage points of the chance (the reasons of "
        "an address add up to its chance minus the base chance); null where not known.",
    )

    @classmethod
    def of(cls, reason: Reason) -> ReasonOut:
        """From an :class:`~stratum_ml.evaluation.explain.Reason`."""
        value = reason.plain_value
        return cls(
            feature=reason.feature,
            theme=reason.theme,
            value=value if isinstance(value, str | None) else float(value),
            contribution_log_odds=reason.contribution,
            direction="raises" if reason.direction == "raises" else "lowers",
            text=reason.text,
            contribution_pp=reason.contribution_pp,
        )


class ScoredAddressOut(_Response):
    """A dwelling's score, rank and strongest reasons.

    While the model is paused, rank and percentile are those of the fallback ranking
    (reports in the past year), the model's probability and reasons are not shown, and
    ``reports_past_year`` is.
    """

    address_id: str
    probability: float | None = Field(
        description="Calibrated probability that a visit finds a violation; "
        "null while the model is paused."
    )
    raw_score_log_odds: float | None = Field(description="Null while the model is paused.")
    rank: int = Field(description="1 = highest risk among all scored dwellings.")
    percentile: float = Field(description="100 = highest risk.")
    district: str | None
    neighbourhood: str | None
    reasons: list[ReasonOut] = Field(description="Empty while the model is paused.")
    reports_past_year: int | None = Field(
        default=None,
        description="Reports in the year before the scoring date: what the fallback ranking "
        "ranks by; shown while the model is paused.",
    )
    violation_type: str | None = Field(
        default=None,
        description="The most likely violation type should a visit find one (address_fraud, "
        "subletting_or_room_rental, overcrowding, exploitation, other); null for a model "
        "without a violation type model, a run stored before it was kept, or while paused.",
    )
    violation_type_share: float | None = Field(
        default=None, description="The model's share (0..1) for that violation type."
    )


class PauseOut(_Response):
    """The kill switch: whether the model is paused, since when, by whom and why."""

    paused: bool
    since: dt.datetime | None = Field(default=None, description="When it was paused (UTC).")
    by: str | None = Field(
        default=None,
        description="Who paused it: an OS user (command line) or a key id, role and name.",
    )
    reason: str | None = None


class _Ranked(_Response):
    """What every answer built on the ranking says about where its ranking came from."""

    run_id: str = Field(
        description="The stored scoring run the answer comes from (`stratum runs show RUN_ID`)."
    )
    paused: bool = Field(
        default=False, description="True while an admin has paused the model (kill switch)."
    )
    ranking: Ranking = Field(
        default="model",
        description="`model`, or `fallback` while the model is paused: then ranks are those "
        "of current practice (reports in the past year) and no probability is shown.",
    )
    notice: str | None = Field(
        default=None, description="While paused: the pause and the fallback, in words."
    )


class UnknownAddress(_Response):
    """An id that could not be scored: where it was in the request, and why."""

    position: int = Field(description="Position of the id in `address_ids` (0-based).")
    address_id: str | None = Field(
        description="The id, when it is a well-formed BAG id (16 digits); null otherwise: "
        "what a caller sends that is not an address id is never repeated."
    )
    reason: str


class RowScore(_Response):
    """The score of one row of ready-made features."""

    row: int = Field(description="Position of the row in the request (0-based).")
    probability: float
    raw_score_log_odds: float


class ScoreResponse(_Ranked):
    """Scores of the addresses (or feature rows) asked for."""

    model_version: str
    scored_as_of: dt.date
    population_size: int = Field(description="Number of scored dwellings ranks refer to.")
    results: list[ScoredAddressOut] = Field(default_factory=list)
    unknown: list[UnknownAddress] = Field(default_factory=list)
    rows: list[RowScore] = Field(default_factory=list)


class DecisionStateOut(_Response):
    """The latest decision stored about an address."""

    decision_id: str
    decision: str
    role: str | None
    key_name: str | None
    decided_at: dt.datetime
    run_id: str | None = Field(description="The run it was taken on (null before runs).")
    open: bool = Field(description="False when a later decision superseded it.")


class LastVisitOut(_Response):
    """An address's latest visit: when, what it found, and where it is recorded."""

    inspected_at: dt.date
    outcome: str
    recorded_in: Literal["service", "sources"] = Field(
        description="`service`: recorded through the feedback endpoint; `sources`: in the "
        "inspections of the source folder."
    )


class WorkListItemOut(ScoredAddressOut):
    """A dwelling on the work list, with what happened to it since the previous run."""

    state: Literal["new", "rank change", "unchanged"] | None = Field(
        default=None,
        description="Against the previous run's work list: `new` (not on it), `rank change` "
        "(see previous_rank) or `unchanged`; null while the model is paused.",
    )
    previous_rank: int | None = Field(
        default=None, description="Its rank on the previous run's work list; null if not on it."
    )
    latest_decision: DecisionStateOut | None = None
    last_visit: LastVisitOut | None = Field(
        default=None, description="Its latest visit (before the cool-off), if any."
    )
    visited_since_previous_run: bool = Field(
        default=False, description="True when its latest visit is after the previous run's date."
    )


class RecentlyVisitedOut(_Response):
    """A dwelling the ranking puts on the list, left off: visited within the cool-off."""

    address_id: str
    rank: int
    district: str | None
    neighbourhood: str | None
    visit: LastVisitOut


class PriorityListResponse(_Ranked):
    """The highest-ranked dwellings that pass the filters, and those left off as recently
    visited."""

    model_version: str
    scored_as_of: dt.date
    population_size: int
    filters: dict[str, str | float | None]
    items: list[WorkListItemOut | ScoredAddressOut] = Field(
        description="The work list; while the model is paused, the fallback ranking's top k "
        "(without item state)."
    )
    previous_run_id: str | None = Field(
        default=None, description="The run the item states compare with; null for a first run."
    )
    cool_off_days: int = Field(
        default=0,
        description="Addresses visited within this many days before the run's date (or after "
        "it) are left off the items and listed in recently_visited.",
    )
    recently_visited: list[RecentlyVisitedOut] = Field(
        default_factory=list,
        description="The addresses the ranking would have listed among the items, left off "
        "because they were visited within the cool-off: with the visit's date and outcome.",
    )


class ExplainResponse(_Ranked):
    """Every feature's contribution to one dwelling's score."""

    model_version: str
    scored_as_of: dt.date
    address_id: str
    probability: float | None = Field(description="Null while the model is paused.")
    raw_score_log_odds: float | None = Field(description="Null while the model is paused.")
    bias_log_odds: float | None = Field(
        description="Expected raw score (the TreeSHAP base value); null while paused."
    )
    rank: int
    percentile: float
    contributions: list[ReasonOut] = Field(
        description="Every feature, largest |value| first; empty while the model is paused."
    )
    reports_past_year: int | None = Field(
        default=None, description="Shown while the model is paused (the fallback ranks by it)."
    )
    note: str = LOG_ODDS_NOTE


class AddressFacts(_Response):
    """The dwelling as registered in the BAG."""

    postcode: str
    house_number: int
    house_number_suffix: str | None
    district: str
    neighbourhood: str
    floor_area_m2: int
    use_purpose: str
    construction_year: int
    tenure: str


class Stay(_Response):
    """One person's registration at the address (BRP); the person is a pseudonym."""

    person_id: str
    surname_key: str = Field(description="Pseudonym of the family name.")
    birth_year: int
    registered_from: dt.date
    registered_until: dt.date | None = Field(description="None: still registered on the date.")


class WaterPeriod(_Response):
    """Metered drinking water over one period."""

    period_start: dt.date
    period_end: dt.date
    volume_m3: float
    m3_per_day: float


class ReportOut(_Response):
    """A report (melding) about the address."""

    report_id: str
    reported_at: dt.datetime
    category: Literal[REPORT_CATEGORIES]  # type: ignore[valid-type]
    source: Literal[REPORT_SOURCES]  # type: ignore[valid-type]


class VisitOut(_Response):
    """An earlier home visit and its outcome."""

    inspection_id: str
    inspected_at: dt.date
    reason: InspectionReason
    outcome: Outcome
    violation_type: ViolationType | None


class BusinessOut(_Response):
    """An establishment registered at the address (Handelsregister)."""

    business_id: str
    sbi_code: str
    registered_from: dt.date
    registered_until: dt.date | None


class OwnershipOut(_Response):
    """Who owned the address, and when (Kadaster); the owner is a pseudonym."""

    owner_id: str
    owner_type: Literal[OWNER_TYPES]  # type: ignore[valid-type]
    owned_from: dt.date
    owned_until: dt.date | None


class LinkedAddress(_Response):
    """Another address sharing a resident, a private owner or an establishment."""

    address_id: str
    via: Literal["resident", "owner", "business"]
    through: str = Field(description="The shared person, owner (pseudonyms) or business id.")


class DossierResponse(_Response):
    """What a case handler needs to prepare one visit, as known on the scoring date.

    Contains pseudonymous person ids; holds nothing from the protected attributes.
    """

    address_id: str
    as_of: dt.date
    address: AddressFacts
    registrations: list[Stay]
    water_usage: list[WaterPeriod]
    reports: list[ReportOut]
    visits: list[VisitOut]
    businesses: list[BusinessOut]
    ownership: list[OwnershipOut]
    linked_addresses: list[LinkedAddress]
    n_linked_addresses: int = Field(description="All links; the list holds the first 500.")
    absent_sources: list[str] = Field(description="Optional source tables this municipality lacks.")


class FeedbackResponse(_Response):
    """The visit outcome as stored."""

    inspection_id: str
    address_id: str
    inspected_at: dt.date
    reason: InspectionReason
    outcome: Outcome
    violation_type: ViolationType | None
    recorded_at: dt.datetime
    run_id: str | None = Field(
        default=None, description="The run whose visit plan the visit answers, if any."
    )
    replayed: bool = Field(
        default=False,
        description="True when this answers a retried request (same Idempotency-Key): "
        "nothing new was stored.",
    )
    message: str


class AreaSummaryOut(_Response):
    """One area's counts; a value is None where it is withheld (see `suppressed`)."""

    level: AreaLevel
    code: str | None = Field(description="CBS wijk (WK...) or buurt (BU...) code.")
    n_scored: int | None = Field(description="Dwellings scored in the area.")
    n_in_top_k: int | None = Field(description="Of those, how many are in the top k.")
    mean_probability: float | None = Field(description="Mean probability of its dwellings.")
    suppressed: bool = Field(description="True when any value of this row is withheld.")


class SummaryResponse(_Ranked):
    """The top k per area, small counts withheld so that no household can be singled out."""

    model_version: str
    scored_as_of: dt.date
    population_size: int
    k: int
    n_in_top_k: int = Field(description="Dwellings counted: k, or all when fewer are scored.")
    min_cell_count: int = Field(description="Smallest count shown (STRATUM_MIN_CELL_COUNT).")
    areas: list[AreaSummaryOut]
    note: str = Field(
        default=(
            "Counts below min_cell_count are withheld (null, suppressed: true), and so are "
            "top-k counts of areas where fewer than min_cell_count dwellings are outside the "
            "top k; further counts are withheld where a withheld one could be recovered by "
            "subtraction. The mean probability is withheld with the number scored."
        )
    )


class DecisionResponse(_Ranked):
    """The decision as stored, with what the service showed when it was taken.

    While the model is paused the answer shows nothing of the model: the rank is the
    fallback ranking's, and the probability and the reasons are null and empty (the
    decision is stored so).
    """

    decision_id: str
    address_id: str
    decision: Decision
    reason: DecisionReason = Field(description="Why: a code from the fixed list.")
    note: str | None = Field(default=None, description="The analyst's own words, if any.")
    decided_at: dt.datetime
    model_version: str
    scoring_date: dt.date
    rank_at_decision: int = Field(
        description="The address's rank then; while the model is paused, in the fallback ranking."
    )
    probability_at_decision: float | None = Field(
        description="The probability then; null while the model is paused."
    )
    supersedes: str | None = Field(
        default=None, description="The decision this one replaced (now closed), if any."
    )
    run_id: str | None = Field(  # type: ignore[assignment]
        default=None, description="The scoring run the decision was taken on."
    )
    replayed: bool = Field(
        default=False,
        description="True when this answers a retried request (same Idempotency-Key): "
        "nothing new was stored.",
    )
    reasons: list[ReasonOut] = Field(
        description="The address's strongest score reasons; empty while the model is paused."
    )
    message: str


class DecisionOut(_Response):
    """One stored decision, with who took it and whether it is still open."""

    decision_id: str
    address_id: str
    decision: Decision
    reason: DecisionReason = Field(
        description="Why: a code from the fixed list (`other` for decisions stored before it)."
    )
    note: str | None = Field(default=None, description="The analyst's own words, if any.")
    decided_at: dt.datetime
    decided_by: str = Field(description="The API key id of who decided (never the key).")
    role: str | None = Field(description="Their role; None for decisions imported from CSV.")
    key_name: str | None = Field(description="The key's name; None for imported decisions.")
    model_version: str
    scoring_date: dt.date
    rank_at_decision: int = Field(
        description="The address's rank then; for one taken while the model was paused, in "
        "the fallback ranking."
    )
    probability_at_decision: float | None = Field(
        description="The probability then; null for one taken while the model was paused."
    )
    supersedes: str | None = Field(description="The decision this one replaced, if any.")
    superseded_by: str | None = Field(description="The decision that replaced this one, if any.")
    run_id: str | None = Field(
        default=None, description="The scoring run it was taken on; None before runs."
    )
    open: bool = Field(description="True while no later decision supersedes this one.")


class DecisionsResponse(_Response):
    """Stored decisions, oldest first."""

    address_id: str | None = Field(description="The address asked about; None for all.")
    run_id: str | None = Field(
        default=None, description="The scoring run asked about; None for all."
    )
    decisions: list[DecisionOut]
    open_decision_id: str | None = Field(
        description="The address's open decision (a new one must supersede it); None when "
        "it has none or no address was asked about."
    )


class HonestEstimateOut(_Response):
    """Precision at k estimated on random-sample visits only, with its interval."""

    k: int
    estimate: float | None = Field(description="None when no random-sample visit fell in range.")
    ci_low: float | None
    ci_high: float | None
    n_random_visits: int
    region: str = Field(description="What the estimate covers (it may have been widened).")
    naive_estimate: float | None = Field(description="On all visits: biased by earlier policy.")


class FairnessSummary(_Response):
    """The fairness gate's verdict for this version."""

    passed: bool
    reasons: list[str]
    notes: list[str]
    risk_accepted: str | None = Field(
        default=None,
        description="When the gate failed and a person promoted the model anyway: who, when "
        "and their written reason (from the registry).",
    )


class FeatureDriftOut(_Response):
    """How far one feature moved from the training reference."""

    feature: str
    psi: float | None = Field(description="Population stability index; null when not computable.")
    missing_rate_change: float = Field(description="Missing rate now minus in training.")
    status: str


class DriftOut(_Response):
    """The served run's drift against its model version's training reference."""

    drifted: bool | None = Field(
        description="True when a threshold is crossed; null when the version has no reference."
    )
    note: str | None = Field(default=None, description="Why there is no drift result, if none.")
    reasons: list[str] = Field(default_factory=list, description="Which thresholds were crossed.")
    warnings: list[str] = Field(default_factory=list)
    score_ks: float | None = Field(
        default=None, description="KS statistic of the score against the reference."
    )
    out_of_range_share: float | None = Field(
        default=None, description="Share of values outside the training range."
    )
    features: list[FeatureDriftOut] = Field(default_factory=list)


class ServedRunOut(_Response):
    """The stored scoring run the service answers from."""

    run_id: str
    as_of: dt.date
    created_at: dt.datetime
    top_k: int = Field(description="Length of the run's work list.")
    previous_run_id: str | None
    drift: DriftOut


class ModelInfoResponse(_Response):
    """What is scoring: version, training period, honest metrics, fairness, model card."""

    model_name: str
    version: str
    alias: str
    run_id: str
    trained_from: str | None
    trained_until: str | None
    scored_as_of: dt.date
    population_size: int
    features: list[str]
    headline_k: int | None
    honest_precision: list[HonestEstimateOut]
    fairness: FairnessSummary
    max_batch_size: int
    model_card_markdown: str
    pause: PauseOut = Field(description="The kill switch: paused or not, since, by, why.")
    registry_problems: list[str] = Field(
        default_factory=list,
        description="What is wrong with the registry's champion (an alias moved outside "
        "`stratum promote`, a promotion record or fairness-risk acceptance removed); the "
        "service then keeps serving the last verified version. Empty when all verifies.",
    )
    scoring_run: ServedRunOut = Field(
        description="The stored scoring run the service answers from, with its drift."
    )


class PauseResponse(_Response):
    """The kill switch after the request."""

    changed: bool = Field(
        description="False when the switch already was where it was asked to go (nothing stored)."
    )
    pause: PauseOut
    message: str
