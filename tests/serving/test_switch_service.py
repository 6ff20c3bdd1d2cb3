"""The kill switch in the running service (slow: a real ``bentoml serve``, see ``conftest``).

Paused through the endpoint and from the shell, the same running service answers
every list from the fallback ranking at once, says so, shows no probability and
no 5xx; resumed, it answers from the model again. Every test leaves it resumed.
The module sorts after ``test_service.py``, whose audit-log test edits the log's
third line and expects that edit to change it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from stratum_ml.cli import app
from stratum_ml.serving.audit import read_last
from stratum_ml.serving.auth import Role

if TYPE_CHECKING:
    from tests.serving.conftest import Server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The `__get_pydantic_core_schema__`:DeprecationWarning"),
]

REASON = "honest precision fell below current practice in the October check"
FALLBACK = "this list is the fallback ranking (reports in the past year), not the model's."


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture
def resumed(server: Server, http: httpx.Client) -> Iterator[None]:
    """The test starts and ends with the model running."""
    call(http, server, Role.ADMIN, "pause", {"action": "resume", "reason": "end of a test"})
    yield
    answer = call(http, server, Role.ADMIN, "pause", {"action": "resume"})
    assert answer.status_code == 200 and answer.json()["pause"]["paused"] is False


def call(
    http: httpx.Client, server: Server, role: Role, endpoint: str, body: Any
) -> httpx.Response:
    return http.post(
        f"/{endpoint}", json=body, headers={"Authorization": f"Bearer {server.keys[role]}"}
    )


def ok(http: httpx.Client, server: Server, role: Role, endpoint: str, body: Any) -> Any:
    response = call(http, server, role, endpoint, body)
    assert response.status_code == 200, response.text
    return response.json()


def shell(server: Server, *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"STRATUM_HOME": str(server.home)})
    assert result.exit_code == 0, result.output
    return result.output


def assert_model_list(listed: dict[str, Any]) -> None:
    assert (listed["paused"], listed["ranking"], listed["notice"]) == (False, "model", None)
    assert all(item["probability"] is not None and item["reasons"] for item in listed["items"])


def assert_fallback_list(listed: dict[str, Any], by: str, reason: str) -> None:
    assert (listed["paused"], listed["ranking"]) == (True, "fallback")
    notice = listed["notice"]
    assert notice.startswith("The model is paused since ") and f" by {by}" in notice, notice
    assert f": {reason}; {FALLBACK}" in notice, notice
    items = listed["items"]
    assert items and all(
        item["probability"] is None
        and item["raw_score_log_odds"] is None
        and item["reasons"] == []
        and isinstance(item["reports_past_year"], int)
        for item in items
    )
    # most reports first, ties broken by address id
    key = [(-item["reports_past_year"], item["address_id"]) for item in items]
    assert key == sorted(key)


def test_pause_turns_every_list_into_the_fallback_and_resume_back(
    server: Server, http: httpx.Client, resumed: None
) -> None:
    model_list = ok(http, server, Role.ANALYST, "priority_list", {"k": 20})
    assert_model_list(model_list)
    assert ok(http, server, Role.APPLICATION, "model", {})["pause"] == {
        "paused": False,
        "since": None,
        "by": None,
        "reason": None,
    }

    # only an admin may pause; a refused pause changes nothing
    refused = call(http, server, Role.ANALYST, "pause", {"action": "pause", "reason": REASON})
    assert refused.status_code == 403 and "'pause'" in refused.json()["error"]
    bad = call(http, server, Role.ADMIN, "pause", {"action": "pause", "reason": "bad"})
    assert bad.status_code == 422 and "10 to 500 characters" in bad.json()["error"]
    assert ok(http, server, Role.ANALYST, "priority_list", {"k": 20})["ranking"] == "model"

    paused = ok(http, server, Role.ADMIN, "pause", {"action": "pause", "reason": REASON})
    admin = f"key {server.key_ids[Role.ADMIN]} (admin, 'test admin')"
    assert paused["changed"] is True
    assert paused["pause"]["paused"] is True and paused["pause"]["by"] == admin
    assert paused["pause"]["reason"] == REASON
    again = ok(http, server, Role.ADMIN, "pause", {"action": "pause", "reason": "a second reason"})
    assert again["changed"] is False and again["pause"] == paused["pause"]

    # the very next answers are the fallback, said in a field and in words
    fallback = ok(http, server, Role.ANALYST, "priority_list", {"k": 20})
    assert_fallback_list(fallback, admin, REASON)
    assert [i["rank"] for i in fallback["items"]] == list(range(1, 21))
    model_ids = [i["address_id"] for i in model_list["items"]]
    assert [i["address_id"] for i in fallback["items"]] != model_ids
    district = fallback["items"][0]["district"]
    filtered = ok(
        http,
        server,
        Role.ANALYST,
        "priority_list",
        {"k": 5, "district": district, "min_score": 0.5},
    )
    assert_fallback_list(filtered, admin, REASON)
    assert {i["district"] for i in filtered["items"]} == {district}
    assert "The min_score filter need the model and were left out." in filtered["notice"]

    top = fallback["items"][0]
    scored = ok(http, server, Role.APPLICATION, "score", {"address_ids": [top["address_id"], "x"]})
    assert (scored["paused"], scored["ranking"]) == (True, "fallback")
    assert "these ranks are the fallback ranking" in scored["notice"]
    assert scored["results"] == [top]
    # by position; a malformed id is not repeated (issue 11.1)
    assert (scored["unknown"][0]["position"], scored["unknown"][0]["address_id"]) == (1, None)
    rows = call(http, server, Role.APPLICATION, "score", {"rows": [{"floor_area_m2": 50.0}]})
    assert rows.status_code == 409 and "The model is paused since" in rows.json()["error"]
    explained = ok(http, server, Role.ANALYST, "explain", {"address_id": top["address_id"]})
    assert (explained["paused"], explained["rank"], explained["contributions"]) == (True, 1, [])
    assert explained["probability"] is None and explained["bias_log_odds"] is None
    # a decision while paused: answered and stored with the fallback rank, nothing of the model
    before = ok(http, server, Role.ANALYST, "decisions", {"address_id": top["address_id"]})
    decision = {"address_id": top["address_id"], "decision": "needs_more_information"}
    decision |= {"reason": "too_little_information", "supersedes": before["open_decision_id"]}
    decided = ok(http, server, Role.ANALYST, "decision", decision)
    assert (decided["paused"], decided["ranking"], decided["rank_at_decision"]) == (
        True,
        "fallback",
        1,
    )
    assert decided["probability_at_decision"] is None and decided["reasons"] == []
    assert "this rank is the fallback ranking" in decided["notice"]
    history = ok(http, server, Role.ANALYST, "decisions", {"address_id": top["address_id"]})
    assert history["decisions"][-1]["decision_id"] == decided["decision_id"]
    assert history["decisions"][-1]["probability_at_decision"] is None
    summary = ok(http, server, Role.ANALYST, "summary", {"k": 50, "level": "district"})
    assert (summary["paused"], summary["ranking"]) == (True, "fallback")
    assert all(area["mean_probability"] is None for area in summary["areas"])
    shown = [a["n_in_top_k"] for a in summary["areas"] if a["n_in_top_k"] is not None]
    assert sum(shown) <= 50
    info = ok(http, server, Role.CASE_HANDLER, "model", {})
    assert info["pause"]["paused"] is True and info["pause"]["reason"] == REASON
    assert info["pause"]["since"] == paused["pause"]["since"]

    # resumed from the shell: the running service answers from the model at once
    out = shell(server, "resume", "--reason", "the check was rerun and passed")
    assert "resumed by OS user" in out
    assert ok(http, server, Role.ANALYST, "priority_list", {"k": 20}) == model_list
    assert ok(http, server, Role.APPLICATION, "model", {})["pause"]["paused"] is False

    # paused from the shell, resumed over the API
    shell(server, "pause", "--reason", "a second look at the water readings")
    by_shell = ok(http, server, Role.ANALYST, "priority_list", {"k": 20})
    assert_fallback_list(by_shell, "OS user", "a second look at the water readings")
    assert by_shell["items"] == fallback["items"]
    resumed_api = ok(http, server, Role.ADMIN, "pause", {"action": "resume"})
    assert resumed_api["changed"] is True and resumed_api["pause"]["paused"] is False
    assert_model_list(ok(http, server, Role.ANALYST, "priority_list", {"k": 20}))


def test_the_switch_is_audited(server: Server, http: httpx.Client, resumed: None) -> None:
    ok(http, server, Role.ADMIN, "pause", {"action": "pause", "reason": REASON})
    listed = ok(http, server, Role.ANALYST, "priority_list", {"k": 3})
    call(http, server, Role.ANALYST, "pause", {"action": "resume"})
    shell(server, "resume")
    records = read_last(server.audit_log, 4)
    admin_id, analyst_id = server.key_ids[Role.ADMIN], server.key_ids[Role.ANALYST]
    seen = [(r["key_id"], r["role"], r["endpoint"], r["status"]) for r in records]
    assert seen == [
        (admin_id, "admin", "pause", 200),
        (analyst_id, "analyst", "priority_list", 200),
        (analyst_id, "analyst", "pause", 403),
        (None, "admin", "resume", 200),
    ]
    assert records[0]["detail"] == f"pause: {REASON}"
    assert records[1]["detail"] == "answered with the fallback ranking: the model is paused"
    assert records[1]["address_ids"] == [i["address_id"] for i in listed["items"]]
    assert records[3]["detail"].startswith("command line, OS user ")
    # the stored event was announced before it committed (issue 8: no row without a record)
    intent = read_last(server.audit_log, 5)[0]
    assert (intent["endpoint"], intent["status"], intent["key_id"]) == ("pause", 0, admin_id)
    assert intent["detail"].startswith("intent pause-event-")
    text = server.audit_log.read_text("utf-8")
    assert all(json.loads(line)["status"] < 500 for line in text.splitlines())


def test_dwellings_listed_while_paused_match_the_reports(
    server: Server, http: httpx.Client, resumed: None
) -> None:
    ok(http, server, Role.ADMIN, "pause", {"action": "pause", "reason": REASON})
    listed = ok(http, server, Role.ANALYST, "priority_list", {"k": 5})["items"]
    reports = pd.read_parquet(server.sources / "reports.parquet")
    for item in listed:
        mine = pd.to_datetime(
            reports.loc[reports["address_id"] == item["address_id"], "reported_at"]
        )
        ref = pd.Timestamp(server.as_of)
        counted = (mine < ref) & ((ref - mine).dt.days < 365)
        assert item["reports_past_year"] == int(counted.sum())
