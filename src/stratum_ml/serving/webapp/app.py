"""The web app's routes: a Starlette app that the scoring service mounts at ``/app``.

Every page passes the same steps (:func:`_page`): find the session (a cookie
token; the rows are in the operational store, :mod:`.sessions`), check that its
key is still valid (a revoked key ends the session), check the role against the
API's permission table (:data:`stratum_ml.serving.auth.PERMISSIONS`: a page is
allowed when the role may call every endpoint the page uses; 403 with a plain
sentence otherwise), check the CSRF token of every POST (403 without it), run
the page, and write the audit record (:class:`~stratum_ml.serving.audit.AuditLog`,
endpoint ``app/<page>``, with the address ids shown or asked for) before the
answer leaves: 503 when it cannot be written. The pages call the API's own
functions (:mod:`stratum_ml.serving.endpoints`) for decisions, visit outcomes,
explanations, dossiers and the model facts, so the rules are the same.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import math
import secrets
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.to_thread
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt
from pydantic import ValidationError
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from stratum_ml.docs import pack_location
from stratum_ml.features.network import LINK_SOURCES
from stratum_ml.model.registry import download_run_artifact
from stratum_ml.model.store import client_for
from stratum_ml.runs import RunNotFound, get_run, list_runs
from stratum_ml.runs.plan import planned_run_of
from stratum_ml.serving import endpoints
from stratum_ml.serving.api_models import (
    DecisionRequest,
    DossierRequest,
    ExplainRequest,
    FeedbackRequest,
)
from stratum_ml.serving.app_state import ServiceState
from stratum_ml.serving.auth import PERMISSIONS, AuthError, Endpoint, Principal
from stratum_ml.serving.gate import StateProvider
from stratum_ml.serving.gate.authentication import KEY_LOCKED, count_refused_key
from stratum_ml.serving.gate.limits import RateLimiter, service_limiter
from stratum_ml.serving.key_lockout import is_locked
from stratum_ml.serving.outcomes import read_outcomes
from stratum_ml.serving.webapp import areas, casefile, charts
from stratum_ml.serving.webapp.i18n import (
    DECISION_REASONS,
    LANGUAGES,
    TEXTS,
    Language,
    chance,
    label,
    pause_words,
    portfolio_words,
    text,
)
from stratum_ml.serving.webapp.sessions import COOKIE, Session, SessionStore, idle_minutes
from stratum_ml.serving.webapp.worklist import (
    PAGE_SIZES,
    Filters,
    WorkList,
    address_labels,
    area_names,
    build_work_list,
    csv_text,
    filter_rows,
    sort_rows,
)
from stratum_ml.sources.contract import INSPECTION_REASONS, OUTCOMES, VIOLATION_TYPES
from stratum_ml.store.switch import current_pause
from stratum_ml.store.tables import DECISIONS, RunItemRow, ScoringRunRow

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
#: the cookie that carries the login form's CSRF token before there is a session
LOGIN_CSRF_COOKIE = "stratum_login_csrf"
#: the cookie that carries the language before there is a session
LANGUAGE_COOKIE = "stratum_lang"
#: expected drinking water per registered person per year (Dutch average, ~119 l a day)
WATER_M3_PER_PERSON_YEAR = 43.0
#: the most contributions the waterfall draws one by one; the rest is one bar
WATERFALL_STEPS = 10

#: the endpoints each page uses; a role may open a page when it may call all of them
PAGES: dict[str, frozenset[Endpoint]] = {
    "home": frozenset(),
    "list": frozenset({Endpoint.PRIORITY_LIST}),
    "export": frozenset({Endpoint.PRIORITY_LIST}),
    "decision": frozenset({Endpoint.DECISION}),
    "address": frozenset({Endpoint.EXPLAIN, Endpoint.DECISIONS}),
    "dossier": frozenset({Endpoint.DOSSIER}),
    "feedback": frozenset({Endpoint.FEEDBACK}),
    "casefile": frozenset({Endpoint.DOSSIER, Endpoint.EXPLAIN}),
    "model": frozenset({Endpoint.MODEL}),
    "areas": frozenset({Endpoint.PRIORITY_LIST, Endpoint.SUMMARY}),
    "language": frozenset(),
    "logout": frozenset(),
}

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def may_open(principal: Principal, page: str) -> bool:
    """Whether the caller's role may open a page (every endpoint it uses is allowed)."""
    return PAGES[page] <= PERMISSIONS[principal.role]


@dataclass
class Call:
    """One request to a page, as the page function sees it."""

    request: Request
    service: ServiceState
    session: Session
    base: str
    form: dict[str, str] = field(default_factory=dict)
    address_ids: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def language(self) -> Language:
        return self.session.language

    @property
    def principal(self) -> Principal:
        return self.session.principal

    def query(self) -> dict[str, str]:
        return dict(self.request.query_params)


class Pages:
    """The templates and the helpers every page uses."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["chance"] = lambda p, lang: chance(lang, p)
        self.env.filters["label"] = lambda v, lang: label(lang, v)
        self.env.filters["q"] = lambda v: quote(str(v), safe="")
        self.env.globals["portfolio_words"] = portfolio_words
        self.markdown = MarkdownIt("commonmark", {"html": False}).enable("table")

    def render(
        self,
        name: str,
        *,
        language: Language,
        base: str,
        session: Session | None,
        status: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        template = self.env.get_template(name)

        def t(key: str, **fill: object) -> str:
            return text(language, key, **fill)

        html = template.render(
            t=t,
            lang=language,
            other_lang="en" if language == "nl" else "nl",
            base=base,
            session=session,
            may=(lambda page: session is not None and may_open(session.principal, page)),
            role_name=(session.principal.role.value if session else ""),
            **values,
        )
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


PAGES_RENDER = Pages()


def _refusal(call: Call, status: int, message: str) -> HTMLResponse:
    call.detail = message
    return PAGES_RENDER.render(
        "message.html",
        language=call.language,
        base=call.base,
        session=call.session,
        status=status,
        title=text(call.language, "forbidden_title") if status == 403 else str(status),
        message=message,
    )


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _audit(
    service: ServiceState,
    *,
    principal: Principal | None,
    key_id: str | None,
    page: str,
    ids: list[str],
    status: int,
    detail: str,
) -> bool:
    try:
        service.audit.append(
            key_id=key_id if principal is None else principal.key_id,
            role=None if principal is None else principal.role.value,
            endpoint=f"app/{page}",
            address_ids=ids,
            model_version=service.model_version,
            status=status,
            detail=detail,
        )
    except Exception:  # any failure to record means no answer
        log.exception("audit log write failed; answering 503")
        return False
    return True


AUDIT_FAILED = (
    "Het auditlog kan niet worden geschreven; de vraag is niet beantwoord. / "
    "The audit log cannot be written; the request was not answered."
)

PageFunction = Callable[[Call], Response]


def _page(
    provider: StateProvider, name: str, function: PageFunction
) -> Callable[[Request], Awaitable[Response]]:
    """A page: session, key, role and CSRF checked; the call audited before it is answered."""

    async def endpoint(request: Request) -> Response:
        service = provider()
        if service is None:
            return HTMLResponse("starting; try again shortly", status_code=503)
        base = _base(request)
        sessions = SessionStore(service.store, dt.timedelta(minutes=idle_minutes()))
        session = await anyio.to_thread.run_sync(sessions.find, request.cookies.get(COOKIE))
        if session is not None and service.keys.principal_of(session.principal.key_id) is None:
            await anyio.to_thread.run_sync(sessions.end, session)
            session = None
        if session is None:
            had = "?expired=1" if request.cookies.get(COOKIE) else ""
            response: Response = _redirect(f"{base}/login{had}")
            if request.headers.get("hx-request"):
                response = Response(status_code=401, headers={"HX-Redirect": f"{base}/login"})
            ok = await anyio.to_thread.run_sync(
                functools.partial(
                    _audit,
                    service,
                    principal=None,
                    key_id=None,
                    page=name,
                    ids=[],
                    status=response.status_code,
                    detail="no live session",
                )
            )
            return response if ok else HTMLResponse(AUDIT_FAILED, status_code=503)
        call = Call(request=request, service=service, session=session, base=base)
        asked = request.path_params.get("address_id")
        call.address_ids = [str(asked)[:64]] if asked else []
        if request.method == "POST":
            form = await request.form()
            call.form = {k: v for k, v in form.items() if isinstance(v, str)}
        try:
            if not may_open(session.principal, name):
                response = _refusal(
                    call,
                    403,
                    text(
                        session.language,
                        "forbidden",
                        role=label(session.language, session.principal.role.value),
                    ),
                )
            elif request.method == "POST" and not session.csrf_ok(call.form.get("csrf")):
                response = _refusal(call, 403, text(session.language, "csrf_refused"))
            else:
                response = await anyio.to_thread.run_sync(function, call)
        except Exception:
            log.exception("unexpected error on the web app's %s page", name)
            response = _refusal(call, 500, "an unexpected error occurred; it is in the server log")
        ok = await anyio.to_thread.run_sync(
            functools.partial(
                _audit,
                service,
                principal=session.principal,
                key_id=None,
                page=name,
                ids=call.address_ids,
                status=response.status_code,
                detail=call.detail,
            )
        )
        return response if ok else HTMLResponse(AUDIT_FAILED, status_code=503)

    return endpoint


# --- login and logout -------------------------------------------------------------------


def _login_language(request: Request) -> Language:
    asked = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE, "nl")
    return "en" if asked == "en" else "nl"


def _login_page(
    request: Request, language: Language, status: int = 200, error: str | None = None
) -> Response:
    token = secrets.token_urlsafe(32)
    message = None
    if request.query_params.get("expired"):
        message = text(language, "session_expired")
    if request.query_params.get("out"):
        message = text(language, "logged_out")
    response = PAGES_RENDER.render(
        "login.html",
        language=language,
        base=_base(request),
        session=None,
        status=status,
        csrf=token,
        error=error,
        message=message,
        minutes=idle_minutes(),
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path=_base(request) + "/login",
    )
    response.set_cookie(
        LANGUAGE_COOKIE, language, httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


def check_login_key(
    service: ServiceState, key: object, client: str, limiter: RateLimiter
) -> tuple[Principal | None, str | None, str | None]:
    """The login's key check under the API gate's rules: the principal, or the key id and why not.

    A wrong key costs a token of the client address's bad-key bucket (the same rate as
    the API's); a wrong secret counts towards locking its key id, and a locked key id is
    refused even with the right secret (:mod:`stratum_ml.serving.key_lockout`).
    """
    try:
        principal = service.keys.authenticate(
            {"Authorization": f"Bearer {key if isinstance(key, str) else ''}".strip()}
        )
    except AuthError as exc:
        return None, exc.key_id, count_refused_key(service, limiter, exc, client) or exc.detail
    if is_locked(service.store, principal.key_id):
        return None, principal.key_id, KEY_LOCKED
    return principal, principal.key_id, None


def login(provider: StateProvider) -> Callable[[Request], Awaitable[Response]]:
    """``GET /login``: the form; ``POST /login``: check the key, start a session.

    A login is held to the API gate's rules: too many bad keys from one client address
    answer 429 with ``Retry-After``, and wrong secrets lock a key id like API calls do.
    The bad keys are counted in the service's buckets, which every worker shares (and
    the API's calls with bad keys from the same address count there too).
    """
    own = RateLimiter()  # only while the service has no shared buckets (tests)

    async def endpoint(request: Request) -> Response:
        service = provider()
        if service is None:
            return HTMLResponse("starting; try again shortly", status_code=503)
        language = _login_language(request)
        if request.method == "GET":
            return _login_page(request, language)
        form = await request.form()
        client = request.client.host if request.client is not None else "unknown"
        limiter = service_limiter(service, own)
        sent, expected = form.get("csrf"), request.cookies.get(LOGIN_CSRF_COOKIE)
        key = form.get("key")
        principal: Principal | None = None
        key_id: str | None = None
        if not (isinstance(sent, str) and expected and secrets.compare_digest(sent, expected)):
            status, detail = 403, "login form without a valid CSRF token"
            response = _login_page(request, language, 403, text(language, "csrf_refused"))
        elif wait := limiter.peek(
            "bad key",
            client,
            service.serving.bad_keys_per_minute / 60.0,
            service.serving.bad_keys_burst,
        ):
            status, detail = 429, "too many logins with bad API keys from this address"
            response = _login_page(
                request, language, 429, text(language, "login_failed", why=detail)
            )
            response.headers["Retry-After"] = str(wait)
        else:
            principal, key_id, why = await anyio.to_thread.run_sync(
                check_login_key, service, key, client, limiter
            )
            if principal is None:
                status, detail = 401, why or "invalid API key"
                response = _login_page(
                    request, language, 401, text(language, "login_failed", why=detail)
                )
            else:
                sessions = SessionStore(service.store, dt.timedelta(minutes=idle_minutes()))
                token = await anyio.to_thread.run_sync(sessions.start, principal, language)
                status, detail = 303, "session started"
                response = _redirect(_base(request) + "/")
                response.set_cookie(
                    COOKIE,
                    token,
                    httponly=True,
                    samesite="strict",
                    secure=_secure(request),
                    path=_base(request) or "/",
                )
                response.delete_cookie(LOGIN_CSRF_COOKIE, path=_base(request) + "/login")
        ok = await anyio.to_thread.run_sync(
            functools.partial(
                _audit,
                service,
                principal=principal,
                key_id=key_id,
                page="login",
                ids=[],
                status=status,
                detail=detail,
            )
        )
        return response if ok else HTMLResponse(AUDIT_FAILED, status_code=503)

    return endpoint


def logout(call: Call) -> Response:
    """``POST /logout``: end the session."""
    sessions = SessionStore(call.service.store, dt.timedelta(minutes=idle_minutes()))
    sessions.end(call.session)
    call.detail = "session ended"
    response = _redirect(f"{call.base}/login?out=1")
    response.delete_cookie(COOKIE, path=call.base or "/")
    return response


def switch_language(call: Call) -> Response:
    """``POST /language``: show the pages in the other language."""
    to = call.form.get("to")
    language: Language = "en" if to == "en" else "nl"
    SessionStore(call.service.store, dt.timedelta(minutes=1)).set_language(call.session, language)
    back = call.form.get("back", "")
    return _redirect(back if back.startswith(call.base + "/") else f"{call.base}/")


# --- the work list ------------------------------------------------------------------------


def _run_for(call: Call) -> Any:
    asked = call.request.query_params.get("run")
    if not asked or asked == call.service.run.run_id:
        return call.service.refresh().run
    try:
        run = get_run(call.service.store, asked)
    except RunNotFound:
        return None
    return run if run.model_name == call.service.run.model_name else None


def _list_context(call: Call) -> dict[str, Any] | Response:
    run = _run_for(call)
    if run is None:
        return _refusal(call, 404, text(call.language, "not_found", what="run"))
    listed = build_work_list(call.service, run, call.language)
    filters, left_out = _filters_for(call, listed)
    rows = sort_rows(filter_rows(listed.rows, filters), filters.sort)
    pages = max(1, math.ceil(len(rows) / filters.per_page))
    page = min(filters.page, pages)
    first = (page - 1) * filters.per_page
    shown = rows[first : first + filters.per_page]
    call.address_ids = [r.address_id for r in shown]
    runs = list_runs(call.service.store, model_name=run.model_name, limit=20)
    run_query = "" if run.run_id == call.service.run.run_id else run.run_id
    return {
        "listed": listed,
        "run": run,
        "run_query": run_query,
        "runs": runs,
        "filters": filters,
        "rows": shown,
        "n_rows": len(rows),
        "first": first + 1,
        "last": first + len(shown),
        "page": page,
        "pages": pages,
        "page_sizes": PAGE_SIZES,
        "decisions": DECISIONS,
        "decision_reasons": DECISION_REASONS,
        "cool_off_days": call.service.serving.cool_off_days,
        "done": call.request.query_params.get("done"),
        "error": call.request.query_params.get("error"),
        "population": run.n_items,
        "pause_text": _pause_text(call),
        "left_out": ", ".join(text(call.language, name) for name in left_out),
    }


def _filters_for(call: Call, listed: WorkList) -> tuple[Filters, list[str]]:
    """The page's filters; while paused, without those that need the model (named)."""
    filters = Filters.parse(call.query())
    return filters.without_model() if listed.paused else (filters, [])


def _pause_text(call: Call) -> str | None:
    """The pause in a sentence of the page's language (since, by whom, why); None if running."""
    pause = current_pause(call.service.store)
    if pause is None:
        return None
    return text(call.language, "pause_on", **pause_words(call.language, pause))


def home(call: Call) -> Response:
    """``GET /``: the work list (analyst, admin); case handlers open a dossier."""
    if not may_open(call.principal, "list"):
        target = "dossier" if may_open(call.principal, "dossier") else "model"
        return _redirect(f"{call.base}/{target}")
    context = _list_context(call)
    if isinstance(context, Response):
        return context
    template = "_rows.html" if call.request.headers.get("hx-request") else "worklist.html"
    return _render(call, template, **context)


def rows(call: Call) -> Response:
    """``GET /rows``: the table of the work list only (htmx)."""
    context = _list_context(call)
    if isinstance(context, Response):
        return context
    return _render(call, "_rows.html", **context)


def export(call: Call) -> Response:
    """``GET /export.csv``: every row passing the filters, as CSV (no person data)."""
    run = _run_for(call)
    if run is None:
        return _refusal(call, 404, text(call.language, "not_found", what="run"))
    listed = build_work_list(call.service, run, call.language)
    filters, _ = _filters_for(call, listed)
    selected = sort_rows(filter_rows(listed.rows, filters), filters.sort)
    call.address_ids = [r.address_id for r in selected]
    call.detail = f"csv export of {len(selected)} rows of run {run.run_id}"
    return Response(
        csv_text(selected),
        media_type="text/csv; charset=utf-8",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="werklijst-{run.as_of}.csv"',
        },
    )


def decide(call: Call) -> Response:
    """``POST /decision``: record a decision with a reason from the fixed list."""
    form = call.form
    address = form.get("address_id", "")
    call.address_ids = [address] if address else []
    back = form.get("back", "")
    back = back if back.startswith(call.base + "/") else f"{call.base}/"
    reason = form.get("reason", "")
    note = form.get("note", "").strip()
    joiner = "&" if "?" in back else "?"
    if reason not in DECISION_REASONS:
        call.detail = "no reason from the list"
        return _redirect(f"{back}{joiner}error=reason#a{address}")
    try:
        request = DecisionRequest(
            address_id=address,
            decision=form.get("decision", ""),
            reason=reason,
            note=note or None,
            language=call.language,
            supersedes=form.get("supersedes") or None,
        )
    except ValidationError as exc:
        call.detail = "invalid decision: " + "; ".join(
            e["msg"].removeprefix("Value error, ") for e in exc.errors(include_input=False)
        )
        return _redirect(f"{back}{joiner}error=invalid#a{address}")
    try:
        endpoints.decision(
            call.service, request, call.principal, form.get("idempotency_key") or None
        )
    except endpoints.RequestError as exc:
        call.detail = exc.message
        return _redirect(f"{back}{joiner}error=refused#a{address}")
    return _redirect(f"{back}{joiner}done=decision#a{address}")


# --- address, dossier, model ----------------------------------------------------------------


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def waterfall_steps(
    contributions: list[Any], bias: float, top: int = WATERFALL_STEPS
) -> tuple[list[tuple[str, float, str]], float, float]:
    """(label, percentage points, sentence) per step, the base chance and the chance (in %).

    Contributions are taken strongest first; each step is the change of the chance
    when that feature's log-odds are added to those before it, so the steps add up
    exactly to the chance minus the base chance. The weakest are one step together.
    """
    ordered = sorted(contributions, key=lambda c: -abs(c.contribution_log_odds))
    shown, rest = ordered[:top], ordered[top:]
    level = bias
    steps: list[tuple[str, float, str]] = []
    for c in shown:
        before = _sigmoid(level)
        level += c.contribution_log_odds
        steps.append((c.feature, 100 * (_sigmoid(level) - before), c.text))
    if rest:
        before = _sigmoid(level)
        level += sum(c.contribution_log_odds for c in rest)
        steps.append(("", 100 * (_sigmoid(level) - before), ""))
    return steps, 100 * _sigmoid(bias), 100 * _sigmoid(level)


def _rank_history(call: Call, address: str) -> list[tuple[str, int, float]]:
    with call.service.store.transaction() as session:
        found = session.execute(
            select(ScoringRunRow.as_of, RunItemRow.rank, RunItemRow.probability)
            .join(RunItemRow, RunItemRow.run_id == ScoringRunRow.run_id)
            .where(
                RunItemRow.address_id == address,
                ScoringRunRow.model_name == call.service.run.model_name,
            )
            .order_by(ScoringRunRow.as_of, ScoringRunRow.seq)
        ).all()
    return [(d.isoformat(), int(r), float(p)) for d, r, p in found]


def address_page(call: Call) -> Response:
    """``GET /address/{id}``: explanation as a waterfall, rank over runs, decisions."""
    address = call.request.path_params["address_id"]
    call.address_ids = [address]
    lang = call.language
    try:
        explained = endpoints.explain(
            call.service, ExplainRequest(address_id=address, language=lang)
        )
    except (endpoints.RequestError, ValidationError):
        return _refusal(call, 404, text(lang, "not_found", what=address))
    steps: list[tuple[str, float, str]] = []
    spec = None
    base_pct = final_pct = None
    if explained.bias_log_odds is not None and explained.contributions:
        steps, base_pct, final_pct = waterfall_steps(
            explained.contributions, explained.bias_log_odds
        )
        steps = [(f or text(lang, "other_features"), pp, s) for f, pp, s in steps]
        spec = charts.waterfall(
            [(f, pp) for f, pp, _ in steps],
            base_pct,
            final_pct,
            (text(lang, "base_chance"), text(lang, "this_chance"), text(lang, "contribution_pp")),
        )
    history = _rank_history(call, address)
    history_spec = (
        charts.rank_history(
            [(d, r) for d, r, _ in history], (text(lang, "run"), text(lang, "rank"))
        )
        if history
        else None
    )
    decided = call.service.decisions.history(address)
    open_id = next((d.decision_id for d in reversed(decided) if d.is_open), None)
    facts = call.service.tables.addresses.set_index("address_id").loc[address]
    return _render(
        call,
        "address.html",
        address_id=address,
        facts=facts,
        address_words=address_labels(call.service, [address]).get(address),
        pause_text=_pause_text(call),
        explained=explained,
        steps=steps,
        base_pct=base_pct,
        final_pct=final_pct,
        waterfall=spec,
        history=history,
        history_spec=history_spec,
        decided=decided,
        open_id=open_id,
        decisions=DECISIONS,
        decision_reasons=DECISION_REASONS,
        exports=casefile.exports_of(call.service.store, address),
        done=call.request.query_params.get("done"),
        error=call.request.query_params.get("error"),
    )


def dossier_open(call: Call) -> Response:
    """``GET /dossier``: the form to open one address's dossier (``?address_id=`` opens it)."""
    asked = call.request.query_params.get("address_id", "").strip()
    if asked:
        return _redirect(f"{call.base}/dossier/{quote(asked, safe='')}")
    return _render(call, "dossier_open.html")


def _water_rows(dossier: Any, lang: Language) -> list[dict[str, Any]]:
    """Metered water per calendar year against the registered household's expected use."""
    if not dossier.water_usage:
        return []
    metered: dict[int, float] = {}
    for period in dossier.water_usage:
        metered[period.period_start.year] = metered.get(period.period_start.year, 0.0) + float(
            period.volume_m3
        )
    rows = []
    for year in sorted(metered):
        middle = dt.date(year, 7, 1)
        people = sum(
            1
            for s in dossier.registrations
            if s.registered_from <= middle
            and (s.registered_until is None or s.registered_until > middle)
        )
        rows.append({"year": str(year), "what": text(lang, "water_actual"), "m3": metered[year]})
        rows.append(
            {
                "year": str(year),
                "what": text(lang, "water_expected"),
                "m3": people * WATER_M3_PER_PERSON_YEAR,
            }
        )
    return rows


def _portfolio(call: Call, owners: list[str]) -> dict[str, int]:
    ownership = call.service.tables.ownership
    if ownership is None or not owners:
        return {}
    as_of = pd.Timestamp(call.service.as_of)
    frame = ownership.loc[ownership["owner_id"].isin(owners)]
    start = pd.to_datetime(frame["owned_from"])
    end = pd.to_datetime(frame["owned_until"])
    current = frame.loc[(start <= as_of) & (end.isna() | (end > as_of))]
    return {str(k): int(v) for k, v in current.groupby("owner_id")["address_id"].nunique().items()}


#: most linked addresses the dossier's network draws (the list below it names them all)
NETWORK_NODES = 24
#: the kinds of link in the order of the network features (features.network.LINK_SOURCES)
LINK_KINDS = tuple(kind for kind, _, _, _ in LINK_SOURCES)


def _network(call: Call, address: str, dossier: Any) -> dict[str, Any]:
    """The dossier's linked addresses: labels, the network chart (or None) and its caption.

    Each linked address is one node however many links it has; its edge names every
    kind (e.g. "bewoner + eigenaar"). The drawing shows :data:`NETWORK_NODES` at most,
    those with the most kinds of link first, grouped by kind around the circle.
    """
    lang = call.language
    kinds: dict[str, set[str]] = {}
    for link in dossier.linked_addresses:
        kinds.setdefault(link.address_id, set()).add(link.via)
    labels = address_labels(call.service, [address, *kinds])

    def words(via: set[str]) -> str:
        return " + ".join(label(lang, k) for k in LINK_KINDS if k in via)

    chosen = sorted(kinds, key=lambda a: (-len(kinds[a]), words(kinds[a]), a))[:NETWORK_NODES]
    drawn = sorted(chosen, key=lambda a: (words(kinds[a]), a))
    spec = (
        charts.network(
            {"label": labels.get(address, address), "href": f"{call.base}/dossier/{address}"},
            [
                {
                    "label": labels.get(a, a),
                    "href": f"{call.base}/dossier/{a}",
                    "kind": words(kinds[a]),
                    "address_id": a,
                }
                for a in drawn
            ],
            text(lang, "link_kind"),
        )
        if drawn
        else None
    )
    caption = text(lang, "network_alt", n=len(kinds))
    if len(drawn) < len(kinds):
        caption += " " + text(lang, "network_capped", drawn=len(drawn))
    through: dict[str, dict[str, list[str]]] = {}
    for link in dossier.linked_addresses:
        through.setdefault(link.address_id, {}).setdefault(link.via, []).append(link.through)
    listed = [
        {
            "address_id": a,
            "label": labels.get(a, a),
            "links": [(k, through[a][k]) for k in LINK_KINDS if k in through[a]],
        }
        for a in [*drawn, *sorted(set(kinds) - set(drawn))]
    ]
    return {"labels": labels, "spec": spec, "caption": caption, "listed": listed}


#: the model's reasons a dossier and its case file show (strongest first)
DOSSIER_REASONS = 5


def _model_reasons(call: Call, address: str) -> list[Any]:
    """The strongest reasons of the model for an address (none while paused or unknown)."""
    try:
        explained = endpoints.explain(
            call.service, ExplainRequest(address_id=address, language=call.language)
        )
    except (endpoints.RequestError, ValidationError):
        return []
    ordered = sorted(explained.contributions, key=lambda c: -abs(c.contribution_log_odds))
    return ordered[:DOSSIER_REASONS]


def dossier_page(
    call: Call,
    status: int = 200,
    error: str | None = None,
    casefile_error: str | None = None,
) -> Response:
    """``GET /dossier/{id}``: what is known about one address, under pseudonyms; audited."""
    address = call.request.path_params["address_id"]
    call.address_ids = [address]
    lang = call.language
    try:
        dossier = endpoints.dossier(call.service, DossierRequest(address_id=address))
    except (endpoints.RequestError, ValidationError):
        return _refusal(call, 404, text(lang, "not_found", what=address))
    water = _water_rows(dossier, lang)
    recorded = read_outcomes(call.service.store)
    recorded = recorded.loc[recorded["address_id"] == address].sort_values("inspected_at")
    owners = sorted({o.owner_id for o in dossier.ownership})
    return _render(
        call,
        "dossier.html",
        status=status,
        dossier=dossier,
        address_id=address,
        reasons=_model_reasons(call, address),
        exports=casefile.exports_of(call.service.store, address),
        casefile_error=casefile_error,
        form=call.form,
        water=water,
        water_spec=charts.water(water, (text(lang, "year"), "m³")) if water else None,
        per_person=f"{WATER_M3_PER_PERSON_YEAR:g}",
        portfolio=_portfolio(call, owners),
        recorded=recorded.to_dict("records"),
        outcomes=OUTCOMES,
        violation_types=VIOLATION_TYPES,
        inspection_reasons=INSPECTION_REASONS,
        today=dt.date.today().isoformat(),
        done=call.request.query_params.get("done"),
        error=error,
        run_id=call.service.run.run_id,
        network=_network(call, address, dossier),
        area_names=area_names(call.service),
    )


def case_file(call: Call) -> Response:
    """``POST /dossier/{id}/casefile``: the dossier as a PDF case file; stored and audited.

    Refused (422, the dossier with a plain sentence) without a purpose and a legal
    basis. The PDF holds pseudonyms only: what the dossier page shows, with the
    model's reasons.
    """
    address = call.request.path_params["address_id"]
    call.address_ids = [address]
    lang = call.language
    try:
        request = casefile.check_request(call.form, lang)
    except casefile.CaseFileRefused as exc:
        call.detail = "case file refused: no purpose or legal basis"
        return dossier_page(call, 422, casefile_error=str(exc))
    try:
        dossier = endpoints.dossier(call.service, DossierRequest(address_id=address))
    except (endpoints.RequestError, ValidationError):
        return _refusal(call, 404, text(lang, "not_found", what=address))
    created = dt.datetime.now(dt.UTC).replace(microsecond=0)
    run_id = call.service.run.run_id
    markdown = casefile.case_file_markdown(
        dossier,
        request=request,
        reasons=_model_reasons(call, address),
        water=_water_rows(dossier, lang),
        portfolio=_portfolio(call, sorted({o.owner_id for o in dossier.ownership})),
        principal=call.principal,
        run_id=run_id,
        model_version=call.service.model_version,
        created=created,
        language=lang,
    )
    pdf = casefile.case_file_pdf(markdown, text(lang, "casefile_title", address=address), created)
    stored = casefile.record_export(
        call.service.store,
        address_id=address,
        principal=call.principal,
        request=request,
        run_id=run_id,
        model_version=call.service.model_version,
        pdf=pdf,
        created=created,
    )
    call.detail = (
        f"case file {stored.export_id} exported (sha256 {stored.pdf_sha256}); "
        f"legal basis: {request.legal_basis}"
    )[:480]
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="casusdossier-{address}.pdf"',
        },
    )


def record_outcome(call: Call) -> Response:
    """``POST /dossier/{id}/outcome``: record a visit outcome (checked like the API's)."""
    address = call.request.path_params["address_id"]
    call.address_ids = [address]
    form = call.form
    try:
        visited = dt.date.fromisoformat(str(form.get("inspected_at", "")))
    except ValueError:
        visited = None  # refused below, by the request's own check
    # the visit answers the plan that put the address on a list, when one did
    run_id = None if visited is None else planned_run_of(call.service.store, address, visited)
    try:
        # validated like the API's JSON body (dates as text)
        request = FeedbackRequest.model_validate_json(
            json.dumps(
                {
                    "address_id": address,
                    "inspected_at": form.get("inspected_at", ""),
                    "reason": form.get("reason", "risk_model"),
                    "outcome": form.get("outcome", ""),
                    "violation_type": form.get("violation_type") or None,
                    "run_id": run_id,
                }
            )
        )
        endpoints.feedback(
            call.service, request, call.principal.key_id, form.get("idempotency_key") or None
        )
    except ValidationError as exc:
        why = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_input=False)
        )
        call.detail = f"invalid visit outcome: {why}"
        return dossier_page(call, 422, text(call.language, "outcome_refused", why=why))
    except endpoints.RequestError as exc:
        call.detail = exc.message
        return dossier_page(
            call, exc.status, text(call.language, "outcome_refused", why=exc.message)
        )
    return _redirect(f"{call.base}/dossier/{quote(address, safe='')}?done=outcome")


def _demote_headings(html: str, by: int = 2) -> str:
    """The model card's headings under the page's own (its h1 becomes an h3)."""
    for level in range(6, 0, -1):
        new = min(level + by, 6)
        html = html.replace(f"<h{level}>", f"<h{new}>").replace(f"</h{level}>", f"</h{new}>")
    return html


#: the files of a documentation pack the model page offers (name -> media type)
DOCS_FILES: dict[str, str] = {
    "documentation.pdf": "application/pdf",
    "algoritmeregister.json": "application/json",
    "technical_file.md": "text/markdown; charset=utf-8",
    "instructions_for_use.md": "text/markdown; charset=utf-8",
    "monitoring_plan.md": "text/markdown; charset=utf-8",
    "assessment_inputs.md": "text/markdown; charset=utf-8",
    "register_todo.json": "application/json",
    "manifest.json": "application/json",
}


def _docs_pack(call: Call) -> str | None:
    """Where the served version's latest documentation pack is (``runs:/<run>/docs``)."""
    info = call.service.facts.info
    try:
        return pack_location(info.name, info.version, client_for(call.service.settings))
    except Exception:  # the registry cannot be read: the page says there is no pack
        log.exception("cannot read the documentation pack's location of %s", info.version)
        return None


def model_docs(call: Call) -> Response:
    """``GET /model/docs/{name}``: one file of the served version's documentation pack."""
    name = call.request.path_params["name"]
    location = _docs_pack(call)
    if name not in DOCS_FILES or location is None or not location.startswith("runs:/"):
        return _refusal(call, 404, text(call.language, "not_found", what=name))
    run_id, folder = location.removeprefix("runs:/").split("/", 1)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = download_run_artifact(
                run_id, f"{folder}/{name}", Path(tmp), call.service.settings
            )
        except Exception:
            log.exception("cannot read %s of the documentation pack %s", name, location)
            return _refusal(call, 404, text(call.language, "not_found", what=name))
        data = path.read_bytes()
    call.detail = f"documentation pack file {name} of {location}"
    return Response(
        data,
        media_type=DOCS_FILES[name],
        headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
    )


def model_page(call: Call) -> Response:
    """``GET /model``: model card, honest metrics, fairness, drift and the pause state."""
    info = endpoints.model_info(call.service)
    lang = call.language
    checks = call.service.facts.fairness.get("checks") or []
    drift = info.scoring_run.drift if info.scoring_run else None
    drift_features = (
        [(f.feature, f.psi) for f in drift.features if f.psi is not None] if drift else []
    )
    return _render(
        call,
        "model.html",
        info=info,
        card_html=_demote_headings(PAGES_RENDER.markdown.render(info.model_card_markdown)),
        checks=checks,
        fairness_spec=charts.fairness(checks, "ratio") if checks else None,
        drift=drift,
        drift_spec=charts.drift(drift_features, "PSI") if drift_features else None,
        language_name=TEXTS[lang]["lang_name"],
        docs_location=_docs_pack(call),
        docs_files=list(DOCS_FILES),
        pause_text=_pause_text(call),
    )


#: the runs the areas page follows over time
AREA_TREND_RUNS = 12


def areas_page(call: Call) -> Response:
    """``GET /areas``: the neighbourhood map of a run, trends per district, score distribution.

    Aggregated only (no address ids are shown or audited); counts below
    :data:`~.areas.SUPPRESS_BELOW` are suppressed on the map and in its table.
    """
    run = _run_for(call)
    if run is None:
        return _refusal(call, 404, text(call.language, "not_found", what="run"))
    lang = call.language
    fewer = text(lang, "fewer_than", n=areas.SUPPRESS_BELOW)
    counts = areas.listed_counts(call.service.store, run)
    area_map = areas.neighbourhood_map(
        getattr(call.service.tables, "areas", None), counts, fewer, call.service.tables.addresses
    )
    map_spec = None
    if area_map.projection is not None:
        features = [
            {
                "type": "Feature",
                "geometry": a.geometry,
                "properties": {"code": a.code, "name": a.name, "band": a.band, "shown": a.shown},
            }
            for a in area_map.neighbourhoods
        ]
        map_spec = charts.area_map(
            features, area_map.projection, areas.bands(fewer), text(lang, "listed_addresses")
        )
    runs = list_runs(call.service.store, model_name=run.model_name, limit=AREA_TREND_RUNS)
    if run.run_id not in {r.run_id for r in runs}:
        runs = [run, *runs[:-1]]
    names = areas.area_names(getattr(call.service.tables, "areas", None))
    trends = [
        {"as_of": d, "district": names.get(code, code), "count": n}
        for d, _, code, n in areas.district_trends(call.service.store, runs)
    ]
    distribution = [
        {"as_of": d, "band": b, "count": n}
        for d, _, b, n in areas.score_distribution(call.service.store, runs)
    ]
    call.detail = f"areas of run {run.run_id}"
    return _render(
        call,
        "areas.html",
        run=run,
        runs=runs,
        threshold=areas.SUPPRESS_BELOW,
        area_map=area_map,
        map_spec=map_spec,
        trends=trends,
        trends_spec=charts.district_trends(
            trends, (text(lang, "run_date"), text(lang, "listed_addresses"), text(lang, "district"))
        ),
        distribution=distribution,
        distribution_spec=charts.score_distribution(
            distribution,
            (text(lang, "chance_from"), text(lang, "dwellings"), text(lang, "run_date")),
        ),
        band_width=areas.SCORE_BAND_PCT,
    )


def _render(call: Call, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    return PAGES_RENDER.render(
        template,
        language=call.language,
        base=call.base,
        session=call.session,
        status=status,
        path=call.request.url.path
        + (f"?{call.request.url.query}" if call.request.url.query else ""),
        new_key=lambda: str(uuid.uuid4()),
        **values,
    )


def create_app(provider: StateProvider) -> Starlette:
    """The web app, to be mounted at ``/app`` of the scoring service.

    Parameters
    ----------
    provider
        Returns the service's loaded state, or None while it is starting.
    """

    def page(name: str, function: PageFunction) -> Callable[[Request], Awaitable[Response]]:
        return _page(provider, name, function)

    assert set(LANGUAGES) == set(TEXTS)
    return Starlette(
        routes=[
            Route("/", page("home", home), methods=["GET"]),
            Route("/rows", page("list", rows), methods=["GET"]),
            Route("/export.csv", page("export", export), methods=["GET"]),
            Route("/decision", page("decision", decide), methods=["POST"]),
            Route("/address/{address_id}", page("address", address_page), methods=["GET"]),
            Route("/dossier", page("dossier", dossier_open), methods=["GET"]),
            Route("/dossier/{address_id}", page("dossier", dossier_page), methods=["GET"]),
            Route(
                "/dossier/{address_id}/outcome",
                page("feedback", record_outcome),
                methods=["POST"],
            ),
            Route(
                "/dossier/{address_id}/casefile",
                page("casefile", case_file),
                methods=["POST"],
            ),
            Route("/model", page("model", model_page), methods=["GET"]),
            Route("/areas", page("areas", areas_page), methods=["GET"]),
            Route("/model/docs/{name}", page("model", model_docs), methods=["GET"]),
            Route("/language", page("language", switch_language), methods=["POST"]),
            Route("/logout", page("logout", logout), methods=["POST"]),
            Route("/login", login(provider), methods=["GET", "POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]
    )
