"""The scoring service, end to end: a real ``bentoml serve`` (see ``conftest.server``).

Called with ``bentoml.SyncHTTPClient`` (how another application would) and with
plain HTTP (httpx), to see status codes, headers and raw bodies. The audit-log
test runs last: it checks the records the other tests left behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bentoml
import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from stratum_ml.cli import app
from stratum_ml.serving.audit import read_last, verify_log
from stratum_ml.serving.auth import PERMISSIONS, Endpoint, Role
from stratum_ml.serving.decisions import STORE_COLUMNS, read_decisions
from stratum_ml.serving.launch import LaunchError, preflight, serve, start_service
from stratum_ml.serving.outcomes import read_outcomes
from stratum_ml.store import Store, open_store

if TYPE_CHECKING:
    from tests.serving.conftest import Server

pytestmark = [
    pytest.mark.slow,
    # bentoml 1.4.40's own deprecation warnings: its bento build config uses pathspec's
    # "gitwildmatch" patterns, its client a pydantic 2.11 hook
    pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The `__get_pydantic_core_schema__`:DeprecationWarning"),
]

AUDIT_VALUES = ("female", "male", "outside_europe", "europe_other", "netherlands")
STAY_FIELDS = {"person_id", "surname_key", "birth_year", "registered_from", "registered_until"}


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def store(server: Server) -> Iterator[Store]:
    """The service's operational store, opened beside it (as a second worker would)."""
    opened = open_store(server.store_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module")
def places(server: Server) -> dict[str, Any]:
    """Addresses to ask about: the busiest dwelling, a non-dwelling, an unknown id."""
    addresses = pd.read_parquet(server.sources / "addresses.parquet")
    registrations = pd.read_parquet(server.sources / "registrations.parquet")
    dwellings = addresses.loc[addresses["use_purpose"] == "woonfunctie", "address_id"]
    busiest = registrations.loc[
        registrations["address_id"].isin(dwellings)
        & (registrations["registered_from"] < server.as_of)
    ]["address_id"].value_counts()
    other = addresses.loc[addresses["use_purpose"] != "woonfunctie", "address_id"]
    return {
        "dwelling": str(busiest.index[0]),
        "dwellings": [str(a) for a in busiest.index[:5]],
        "more_dwellings": [str(a) for a in busiest.index[5:12]],
        "non_dwelling": str(other.iloc[0]),
        "unknown": "0479019999999999",
        "n_addresses": len(addresses),
    }


def client_for(server: Server, role: Role) -> bentoml.SyncHTTPClient:
    return bentoml.SyncHTTPClient(server.url, token=server.keys[role], timeout=60)


def post(
    http: httpx.Client,
    path: str,
    body: Any,
    key: str | None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = dict(headers or {})
    if key is not None:
        sent.setdefault("Authorization", f"Bearer {key}")
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent.setdefault("Content-Type", "application/json")
    return http.post(path, content=content, headers=sent)


def assert_clean_error(response: httpx.Response, status: int, *fragments: str) -> None:
    """A 4xx JSON error that says what is wrong, with no trace of the server's internals."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    for fragment in fragments:
        assert fragment in body["error"], body["error"]
    assert "Traceback" not in response.text and 'File "' not in response.text


# --------------------------------------------------------------------------- endpoints


def test_public_endpoints_and_openapi(server: Server, http: httpx.Client) -> None:
    for path in ("/readyz", "/livez", "/healthz", "/metrics"):
        assert http.get(path).status_code == 200, path
    spec = http.get("/docs.json").json()
    for endpoint in Endpoint:
        assert f"/{endpoint.value}" in spec["paths"]
    schemas = spec["components"]["schemas"]
    score_request = next(v for k, v in schemas.items() if k.startswith("ScoreRequest"))
    assert score_request["additionalProperties"] is False
    assert "as_of" in score_request["properties"]
    assert "scoring date" in score_request["properties"]["as_of"]["description"]


def test_score_by_id_reports_unknown_ids_per_id(server: Server, places: dict[str, Any]) -> None:
    asked = [*places["dwellings"], places["non_dwelling"], places["unknown"], "not-an-id"]
    with client_for(server, Role.APPLICATION) as client:
        answer = client.score({"address_ids": asked, "language": "nl"})
    assert answer["model_version"] == server.model_version
    assert answer["scored_as_of"] == server.as_of.isoformat()
    assert [r["address_id"] for r in answer["results"]] == places["dwellings"]
    for result in answer["results"]:
        assert 0.0 <= result["probability"] <= 1.0
        assert 1 <= result["rank"] <= answer["population_size"]
        assert 0.0 < result["percentile"] <= 100.0
        assert len(result["reasons"]) <= 3
        assert all("risico" in r["text"] for r in result["reasons"])  # Dutch
    # by position; a malformed id is not repeated (issue 11.1)
    n = len(places["dwellings"])
    unknown = {u["position"]: (u["address_id"], u["reason"]) for u in answer["unknown"]}
    assert set(unknown) == {n, n + 1, n + 2}
    assert unknown[n][0] == places["non_dwelling"] and "not a dwelling" in unknown[n][1]
    assert unknown[n + 1][0] == places["unknown"]
    assert "not in the address register" in unknown[n + 1][1]
    assert unknown[n + 2][0] is None and "16 digits" in unknown[n + 2][1]
    assert "not-an-id" not in json.dumps(answer)


def test_score_as_of_must_be_the_loaded_date(
    server: Server, http: httpx.Client, places: dict[str, Any]
) -> None:
    key, ids = server.keys[Role.ANALYST], [places["dwelling"]]
    same = post(http, "/score", {"address_ids": ids, "as_of": str(server.as_of)}, key)
    assert same.status_code == 200
    other = post(http, "/score", {"address_ids": ids, "as_of": "2026-06-01"}, key)
    assert_clean_error(other, 422, server.as_of.isoformat(), "another date")
    assert "2026-06-01" not in other.text  # the date sent is not repeated (issue 11.1)


def test_explain_adds_up_in_log_odds_and_rows_score_alike(
    server: Server, places: dict[str, Any]
) -> None:
    address = places["dwelling"]
    with client_for(server, Role.ANALYST) as client:
        explained = client.explain({"address_id": address})
        by_id = client.score({"address_ids": [address]})["results"][0]
        model = client.model({})
        contributions = explained["contributions"]
        assert [c["feature"] for c in contributions] != []
        assert {c["feature"] for c in contributions} == set(model["features"])
        total = explained["bias_log_odds"] + sum(c["contribution_log_odds"] for c in contributions)
        assert total == pytest.approx(explained["raw_score_log_odds"], abs=1e-6)
        assert "log-odds" in explained["note"]
        sizes = [abs(c["contribution_log_odds"]) for c in contributions]
        assert sizes == sorted(sizes, reverse=True)
        assert explained["probability"] == pytest.approx(by_id["probability"])
        # the same features, sent as a ready-made row, get the same probability
        row = {c["feature"]: c["value"] for c in contributions}
        rows = client.score({"rows": [row, row]})["rows"]
    assert [r["row"] for r in rows] == [0, 1]
    assert rows[0]["probability"] == pytest.approx(by_id["probability"])
    assert rows[0]["raw_score_log_odds"] == pytest.approx(by_id["raw_score_log_odds"])


def test_priority_list_filters_and_holds_no_person_data(server: Server, http: httpx.Client) -> None:
    with client_for(server, Role.ANALYST) as client:
        top = client.priority_list({"k": 10})
        ranks = [item["rank"] for item in top["items"]]
        assert ranks == list(range(1, 11))
        district = top["items"][0]["district"]
        floor = top["items"][4]["probability"]
        filtered = client.priority_list(
            {"k": 5, "district": district, "min_score": floor, "theme": "household"}
        )
    assert filtered["filters"]["district"] == district
    for item in filtered["items"]:
        assert item["district"] == district
        assert item["probability"] >= floor
        assert item["reasons"][0]["theme"] == "household"
    text = json.dumps(top)
    assert "person_id" not in text and "surname_key" not in text and "owner_id" not in text


def test_dossier_contents_and_no_protected_attributes(
    server: Server, http: httpx.Client, places: dict[str, Any]
) -> None:
    address = places["dwelling"]
    response = post(http, "/dossier", {"address_id": address}, server.keys[Role.CASE_HANDLER])
    assert response.status_code == 200, response.text
    dossier = response.json()
    assert dossier["as_of"] == server.as_of.isoformat()
    assert dossier["registrations"], "the busiest dwelling has registrations"
    assert all(set(stay) == STAY_FIELDS for stay in dossier["registrations"])
    as_of = server.as_of.isoformat()
    assert all(stay["registered_from"] < as_of for stay in dossier["registrations"])
    assert all(visit["inspected_at"] < as_of for visit in dossier["visits"])
    assert dossier["water_usage"] and dossier["ownership"]
    assert dossier["n_linked_addresses"] >= len(dossier["linked_addresses"])
    # the residents do have protected attributes; none of them reaches the dossier
    protected = pd.read_parquet(server.sources / "audit_attributes.parquet")
    persons = {stay["person_id"] for stay in dossier["registrations"]}
    theirs = protected.loc[protected["person_id"].isin(persons)]
    assert len(theirs) > 0
    assert {"female", "male"} & set(theirs["gender"].astype(str))
    text = response.text
    assert "gender" not in text and "birth_country" not in text
    for value in AUDIT_VALUES:
        assert f'"{value}"' not in text, value
    handler = server.keys[Role.CASE_HANDLER]
    unknown = post(http, "/dossier", {"address_id": places["unknown"]}, handler)
    assert_clean_error(unknown, 404, places["unknown"])


def test_feedback_round_trip(
    server: Server, http: httpx.Client, places: dict[str, Any], store: Store
) -> None:
    visit = {
        "address_id": places["dwellings"][1],
        "inspected_at": "2026-11-20",
        "reason": "risk_model",
        "outcome": "violation",
        "violation_type": "illegal_room_rental",
    }
    with client_for(server, Role.CASE_HANDLER) as client:
        stored = client.feedback(visit)
    assert stored["inspection_id"].startswith("svc-")
    outcomes = read_outcomes(store, provenance=True)
    row = outcomes.loc[outcomes["inspection_id"] == stored["inspection_id"]].iloc[0]
    assert row["address_id"] == visit["address_id"]
    assert row["inspected_at"] == pd.Timestamp("2026-11-20")
    assert (row["reason"], row["outcome"]) == ("risk_model", "violation")
    assert row["violation_type"] == "illegal_room_rental"
    assert row["recorded_by"] == server.key_ids[Role.CASE_HANDLER]
    again = post(http, "/feedback", visit, server.keys[Role.CASE_HANDLER])
    assert_clean_error(again, 409, stored["inspection_id"])
    assert len(read_outcomes(store)) == len(outcomes)
    # an old store edited against the contract: tests/store/test_legacy_csv.py


def test_feedback_retried_with_an_idempotency_key_is_stored_once(
    server: Server, http: httpx.Client, places: dict[str, Any], store: Store
) -> None:
    handler = server.keys[Role.CASE_HANDLER]
    visit = {
        "address_id": places["more_dwellings"][5],
        "inspected_at": "2026-10-30",
        "reason": "report",
        "outcome": "no_violation",
    }
    key = {"Idempotency-Key": "feedback-retry-test-1"}
    before = len(read_outcomes(store))
    first = post(http, "/feedback", visit, handler, key)
    retried = post(http, "/feedback", visit, handler, key)
    assert (first.status_code, retried.status_code) == (200, 200), retried.text
    assert retried.json()["inspection_id"] == first.json()["inspection_id"]
    assert (first.json()["replayed"], retried.json()["replayed"]) == (False, True)
    assert len(read_outcomes(store)) == before + 1
    other = post(http, "/feedback", {**visit, "inspected_at": "2026-10-29"}, handler, key)
    assert_clean_error(other, 422, "Idempotency-Key was already used")
    bad = post(http, "/feedback", visit, handler, {"Idempotency-Key": "x" * 256})
    assert_clean_error(bad, 422, "Idempotency-Key: must be 1 to 255")


def test_model_endpoint(server: Server) -> None:
    with client_for(server, Role.APPLICATION) as client:
        info = client.model({})
    assert info["version"] == server.model_version
    assert info["alias"] == "champion"
    assert info["trained_from"] and info["trained_until"]
    assert info["trained_until"] < server.as_of.isoformat()
    assert info["honest_precision"]
    for est in info["honest_precision"]:
        assert est["ci_low"] <= est["estimate"] <= est["ci_high"]
    assert info["fairness"]["passed"] is True
    assert info["model_card_markdown"].startswith("# Model card")
    assert info["max_batch_size"] == 1000


def test_summary_counts_the_top_k_and_withholds_small_counts(server: Server) -> None:
    with client_for(server, Role.ANALYST) as client:
        summary = client.summary({})
        listed = client.priority_list({"k": 250, "n_reasons": 1})["items"]
        small = client.summary({"k": 15, "level": "neighbourhood"})
    assert (summary["k"], summary["n_in_top_k"]) == (250, 250)
    assert summary["model_version"] == server.model_version
    assert summary["scored_as_of"] == server.as_of.isoformat()
    minimum = summary["min_cell_count"]
    assert minimum == 10
    areas = summary["areas"]
    assert {a["level"] for a in areas} == {"district", "neighbourhood"}
    for level in ("district", "neighbourhood"):
        mine = [a for a in areas if a["level"] == level]
        true_top = pd.Series([item[level] for item in listed]).value_counts()
        # every dwelling of the top k falls in a listed area: the areas add up to k
        assert set(true_top.index) <= {a["code"] for a in mine}
        assert int(true_top.sum()) == summary["n_in_top_k"]
        shown = [a for a in mine if a["n_in_top_k"] is not None]
        assert sum(a["n_in_top_k"] for a in shown) <= summary["n_in_top_k"]
        for area in mine:
            count = int(true_top.get(area["code"], 0))
            if area["n_in_top_k"] is None:
                assert area["suppressed"] is True
            else:
                assert area["n_in_top_k"] == count >= minimum
            if count < minimum:
                assert area["n_in_top_k"] is None
            if area["n_scored"] is None:
                assert area["mean_probability"] is None and area["suppressed"] is True
            else:
                assert area["n_scored"] >= minimum
                assert 0.0 < area["mean_probability"] < 1.0
        withheld = [a for a in mine if a["n_in_top_k"] is None]
        assert len(withheld) != 1 or len(mine) == 1  # one withheld count is recoverable
        scored = [a["n_scored"] for a in mine]
        if None not in scored:
            assert sum(scored) == summary["population_size"]
    assert {a["level"] for a in small["areas"]} == {"neighbourhood"}
    assert any(a["suppressed"] and a["n_in_top_k"] is None for a in small["areas"])
    assert all(a["n_in_top_k"] is None or a["n_in_top_k"] >= minimum for a in small["areas"])
    text = json.dumps([summary, small])
    assert not re.search(r'"[0-9]{16}"', text), "the summary names no address"


def test_decision_round_trip(server: Server, places: dict[str, Any], store: Store) -> None:
    address = places["dwellings"][0]
    before = len(read_decisions(store))
    body = {
        "address_id": address,
        "decision": "pass_on_for_visit",
        "reason": "signals_several_sources",
        "note": "water use far above the registered household; two reports",
        "language": "nl",
    }
    with client_for(server, Role.ANALYST) as client:
        stored = client.decision(body)
        scored = client.score({"address_ids": [address]})["results"][0]
    assert stored["decision_id"].startswith("dec-")
    assert stored["reasons"] and all("risico" in r["text"] for r in stored["reasons"])
    decisions = read_decisions(store)
    assert len(decisions) == before + 1
    assert list(decisions.columns) == list(STORE_COLUMNS)
    row = decisions.iloc[-1]
    assert row["decision_id"] == stored["decision_id"]
    assert (row["address_id"], row["decision"]) == (address, "pass_on_for_visit")
    assert (row["reason"], row["note"]) == (body["reason"], body["note"])
    assert row["decided_by"] == server.key_ids[Role.ANALYST]
    assert row["model_version"] == server.model_version
    assert row["scoring_date"] == pd.Timestamp(server.as_of)
    assert row["rank_at_decision"] == scored["rank"] == stored["rank_at_decision"]
    assert row["probability_at_decision"] == pytest.approx(scored["probability"])
    assert row["decided_at"] == pd.Timestamp(stored["decided_at"])
    assert str(row["decided_at"].tz) == "UTC"
    # who decided about which address is in the audit log (the score call came after)
    decided = read_last(server.audit_log, 2)[0]
    assert (decided["endpoint"], decided["address_ids"], decided["status"]) == (
        "decision",
        [address],
        200,
    )
    assert decided["key_id"] == server.key_ids[Role.ANALYST]
    assert (row["role"], row["key_name"]) == ("analyst", "test analyst")
    # the store holds address-level facts only: no key, no person pseudonym
    text = read_decisions(store).to_csv(index=False)
    assert all(key not in text for key in server.keys.values())
    persons = pd.read_parquet(server.sources / "registrations.parquet")["person_id"]
    assert not any(str(p) in text for p in persons.head(500))


def test_decisions_chain_read_back_and_retry_over_http(
    server: Server, http: httpx.Client, places: dict[str, Any]
) -> None:
    analyst, admin = server.keys[Role.ANALYST], server.keys[Role.ADMIN]
    address = places["more_dwellings"][4]
    body = {"address_id": address, "decision": "pass_on_for_visit", "reason": "recent_reports"}
    key = {"Idempotency-Key": "decision-retry-test-1"}
    first = post(http, "/decision", body, analyst, key)
    assert first.status_code == 200, first.text
    first_id = first.json()["decision_id"]
    retried = post(http, "/decision", body, analyst, key)
    assert retried.status_code == 200 and retried.json()["replayed"] is True
    assert retried.json()["decision_id"] == first_id
    # a contradicting decision without naming the open one: 409 with a sentence
    contradicting = {**body, "decision": "decline", "reason": "explained_by_known_situation"}
    refused = post(http, "/decision", contradicting, admin)
    assert_clean_error(refused, 409, f"already has an open decision {first_id}", "supersedes")
    replaced = post(http, "/decision", {**contradicting, "supersedes": first_id}, admin)
    assert replaced.status_code == 200, replaced.text
    second_id = replaced.json()["decision_id"]
    assert replaced.json()["supersedes"] == first_id
    again = post(http, "/decision", {**contradicting, "supersedes": first_id}, analyst)
    assert_clean_error(again, 409, f"already superseded by {second_id}")
    # read back, per address: the chain, who decided, which is open
    history = post(http, "/decisions", {"address_id": address}, analyst)
    assert history.status_code == 200, history.text
    answer = history.json()
    assert answer["open_decision_id"] == second_id
    rows = answer["decisions"]
    assert [d["decision_id"] for d in rows] == [first_id, second_id]
    assert [(d["role"], d["key_name"], d["open"]) for d in rows] == [
        ("analyst", "test analyst", False),
        ("admin", "test admin", True),
    ]
    assert rows[0]["superseded_by"] == second_id
    assert rows[0]["decided_by"] == server.key_ids[Role.ANALYST]
    everything = post(http, "/decisions", {"limit": 1000}, admin).json()
    assert {first_id, second_id} <= {d["decision_id"] for d in everything["decisions"]}
    assert everything["open_decision_id"] is None
    # who read which address's decisions is audited
    read = read_last(server.audit_log, 1)[0]
    assert (read["endpoint"], read["status"]) == ("decisions", 200)
    assert address in read["address_ids"]
    # and the CLI reads the same store
    listed = CliRunner().invoke(
        app,
        ["decisions", "list", "--address", address, "--json"],
        env={"STRATUM_HOME": str(server.home)},
    )
    assert listed.exit_code == 0, listed.output
    assert [d["decision_id"] for d in json.loads(listed.stdout)] == [first_id, second_id]


# --------------------------------------------------------------------------- roles


def _bodies(places: dict[str, Any], role: Role = Role.ANALYST) -> dict[Endpoint, dict[str, Any]]:
    return {
        Endpoint.SCORE: {"address_ids": [places["dwelling"]]},
        Endpoint.PRIORITY_LIST: {"k": 3},
        Endpoint.EXPLAIN: {"address_id": places["dwelling"]},
        Endpoint.DOSSIER: {"address_id": places["dwelling"]},
        Endpoint.FEEDBACK: {
            "address_id": places["dwellings"][2],
            "inspected_at": "2026-10-15",
            "reason": "project",
            "outcome": "no_violation",
        },
        Endpoint.MODEL: {},
        Endpoint.SUMMARY: {"k": 20, "level": "district"},
        Endpoint.DECISION: {
            # one address per role: a second decision on an address must supersede the first
            "address_id": places["more_dwellings"][list(Role).index(role)],
            "decision": "needs_more_information",
            "reason": "other",
            "note": "role matrix test",
        },
        Endpoint.DECISIONS: {"address_id": places["dwelling"]},
        # resuming a model that runs changes nothing: safe to send in the role matrix
        Endpoint.PAUSE: {"action": "resume"},
    }


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_role_matrix(
    server: Server, http: httpx.Client, places: dict[str, Any], role: Role
) -> None:
    for endpoint, body in _bodies(places, role).items():
        response = post(http, f"/{endpoint.value}", body, server.keys[role])
        if endpoint in PERMISSIONS[role]:
            assert response.status_code == 200, (role, endpoint, response.text)
        else:
            assert_clean_error(response, 403, role.value, endpoint.value)


def test_every_endpoint_refuses_missing_and_bad_keys(
    server: Server, http: httpx.Client, places: dict[str, Any]
) -> None:
    analyst = server.keys[Role.ANALYST]
    key_id = server.key_ids[Role.ANALYST]
    bad = {
        "no key": None,
        "not a key": "let-me-in",
        "unknown key": "stk_0123456789abcdef_" + "A" * 43,
        "wrong secret": f"stk_{key_id}_" + "B" * 43,
        "revoked key": server.revoked_key,
    }
    for endpoint, body in _bodies(places).items():
        for name, key in bad.items():
            response = post(http, f"/{endpoint.value}", body, key)
            assert_clean_error(response, 401)
            assert response.status_code == 401, (endpoint, name)
    # the key may also come as X-API-Key; two different keys are refused
    assert post(http, "/model", {}, None, {"X-API-Key": analyst}).status_code == 200
    both = post(http, "/model", {}, analyst, {"X-API-Key": server.keys[Role.ADMIN]})
    assert_clean_error(both, 401)
    # authentication comes before the body is judged
    assert_clean_error(post(http, "/score", b"{not json", None), 401)


# --------------------------------------------------------------------------- bad input

BIG = [f"04790100000{i:05d}" for i in range(1001)]
BAD_INPUTS = [
    # (endpoint, role, body, extra headers, status, fragments of the message)
    ("score", Role.ANALYST, b"{not json", {}, 400, ["not valid JSON"]),
    ("score", Role.ANALYST, b"[1, 2]", {}, 422, ["invalid score request"]),
    ("score", Role.ANALYST, {"address_ids": "0479010000000001"}, {}, 422, ["address_ids"]),
    ("score", Role.ANALYST, {"address_ids": [1, 2]}, {}, 422, ["address_ids.0"]),
    ("score", Role.ANALYST, {"address_ids": ["0479010000000001"], "x": 1}, {}, 422, ["x: Extra"]),
    ("score", Role.ANALYST, {}, {}, 422, ["exactly one of address_ids and rows"]),
    ("score", Role.ANALYST, {"address_ids": []}, {}, 422, ["empty"]),
    ("score", Role.ANALYST, {"address_ids": BIG}, {}, 422, ["1001", "at most 1000"]),
    (
        "score",
        Role.ANALYST,
        {"address_ids": ["0479010000000001"], "as_of": "2026-13-01"},
        {},
        422,
        ["as_of"],
    ),
    ("score", Role.ANALYST, {"rows": [{"floor_area_m2": 50.0}]}, {}, 422, ["missing features"]),
    (
        "score",
        Role.ANALYST,
        {"address_ids": ["0479010000000001"], "n_reasons": "3"},
        {},
        422,
        ["n_reasons"],
    ),
    ("priority_list", Role.ANALYST, {"k": 0}, {}, 422, ["k"]),
    ("priority_list", Role.ANALYST, {"k": 5000}, {}, 422, ["at most 1000"]),
    ("priority_list", Role.ANALYST, {"theme": "astrology"}, {}, 422, ["theme"]),
    ("priority_list", Role.ANALYST, {"district": "Noord"}, {}, 422, ["district"]),
    ("priority_list", Role.ANALYST, {"min_score": 1.5}, {}, 422, ["min_score"]),
    ("summary", Role.ANALYST, {"k": 5000}, {}, 422, ["at most 1000"]),
    ("summary", Role.ANALYST, {"level": "street"}, {}, 422, ["level"]),
    ("summary", Role.ANALYST, {"k": 0}, {}, 422, ["k"]),
    (
        "decision",
        Role.ANALYST,
        {"address_id": "0479010000000001", "decision": "visit", "reason": "r"},
        {},
        422,
        ["decision"],
    ),
    (
        "decision",
        Role.ANALYST,
        {"address_id": "0479010000000001", "decision": "decline"},
        {},
        422,
        ["reason"],
    ),
    (
        "decision",
        Role.ANALYST,
        {
            "address_id": "0479010000000001",
            "decision": "decline",
            "reason": "other",
            "note": "BSN 123456789",
        },
        {},
        422,
        ["note", "person data"],
    ),
    (
        "decision",
        Role.ADMIN,
        {"address_id": "0479019999999999", "decision": "decline", "reason": "recent_reports"},
        {},
        404,
        ["0479019999999999", "not in the address register"],
    ),
    ("explain", Role.ANALYST, {"address_id": "123"}, {}, 422, ["address_id"]),
    ("explain", Role.ANALYST, {"address_id": "0479019999999999"}, {}, 404, ["0479019999999999"]),
    (
        "feedback",
        Role.CASE_HANDLER,
        {
            "address_id": "0479010000000001",
            "inspected_at": "2999-01-01",
            "reason": "report",
            "outcome": "no_violation",
        },
        {},
        422,
        ["in the future"],
    ),
    (
        "feedback",
        Role.CASE_HANDLER,
        {
            "address_id": "0479010000000001",
            "inspected_at": "2026-02-30",
            "reason": "report",
            "outcome": "no_violation",
        },
        {},
        422,
        ["inspected_at"],
    ),
    (
        "feedback",
        Role.CASE_HANDLER,
        {
            "address_id": "0479010000000001",
            "inspected_at": "2026-10-01",
            "reason": "report",
            "outcome": "maybe",
        },
        {},
        422,
        ["outcome"],
    ),
    (
        "feedback",
        Role.CASE_HANDLER,
        {
            "address_id": "0479010000000001",
            "inspected_at": "2026-10-01",
            "reason": "report",
            "outcome": "no_violation",
            "violation_type": "overcrowding",
        },
        {},
        422,
        ["violation_type", "outcome == violation"],
    ),
    (
        "feedback",
        Role.CASE_HANDLER,
        {
            "address_id": "0479019999999999",
            "inspected_at": "2026-10-01",
            "reason": "report",
            "outcome": "no_violation",
        },
        {},
        422,
        ["not in the address register"],
    ),
    ("model", Role.ANALYST, {}, {"Content-Type": "text/plain"}, 415, ["application/json"]),
    ("model", Role.ANALYST, b"x" * (8 * 1024 * 1024 + 1), {}, 413, ["exceeds"]),
]


@pytest.mark.parametrize(
    ("endpoint", "role", "body", "headers", "status", "fragments"),
    BAD_INPUTS,
    ids=[f"{e}-{s}-{i}" for i, (e, _, _, _, s, _) in enumerate(BAD_INPUTS)],
)
def test_bad_input_is_a_clear_4xx(
    server: Server,
    http: httpx.Client,
    endpoint: str,
    role: Role,
    body: Any,
    headers: dict[str, str],
    status: int,
    fragments: list[str],
) -> None:
    response = post(http, f"/{endpoint}", body, server.keys[role], headers)
    assert_clean_error(response, status, *fragments)


def test_wrong_method_is_405(server: Server, http: httpx.Client) -> None:
    response = http.get("/model", headers={"X-API-Key": server.keys[Role.ANALYST]})
    assert_clean_error(response, 405, "POST")


def test_no_answer_without_an_audit_record(server: Server, http: httpx.Client) -> None:
    """If the audit log cannot be written, the caller gets 503 and no data."""
    log, aside = server.audit_log, server.audit_log.with_suffix(".aside")
    log.rename(aside)
    log.mkdir()  # appending to a folder fails, as on a full or broken disk
    try:
        response = post(http, "/model", {}, server.keys[Role.ANALYST])
    finally:
        log.rmdir()
        aside.rename(log)
    assert_clean_error(response, 503, "audit log")
    assert "model_card_markdown" not in response.text
    assert post(http, "/model", {}, server.keys[Role.ANALYST]).status_code == 200


# --------------------------------------------------------------------------- launching


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_refuses_without_a_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Server
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("STRATUM_HOME", str(home))
    runner = CliRunner()
    assert runner.invoke(app, ["keys", "demo"]).exit_code == 0
    with pytest.raises(LaunchError, match="no champion model"):
        serve(server.sources, port=_free_port())


def test_serve_prints_the_url_and_stops_its_server_on_sigterm(server: Server) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATUM_")}
    env.update(STRATUM_HOME=str(server.home), BENTOML_HOME=str(server.home / "bentoml"))
    code = (
        "import datetime, pathlib, sys; from stratum_ml.serving.launch import serve; "
        f"sys.exit(serve(pathlib.Path({str(server.sources)!r}), port={port}, "
        f"as_of=datetime.date.fromisoformat({server.as_of.isoformat()!r})))"
    )
    launcher = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert launcher.stdout is not None
        printed = []
        for line in launcher.stdout:
            printed.append(line)
            if line.startswith("Stop with Ctrl-C"):
                break
        text = "".join(printed)
        assert f"http://127.0.0.1:{port}" in text
        assert f"version {server.model_version}" in text
        assert "/priority_list" in text and "$STRATUM_API_KEY" in text
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(120) == 0
    finally:
        if launcher.poll() is None:
            launcher.kill()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR ignores closed connections lingering in TIME_WAIT but still fails
        # while anything listens on the port: the server is gone, not orphaned
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_preflight_refuses_a_port_in_use(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    monkeypatch.setenv("STRATUM_HOME", str(server.home))
    port = int(server.url.rsplit(":", 1)[1])
    with pytest.raises(LaunchError, match="cannot listen"):
        preflight(server.sources, port=port)


def test_a_failing_worker_stops_the_launch(tmp_path: Path, server: Server) -> None:
    broken = tmp_path / "sources"
    shutil.copytree(server.sources, broken)
    addresses = pd.read_parquet(broken / "addresses.parquet")
    addresses.loc[0, "postcode"] = "not a postcode"
    addresses.to_parquet(broken / "addresses.parquet", index=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATUM_")}
    env.update(STRATUM_HOME=str(server.home), BENTOML_HOME=str(tmp_path / "bentoml"))
    with open(tmp_path / "server.log", "w", encoding="utf-8") as log:
        running = start_service(broken, port=_free_port(), as_of=server.as_of, env=env, log=log)
        with pytest.raises(LaunchError, match="postcode"):
            running.wait_ready(120)
    assert running.process.poll() is not None


# --------------------------------------------------------------------------- audit log (last)


def test_audit_records_every_call_and_detects_tampering(
    server: Server, http: httpx.Client, places: dict[str, Any], tmp_path: Path
) -> None:
    analyst, handler = server.keys[Role.ANALYST], server.keys[Role.CASE_HANDLER]
    a, b = places["dwellings"][0], places["dwellings"][3]
    assert post(http, "/explain", {"address_id": a}, analyst).status_code == 200
    assert post(http, "/dossier", {"address_id": b}, analyst).status_code == 403
    assert post(http, "/dossier", {"address_id": b}, None).status_code == 401
    assert post(http, "/score", {"address_ids": [a], "oops": 1}, handler).status_code == 422
    listed = post(http, "/priority_list", {"k": 4}, analyst).json()["items"]

    records = read_last(server.audit_log, 5)
    analyst_id, handler_id = server.key_ids[Role.ANALYST], server.key_ids[Role.CASE_HANDLER]
    expected = [
        (analyst_id, "analyst", "explain", [a], 200),
        # a refused call records no ids of its body, only its size and keyed hash (11.1)
        (analyst_id, "analyst", "dossier", [], 403),
        (None, None, "dossier", [], 401),
        (handler_id, "case_handler", "score", [], 422),
        (analyst_id, "analyst", "priority_list", [item["address_id"] for item in listed], 200),
    ]
    seen = [(r["key_id"], r["role"], r["endpoint"], r["address_ids"], r["status"]) for r in records]
    assert seen == expected
    assert {r["model_version"] for r in records} == {server.model_version}
    assert "oops" in records[3]["detail"]
    assert all(set(r["body"]) == {"bytes", "hmac"} for r in records[1:4])

    # the whole log (every call of every test) is intact, and no key leaked into it
    result = verify_log(server.audit_log)
    text = server.audit_log.read_text("utf-8")
    assert result.ok, result.reason
    assert result.n_records == len(text.splitlines())
    assert all(key not in text for key in server.keys.values())
    # no call failed inside the service: every answer was deliberate
    assert all(json.loads(line)["status"] < 500 for line in text.splitlines())
    assert "Exception on /" not in (server.home / "server.log").read_text("utf-8")

    # tampering with a copy is detected, at the line that was touched
    lines = text.splitlines(keepends=True)
    edited = tmp_path / "edited.jsonl"
    changed = json.loads(lines[2])
    changed["status"] = 200 if changed["status"] != 200 else 299  # a real change, whatever ran
    edited.write_text("".join([*lines[:2], json.dumps(changed) + "\n", *lines[3:]]), "utf-8")
    assert (verify_log(edited).ok, verify_log(edited).first_bad_line) == (False, 3)
    removed = tmp_path / "removed.jsonl"
    removed.write_text("".join([*lines[:4], *lines[5:]]), "utf-8")
    assert (verify_log(removed).ok, verify_log(removed).first_bad_line) == (False, 5)
    verdict = CliRunner().invoke(app, ["audit", "verify", str(edited)])
    assert verdict.exit_code == 1 and "TAMPERED" in verdict.output
