"""The app's login is held to the API gate's rules: bad-key rate limit and key lock-out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Route

from stratum_ml.serving.auth import Role
from stratum_ml.serving.gate.authentication import KEY_LOCKED, KEY_NOW_LOCKED
from stratum_ml.serving.gate.limits import RATE_LIMITS_FILE, RateLimiter
from stratum_ml.serving.key_lockout import is_locked
from stratum_ml.serving.webapp.app import LOGIN_CSRF_COOKIE, check_login_key, login
from tests.serving.gate_kit import FakeService, TestClient, fake_service


def test_wrong_secrets_at_login_lock_the_key_like_api_calls(tmp_path: Path) -> None:
    service = fake_service(tmp_path, key_lock_after=3, bad_keys_burst=100)
    key_id = service.key_ids[Role.ANALYST]
    wrong = f"stk_{key_id}_" + "B" * 43
    limiter = RateLimiter()
    details = [
        check_login_key(service, wrong, "10.0.0.7", limiter)  # type: ignore[arg-type]
        for _ in range(3)
    ]
    assert [d[0] for d in details] == [None] * 3 and [d[1] for d in details] == [key_id] * 3
    assert details[2][2] == KEY_NOW_LOCKED and is_locked(service.store, key_id)
    principal, _, why = check_login_key(
        service,
        service.secrets[Role.ANALYST],
        "10.0.0.7",
        limiter,  # type: ignore[arg-type]
    )
    assert principal is None and why == KEY_LOCKED  # the right secret too, once locked
    other, _, _ = check_login_key(
        service,
        service.secrets[Role.CASE_HANDLER],
        "10.0.0.7",
        limiter,  # type: ignore[arg-type]
    )
    assert other is not None and other.role is Role.CASE_HANDLER


def test_bad_keys_at_login_empty_the_addresses_bucket(tmp_path: Path) -> None:
    service = fake_service(tmp_path, bad_keys_per_minute=6.0, bad_keys_burst=3)
    limiter = RateLimiter()
    serving = service.serving
    rate = (serving.bad_keys_per_minute / 60.0, serving.bad_keys_burst)
    for _ in range(3):
        assert limiter.peek("bad key", "10.0.0.8", *rate) == 0
        principal, _, _ = check_login_key(service, "stk_nonsense", "10.0.0.8", limiter)  # type: ignore[arg-type]
        assert principal is None
    assert limiter.peek("bad key", "10.0.0.8", *rate) > 0  # the login answers 429 now
    assert limiter.peek("bad key", "10.0.0.9", *rate) == 0  # another address is not held


def _login_client(worker: FakeService) -> TestClient:
    """One worker's login page (its own state and its own login endpoint)."""
    endpoint = login(worker.as_state)
    return TestClient(Starlette(routes=[Route("/login", endpoint, methods=["GET", "POST"])]))


def test_two_workers_count_bad_logins_in_one_bucket(tmp_path: Path) -> None:
    service = fake_service(tmp_path, bad_keys_per_minute=0.6, bad_keys_burst=3)
    # two worker processes: each its own buckets object, on the service's one file
    workers = [
        replace(service, limiter=RateLimiter(path=tmp_path / RATE_LIMITS_FILE)) for _ in "ab"
    ]
    clients = [_login_client(worker) for worker in workers]
    statuses = []
    for attempt in range(5):  # the kernel hands the connections to one worker, then the other
        client = clients[attempt % 2]
        client.get("/login")
        form = {"csrf": client.cookies[LOGIN_CSRF_COOKIE], "key": "stk_nonsense"}
        statuses.append(client.post("/login", data=form).status_code)
    assert statuses == [401, 401, 401, 429, 429]  # three wrong keys in all, not three each
