"""The scoring service: ``bentoml serve stratum_ml.serving.service:RiskService``.

Start it with ``stratum serve`` (:func:`stratum_ml.serving.launch.serve`), which
checks the set-up first and binds to 127.0.0.1. The service serves a stored
scoring run (:mod:`stratum_ml.runs`) of the ``champion`` version: its latest,
or its run as of ``STRATUM_AS_OF``, made at start-up when missing; see
:mod:`stratum_ml.serving.app_state`. Every answer names its ``model_version``
and ``run_id``. A newer stored run, or a newly promoted champion, is picked up
without a restart (:mod:`stratum_ml.serving.served_run`): the old run answers
until the new one is loaded. The ``as_of`` a score request may carry is accepted
only when it equals the run's date (422 otherwise); a ``run_id`` other than the
served run's is a 422 (404 when no run has it), except on ``priority_list``,
which answers with that run's stored work list. The priority list carries each
item's state (new, rank change, the latest decision, the latest visit) and
leaves addresses visited within ``STRATUM_COOL_OFF_DAYS`` (180) to its
``recently_visited`` part (:mod:`stratum_ml.serving.work_list`).

Endpoints: POST, JSON; schemas in the OpenAPI spec at ``/docs.json``; which role may
call which endpoint is :data:`stratum_ml.serving.auth.PERMISSIONS` (tabled in that
module's docstring).

Send the API key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
No key or a bad key: 401; a role not in the table: 403. The writing endpoints
(``decision``, ``feedback``) take an ``Idempotency-Key`` header (1 to 255
printable ASCII characters, e.g. a UUID): a retry with the same key stores
nothing and gets the first answer, with ``replayed: true``. Every call, answered
or refused, is written to the audit log before the answer leaves (the
middlewares of :mod:`stratum_ml.serving.gate`). Errors are ``{"error": ..., "detail": [...]}``
with a 4xx status: 400 malformed JSON, 404 unknown address, 405 not POST,
409 visit outcome already stored or a decision that does not supersede the
address's open decision, 413 body too large, 415 not JSON, 422
invalid request (wrong type, unknown field, value out of range, batch too
large, a scoring date other than the one loaded, a decision reason that seems
to hold person data); 429 too many requests (``Retry-After``); 503 when the audit log
cannot be written (nothing is answered unaudited) or, for a write, the disk is nearly
full. Nothing a caller sent that failed validation is repeated in an answer or the log;
the OpenAPI document at ``/docs.json`` (:mod:`stratum_ml.serving.openapi`) lists all this.

The kill switch: an admin pauses the model with the ``pause`` endpoint (or
``stratum pause`` on the server); from the next request on, ``score``,
``priority_list``, ``explain`` and ``summary`` answer from the fallback ranking
(reports in the past year), say so (``paused``, ``ranking``, ``notice``) and
show no probability; scoring feature rows is a 409 while paused. The ``model``
endpoint shows the pause and the served run's drift. BentoML's ``/readyz``,
``/livez``, ``/healthz`` and ``/metrics`` stay public; ``/metrics`` adds the
gauges of :mod:`stratum_ml.serving.metrics` (drift of the served run, pause).

The web app (:mod:`stratum_ml.serving.webapp`) is mounted at ``/app/``: a browser
session started with an API key, the same roles, every page audited.

The class is thin on purpose: each API validates nothing itself (the gate and
the request models do) and computes nothing itself (:mod:`stratum_ml.serving.endpoints`).
"""

# mypy: disallow-untyped-decorators=False
# (bentoml ships no type information, so its decorators are untyped to mypy)

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import bentoml
from bentoml.exceptions import BentoMLException
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.responses import JSONResponse

from stratum_ml.serving import endpoints, traffic
from stratum_ml.serving.api_models import (
    IDEMPOTENCY_HEADER,
    DecisionRequest,
    DecisionResponse,
    DecisionsRequest,
    DecisionsResponse,
    DossierRequest,
    DossierResponse,
    ExplainRequest,
    ExplainResponse,
    FeedbackRequest,
    FeedbackResponse,
    ModelInfoResponse,
    ModelRequest,
    PauseRequest,
    PauseResponse,
    PriorityListRequest,
    PriorityListResponse,
    ScoreRequest,
    ScoreResponse,
    SummaryRequest,
    SummaryResponse,
)
from stratum_ml.serving.app_state import ServiceState, ServingSettings, StartupError, load_state
from stratum_ml.serving.audit import AuditLogError
from stratum_ml.serving.audit_anchor import DailyAnchor
from stratum_ml.serving.gate import (
    ApiKeyBackend,
    AuditMiddleware,
    BodyGuard,
    RequestState,
    caller,
    error_response,
    protected_routes,
    refuse_key,
    request_state,
)
from stratum_ml.serving.launch import die_with_parent, service_workers
from stratum_ml.serving.metrics import run_metrics_text
from stratum_ml.serving.openapi import OpenApiDocument, openapi_document
from stratum_ml.serving.webapp import create_app
from stratum_ml.signing import SigningKeyError

T = TypeVar("T")
log = logging.getLogger(__name__)

#: a ``score`` of at most this many address ids is answered on the event loop: it takes
#: about a millisecond of CPU, less than handing it to a thread and back; larger ones
#: (and feature rows) go to a thread, one at a time
INLINE_IDS = 8


def _call(ctx: bentoml.Context) -> RequestState:
    """The gate's state of the call being answered."""
    state = request_state(ctx.request.scope)
    if state is None:
        raise RuntimeError("the call did not pass the gate: its middlewares are not installed")
    return state


def _answer(ctx: bentoml.Context, produce: Callable[[], T]) -> T | JSONResponse:
    """Run an endpoint; a :class:`~endpoints.RequestError` becomes its 4xx JSON answer."""
    try:
        return produce()
    except endpoints.RequestError as exc:
        ctx.response.status_code = exc.status
        _call(ctx).detail = exc.message
        return error_response(exc.status, exc.message)


#: the audit record's detail of an answer built on the fallback ranking
FALLBACK_DETAIL = "answered with the fallback ranking: the model is paused"


def _note_fallback(ctx: bentoml.Context, answer: object) -> None:
    """Record in the audit log that an answer came from the fallback ranking."""
    if getattr(answer, "paused", False):
        _call(ctx).detail = FALLBACK_DETAIL


def _idempotency_key(ctx: bentoml.Context) -> str | None:
    """The call's ``Idempotency-Key`` header, if sent."""
    key: str | None = ctx.request.headers.get(IDEMPOTENCY_HEADER)
    return key


def _loaded_state() -> ServiceState | None:
    """The running service's state, for the gate; None while the service is starting."""
    try:
        service = bentoml.get_current_service()
    except BentoMLException:
        return None
    state = getattr(service, "state", None)
    return state if isinstance(state, ServiceState) else None


@bentoml.service(name="stratum_risk", workers=service_workers(), threads=1)
class RiskService:
    """Risk scores, priority lists, area summaries, explanations, dossiers, analysts'
    decisions (recorded and read back), visit feedback and the kill switch."""

    def __init__(self) -> None:
        self._batches: anyio.CapacityLimiter | None = None
        die_with_parent()  # a kill -9 of the server must not leave this worker holding the port
        try:
            self.state: ServiceState = load_state()
            self.anchor = DailyAnchor(
                self.state.audit, self.state.store, self.state.serving.audit_checkpoint_seconds
            )
            try:
                self.anchor.start()
            except (AuditLogError, SigningKeyError) as exc:
                raise StartupError(f"cannot anchor the audit log: {exc}") from None
        except StartupError as exc:
            log.critical("the stratum scoring service cannot start: %s", exc)
            raise
        # what start-up built (the run, the model, the libraries) lives as long as the
        # worker: out of the collector's sight, so that a full collection does not walk it
        # while requests wait (measured as stalls of a few hundred ms, bench/serving.py)
        gc.collect()
        gc.freeze()
        log.info(
            "serving %s version %s, run %s: %d dwellings scored as of %s",
            self.state.facts.info.name,
            self.state.model_version,
            self.state.run.run_id,
            len(self.state.scorer),
            self.state.as_of,
        )

    @bentoml.on_shutdown
    def checkpoint_on_stop(self) -> None:
        """A clean stop: the champion watch ends, a last signed checkpoint of the audit
        log's head."""
        self.state.follower.stop_watching(timeout=5.0)
        try:
            self.anchor.stop()
        except Exception:
            log.exception("the audit checkpoint at stop could not be taken")

    @bentoml.api(output_spec=ScoreResponse)
    async def score(
        self, request: ScoreRequest, /, ctx: bentoml.Context
    ) -> ScoreResponse | JSONResponse:
        """Score address ids (probability, rank, percentile, top reasons; unknown ids
        reported per id) or rows of ready-made features (probability only). An `as_of`
        other than the loaded scoring date is refused with 422. While the model is paused:
        fallback ranks, no probabilities (feature rows: 409)."""
        if request.rows is None and len(request.address_ids or []) <= INLINE_IDS:
            return self._score(request, ctx)  # well under a millisecond: no thread hand-off
        if self._batches is None:
            self._batches = anyio.CapacityLimiter(1)  # one batch at a time, as before
        return await anyio.to_thread.run_sync(self._score, request, ctx, limiter=self._batches)

    def _score(self, request: ScoreRequest, ctx: bentoml.Context) -> ScoreResponse | JSONResponse:
        self.state.refresh()
        answer = _answer(ctx, lambda: endpoints.score(self.state, request))
        _note_fallback(ctx, answer)
        return answer

    @bentoml.api(output_spec=PriorityListResponse)
    def priority_list(
        self, request: PriorityListRequest, /, ctx: bentoml.Context
    ) -> PriorityListResponse | JSONResponse:
        """The k highest-ranked dwellings, filtered by district, neighbourhood, minimum
        score and theme of the strongest reason; address level only, no person data. While
        the model is paused: the fallback ranking (reports in the past year), said so."""
        self.state.refresh()
        answer = _answer(ctx, lambda: endpoints.priority_list(self.state, request))
        if isinstance(answer, PriorityListResponse):
            _call(ctx).listed_ids = [item.address_id for item in answer.items]
        _note_fallback(ctx, answer)
        return answer

    @bentoml.api(output_spec=SummaryResponse)
    def summary(
        self, request: SummaryRequest, /, ctx: bentoml.Context
    ) -> SummaryResponse | JSONResponse:
        """The top k per district and neighbourhood: dwellings scored, mean probability;
        counts below STRATUM_MIN_CELL_COUNT are withheld (null, `suppressed: true`). While
        the model is paused: the top k of the fallback ranking, no mean probability."""
        self.state.refresh()
        answer = _answer(ctx, lambda: endpoints.summary(self.state, request))
        _note_fallback(ctx, answer)
        return answer

    @bentoml.api(output_spec=DecisionResponse)
    def decision(
        self, request: DecisionRequest, /, ctx: bentoml.Context
    ) -> DecisionResponse | JSONResponse:
        """Record an analyst's decision about a listed address (pass on for a visit,
        decline, needs more information) and why; unknown addresses are 404. When the
        address has an open decision, name it in `supersedes` (409 otherwise). Send an
        `Idempotency-Key` header to retry safely."""
        who = caller(ctx.request.scope)
        key = _idempotency_key(ctx)
        self.state.refresh()
        return _answer(ctx, lambda: endpoints.decision(self.state, request, who, key))

    @bentoml.api(output_spec=DecisionsResponse)
    def decisions(
        self, request: DecisionsRequest, /, ctx: bentoml.Context
    ) -> DecisionsResponse | JSONResponse:
        """Stored decisions, oldest first: one address's history with its open decision,
        or the latest decisions of every address; who decided (key id, role, key name)."""
        answer = _answer(ctx, lambda: endpoints.decisions(self.state, request))
        if isinstance(answer, DecisionsResponse):
            _call(ctx).listed_ids = sorted({d.address_id for d in answer.decisions})
        return answer

    @bentoml.api(output_spec=ExplainResponse)
    def explain(
        self, request: ExplainRequest, /, ctx: bentoml.Context
    ) -> ExplainResponse | JSONResponse:
        """Every feature's contribution to one dwelling's score, in log-odds, with reason
        texts; unknown addresses are 404. While the model is paused: the fallback rank only."""
        self.state.refresh()
        answer = _answer(ctx, lambda: endpoints.explain(self.state, request))
        _note_fallback(ctx, answer)
        return answer

    @bentoml.api(output_spec=DossierResponse)
    def dossier(
        self, request: DossierRequest, /, ctx: bentoml.Context
    ) -> DossierResponse | JSONResponse:
        """Case handlers only: registrations (pseudonyms), water use, reports, visits,
        businesses, owners and linked addresses of one address, as of the scoring date."""
        self.state.refresh()
        return _answer(ctx, lambda: endpoints.dossier(self.state, request))

    @bentoml.api(output_spec=FeedbackResponse)
    def feedback(
        self, request: FeedbackRequest, /, ctx: bentoml.Context
    ) -> FeedbackResponse | JSONResponse:
        """Case handlers only: record a visit outcome, checked like the data contract;
        the next training reads it as a visit. Send an `Idempotency-Key` header to retry
        safely."""
        key_id = caller(ctx.request.scope).key_id
        key = _idempotency_key(ctx)
        return _answer(ctx, lambda: endpoints.feedback(self.state, request, key_id, key))

    @bentoml.api(output_spec=ModelInfoResponse)
    def model(self, request: ModelRequest, /) -> ModelInfoResponse:
        """The serving version: alias, training period, honest precision@k with intervals,
        the fairness verdict, the model card (markdown) and the kill switch (paused or not,
        since, by whom, why)."""
        self.state.refresh()
        return endpoints.model_info(self.state)

    def __metrics__(self, content: str) -> str:
        """BentoML's ``/metrics`` plus the gauges of the served run and the kill switch."""
        return content + run_metrics_text(self.state)

    @bentoml.api(output_spec=PauseResponse)
    def pause(self, request: PauseRequest, /, ctx: bentoml.Context) -> PauseResponse | JSONResponse:
        """Admins only: `{"action": "pause", "reason": "..."}` pauses the model (every list
        becomes the fallback ranking, from the next request on, in every worker);
        `{"action": "resume"}` ends it. Asking for the state in force changes nothing."""
        who = caller(ctx.request.scope)
        answer = _answer(ctx, lambda: endpoints.switch(self.state, request, who))
        if isinstance(answer, PauseResponse):
            _call(ctx).detail = (
                f"{request.action}: {request.reason or '-'}"
                if answer.changed
                else f"{request.action}: no change"
            )
        return answer


_service: Any = RiskService  # a bentoml Service at run time; mypy sees the plain class
# BentoML's own timeout middleware keeps every request's context for the whole timeout
# (see stratum_ml.serving.traffic): the app is built with a corrected one
traffic.install()
# The gate, outermost first: the audit middleware wraps the other two, so that their
# refusals are audited like every answer (see stratum_ml.serving.gate).
_service.add_asgi_middleware(
    AuditMiddleware, routes=protected_routes(_service), service_state=_loaded_state
)
_service.add_asgi_middleware(AuthenticationMiddleware, backend=ApiKeyBackend(), on_error=refuse_key)
_service.add_asgi_middleware(BodyGuard)


def _document() -> dict[str, Any]:
    """The OpenAPI document at /docs.json, made from the gate's models and answers
    (stratum_ml.serving.openapi) in place of BentoML's, with the batch limit in force."""
    return openapi_document(_service, max_batch_size=ServingSettings().max_batch_size)


_service.add_asgi_middleware(OpenApiDocument, make=_document)

# The web app for analysts and case handlers (/app/): same keys, roles and audit log.
_service.mount_asgi_app(create_app(_loaded_state), path="/app", name="webapp")
