"""What each endpoint answers: plain functions of the loaded state and a validated request.

The BentoML service (:mod:`stratum_ml.serving.service`) only calls these. A
request that is well-formed but cannot be answered (an unknown address, a
scoring date other than the one loaded, feature rows the model cannot read, a
visit outcome that breaks the contract, a decision that cannot be stored)
raises :class:`RequestError` with the HTTP status and a message for the caller.

The two writing endpoints (``decision``, ``feedback``) take the client's
``Idempotency-Key`` header: a retried request with the same key stores nothing
and gets the first answer (``replayed: true``); the same key with another
request is a 422.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from typing import Any, Literal

import pandas as pd

from stratum_ml.evaluation.explain import Reason
from stratum_ml.features.population import DWELLING_USE_PURPOSE
from stratum_ml.model.registry import CHAMPION
from stratum_ml.runs import RunNotFound, drift_of_run, fallback_list, get_run, work_list
from stratum_ml.runs.read import N_REASONS, reasons_of, state_of
from stratum_ml.scoring.fallback import FALLBACK_DESCRIPTION
from stratum_ml.scoring.scorer import ScoredAddress
from stratum_ml.serving.api_models import (
    AreaSummaryOut,
    DecisionOut,
    DecisionRequest,
    DecisionResponse,
    DecisionsRequest,
    DecisionsResponse,
    DecisionStateOut,
    DossierRequest,
    DossierResponse,
    DriftOut,
    ExplainRequest,
    ExplainResponse,
    FairnessSummary,
    FeatureDriftOut,
    FeedbackRequest,
    FeedbackResponse,
    HonestEstimateOut,
    LastVisitOut,
    ModelInfoResponse,
    PauseOut,
    PauseRequest,
    PauseResponse,
    PriorityListRequest,
    PriorityListResponse,
    ReasonOut,
    RecentlyVisitedOut,
    RowScore,
    ScoredAddressOut,
    ScoreRequest,
    ScoreResponse,
    ServedRunOut,
    SummaryRequest,
    SummaryResponse,
    UnknownAddress,
    WorkListItemOut,
)
from stratum_ml.serving.app_state import ServiceState
from stratum_ml.serving.audit_anchor import PAUSE_EVENT_PREFIX
from stratum_ml.serving.auth import Principal
from stratum_ml.serving.decisions import DecisionConflict, DecisionError, RecordedDecision
from stratum_ml.serving.dossier import build_dossier
from stratum_ml.serving.outcomes import DuplicateOutcome, OutcomeError
from stratum_ml.serving.summary import LEVELS, summarise
from stratum_ml.serving.work_list import (
    LatestDecision,
    Visit,
    in_cool_off,
    latest_decisions,
    latest_visits,
    previous_as_of,
    previous_ranks,
)
from stratum_ml.sources import SourceTables
from stratum_ml.sources.contract import TABLES
from stratum_ml.store.idempotency import IdempotencyKeyReused
from stratum_ml.store.switch import (
    Actor,
    PauseState,
    SwitchChange,
    SwitchError,
    current_pause,
    pause,
    resume,
)

_ADDRESS_ID = re.compile(TABLES["addresses"].column("address_id").pattern or r"[0-9]{16}")


class RequestError(Exception):
    """A valid request the service cannot answer: ``status`` (4xx) and ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _out(scored: ScoredAddress) -> ScoredAddressOut:
    return ScoredAddressOut(
        address_id=scored.address_id,
        probability=scored.probability,
        raw_score_log_odds=scored.raw_score,
        rank=scored.rank,
        percentile=scored.percentile,
        district=scored.district,
        neighbourhood=scored.neighbourhood,
        reasons=[ReasonOut.of(r) for r in scored.reasons],
        violation_type=scored.violation_type,
        violation_type_share=scored.violation_type_share,
    )


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _float_or_none(value: object) -> float | None:
    if value is None or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _fallback_out(state: ServiceState, address_id: str) -> ScoredAddressOut:
    """A dwelling's place in the fallback ranking (no probability, no model reasons)."""
    row = {str(k): v for k, v in state.fallback.loc[address_id].to_dict().items()}
    return ScoredAddressOut(
        address_id=address_id,
        probability=None,
        raw_score_log_odds=None,
        rank=int(row["rank"]),
        percentile=float(row["percentile"]),
        district=row["district"],
        neighbourhood=row["neighbourhood"],
        reasons=[],
        reports_past_year=int(row["reports_past_year"]),
    )


def _notice(paused: PauseState, what: str, left_out: list[str] | None = None) -> str:
    """The pause and the fallback, in words: "The model is paused since ... by ...: ...; ..."."""
    sentence = f"{paused.sentence()}; {what} {FALLBACK_DESCRIPTION}, not the model's."
    if left_out:
        sentence += (
            f" The {' and '.join(left_out)} filter{'s' if len(left_out) > 1 else ''} "
            "need the model and were left out."
        )
    return sentence


def unknown_reason(state: ServiceState, address_id: str) -> str:
    """Why an id is not among the scored dwellings."""
    if not _ADDRESS_ID.fullmatch(address_id):
        return "not a BAG verblijfsobject id (16 digits)"
    purpose = state.use_purpose.get(address_id)
    if purpose is None:
        return "not in the address register of the loaded source folder"
    if purpose != DWELLING_USE_PURPOSE:
        return f"not a dwelling (use purpose {purpose}); only dwellings are scored"
    return "not scored"


def _check_run(state: ServiceState, run_id: str | None, what: str) -> None:
    """Refuse a run other than the one served (``what`` answers from the served run only).

    Raises
    ------
    RequestError
        404 when no run has this id; 422 when it is another stored run.
    """
    if run_id is None or run_id == state.run.run_id:
        return
    try:
        other = get_run(state.store, run_id)
    except RunNotFound:
        raise RequestError(
            404, f"no scoring run {run_id} in the operational store (see `stratum runs list`)"
        ) from None
    raise RequestError(
        422,
        f"{what} answers from the run this service serves, {state.run.run_id} (as of "
        f"{state.as_of}); run {run_id} (as of {other.as_of}) is stored: ask priority_list "
        "with its run_id for its work list, or `stratum runs show` it.",
    )


def _check_as_of(state: ServiceState, request: ScoreRequest) -> None:
    if request.as_of is not None and request.as_of != state.as_of:
        raise RequestError(
            422,
            f"this service scores as of {state.as_of} only (the date of the run it serves, "
            f"{state.run.run_id}); it cannot answer as of another date. Leave as_of out, "
            "or store a run for that date with `stratum run` and serve it.",
        )


def _feature_frame(state: ServiceState, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Feature rows as a frame the model reads; every problem is a 422 naming row and feature."""
    model = state.model
    expected = list(model.feature_names_in_)
    problems: list[str] = []
    for i, row in enumerate(rows):
        missing = [f for f in expected if f not in row]
        unknown = sorted(set(row) - set(expected))
        if missing:
            problems.append(f"row {i}: missing features {', '.join(missing)}")
        if unknown:  # their names are the caller's: counted, not repeated
            problems.append(
                f"row {i}: {len(unknown)} unknown feature{'s' if len(unknown) > 1 else ''} "
                "(the model endpoint lists the model's features)"
            )
        for name in expected:
            value = row.get(name)
            if value is None:
                continue
            if name in model.categories_:
                if value not in model.categories_[name]:
                    problems.append(
                        f"row {i}: {name} must be one of {', '.join(model.categories_[name])}"
                    )
            elif isinstance(value, str):
                problems.append(f"row {i}: {name} must be a number or null")
            elif not math.isfinite(value):
                problems.append(f"row {i}: {name} must be finite")
        if len(problems) >= 20:
            break
    if problems:
        raise RequestError(422, "feature rows cannot be scored: " + "; ".join(problems[:20]))
    return pd.DataFrame.from_records(rows, columns=expected)


def score(state: ServiceState, request: ScoreRequest) -> ScoreResponse:
    """Scores with reasons for address ids, or probabilities for feature rows.

    Raises
    ------
    RequestError
        422 for an ``as_of`` other than the scoring date, or feature rows the model
        cannot read (missing or unknown features, wrong types, unknown categories).
    """
    _check_run(state, request.run_id, "score")
    _check_as_of(state, request)
    response = ScoreResponse(
        run_id=state.run.run_id,
        model_version=state.model_version,
        scored_as_of=state.as_of,
        population_size=len(state.scorer),
    )
    paused = current_pause(state.store)
    if paused is not None:
        return _score_paused(state, request, response, paused)
    if request.rows is not None:
        scores = state.scorer.score_features(_feature_frame(state, request.rows))
        response.rows = [
            RowScore(row=i, probability=float(p), raw_score_log_odds=float(r))
            for i, (p, r) in enumerate(zip(scores["probability"], scores["raw_score"], strict=True))
        ]
        return response
    scored, unknown = state.scorer.score(
        request.address_ids or [], n_reasons=request.n_reasons, language=request.language
    )
    response.results = [_out(s) for s in scored]
    response.unknown = _unknown(state, request.address_ids or [], set(unknown))
    return response


def _unknown(state: ServiceState, ids: list[str], unknown: set[str]) -> list[UnknownAddress]:
    """The ids of ``unknown`` by their first position; a malformed id is not repeated."""
    out: list[UnknownAddress] = []
    seen: set[str] = set()
    for position, address_id in enumerate(ids):
        if address_id in unknown and address_id not in seen:
            seen.add(address_id)
            well_formed = _ADDRESS_ID.fullmatch(address_id) is not None
            out.append(
                UnknownAddress(
                    position=position,
                    address_id=address_id if well_formed else None,
                    reason=unknown_reason(state, address_id),
                )
            )
    return out


def _score_paused(
    state: ServiceState, request: ScoreRequest, response: ScoreResponse, paused: PauseState
) -> ScoreResponse:
    """Fallback positions for address ids; feature rows are refused (409)."""
    if request.rows is not None:
        raise RequestError(
            409,
            f"{paused.sentence()}. Feature rows get no probability while the model is "
            "paused, and the fallback ranking does not score feature rows: ask by "
            "address_ids for the fallback position, or ask an admin to resume the model.",
        )
    ids = list(dict.fromkeys(request.address_ids or []))
    response.results = [_fallback_out(state, a) for a in ids if a in state.scorer]
    response.unknown = _unknown(
        state, request.address_ids or [], {a for a in ids if a not in state.scorer}
    )
    response.paused, response.ranking = True, "fallback"
    response.notice = _notice(paused, "these ranks are")
    return response


def priority_list(state: ServiceState, request: PriorityListRequest) -> PriorityListResponse:
    """The served run's work list: the ``k`` highest-ranked dwellings passing the filters.

    Each item carries its state against the previous run, the latest decision on the
    address and its latest visit; addresses visited within the cool-off are left off
    the items and listed in ``recently_visited``. With another stored run's ``run_id``:
    that run's work list as it was stored (no cool-off). While the model is paused:
    the top ``k`` of the fallback ranking in the district or neighbourhood asked for.

    Raises
    ------
    RequestError
        404 when ``run_id`` names no stored run.
    """
    paused = current_pause(state.store)
    if request.run_id is not None and request.run_id != state.run.run_id:
        return _stored_priority_list(state, request, request.run_id, paused)
    if paused is not None:
        return _priority_list_paused(state, request, paused)
    visits = latest_visits(state.store, state.tables)
    cool_off = state.serving.cool_off_days
    recent = _recent(state, visits)
    items, left_off = _without_recent(state, request, recent)
    ids = [s.address_id for s in items]
    before = previous_ranks(state.store, state.run, ids)
    decided = latest_decisions(state.store, ids)
    since = previous_as_of(state.store, state.run)
    return PriorityListResponse(
        run_id=state.run.run_id,
        model_version=state.model_version,
        scored_as_of=state.as_of,
        population_size=len(state.scorer),
        filters=_filters(request),
        previous_run_id=state.run.previous_run_id,
        cool_off_days=cool_off,
        items=[
            _item(
                _out(s),
                before.get(s.address_id),
                decided.get(s.address_id),
                visits.get(s.address_id),
                since,
                state_of(s.rank, before.get(s.address_id)),
            )
            for s in items
        ],
        recently_visited=[
            RecentlyVisitedOut(
                address_id=s.address_id,
                rank=s.rank,
                district=s.district,
                neighbourhood=s.neighbourhood,
                visit=_visit_out(recent[s.address_id]),
            )
            for s in left_off
        ],
    )


def _recent(state: ServiceState, visits: dict[str, Visit]) -> dict[str, Visit]:
    """The visits that keep their address off the served run's work list (the cool-off)."""
    cool_off = state.serving.cool_off_days
    return {a: v for a, v in visits.items() if in_cool_off(v, state.as_of, cool_off)}


def _work_list_table(state: ServiceState) -> pd.DataFrame:
    """The scored table with ``rank`` its place on the work list: the recently visited last."""
    table = state.scorer.table
    recent = _recent(state, latest_visits(state.store, state.tables))
    off = table.index.isin(list(recent))
    if not off.any():
        return table
    kept = table.loc[~off].sort_values("rank").index
    place = pd.Series(range(1, len(kept) + 1), index=kept)
    return table.assign(rank=place.reindex(table.index).fillna(len(table) + 1).astype(int))


def _without_recent(
    state: ServiceState, request: PriorityListRequest, recent: dict[str, Visit]
) -> tuple[list[ScoredAddress], list[ScoredAddress]]:
    """The top ``k`` not visited within the cool-off, and those left off above the last."""
    wanted = request.k
    explain = _served_reasons(state, request)
    while True:
        candidates = state.scorer.priority_list(
            wanted,
            district=request.district,
            neighbourhood=request.neighbourhood,
            min_probability=request.min_score,
            theme=request.theme,
            n_reasons=request.n_reasons,
            language=request.language,
            explain=explain,
        )
        kept = [c for c in candidates if c.address_id not in recent]
        if len(kept) >= request.k or len(candidates) < wanted:
            break
        wanted += request.k - len(kept)
    kept = kept[: request.k]
    last = kept[-1].rank if len(kept) == request.k else math.inf
    left_off = [c for c in candidates if c.address_id in recent and c.rank < last]
    return kept, left_off


def _visit_out(visit: Visit) -> LastVisitOut:
    recorded_in: Literal["service", "sources"] = (
        "service" if visit.source == "service" else "sources"
    )
    return LastVisitOut(
        inspected_at=visit.inspected_at, outcome=visit.outcome, recorded_in=recorded_in
    )


def _decision_state(decided: LatestDecision | None) -> DecisionStateOut | None:
    if decided is None:
        return None
    return DecisionStateOut(
        decision_id=decided.decision_id,
        decision=decided.decision,
        role=decided.role,
        key_name=decided.key_name,
        decided_at=decided.decided_at,
        run_id=decided.run_id,
        open=decided.open,
    )


def _item(
    scored: ScoredAddressOut,
    previous_rank: int | None,
    decided: LatestDecision | None,
    visit: Visit | None,
    previous_as_of: dt.date | None,
    state: str | None,
) -> WorkListItemOut:
    """A work-list item: the scored address with its state, decision and last visit."""
    return WorkListItemOut(
        **dict(scored),
        state=state,
        previous_rank=previous_rank,
        latest_decision=_decision_state(decided),
        last_visit=None if visit is None else _visit_out(visit),
        visited_since_previous_run=(
            visit is not None and previous_as_of is not None and visit.inspected_at > previous_as_of
        ),
    )


def _filters(request: PriorityListRequest) -> dict[str, str | float | None]:
    return {
        "district": request.district,
        "neighbourhood": request.neighbourhood,
        "min_score": request.min_score,
        "theme": request.theme,
    }


def _stored_priority_list(
    state: ServiceState, request: PriorityListRequest, run_id: str, paused: PauseState | None
) -> PriorityListResponse:
    """The work list of another stored run, as it was stored (the fallback one while paused)."""
    try:
        run = get_run(state.store, run_id)
        rows = (
            fallback_list(state.store, run_id)
            if paused
            else work_list(state.store, run_id, language=request.language)
        )
    except RunNotFound:
        raise RequestError(
            404, f"no scoring run {run_id} in the operational store (see `stratum runs list`)"
        ) from None
    if request.district is not None:
        rows = rows.loc[rows["district"] == request.district]
    if request.neighbourhood is not None:
        rows = rows.loc[rows["neighbourhood"] == request.neighbourhood]
    if paused is None and request.min_score is not None:
        rows = rows.loc[rows["probability"] >= request.min_score]
    reasons = {} if paused else _stored_reasons(state, run_id, rows["address_id"].tolist(), request)
    if paused is None and request.theme is not None:
        first = {a: r[0].theme for a, r in reasons.items() if r}
        rows = rows.loc[rows["address_id"].map(first) == request.theme]
    rows = rows.head(request.k)
    ids = rows["address_id"].astype(str).tolist()
    decided = latest_decisions(state.store, ids)
    items: list[WorkListItemOut | ScoredAddressOut] = []
    for row in rows.to_dict("records"):
        address = str(row["address_id"])
        rank = int(row["rank"])
        scored = ScoredAddressOut(
            address_id=address,
            probability=None if paused else float(row["probability"]),
            raw_score_log_odds=None,
            rank=rank,
            percentile=100.0 * (run.n_items - rank + 1) / run.n_items,
            district=row["district"],
            neighbourhood=row["neighbourhood"],
            reasons=reasons.get(address, []),
            violation_type=None if paused else _text_or_none(row.get("violation_type")),
            violation_type_share=None
            if paused
            else _float_or_none(row.get("violation_type_share")),
        )
        if paused is not None:
            items.append(scored)
            continue
        previous = None if pd.isna(row["previous_rank"]) else int(row["previous_rank"])
        items.append(_item(scored, previous, decided.get(address), None, None, str(row["state"])))
    return PriorityListResponse(
        run_id=run.run_id,
        model_version=run.model_version,
        scored_as_of=run.as_of,
        population_size=run.n_items,
        filters=_filters(request),
        previous_run_id=run.previous_run_id,
        items=items,
        paused=paused is not None,
        ranking="model" if paused is None else "fallback",
        notice=None if paused is None else _notice(paused, "this list is"),
    )


def _stored_reasons(
    state: ServiceState, run_id: str, ids: list[str], request: PriorityListRequest
) -> dict[str, list[ReasonOut]]:
    """The reasons a run stored for these addresses, strongest first."""
    stored = reasons_of(state.store, run_id, ids, n=request.n_reasons, language=request.language)
    return {a: [ReasonOut.of(r) for r in listed] for a, listed in stored.items()}


def _served_reasons(
    state: ServiceState, request: PriorityListRequest
) -> Callable[[list[str]], list[list[Reason]]]:
    """The reasons of addresses of the served run, as :meth:`Scorer.reasons` gives them.

    Those of the run's top K are read as the run stored them (with their percentage
    points added), which is what keeps ``priority_list`` fast; TreeSHAP runs only for
    addresses off the top K (filters, the cool-off) and for more reasons than a run
    stores.
    """
    n, language = request.n_reasons, request.language
    found: dict[str, list[Reason]] = {}  # across calls: the cool-off asks again for more

    def explain(ids: list[str]) -> list[list[Reason]]:
        new = [a for a in ids if a not in found]
        stored = (
            reasons_of(state.store, state.run.run_id, new, n=n, language=language)
            if n <= N_REASONS and new
            else {}
        )
        known = [a for a in new if a in stored]
        missing = [a for a in new if a not in stored]
        found.update(
            zip(known, state.scorer.in_points(known, [stored[a] for a in known]), strict=True)
        )
        found.update(
            zip(missing, state.scorer.reasons(missing, n=n, language=language), strict=True)
        )
        return [found[a] for a in ids]

    return explain


def _priority_list_paused(
    state: ServiceState, request: PriorityListRequest, paused: PauseState
) -> PriorityListResponse:
    rows = state.fallback
    if request.district is not None:
        rows = rows.loc[rows["district"] == request.district]
    if request.neighbourhood is not None:
        rows = rows.loc[rows["neighbourhood"] == request.neighbourhood]
    left_out = [
        name
        for name, value in (("min_score", request.min_score), ("theme", request.theme))
        if value is not None
    ]
    return PriorityListResponse(
        run_id=state.run.run_id,
        model_version=state.model_version,
        scored_as_of=state.as_of,
        population_size=len(state.scorer),
        filters=_filters(request),
        items=[_fallback_out(state, str(a)) for a in rows.index[: request.k]],
        previous_run_id=state.run.previous_run_id,
        paused=True,
        ranking="fallback",
        notice=_notice(paused, "this list is", left_out),
    )


def explain(state: ServiceState, request: ExplainRequest) -> ExplainResponse:
    """Every contribution (log-odds) to one dwelling's score, with reason texts.

    While the model is paused: the address's place in the fallback ranking, with no
    probability and no contributions.

    Raises
    ------
    RequestError
        404 when the address is not a scored dwelling (the message says why).
    """
    _check_run(state, request.run_id, "explain")
    if request.address_id not in state.scorer:
        raise RequestError(
            404, f"address {request.address_id}: {unknown_reason(state, request.address_id)}"
        )
    paused = current_pause(state.store)
    if paused is not None:
        place = _fallback_out(state, request.address_id)
        return ExplainResponse(
            run_id=state.run.run_id,
            model_version=state.model_version,
            scored_as_of=state.as_of,
            address_id=request.address_id,
            probability=None,
            raw_score_log_odds=None,
            bias_log_odds=None,
            rank=place.rank,
            percentile=place.percentile,
            contributions=[],
            reports_past_year=place.reports_past_year,
            paused=True,
            ranking="fallback",
            notice=_notice(paused, "this rank is"),
        )
    scored, bias = state.scorer.explain(request.address_id, language=request.language)
    return ExplainResponse(
        run_id=state.run.run_id,
        model_version=state.model_version,
        scored_as_of=state.as_of,
        address_id=scored.address_id,
        probability=scored.probability,
        raw_score_log_odds=scored.raw_score,
        bias_log_odds=bias,
        rank=scored.rank,
        percentile=scored.percentile,
        contributions=[ReasonOut.of(r) for r in scored.reasons],
    )


def dossier(state: ServiceState, request: DossierRequest) -> DossierResponse:
    """The case handler's dossier of one address, as of the scoring date.

    Raises
    ------
    RequestError
        404 when the address is not in the address register.
    """
    try:
        return build_dossier(state.tables, request.address_id, state.as_of)
    except KeyError:
        raise RequestError(
            404, f"address {request.address_id} is not in the address register"
        ) from None


def sources_begin(tables: SourceTables) -> dt.date | None:
    """The day the sources' visit history begins: their earliest visit (None without one)."""
    visits = tables.inspections["inspected_at"].dropna()
    return None if visits.empty else pd.Timestamp(visits.min()).date()


def visit_date_problem(
    inspected_at: dt.date, begin: dt.date | None, today: dt.date | None = None
) -> str | None:
    """Why a visit date cannot be a real visit (None when it can); the date is not repeated.

    A visit lies on or after the first visit of the sources (an earlier one,
    such as 1900-01-01, would become a training label from before the data
    begin) and not after today.
    """
    today = today or dt.date.today()
    if inspected_at > today:
        return "inspected_at lies in the future"
    if begin is not None and inspected_at < begin:
        return (
            f"inspected_at lies before the sources' visit history begins ({begin.isoformat()}, "
            "their earliest visit)"
        )
    return None


def feedback(
    state: ServiceState,
    request: FeedbackRequest,
    key_id: str,
    idempotency_key: str | None = None,
    today: dt.date | None = None,
) -> FeedbackResponse:
    """Store a visit outcome (checked like the contract) for the next training.

    Raises
    ------
    RequestError
        422 when the outcome breaks a rule (a visit before the sources' first visit or
        in the future among them) or the idempotency key came with another request,
        409 when the same visit is already stored.
    """
    problem = visit_date_problem(request.inspected_at, sources_begin(state.tables), today)
    if problem is not None:
        raise RequestError(422, f"the visit outcome was not stored: {problem}")
    try:
        stored = state.outcomes.record(
            address_id=request.address_id,
            inspected_at=request.inspected_at,
            reason=request.reason,
            outcome=request.outcome,
            violation_type=request.violation_type,
            recorded_by=key_id,
            today=today,
            idempotency_key=idempotency_key,
            run_id=request.run_id,
        )
    except DuplicateOutcome as exc:
        raise RequestError(409, str(exc)) from None
    except (OutcomeError, IdempotencyKeyReused) as exc:
        raise RequestError(422, str(exc)) from None
    return FeedbackResponse(
        inspection_id=stored.inspection_id,
        address_id=stored.address_id,
        inspected_at=stored.inspected_at,
        reason=stored.reason,
        outcome=stored.outcome,
        violation_type=stored.violation_type,
        recorded_at=stored.recorded_at,
        run_id=stored.run_id,
        replayed=stored.replayed,
        message=(
            "already stored by the first request with this Idempotency-Key; nothing was added"
            if stored.replayed
            else "stored; the next `stratum train` reads it as a visit"
        ),
    )


def summary(state: ServiceState, request: SummaryRequest) -> SummaryResponse:
    """The top ``k`` of the work list per district and neighbourhood, small counts withheld.

    Addresses visited within the cool-off are not on the work list, so not in its top
    ``k``; they still count among the dwellings scored and in the mean probability.

    While the model is paused: the top ``k`` of the fallback ranking, without the mean
    probability.
    """
    _check_run(state, request.run_id, "summary")
    scorer = state.scorer
    minimum = state.serving.min_cell_count
    levels = LEVELS if request.level is None else (request.level,)
    paused = current_pause(state.store)
    table = (
        _work_list_table(state) if paused is None else state.fallback.assign(probability=math.nan)
    )
    areas = summarise(table, request.k, levels=levels, min_count=minimum)
    return SummaryResponse(
        run_id=state.run.run_id,
        paused=paused is not None,
        ranking="model" if paused is None else "fallback",
        notice=None if paused is None else _notice(paused, "these counts are of"),
        model_version=state.model_version,
        scored_as_of=state.as_of,
        population_size=len(scorer),
        k=request.k,
        n_in_top_k=min(request.k, len(scorer)),
        min_cell_count=minimum,
        areas=[
            AreaSummaryOut(
                level=a.level,
                code=a.code,
                n_scored=a.n_scored,
                n_in_top_k=a.n_in_top_k,
                mean_probability=None if paused is not None else a.mean_probability,
                suppressed=a.suppressed,
            )
            for a in areas
        ],
    )


def decision(
    state: ServiceState,
    request: DecisionRequest,
    caller: Principal,
    idempotency_key: str | None = None,
) -> DecisionResponse:
    """Store an analyst's decision about a scored dwelling, with its rank and probability.

    While the model is paused nothing of the model is shown or stored: the rank is the
    address's place in the fallback ranking, the probability null, the reasons empty.

    Raises
    ------
    RequestError
        404 when the address is not a scored dwelling; 409 when the address has an
        open decision that ``supersedes`` does not name, or ``supersedes`` is no longer
        open; 422 when the decision breaks another rule of the store or the
        idempotency key came with another request.
    """
    address = request.address_id
    if address not in state.scorer:
        raise RequestError(404, f"address {address}: {unknown_reason(state, address)}")
    paused = current_pause(state.store)
    if paused is None:
        (scored,), _ = state.scorer.score([address], language=request.language)
        rank, probability, reasons = scored.rank, scored.probability, scored.reasons
    else:
        rank, probability, reasons = _fallback_out(state, address).rank, None, []
    try:
        stored = state.decisions.record(
            address_id=address,
            decision=request.decision,
            reason=request.reason,
            note=request.note,
            decided_by=caller.key_id,
            role=caller.role.value,
            key_name=caller.name,
            model_version=state.model_version,
            scoring_date=state.as_of,
            rank=rank,
            probability=probability,
            supersedes=request.supersedes,
            idempotency_key=idempotency_key,
            run_id=state.run.run_id,
        )
    except DecisionConflict as exc:
        raise RequestError(409, str(exc)) from None
    except (DecisionError, IdempotencyKeyReused) as exc:
        raise RequestError(422, str(exc)) from None
    if stored.replayed:
        message = "already stored by the first request with this Idempotency-Key; nothing added"
    elif stored.supersedes:
        message = f"stored; it supersedes {stored.supersedes}, which is kept, closed"
    else:
        message = "stored; it is the open decision on this address"
    return DecisionResponse(
        decision_id=stored.decision_id,
        address_id=stored.address_id,
        decision=request.decision,
        reason=stored.reason,
        note=stored.note,
        decided_at=stored.decided_at,
        model_version=stored.model_version,
        scoring_date=stored.scoring_date,
        rank_at_decision=stored.rank_at_decision,
        # a retry while paused of a decision taken before shows no probability either
        probability_at_decision=None if paused else stored.probability_at_decision,
        supersedes=stored.supersedes,
        run_id=stored.run_id,
        replayed=stored.replayed,
        reasons=[ReasonOut.of(r) for r in reasons],
        message=message,
        paused=paused is not None,
        ranking="model" if paused is None else "fallback",
        notice=None if paused is None else _notice(paused, "this rank is"),
    )


def _decision_out(stored: RecordedDecision) -> DecisionOut:
    return DecisionOut(
        decision_id=stored.decision_id,
        address_id=stored.address_id,
        decision=stored.decision,
        reason=stored.reason,
        note=stored.note,
        decided_at=stored.decided_at,
        decided_by=stored.decided_by,
        role=stored.role,
        key_name=stored.key_name,
        model_version=stored.model_version,
        scoring_date=stored.scoring_date,
        rank_at_decision=stored.rank_at_decision,
        probability_at_decision=stored.probability_at_decision,
        supersedes=stored.supersedes,
        superseded_by=stored.superseded_by,
        run_id=stored.run_id,
        open=stored.is_open,
    )


def decisions(state: ServiceState, request: DecisionsRequest) -> DecisionsResponse:
    """Stored decisions, oldest first: one address's chain, or the latest of every address;
    only those taken on one stored run when ``run_id`` is given.

    Raises
    ------
    RequestError
        404 when ``run_id`` names no stored run.
    """
    if request.run_id is not None:
        try:
            get_run(state.store, request.run_id)
        except RunNotFound:
            raise RequestError(
                404,
                f"no scoring run {request.run_id} in the operational store "
                "(see `stratum runs list`)",
            ) from None
    history = state.decisions.history(
        request.address_id, limit=request.limit, run_id=request.run_id
    )
    open_id = None
    if request.address_id is not None:
        open_id = next((d.decision_id for d in reversed(history) if d.is_open), None)
    return DecisionsResponse(
        address_id=request.address_id,
        run_id=request.run_id,
        decisions=[_decision_out(d) for d in history],
        open_decision_id=open_id,
    )


def _finite(value: Any) -> float | None:
    """A number for JSON: None for a missing or non-finite value."""
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def model_info(state: ServiceState) -> ModelInfoResponse:
    """Version, training period, honest metrics, fairness verdict and model card."""
    facts = state.facts
    estimates = facts.estimates
    honest = estimates.get("honest", {})
    naive = estimates.get("naive", {})
    return ModelInfoResponse(
        model_name=facts.info.name,
        version=facts.info.version,
        alias=CHAMPION,
        run_id=facts.info.run_id,
        trained_from=facts.info.trained_from,
        trained_until=facts.info.trained_until,
        scored_as_of=state.as_of,
        population_size=len(state.scorer),
        features=list(state.model.feature_names_in_),
        headline_k=estimates.get("headline_k"),
        honest_precision=[
            HonestEstimateOut(
                k=int(k),
                estimate=_finite(est.get("estimate")),
                ci_low=_finite(est.get("ci_low")),
                ci_high=_finite(est.get("ci_high")),
                n_random_visits=int(est.get("n", 0)),
                region=str(est.get("region", "")),
                naive_estimate=_finite(naive.get(k, {}).get("estimate")),
            )
            for k, est in honest.items()
        ],
        fairness=FairnessSummary(
            passed=bool(facts.fairness.get("passed")),
            reasons=[str(r) for r in facts.fairness.get("reasons", [])],
            notes=[str(n) for n in facts.fairness.get("notes", [])],
            risk_accepted=_risk_acceptance(facts.info.tags),
        ),
        max_batch_size=state.serving.max_batch_size,
        model_card_markdown=facts.card_markdown,
        pause=_pause_out(current_pause(state.store)),
        registry_problems=[] if state.champion_watch is None else state.champion_watch.problems,
        scoring_run=served_run_out(state),
    )


def served_run_out(state: ServiceState) -> ServedRunOut:
    """The run in force and its drift against the version's training reference."""
    run = state.run
    return ServedRunOut(
        run_id=run.run_id,
        as_of=run.as_of,
        created_at=run.created_at,
        top_k=run.top_k,
        previous_run_id=run.previous_run_id,
        drift=drift_out(run.drifted, run.drift_note, drift_of_run(state.store, run.run_id)),
    )


def drift_out(drifted: bool | None, note: str | None, drift: dict[str, Any] | None) -> DriftOut:
    """A run's stored drift result (:meth:`~stratum_ml.monitoring.drift.DriftResult`) for JSON."""
    if drift is None:
        return DriftOut(drifted=drifted, note=note)
    return DriftOut(
        drifted=drifted,
        note=note,
        reasons=[str(r) for r in drift.get("reasons", [])],
        warnings=[str(w) for w in drift.get("warnings", [])],
        score_ks=_finite(drift.get("score", {}).get("ks_statistic")),
        out_of_range_share=_finite(drift.get("out_of_range_share")),
        features=[
            FeatureDriftOut(
                feature=str(f["feature"]),
                psi=_finite(f.get("psi")),
                missing_rate_change=float(f.get("missing_rate_change", 0.0)),
                status=str(f.get("status", "")),
            )
            for f in drift.get("features", [])
        ],
    )


def _pause_out(paused: PauseState | None) -> PauseOut:
    if paused is None:
        return PauseOut(paused=False)
    return PauseOut(paused=True, since=paused.since, by=paused.by.describe(), reason=paused.reason)


def switch(state: ServiceState, request: PauseRequest, caller: Principal) -> PauseResponse:
    """Pause or resume the model (admins); the change holds from the next request on.

    The stored event is announced in the audit log (an intent record) before it
    commits, so a crash never leaves an event without its record.

    Pausing a paused model or resuming a running one changes nothing (``changed``
    false, 200).

    Raises
    ------
    RequestError
        422 when the reason breaks a rule (the request model checks it first).
    """
    by = Actor("api", caller.key_id, caller.role.value, caller.name)

    def announce(change: SwitchChange) -> None:  # before the event commits (issue 8)
        state.audit.append_intent(
            key_id=caller.key_id,
            role=caller.role.value,
            endpoint="pause",
            address_ids=[],
            model_version=state.model_version,
            row_id=f"{PAUSE_EVENT_PREFIX}{change.event}",
        )

    try:
        change: SwitchChange = (
            pause(state.store, request.reason or "", by, on_change=announce)
            if request.action == "pause"
            else resume(state.store, by, request.reason, on_change=announce)
        )
    except SwitchError as exc:
        raise RequestError(422, str(exc)) from None
    return PauseResponse(
        changed=change.changed, pause=_pause_out(change.state), message=change.message
    )


def _risk_acceptance(tags: dict[str, str]) -> str | None:
    """The recorded acceptance of a failed fairness gate, in one sentence, if any."""
    if tags.get("fairness_risk_accepted") != "true":
        return None
    return (
        f"accepted by {tags.get('fairness_risk_accepted_by', '?')} at "
        f"{tags.get('fairness_risk_accepted_at', '?')}: {tags.get('fairness_risk_reason', '')}"
    )
