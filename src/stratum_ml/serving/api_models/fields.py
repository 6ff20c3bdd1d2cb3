"""Shared pieces of the request and response models: limits, id formats, vocabularies.

The vocabularies (themes, inspection reasons, outcomes, ...) are taken from
where they are defined as data (the feature catalogue, the data contract, the
decision and summary modules), so the OpenAPI schema cannot drift from them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, StringConstraints

from stratum_ml.features.catalogue import THEMES
from stratum_ml.serving.decisions import DECISION_REASON_CODES, DECISIONS
from stratum_ml.serving.summary import LEVELS
from stratum_ml.sources.contract import (
    INSPECTION_REASONS,
    OUTCOMES,
    VIOLATION_TYPES,
)
from stratum_ml.store.tables import SWITCH_ACTIONS

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
DecisionReason = Literal[DECISION_REASON_CODES]  # type: ignore[valid-type]
#: a decision's id, as the decision endpoint hands them out
DecisionId = Annotated[
    str,
    StringConstraints(pattern=r"^dec-[0-9a-f]{32}$"),
    Field(examples=["dec-0f3a5c7e9b1d4f6a8c0e2b4d6f8a0c1e"]),
]
#: a stored scoring run's id (``stratum runs list``)
RunId = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{16}$"),
    Field(
        description="A stored scoring run (`stratum runs list`); default the run the service "
        "serves.",
        examples=["3f0c2a9e5b7d1a64"],
    ),
]
#: the header a client sends to make a write safe to retry
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: what the pause endpoint may do with the kill switch
SwitchAction = Literal[SWITCH_ACTIONS]  # type: ignore[valid-type]
#: which ranking an answer comes from: the model's, or the fallback while the model is paused
Ranking = Literal["model", "fallback"]
AreaLevel = Literal[LEVELS]  # type: ignore[valid-type]
#: default length of the priority list the summary counts
DEFAULT_SUMMARY_K = 250
FeatureValue = float | str | None


def _integral(value: object) -> object:
    """A JSON number with an integral value (``8.0``) as the integer it is; else unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: an integer field: JSON Schema counts ``8.0`` as the integer 8, so the service does too
#: (strings and fractions stay refused)
JsonInt = Annotated[int, BeforeValidator(_integral)]
