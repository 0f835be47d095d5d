"""``Settings``: the environment table, secret keys, cookie prefixes, and masking."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

import pytest

from stickyctx import ConfigError, Settings
from stickyctx.core.nodes import NodeSpec
from stickyctx.settings import ENV_VARIABLES, MIN_KEY_BYTES, Secret
from tests.conftest import KEY_A, KEY_B, make_settings

# A value shaped like a leaked credential: it must never appear in an error message.
LEAK = "sk-LEAK-9f27c1e0b4"
BASE = {"STICKYCTX_SECRET_KEYS": KEY_A, "STICKYCTX_NODE_ID": "n1"}
HASH = {"STICKYCTX_HASH_KEY": "h" * 40}


def env(**variables: str) -> dict[str, str]:
    return {**BASE, **{"STICKYCTX_" + name: value for name, value in variables.items()}}


# Every variable, a good value, the field it sets and what it becomes (plus what else it needs).
GOOD: list[tuple[str, str, str, Any, dict[str, str]]] = [
    ("SECRET_KEYS", f" {KEY_A} , {KEY_B} ", "secret_keys", (Secret(KEY_A), Secret(KEY_B)), {}),
    ("DEV", "yes", "dev", True, {}),
    ("NODE_ID", " n2 ", "node_id", "n2", {}),
    ("NODES", "n1=10.0.0.1:8000, n2", "nodes",
     (NodeSpec("n1", "10.0.0.1:8000"), NodeSpec("n2")), {}),
    ("STORE_URL", "redis://127.0.0.1:6390/2", "store_url", "redis://127.0.0.1:6390/2", HASH),
    ("NAMESPACE", "tenant-7", "namespace", "tenant-7", {}),
    ("IDLE_TTL", "60", "idle_ttl", 60, {}),
    ("ABSOLUTE_TTL", "3600", "absolute_ttl", 3600, {}),
    ("TOKEN_BUDGET", "4000", "token_budget", 4000, {}),
    ("RESPONSE_RESERVE", "500", "response_reserve", 500, {}),
    ("ENCODING", "o200k_base", "encoding", "o200k_base", {}),
    ("MODEL", "gpt-4o", "model", "gpt-4o", {}),
    ("PRUNING", "Summarize", "pruning", "summarize", {}),
    ("EVICTION", "TURN", "eviction", "turn", {}),
    ("LOW_WATER", "0.5", "low_water", 0.5, {}),
    ("SUMMARIZER", "pkg.mod:summarize", "summarizer", "pkg.mod:summarize", {}),
    ("SUMMARY_BUDGET", "900", "summary_budget", 900, {}),
    ("SUMMARY_STORAGE", "delete", "summary_storage", "delete", {}),
    ("MAX_SESSION_TOKENS", "100000", "max_session_tokens", 100_000, {}),
    ("MAX_SESSION_BYTES", "2000000", "max_session_bytes", 2_000_000, {}),
    ("BALANCE_FACTOR", "0.5", "balance_factor", 0.5, {}),
    ("COOKIE_NAME", "sid", "cookie_name", "sid", {}),
    ("ROUTE_COOKIE", "route", "route_cookie", "route", {}),
    ("COOKIE_SECURE", "off", "cookie_secure", False, {}),
    ("COOKIE_SAMESITE", "Strict", "cookie_samesite", "strict", {}),
    ("COOKIE_DOMAIN", "example.com", "cookie_domain", "example.com", {}),
    ("COOKIE_PATH", "/app", "cookie_path", "/app", {}),
    ("COOKIE_PARTITIONED", "yes", "cookie_partitioned", True, {}),
    ("COOKIE_PERSISTENT", "0", "cookie_persistent", False, {}),
    ("COOKIE_ISSUE", "Eager", "cookie_issue", "eager", {}),
    ("EXCLUDE_PATHS", "/healthz, /static/", "exclude_paths", ("/healthz", "/static/"), {}),
    ("ENCRYPTION_KEY", "e" * 44, "encryption_key", Secret("e" * 44), {}),
    ("HASH_KEY", "h" * 40, "hash_key", Secret("h" * 40), {}),
    ("MEMORY_MAX_SESSIONS", "50", "memory_max_sessions", 50, {}),
    ("STORE_TIMEOUT", "2.5", "store_timeout", 2.5, {}),
    ("STORE_REPLICAS", "1", "store_replicas", 1, {}),
    ("HOT_SESSIONS", "0", "hot_sessions", 0, {}),
    ("STALE_READS", "yes", "stale_reads", True, {}),
    ("COLD_URL", "postgresql://db.internal/app", "cold_url", "postgresql://db.internal/app",
     {**HASH, "STICKYCTX_STORE_URL": "redis://127.0.0.1:6390/2"}),
    ("COLD_AFTER", "900", "cold_after", 900, {}),
    ("HEARTBEAT_INTERVAL", "0.5", "heartbeat_interval", 0.5, {}),
    ("ADVERTISE", "10.0.0.1:8000", "advertise", "10.0.0.1:8000", {}),
    ("TURN_LOCK", "manual", "turn_lock", "manual", {}),
    ("TURN_TIMEOUT", "0", "turn_timeout", 0.0, {}),
    ("TURN_LEASE_TTL", "30", "turn_lease_ttl", 30.0, {}),
    ("ROTATION_GRACE", "2.5", "rotation_grace", 2.5, {}),
    ("USER_TTL", "86400", "user_ttl", 86400, {}),
    ("MEMORY_TOKENS", "500", "memory_tokens", 500, {}),
    ("IDEMPOTENCY_HEADER", "", "idempotency_header", "", {}),  # empty: the feature is off
    ("STREAM_TTL", "60", "stream_ttl", 60.0, {}),
    ("STREAM_ON_DISCONNECT", "Cancel", "stream_on_disconnect", "cancel", {}),
    ("STREAM_DISCONNECT_GRACE", "120", "stream_disconnect_grace", 120.0, {}),
    ("MAX_MESSAGE_BYTES", "2048", "max_message_bytes", 2048, {}),
    ("INFERENCE_ROUTER", " SGLang ", "inference_router", "sglang", {}),
    ("INFERENCE_HEADER", " x-user-id ", "inference_header", "x-user-id",
     {"STICKYCTX_INFERENCE_ROUTER": "vllm"}),
    ("AUDIT", " On ", "audit", ("otel",), {}),
]

# Every variable that has an invalid value, that value (each carries LEAK), and what else it needs.
BAD: list[tuple[str, str, dict[str, str]]] = [
    ("SECRET_KEYS", LEAK, {}),  # shorter than MIN_KEY_BYTES
    ("HASH_KEY", LEAK, {}),  # shorter than MIN_KEY_BYTES
    ("IDEMPOTENCY_HEADER", LEAK + " x", {}),  # not a header name
    ("DEV", LEAK, {}),
    ("NODE_ID", LEAK + "!", {}),
    ("NODES", f"n1,{LEAK}!", {}),
    ("STORE_URL", f"ftp://user:{LEAK}@host", {}),
    ("NAMESPACE", LEAK + ":x", {}),
    ("IDLE_TTL", LEAK, {}),
    ("ABSOLUTE_TTL", LEAK, {}),
    ("TOKEN_BUDGET", LEAK, {}),
    ("RESPONSE_RESERVE", LEAK, {}),
    ("PRUNING", LEAK, {}),
    ("EVICTION", LEAK, {}),
    ("LOW_WATER", LEAK, {}),
    ("SUMMARY_BUDGET", LEAK, {}),
    ("SUMMARY_STORAGE", LEAK, {}),
    ("MAX_SESSION_TOKENS", LEAK, {}),
    ("MAX_SESSION_BYTES", LEAK, {}),
    ("BALANCE_FACTOR", LEAK, {}),
    ("COOKIE_NAME", LEAK + ";", {}),
    ("ROUTE_COOKIE", LEAK + ";", {}),
    ("COOKIE_SECURE", LEAK, {}),
    ("COOKIE_SAMESITE", LEAK, {}),
    ("COOKIE_DOMAIN", LEAK + ";", {}),
    ("COOKIE_PATH", LEAK, {}),
    ("COOKIE_PARTITIONED", LEAK, {}),
    ("COOKIE_PERSISTENT", LEAK, {}),
    ("COOKIE_ISSUE", LEAK, {}),
    ("EXCLUDE_PATHS", LEAK, {}),
    ("MEMORY_MAX_SESSIONS", LEAK, {}),
    ("STORE_TIMEOUT", LEAK, {}),
    ("STORE_REPLICAS", LEAK, {}),
    ("HOT_SESSIONS", LEAK, {}),
    ("STALE_READS", LEAK, {}),
    ("COLD_URL", f"redis://user:{LEAK}@host", {}),
    ("COLD_AFTER", LEAK, {}),
    ("HEARTBEAT_INTERVAL", LEAK, {}),
    ("ADVERTISE", LEAK, {}),  # not host:port
    ("TURN_LOCK", LEAK, {}),
    ("TURN_TIMEOUT", LEAK, {}),
    ("TURN_LEASE_TTL", LEAK, {}),
    ("ROTATION_GRACE", "301", {}),
    ("USER_TTL", LEAK, {}),
    ("MEMORY_TOKENS", LEAK, {}),
    ("STREAM_TTL", "0", {}),
    ("STREAM_ON_DISCONNECT", LEAK, {}),
    ("STREAM_DISCONNECT_GRACE", "-1", {}),
    ("MAX_MESSAGE_BYTES", LEAK, {}),
    ("INFERENCE_ROUTER", LEAK, {}),
    ("INFERENCE_HEADER", LEAK + " x", {"STICKYCTX_INFERENCE_ROUTER": "vllm"}),
    ("AUDIT", LEAK, {}),
]

# Variables any value of which Settings accepts; where they are checked instead.
NOT_CHECKED_BY_SETTINGS = {
    "ENCODING": "loading the tokenizer (test_tokenizer.py)",
    "MODEL": "loading the tokenizer (test_tokenizer.py)",
    "SUMMARIZER": "importing the summarizer when the engine starts",
    "ENCRYPTION_KEY": "the encryption layer",
}

# Each variable sets the field of its own name; these are the ones that hold a float.
FIELD_TYPES = {f.name: f.type for f in fields(Settings)}
FLOATS = [v.removeprefix("STICKYCTX_") for v in ENV_VARIABLES
          if FIELD_TYPES[v.removeprefix("STICKYCTX_").lower()] in ("float", "float | None")]


def test_the_tables_cover_every_variable() -> None:
    """A new variable must be added to GOOD, and to BAD or NOT_CHECKED_BY_SETTINGS, here."""
    variables = {"STICKYCTX_" + name for name, *_ in GOOD}
    assert variables == set(ENV_VARIABLES)
    assert len(GOOD) == len(variables)
    checked = {"STICKYCTX_" + name for name, _, _ in BAD}
    assert checked.isdisjoint("STICKYCTX_" + n for n in NOT_CHECKED_BY_SETTINGS)
    assert checked | {"STICKYCTX_" + n for n in NOT_CHECKED_BY_SETTINGS} == set(ENV_VARIABLES)
    assert {name for name, _, field, _, _ in GOOD if field != name.lower()} == set()
    assert len(FLOATS) >= 5


@pytest.mark.parametrize(
    ("variable", "raw", "name", "expected", "extra"),
    [pytest.param(*row, id=row[0]) for row in GOOD],
)
def test_every_variable_is_parsed(
    variable: str, raw: str, name: str, expected: Any, extra: dict[str, str]
) -> None:
    settings = Settings.from_env({**env(**{variable: raw}), **extra})
    assert getattr(settings, name) == expected
    assert getattr(Settings.from_env(BASE), name) != expected  # the default is something else


@pytest.mark.parametrize(
    ("variable", "raw", "extra"), [pytest.param(*row, id=row[0]) for row in BAD]
)
def test_a_bad_value_names_its_variable_and_is_never_echoed(
    variable: str, raw: str, extra: dict[str, str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**env(**{variable: raw}), **extra})
    error = caught.value
    assert error.variable == "STICKYCTX_" + variable
    assert str(error).startswith(error.variable + ": ")
    for text in (str(error), repr(error), error.reason, repr(error.args)):
        assert LEAK not in text
    assert error.__cause__ is None
    assert error.__context__ is None or LEAK not in str(error.__context__)
    assert isinstance(error, ValueError)


@pytest.mark.parametrize("variable", FLOATS)
@pytest.mark.parametrize("raw", ["nan", "inf", "-inf"])
def test_a_number_must_be_finite(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env(**{variable: raw}))
    assert caught.value.variable == "STICKYCTX_" + variable


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        pytest.param({"IDLE_TTL": "0"}, "IDLE_TTL", id="idle-zero"),
        pytest.param({"IDLE_TTL": "100", "ABSOLUTE_TTL": "50"}, "ABSOLUTE_TTL",
                     id="absolute-below-idle"),
        pytest.param({"TOKEN_BUDGET": "0"}, "TOKEN_BUDGET", id="budget-zero"),
        pytest.param({"TOKEN_BUDGET": "100", "RESPONSE_RESERVE": "100"}, "RESPONSE_RESERVE",
                     id="reserve-eats-budget"),
        pytest.param({"LOW_WATER": "1"}, "LOW_WATER", id="low-water-one"),
        pytest.param({"BALANCE_FACTOR": "0"}, "BALANCE_FACTOR", id="balance-zero"),
        pytest.param({"NAMESPACE": "a{b}"}, "NAMESPACE", id="namespace-braces"),
        pytest.param({"COOKIE_NAME": "same", "ROUTE_COOKIE": "same"}, "ROUTE_COOKIE",
                     id="same-cookie-names"),
        pytest.param({"COOKIE_SAMESITE": "none", "COOKIE_SECURE": "0"}, "COOKIE_SAMESITE",
                     id="samesite-none-insecure"),
        pytest.param({"COOKIE_PARTITIONED": "1", "COOKIE_SECURE": "0"}, "COOKIE_PARTITIONED",
                     id="partitioned-insecure"),
        pytest.param({"COOKIE_PARTITIONED": "1", "DEV": "1"}, "COOKIE_PARTITIONED",
                     id="partitioned-in-dev-mode"),
        pytest.param({"EXCLUDE_PATHS": "healthz"}, "EXCLUDE_PATHS", id="exclude-relative"),
        pytest.param({"EXCLUDE_PATHS": "/static/*"}, "EXCLUDE_PATHS", id="exclude-wildcard"),
        pytest.param({"NODES": "n2,n3"}, "NODES", id="nodes-without-this-node"),
        pytest.param({"NODES": "n1,n1"}, "NODES", id="nodes-twice"),
        pytest.param({"STORE_URL": "redis://127.0.0.1:6379/0"}, "HASH_KEY",
                     id="redis-without-hash-key"),
        pytest.param({"ENCODING": "cl100k_base", "MODEL": "gpt-4"}, "ENCODING",
                     id="encoding-and-model"),
        pytest.param({"HOT_SESSIONS": "-1"}, "HOT_SESSIONS", id="hot-negative"),
        pytest.param({"STORE_URL": "postgresql://127.0.0.1/app"}, "HASH_KEY",
                     id="postgres-without-hash-key"),
        pytest.param({"COLD_URL": "postgresql://127.0.0.1/app"}, "COLD_URL",
                     id="cold-tier-without-redis"),
        pytest.param({"STORE_URL": "redis://127.0.0.1:6379/0", "HASH_KEY": "h" * 40,
                      "COLD_URL": "postgresql://127.0.0.1/app", "COLD_AFTER": "1800"},
                     "COLD_AFTER", id="cold-after-not-below-idle-ttl"),
        pytest.param({"TURN_TIMEOUT": "-1"}, "TURN_TIMEOUT", id="turn-timeout-negative"),
    ],
)
def test_inconsistent_values_are_refused(changes: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env(**changes))
    assert caught.value.variable == "STICKYCTX_" + variable


def test_empty_values_mean_the_default() -> None:
    settings = Settings.from_env(env(IDLE_TTL="", COOKIE_NAME="  ", NODES=""))
    default = Settings.from_env(BASE)
    assert (settings.idle_ttl, settings.cookie_name, settings.nodes) == (
        default.idle_ttl, default.cookie_name, default.nodes)


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env(NAMESPACE="from-os").items():
        monkeypatch.setenv(name, value)
    assert Settings.from_env().namespace == "from-os"


# Signing keys ---------------------------------------------------------------------------------

def test_keys_are_a_comma_list_newest_first() -> None:
    settings = Settings.from_env(env(SECRET_KEYS=f"{KEY_B},{KEY_A},"))
    assert [k.reveal() for k in settings.keys] == [KEY_B, KEY_A]


def test_a_single_key_from_the_environment_is_one_key() -> None:
    settings = Settings.from_env(env(SECRET_KEYS=KEY_A))
    assert [k.reveal() for k in settings.keys] == [KEY_A]


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(KEY_A, id="plain-str"),
        pytest.param(Secret(KEY_A), id="one-secret"),
        pytest.param([KEY_A], id="list"),
        pytest.param((Secret(KEY_A),), id="tuple-of-secret"),
    ],
)
def test_a_single_key_in_code_is_never_split_into_characters(given: Any) -> None:
    settings = make_settings(secret_keys=given)
    assert settings.keys == (Secret(KEY_A),)


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        pytest.param("k" * (MIN_KEY_BYTES - 1), False, id="one-byte-short"),
        pytest.param("k" * MIN_KEY_BYTES, True, id="exactly-enough"),
        pytest.param("é" * (MIN_KEY_BYTES // 2 - 1), False, id="counted-in-bytes-short"),
        pytest.param("é" * (MIN_KEY_BYTES // 2), True, id="counted-in-bytes-enough"),
    ],
)
def test_keys_shorter_than_the_minimum_are_refused(key: str, ok: bool) -> None:
    if ok:
        assert make_settings(secret_keys=(KEY_A, key)).keys[1].reveal() == key
        return
    with pytest.raises(ConfigError) as caught:
        make_settings(secret_keys=(KEY_A, key))  # an old key too: every key counts
    assert caught.value.variable == "STICKYCTX_SECRET_KEYS"
    assert key not in str(caught.value)


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({"STICKYCTX_NODE_ID": "n1"}, id="unset"),
        pytest.param({"STICKYCTX_NODE_ID": "n1", "STICKYCTX_SECRET_KEYS": " "}, id="empty"),
        pytest.param({"STICKYCTX_NODE_ID": "n1", "STICKYCTX_DEV": "0"}, id="dev-off"),
    ],
)
def test_keys_are_required_outside_development(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(environ)
    assert caught.value.variable == "STICKYCTX_SECRET_KEYS"
    with pytest.raises(ConfigError):
        Settings(node_id="n1")


def test_a_list_of_only_commas_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env(SECRET_KEYS=" , ,"))
    assert caught.value.variable == "STICKYCTX_SECRET_KEYS"


def test_development_mode_without_keys_warns_and_uses_a_random_key() -> None:
    with pytest.warns(RuntimeWarning, match="STICKYCTX_DEV=1"):
        first = Settings.from_env({"STICKYCTX_DEV": "1", "STICKYCTX_NODE_ID": "n1"})
    with pytest.warns(RuntimeWarning, match="random signing key"):
        second = Settings(dev=True, node_id="n1")
    assert len(first.keys) == 1
    assert len(first.keys[0].reveal().encode()) >= MIN_KEY_BYTES
    assert first.keys != second.keys
    assert first.secure_cookies is False
    assert Settings(dev=True, node_id="n1", secret_keys=(KEY_A,)).keys == (Secret(KEY_A),)


def test_secure_cookies_default_on_outside_development() -> None:
    assert make_settings(cookie_secure=None).secure_cookies is True
    assert make_settings(cookie_secure=False).secure_cookies is False
    assert make_settings(dev=True, cookie_secure=True).secure_cookies is True


# Cookie prefixes ------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["cookie_name", "route_cookie"])
def test_a_host_prefixed_cookie_is_accepted_when_secure_at_the_root_without_domain(
    field: str,
) -> None:
    assert getattr(make_settings(**{field: "__Host-sx"}, cookie_secure=True), field) == "__Host-sx"


@pytest.mark.parametrize("field", ["cookie_name", "route_cookie"])
@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"cookie_secure": False}, id="not-secure"),
        pytest.param({"cookie_secure": True, "cookie_domain": "example.com"}, id="domain"),
        pytest.param({"cookie_secure": True, "cookie_path": "/app"}, id="path"),
    ],
)
def test_a_host_prefixed_cookie_needs_secure_root_path_and_no_domain(
    field: str, changes: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_settings(**{field: "__Host-sx"}, **changes)
    expected = "COOKIE_NAME" if field == "cookie_name" else "ROUTE_COOKIE"
    assert caught.value.variable == "STICKYCTX_" + expected
    assert "__Host-" in caught.value.reason


def test_a_secure_prefixed_cookie_needs_secure() -> None:
    with pytest.raises(ConfigError):
        make_settings(cookie_name="__Secure-sx", cookie_secure=False)
    assert make_settings(cookie_name="__Secure-sx", cookie_secure=True,
                         cookie_domain="example.com").cookie_name == "__Secure-sx"


# No secret shows ------------------------------------------------------------------------------

def _secretive() -> Settings:
    return make_settings(secret_keys=(KEY_A, KEY_B), encryption_key=Secret("E" * 40),
                         hash_key=Secret("H" * 40))


def test_masked_settings_show_no_secret() -> None:
    masked = _secretive().masked()
    text = json.dumps(masked)  # plain data all the way down
    for secret in (KEY_A, KEY_B, "E" * 40, "H" * 40):
        assert secret not in text
    assert masked["secret_keys"] == ["<2 key(s) masked>"]
    assert masked["encryption_key"] == "<masked>"
    assert masked["hash_key"] == "<masked>"
    assert masked["node_id"] == "n1"
    assert masked["secure_cookies"] is False


def test_repr_and_str_of_settings_show_no_secret() -> None:
    settings = _secretive()
    for text in (repr(settings), str(settings), repr(settings.keys), str(settings.keys[0])):
        for secret in (KEY_A, KEY_B, "E" * 40, "H" * 40):
            assert secret not in text
    assert "node_id='n1'" in repr(settings)


def test_with_changes_validates_again() -> None:
    settings = make_settings()
    assert settings.with_changes(namespace="other").namespace == "other"
    with pytest.raises(ConfigError):
        settings.with_changes(idle_ttl=0)
