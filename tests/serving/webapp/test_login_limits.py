"""The app's login is held to the API gate's rules: bad-key rate limit and key lock-out."""

from __future__ import annotations

from pathlib import Path

from stratum_ml.serving.auth import Role
from stratum_ml.serving.gate.authentication import KEY_LOCKED, KEY_NOW_LOCKED
from stratum_ml.serving.gate.limits import RateLimiter
from stratum_ml.serving.key_lockout import is_locked
from stratum_ml.serving.webapp.app import check_login_key
from tests.serving.gate_kit import fake_service


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
