"""Request and response models of the scoring service (its OpenAPI schema).

Every request model forbids unknown fields and validates strictly (no strings
for numbers, no numbers for dates): a request that does not fit is answered
with a 4xx and a message that names the field, before any scoring runs (see
:mod:`stratum_ml.serving.gate`).

Batch limits depend on the running service (``STRATUM_MAX_BATCH_SIZE``); the
gate passes the limit in force as validation context ``{"max_batch_size": n}``.
Without that context (a model validated outside the service) no batch limit
applies.

Contributions and raw scores are in **log-odds** (LightGBM's raw score), not
probability: ``bias_log_odds`` plus every contribution adds up to
``raw_score_log_odds``, and the calibrator turns that into ``probability``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from stratum_ml.evaluation.explain import Reason
from stratum_ml.features.catalogue import THEMES
from stratum_ml.serving.decisions import DECISIONS, MAX_REASON_LENGTH, reason_problems
from stratum_ml.serving.summary import LEVELS
from stratum_ml.sources.contract import (
    INSPECTION_REASONS,
    OUTCOMES,
    OWNER_TYPES,
    REPORT_CATEGORIES,
    REPORT_SOURCES,
    VIOLATION_TYPES,
)

#: Default largest number of ids, rows or list entries one request may ask for.
DEFAULT_MAX_BATCH_SIZE = 1000
#: Validation-context key under which the service passes its batch limit.
MAX_BATCH_CONTEXT = "max_batch_size"
#: Why contributions do not add up to a probability; repeated in every explanation.
LOG_ODDS_NOTE = (
    "Contributions are exact TreeSHAP values in log-odds (the model's raw score), not "
    "probability: bias_log_odds plus all contributions equals raw_score_log_odds, and the "
    "calibrator maps that to probability. A contribution of +0.7 multiplies the odds by ~2."
)

AddressId = Annotated[
    str, StringConstraints(pattern=r"^[0-9]{16}$"), Field(examples=["0479010000000001"])
]
#: An id as sent in a batch: checked per id (a malformed id is reported, not fatal).
BatchId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Language = Literal["en", "nl"]
Theme = Literal[THEMES]  # type: ignore[valid-type]  # the catalogue's themes, as data
InspectionReason = Literal[INSPECTION_REASONS]  # type: ignore[valid-type]
Outcome = Literal[OUTCOMES]  # type: ignore[valid-type]
ViolationType = Literal[VIOLATION_TYPES]  # type: ignore[valid-type]
Decision = Literal[DECISIONS]  # type: ignore[valid-type]
AreaLevel = Literal[LEVELS]  # type: ignore[valid-type]
#: default length of the priority list the summary counts
DEFAULT_SUMMARY_K = 250
FeatureValue = float | str | None


def _batch_limit(info: ValidationInfo) -> int | None:
    context = info.context
    if isinstance(context, dict) and isinstance(context.get(MAX_BATCH_CONTEXT), int):
        return int(context[MAX_BATCH_CONTEXT])
    return None


class ApiRequest(BaseModel):
    """Base of every request: unknown fields and loose types are refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    def audit_ids(self) -> list[str]:
        """The address ids this request asks for, as the audit log records them."""
        return []


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- requests


class ScoreRequest(ApiRequest):
    """Score addresses by id, or rows of ready-made features.

    Send exactly one of ``address_ids`` and ``rows``.
    """

    address_ids: list[BatchId] | None = Field(
        default=None,
        description=(
            "BAG verblijfsobject ids (16 digits). Ids that are not scored dwellings are "
            "listed under `unknown` with the reason; duplicates are answered once. At most "
            f"the service's max batch size (default {DEFAULT_MAX_BATCH_SIZE})."
        ),
    )
    rows: list[dict[str, FeatureValue]] | None = Field(
        default=None,
        description=(
            "Rows of raw feature values computed by the caller, one key per feature the "
            "model reads (see the model endpoint): numbers, category strings, or null for "
            "missing. Answered with a probability only: such a row has no rank and no "
            "reasons, since it is not part of the scored population."
        ),
    )
    as_of: dt.date | None = Field(
        default=None,
        description=(
            "Optional scoring date (YYYY-MM-DD). The service scores as of ONE date, fixed at "
            "start-up (STRATUM_AS_OF, default the start-up day); a different date is refused "
            "with a 422 that names the date in force."
        ),
    )
    language: Language = Field(default="en", description="Language of the reason texts.")
    n_reasons: int = Field(default=3, ge=0, le=10, description="Reasons per address.")

    @model_validator(mode="after")
    def _one_input(self, info: ValidationInfo) -> Self:
        given = [name for name in ("address_ids", "rows") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("send exactly one of address_ids and rows")
        items: list[Any] = getattr(self, given[0])
        if not items:
            raise ValueError(f"{given[0]} is empty")
        limit = _batch_limit(info)
        if limit is not None and len(items) > limit:
            raise ValueError(
                f"{given[0]} holds {len(items)} entries; this service answers at most "
                f"{limit} per request (split the batch)"
            )
        return self

    def audit_ids(self) -> list[str]:
        """The address ids asked for (none for feature rows)."""
        return list(self.address_ids or [])


class PriorityListRequest(ApiRequest):
    """The top of the ranking, with filters; address level only."""

    k: int = Field(default=100, ge=1, description="How many addresses (at most the batch size).")
    district: str | None = Field(
        default=None, pattern=r"^WK[0-9]{6}$", description="CBS wijk code, e.g. WK047901."
    )
    neighbourhood: str | None = Field(
        default=None, pattern=r"^BU[0-9]{8}$", description="CBS buurt code, e.g. BU04790101."
    )
    min_score: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Only addresses with at least this probability."
    )
    theme: Theme | None = Field(
        default=None, description="Only addresses whose strongest reason has this theme."
    )
    language: Language = "en"
    n_reasons: int = Field(default=3, ge=1, le=10)

    @model_validator(mode="after")
    def _k_within_limit(self, info: ValidationInfo) -> Self:
        limit = _batch_limit(info)
        if limit is not None and self.k > limit:
            raise ValueError(f"k is {self.k}; this service lists at most {limit} addresses")
        return self


class AddressRequest(ApiRequest):
    """One address."""

    address_id: AddressId

    def audit_ids(self) -> list[str]:
        """The address asked for."""
        return [self.address_id]


class ExplainRequest(AddressRequest):
    """Every contribution to one address's score."""

    language: Language = "en"


class DossierRequest(AddressRequest):
    """The case handler's dossier of one address."""


class FeedbackRequest(AddressRequest):
    """The outcome of a home visit; it becomes a training label for the next model."""

    inspected_at: dt.date = Field(description="Day of the visit (YYYY-MM-DD), not in the future.")
    reason: InspectionReason = Field(
        description="Why the address was visited; `risk_model` when this service proposed it."
    )
    outcome: Outcome
    violation_type: ViolationType | None = Field(
        default=None, description="Only when outcome is `violation`."
    )


class ModelRequest(ApiRequest):
    """No parameters: send `{}` (or an empty body)."""


class SummaryRequest(ApiRequest):
    """How the top k of the ranking spreads over districts and neighbourhoods."""

    k: int = Field(
        default=DEFAULT_SUMMARY_K,
        ge=1,
        description="Length of the priority list counted (at most the batch size).",
    )
    level: AreaLevel | None = Field(
        default=None, description="Only this area level; default both, districts first."
    )

    @model_validator(mode="after")
    def _k_within_limit(self, info: ValidationInfo) -> Self:
        limit = _batch_limit(info)
        if limit is not None and self.k > limit:
            raise ValueError(f"k is {self.k}; this service counts at most {limit} addresses")
        return self


class DecisionRequest(AddressRequest):
    """An analyst's decision about an address on the priority list; it is stored."""

    decision: Decision = Field(description="What happens with the address next.")
    reason: str = Field(
        min_length=1,
        max_length=MAX_REASON_LENGTH,
        description=(
            "Why, in your own words. Address-level only: no names, BSNs, phone numbers or "
            "other person data (text that looks like it is refused)."
        ),
    )
    language: Language = Field(
        default="en", description="Language of the score reasons in the answer."
    )

    @field_validator("reason")
    @classmethod
    def _reason_fit_to_store(cls, reason: str) -> str:
        problems = reason_problems(reason)
        if not reason.strip():
            problems.insert(0, "it is blank")
        if problems:
            raise ValueError("; ".join(problems))
        return reason


# --------------------------------------------------------------------------- responses


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

    @classmethod
    def of(cls, reason: Reason) -> ReasonOut:
        """From an :class:`~stratum_ml.evaluation.explain.Reason`."""
        data = reason.to_dict()
        value = data["value"]
        return cls(
            feature=reason.feature,
            theme=reason.theme,
            value=value if isinstance(value, str | None) else float(value),
            contribution_log_odds=reason.contribution,
            direction="raises" if reason.direction == "raises" else "lowers",
            text=reason.text,
        )


class ScoredAddressOut(_Response):
    """A dwelling's score, rank and strongest reasons."""

    address_id: str
    probability: float = Field(description="Calibrated probability that a visit finds a violation.")
    raw_score_log_odds: float
    rank: int = Field(description="1 = highest risk among all scored dwellings.")
    percentile: float = Field(description="100 = highest risk.")
    district: str | None
    neighbourhood: str | None
    reasons: list[ReasonOut]


class UnknownAddress(_Response):
    """An id that could not be scored, and why."""

    address_id: str
    reason: str


class RowScore(_Response):
    """The score of one row of ready-made features."""

    row: int = Field(description="Position of the row in the request (0-based).")
    probability: float
    raw_score_log_odds: float


class ScoreResponse(_Response):
    """Scores of the addresses (or feature rows) asked for."""

    model_version: str
    scored_as_of: dt.date
    population_size: int = Field(description="Number of scored dwellings ranks refer to.")
    results: list[ScoredAddressOut] = Field(default_factory=list)
    unknown: list[UnknownAddress] = Field(default_factory=list)
    rows: list[RowScore] = Field(default_factory=list)


class PriorityListResponse(_Response):
    """The highest-ranked dwellings that pass the filters."""

    model_version: str
    scored_as_of: dt.date
    population_size: int
    filters: dict[str, str | float | None]
    items: list[ScoredAddressOut]


class ExplainResponse(_Response):
    """Every feature's contribution to one dwelling's score."""

    model_version: str
    scored_as_of: dt.date
    address_id: str
    probability: float
    raw_score_log_odds: float
    bias_log_odds: float = Field(description="Expected raw score (the TreeSHAP base value).")
    rank: int
    percentile: float
    contributions: list[ReasonOut] = Field(description="Every feature, largest |value| first.")
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
    message: str


class AreaSummaryOut(_Response):
    """One area's counts; a value is None where it is withheld (see `suppressed`)."""

    level: AreaLevel
    code: str | None = Field(description="CBS wijk (WK...) or buurt (BU...) code.")
    n_scored: int | None = Field(description="Dwellings scored in the area.")
    n_in_top_k: int | None = Field(description="Of those, how many are in the top k.")
    mean_probability: float | None = Field(description="Mean probability of its dwellings.")
    suppressed: bool = Field(description="True when any value of this row is withheld.")


class SummaryResponse(_Response):
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


class DecisionResponse(_Response):
    """The decision as stored, with what the service showed when it was taken."""

    decision_id: str
    address_id: str
    decision: Decision
    reason: str
    decided_at: dt.datetime
    model_version: str
    scoring_date: dt.date
    rank_at_decision: int
    probability_at_decision: float
    reasons: list[ReasonOut] = Field(description="The address's strongest score reasons.")
    message: str


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
