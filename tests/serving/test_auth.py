"""API keys, roles and the permission table (``stratum_ml.serving.auth``)."""

from __future__ import annotations

import itertools
import stat
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stratum_ml.cli import app
from stratum_ml.serving.auth import (
    AuthError,
    Endpoint,
    KeyInfo,
    KeyStore,
    Principal,
    Role,
    authorize,
    bootstrap_demo_keys,
    create_key,
    default_keys_file,
    list_keys,
    revoke_key,
)

# Written out here, not derived from PERMISSIONS, so that a change to the table fails a test.
ALLOWED = {
    Role.ANALYST: {
        "score",
        "priority_list",
        "explain",
        "model",
        "summary",
        "decision",
        "decisions",
    },
    Role.CASE_HANDLER: {"score", "explain", "dossier", "feedback", "model"},
    Role.APPLICATION: {"score", "model"},
    Role.ADMIN: {
        "score",
        "priority_list",
        "explain",
        "model",
        "summary",
        "decision",
        "decisions",
        "pause",
    },
}


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return tmp_path / "state" / "api_keys.json"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def refused(store: KeyStore, headers: dict[str, str]) -> AuthError:
    with pytest.raises(AuthError) as info:
        store.authenticate(headers)
    return info.value


def test_create_and_authenticate_round_trip(keys_file: Path) -> None:
    key_id, key = create_key(keys_file, Role.CASE_HANDLER, "wijkteam noord")
    assert key.startswith(f"stk_{key_id}_")
    store = KeyStore.load(keys_file)
    expected = Principal(key_id=key_id, name="wijkteam noord", role=Role.CASE_HANDLER)
    assert store.authenticate(bearer(key)) == expected
    assert store.authenticate({"X-API-Key": key}) == expected
    assert store.authenticate({"x-api-key": f" {key} "}) == expected
    assert store.authenticate({"authorization": f"bearer {key}"}) == expected
    assert store.authenticate({**bearer(key), "X-API-Key": key}) == expected


def test_keys_are_unique(keys_file: Path) -> None:
    made = [create_key(keys_file, "analyst", f"k{i}") for i in range(5)]
    assert len({key_id for key_id, _ in made}) == len({key for _, key in made}) == 5
    assert [k.key_id for k in list_keys(keys_file)] == [key_id for key_id, _ in made]


def test_wrong_secret_is_401_and_names_the_key_id(keys_file: Path) -> None:
    key_id, key = create_key(keys_file, Role.ANALYST, "a")
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    error = refused(KeyStore.load(keys_file), bearer(wrong))
    assert (error.status, error.detail, error.key_id) == (401, "invalid API key", key_id)


def test_unknown_key_is_401(keys_file: Path, tmp_path: Path) -> None:
    create_key(keys_file, Role.ANALYST, "a")
    _, other = create_key(tmp_path / "other.json", Role.ADMIN, "elsewhere")
    error = refused(KeyStore.load(keys_file), bearer(other))
    assert (error.status, error.key_id) == (401, None)


def test_revoked_key_is_401_in_a_running_store(keys_file: Path) -> None:
    key_id, key = create_key(keys_file, Role.ANALYST, "a")
    _, kept = create_key(keys_file, Role.ANALYST, "b")
    store = KeyStore.load(keys_file)
    assert store.authenticate(bearer(key)).key_id == key_id
    info = revoke_key(keys_file, key_id)
    assert info.revoked_at is not None
    error = refused(store, bearer(key))  # the same store object: no restart needed
    assert (error.status, error.detail, error.key_id) == (
        401,
        "this API key has been revoked",
        key_id,
    )
    assert store.authenticate(bearer(kept)).name == "b"
    assert revoke_key(keys_file, key_id) == info  # revoking again changes nothing


def test_revoke_unknown_key_id(keys_file: Path) -> None:
    create_key(keys_file, Role.ANALYST, "a")
    before = keys_file.read_bytes()
    with pytest.raises(LookupError, match="no key with id"):
        revoke_key(keys_file, "0123456789abcdef")
    assert keys_file.read_bytes() == before


def test_deleted_key_file_refuses_every_key(keys_file: Path) -> None:
    _, key = create_key(keys_file, Role.ADMIN, "a")
    store = KeyStore.load(keys_file)
    keys_file.unlink()
    assert refused(store, bearer(key)).status == 401


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": ""},
        {"X-API-Key": "stk_"},
        {"X-API-Key": "stk_0123456789abcdef_short"},
        {"X-API-Key": "sk_0123456789abcdef_" + "a" * 43},
        {"X-API-Key": "stk_0123456789ABCDEF_" + "a" * 43},
        {"X-API-Key": "stk_0123456789abcdef_" + "a" * 42 + "!"},
        {"X-API-Key": "stk_0123456789abcdef_" + "a" * 44},
    ],
    ids=lambda h: repr(h)[:40],
)
def test_missing_or_malformed_key_is_401(keys_file: Path, headers: dict[str, str]) -> None:
    create_key(keys_file, Role.ADMIN, "a")
    error = refused(KeyStore.load(keys_file), headers)
    assert (error.status, error.key_id) == (401, None)


def test_two_different_keys_in_one_request_is_401(keys_file: Path) -> None:
    _, a = create_key(keys_file, Role.ANALYST, "a")
    _, b = create_key(keys_file, Role.ADMIN, "b")
    error = refused(KeyStore.load(keys_file), {**bearer(a), "X-API-Key": b})
    assert error.status == 401


def test_load_without_key_file_is_an_error(keys_file: Path) -> None:
    with pytest.raises(FileNotFoundError, match="stratum keys"):
        KeyStore.load(keys_file)


def test_invalid_key_file_is_an_error(keys_file: Path) -> None:
    create_key(keys_file, Role.ADMIN, "a")
    keys_file.write_text(keys_file.read_text().replace('"admin"', '"root"'))
    with pytest.raises(ValueError, match="not a valid API key file"):
        KeyStore.load(keys_file)


@pytest.mark.parametrize(("role", "endpoint"), list(itertools.product(Role, Endpoint)))
def test_role_matrix(role: Role, endpoint: Endpoint) -> None:
    principal = Principal(key_id="0123456789abcdef", name="t", role=role)
    if endpoint.value in ALLOWED[role]:
        authorize(principal, endpoint)
    else:
        with pytest.raises(AuthError) as info:
            authorize(principal, endpoint)
        assert (info.value.status, info.value.key_id) == (403, "0123456789abcdef")
        assert role.value in info.value.detail and endpoint.value in info.value.detail


def test_unknown_endpoint_is_a_programming_error() -> None:
    principal = Principal(key_id="0123456789abcdef", name="t", role=Role.ADMIN)
    with pytest.raises(ValueError):
        authorize(principal, "keys")  # type: ignore[arg-type]


def test_key_file_holds_no_secret_and_is_private(keys_file: Path) -> None:
    keys = [create_key(keys_file, role, f"holder {role}")[1] for role in Role]
    keys += bootstrap_demo_keys(keys_file).values()
    revoke_key(keys_file, keys[0].split("_")[1])
    content = keys_file.read_text()
    for key in keys:
        secret = key.split("_", 2)[2]
        assert key not in content and secret not in content
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    assert set(KeyInfo.model_fields) == {"key_id", "name", "role", "created_at", "revoked_at"}


def test_create_key_rejects_bad_input(keys_file: Path) -> None:
    with pytest.raises(ValueError, match="unknown role 'root'"):
        create_key(keys_file, "root", "a")
    for name in ["", "   ", "x" * 101, "line\nbreak"]:
        with pytest.raises(ValueError, match="key name"):
            create_key(keys_file, Role.ANALYST, name)
    assert not keys_file.exists()


def test_bootstrap_demo_keys_one_live_key_per_role(keys_file: Path) -> None:
    first = bootstrap_demo_keys(keys_file)
    second = bootstrap_demo_keys(keys_file)
    store = KeyStore.load(keys_file)
    assert set(second) == set(Role)
    for role in Role:
        assert store.authenticate(bearer(second[role])).role == role
        assert refused(store, bearer(first[role])).detail == "this API key has been revoked"
    live = [k for k in list_keys(keys_file) if k.revoked_at is None]
    assert sorted(k.name for k in live) == sorted(f"demo-{r.value}" for r in Role)


def test_authentication_is_cheap(keys_file: Path) -> None:
    # Every request is checked: a slow KDF here (~100 ms) would dominate the latency.
    _, key = create_key(keys_file, Role.ANALYST, "a")
    store = KeyStore.load(keys_file)
    start = time.perf_counter()
    for _ in range(1000):
        store.authenticate(bearer(key))
    assert time.perf_counter() - start < 1.0


def test_default_keys_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STRATUM_API_KEYS_FILE", raising=False)
    monkeypatch.setenv("STRATUM_HOME", str(tmp_path))
    assert default_keys_file() == tmp_path / "api_keys.json"
    monkeypatch.setenv("STRATUM_API_KEYS_FILE", str(tmp_path / "k.json"))
    assert default_keys_file() == tmp_path / "k.json"


def test_keys_cli(keys_file: Path) -> None:
    runner = CliRunner()
    env = {"STRATUM_API_KEYS_FILE": str(keys_file)}

    created = runner.invoke(app, ["keys", "create", "--role", "analyst", "--name", "ana"], env=env)
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert "shown only once" in created.stderr
    principal = KeyStore.load(keys_file).authenticate(bearer(key))
    assert principal.role == Role.ANALYST

    bad = runner.invoke(app, ["keys", "create", "--role", "root", "--name", "x"], env=env)
    assert bad.exit_code == 2 and "unknown role" in bad.stderr

    listed = runner.invoke(app, ["keys", "list"], env=env)
    assert listed.exit_code == 0
    assert principal.key_id in listed.stdout and "ana" in listed.stdout
    assert key.split("_", 2)[2] not in listed.output

    revoked = runner.invoke(app, ["keys", "revoke", principal.key_id], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert refused(KeyStore.load(keys_file), bearer(key)).status == 401
    unknown = runner.invoke(app, ["keys", "revoke", "0123456789abcdef"], env=env)
    assert unknown.exit_code == 1 and "no key with id" in unknown.stderr

    demo = runner.invoke(app, ["keys", "demo"], env=env)
    assert demo.exit_code == 0, demo.output
    printed = dict(line.split(": ") for line in demo.stdout.strip().splitlines())
    store = KeyStore.load(keys_file)
    assert {store.authenticate(bearer(k)).role.value for k in printed.values()} == set(printed)
    assert set(printed) == {r.value for r in Role}
