"""Request and response models of the scoring service (its OpenAPI schema).

Every request model forbids unknown fields and validates strictly (no strings
for numbers, no numbers for dates): a request that does not fit is answered
with a 4xx and a message that names the field, before any scoring runs (see
:mod:`stratum_ml.serving.gate`).

``fields``     limits, id formats and vocabularies shared by requests and responses.
``requests``   the request models; batch limits come from the validation context
               ``{"max_batch_size": n}`` the service passes (none without it).
``responses``  the response models and the error every refusal uses; contributions
               and raw scores are in **log-odds**, not probability.

Every name is importable from this package itself.
"""

from __future__ import annotations

from stratum_ml.serving.api_models.fields import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_SUMMARY_K,
    IDEMPOTENCY_HEADER,
    LOG_ODDS_NOTE,
    MAX_BATCH_CONTEXT,
    AddressId,
    AreaLevel,
    BatchId,
    Decision,
    DecisionId,
    FeatureValue,
    InspectionReason,
    Language,
    Outcome,
    Theme,
    ViolationType,
)
from stratum_ml.serving.api_models.requests import (
    AddressRequest,
    ApiRequest,
    DecisionRequest,
    DecisionsRequest,
    DossierRequest,
    ExplainRequest,
    FeedbackRequest,
    ModelRequest,
    PriorityListRequest,
    ScoreRequest,
    SummaryRequest,
    TopKRequest,
)
from stratum_ml.serving.api_models.responses import (
    AddressFacts,
    AreaSummaryOut,
    BusinessOut,
    DecisionOut,
    DecisionResponse,
    DecisionsResponse,
    DossierResponse,
    ErrorDetail,
    ErrorResponse,
    ExplainResponse,
    FairnessSummary,
    FeedbackResponse,
    HonestEstimateOut,
    LinkedAddress,
    ModelInfoResponse,
    OwnershipOut,
    PriorityListResponse,
    ReasonOut,
    ReportOut,
    RowScore,
    ScoredAddressOut,
    ScoreResponse,
    Stay,
    SummaryResponse,
    UnknownAddress,
    VisitOut,
    WaterPeriod,
)

__all__ = [
    "AddressFacts",
    "AddressId",
    "AddressRequest",
    "ApiRequest",
    "AreaLevel",
    "AreaSummaryOut",
    "BatchId",
    "BusinessOut",
    "DEFAULT_MAX_BATCH_SIZE",
    "DEFAULT_SUMMARY_K",
    "Decision",
    "DecisionId",
    "DecisionOut",
    "DecisionRequest",
    "DecisionResponse",
    "DecisionsRequest",
    "DecisionsResponse",
    "DossierRequest",
    "DossierResponse",
    "ErrorDetail",
    "ErrorResponse",
    "ExplainRequest",
    "ExplainResponse",
    "FairnessSummary",
    "FeatureValue",
    "FeedbackRequest",
    "FeedbackResponse",
    "HonestEstimateOut",
    "IDEMPOTENCY_HEADER",
    "InspectionReason",
    "LOG_ODDS_NOTE",
    "Language",
    "LinkedAddress",
    "MAX_BATCH_CONTEXT",
    "ModelInfoResponse",
    "ModelRequest",
    "Outcome",
    "OwnershipOut",
    "PriorityListRequest",
    "PriorityListResponse",
    "ReasonOut",
    "ReportOut",
    "RowScore",
    "ScoreRequest",
    "ScoreResponse",
    "ScoredAddressOut",
    "Stay",
    "SummaryRequest",
    "SummaryResponse",
    "Theme",
    "TopKRequest",
    "UnknownAddress",
    "ViolationType",
    "VisitOut",
    "WaterPeriod",
]
