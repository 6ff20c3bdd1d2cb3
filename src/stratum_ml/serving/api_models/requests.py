"""Request models: every field checked strictly before any scoring runs.

Batch limits depend on the running service (``STRATUM_MAX_BATCH_SIZE``): the
service passes the limit in force as validation context
``{"max_batch_size": n}``. Without that context (a model validated outside
the service) no batch limit applies.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from stratum_ml.serving.api_models.fields import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_SUMMARY_K,
    MAX_BATCH_CONTEXT,
    AddressId,
    AreaLevel,
    BatchId,
    Decision,
    DecisionId,
    DecisionReason,
    FeatureValue,
    InspectionReason,
    JsonInt,
    Language,
    Outcome,
    RunId,
    SwitchAction,
    Theme,
    ViolationType,
)
from stratum_ml.serving.decisions import MAX_REASON_LENGTH, reason_problems
from stratum_ml.store.switch import MIN_REASON_LENGTH, SwitchError, check_reason

_BAG_ID = re.compile(r"[0-9]{16}")


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


class TopKRequest(ApiRequest):
    """Base of the requests about the top k of the ranking: k is at most the batch limit."""

    #: what the service does with the k addresses, as the refusal of too large a k says it
    k_verb: ClassVar[str]

    k: JsonInt

    @model_validator(mode="after")
    def _k_within_limit(self, info: ValidationInfo) -> Self:
        limit = _batch_limit(info)
        if limit is not None and self.k > limit:
            raise ValueError(
                f"k is too large: this service {self.k_verb} at most {limit} addresses"
            )
        return self


class ScoreRequest(ApiRequest):
    """Score addresses by id, or rows of ready-made features.

    Send exactly one of ``address_ids`` and ``rows``.
    """

    # what _one_input checks, said in the schema too (the OpenAPI document)
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["address_ids"], "properties": {"address_ids": {"type": "array"}}},
                {"required": ["rows"], "properties": {"rows": {"type": "array"}}},
            ]
        }
    )

    address_ids: list[BatchId] | None = Field(
        default=None,
        json_schema_extra={"minItems": 1},
        description=(
            "BAG verblijfsobject ids (16 digits). Ids that are not scored dwellings are "
            "listed under `unknown` by position with the reason (a malformed id is not "
            "repeated); duplicates are answered once. At most "
            f"the service's max batch size (default {DEFAULT_MAX_BATCH_SIZE})."
        ),
    )
    rows: list[dict[str, FeatureValue]] | None = Field(
        default=None,
        json_schema_extra={"minItems": 1},
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
            "Optional scoring date (YYYY-MM-DD). The service scores as of the date of the run "
            "it serves (`scored_as_of` in every answer); a different date is refused with a "
            "422 that names the date in force."
        ),
    )
    language: Language = Field(default="en", description="Language of the reason texts.")
    n_reasons: JsonInt = Field(default=3, ge=0, le=10, description="Reasons per address.")
    run_id: RunId | None = None

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
        """The well-formed address ids asked for (none for feature rows).

        An id that is not a BAG id (16 digits) is never recorded: it may be anything a
        caller typed, a BSN included.
        """
        return [a for a in self.address_ids or [] if _BAG_ID.fullmatch(a)]


class PriorityListRequest(TopKRequest):
    """The top of the ranking, with filters; address level only."""

    k_verb = "lists"

    k: JsonInt = Field(
        default=100, ge=1, description="How many addresses (at most the batch size)."
    )
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
    n_reasons: JsonInt = Field(default=3, ge=1, le=10)
    run_id: RunId | None = Field(
        default=None,
        description="A stored run of the served model (`stratum runs list`): its work list "
        "as it was stored; default the run the service serves, with each item's state now.",
    )


class AddressRequest(ApiRequest):
    """One address."""

    address_id: AddressId

    def audit_ids(self) -> list[str]:
        """The address asked for."""
        return [self.address_id]


class ExplainRequest(AddressRequest):
    """Every contribution to one address's score."""

    language: Language = "en"
    run_id: RunId | None = None


class DossierRequest(AddressRequest):
    """The case handler's dossier of one address."""


class FeedbackRequest(AddressRequest):
    """The outcome of a home visit; it becomes a training label for the next model."""

    inspected_at: dt.date = Field(
        description="Day of the visit (YYYY-MM-DD): not in the future, not before the "
        "earliest visit in the sources (422 otherwise)."
    )
    reason: InspectionReason = Field(
        description="Why the address was visited; `risk_model` when this service proposed it."
    )
    outcome: Outcome
    violation_type: ViolationType | None = Field(
        default=None, description="Only when outcome is `violation`."
    )
    run_id: RunId | None = Field(
        default=None,
        description=(
            "The scoring run whose visit plan this visit answers (the address must be one of "
            "its picks). Without it the visit is stored but never counts as a design visit "
            "in `stratum evaluate --run`. `reason: random_sample` is refused: random visits "
            "are the plan's exploration picks."
        ),
    )


class ModelRequest(ApiRequest):
    """No parameters: send `{}` (or an empty body)."""


class SummaryRequest(TopKRequest):
    """How the top k of the ranking spreads over districts and neighbourhoods."""

    k_verb = "counts"

    k: JsonInt = Field(
        default=DEFAULT_SUMMARY_K,
        ge=1,
        description="Length of the priority list counted (at most the batch size).",
    )
    level: AreaLevel | None = Field(
        default=None, description="Only this area level; default both, districts first."
    )
    run_id: RunId | None = None


class DecisionRequest(AddressRequest):
    """An analyst's decision about an address on the priority list; it is stored."""

    decision: Decision = Field(description="What happens with the address next.")
    reason: DecisionReason = Field(
        description="Why: a code from the fixed list (`other` needs a `note`)."
    )
    note: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_REASON_LENGTH,
        description=(
            "Optional, in your own words (required with `other`). Address-level only: no "
            "names, BSNs, phone numbers, e-mail addresses, dates of birth, IBANs or other "
            "person data (text that looks like it is refused), and no spreadsheet formulas."
        ),
    )
    language: Language = Field(
        default="en", description="Language of the score reasons in the answer."
    )
    supersedes: DecisionId | None = Field(
        default=None,
        description=(
            "The address's open decision that this one replaces. Required when the address "
            "has an open decision (the 409 answer names it); a superseded decision is closed."
        ),
    )

    @field_validator("note")
    @classmethod
    def _note_fit_to_store(cls, note: str | None) -> str | None:
        if note is None:
            return None
        problems = reason_problems(note)
        if not note.strip():
            problems.insert(0, "it is blank")
        if problems:
            raise ValueError("; ".join(problems))
        return note

    @model_validator(mode="after")
    def _other_has_note(self) -> Self:
        if self.reason == "other" and self.note is None:
            raise ValueError("note: required with the reason 'other'")
        return self


class DecisionsRequest(ApiRequest):
    """Read stored decisions back: one address's history, or the latest of all."""

    address_id: AddressId | None = Field(
        default=None, description="Only this address's decisions; default every address."
    )
    limit: JsonInt = Field(
        default=100, ge=1, le=10_000, description="At most this many, the most recent ones."
    )
    run_id: RunId | None = Field(
        default=None, description="Only the decisions taken on this stored scoring run."
    )

    def audit_ids(self) -> list[str]:
        """The address asked about, if any."""
        return [self.address_id] if self.address_id is not None else []


class PauseRequest(ApiRequest):
    """Admins only: pause the model (every list becomes the fallback ranking) or resume it."""

    action: SwitchAction = Field(
        description="`pause` or `resume`; asking for the state already in force changes nothing."
    )
    reason: str | None = Field(
        default=None,
        description=(
            f"Why; required to pause ({MIN_REASON_LENGTH} to {MAX_REASON_LENGTH} characters), "
            "optional to resume. No person data (text that looks like it is refused)."
        ),
    )

    @model_validator(mode="after")
    def _reason_fit_to_store(self) -> Self:
        try:
            check_reason(self.reason, required=self.action == "pause")
        except SwitchError as exc:
            raise ValueError(str(exc).removesuffix(" Nothing was stored.")) from None
        return self
