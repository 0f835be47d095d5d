"""Signed session tokens: round trip, key rotation, and every way a token can be unusable."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import BadData, URLSafeTimedSerializer

from stickyctx.core.ids import new_session_id
from stickyctx.core.tokens import MAX_TOKEN_BYTES, SessionToken, TokenCodec
from tests.conftest import KEY_A, KEY_B

KEY_C = "c" * 40
SALT = "stickyctx.session.v1"  # part of the token format: a change must be deliberate
DAY = 86400


def forge(payload: Any, key: str = KEY_A, salt: str = SALT) -> str:
    """A token signed exactly like the codec signs, around any payload."""
    serializer = URLSafeTimedSerializer(key, salt=salt,
                                        signer_kwargs={"digest_method": hashlib.sha256})
    token = serializer.dumps(payload)
    assert isinstance(token, str)
    return token


def valid_payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"v": 1, "s": new_session_id(), "o": "n1",
                               "c": int(time.time())}
    payload.update(changes)
    return payload


@pytest.fixture
def codec() -> TokenCodec:
    return TokenCodec([KEY_A], max_age=DAY)


def test_a_signed_token_verifies_to_its_claims(codec: TokenCodec) -> None:
    session_id, now = new_session_id(), time.time()
    token = codec.sign(session_id, "node-1", int(now) - 100)
    claims = codec.verify(token, now)
    assert isinstance(claims, SessionToken)
    assert (claims.session_id, claims.owner, claims.created) == (session_id, "node-1",
                                                                 int(now) - 100)
    assert claims.key_index == 0
    assert abs(claims.signed_at - now) <= 2
    assert token.isascii()
    assert session_id not in token.split(".")[-1]  # the signature is not the id


def test_the_forging_helper_makes_tokens_the_codec_accepts(codec: TokenCodec) -> None:
    """Guards the claim tests below: their tokens differ from real ones only where they say."""
    payload = valid_payload()
    claims = codec.verify(forge(payload), time.time())
    assert claims is not None
    assert claims.session_id == payload["s"]


def test_payloads_are_never_compressed_and_compressed_ones_still_verify(codec: TokenCodec) -> None:
    """Compressed payloads hide the owner from the balancer's pattern; earlier tokens were."""
    now = int(time.time())
    token = codec.sign(new_session_id(), "n" + "0" * 60, now)  # compresses under the default
    assert not token.startswith(".")
    legacy = forge(valid_payload(o="n" + "0" * 60))
    assert legacy.startswith(".")  # itsdangerous' default compressed it
    claims = codec.verify(legacy, now)
    assert claims is not None
    assert claims.owner == "n" + "0" * 60


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


@settings(max_examples=400, deadline=None)
@given(where=st.integers(0, 10**6), char=st.sampled_from(_ALPHABET), cut=st.booleans(),
       lineage=st.booleans())
def test_a_changed_token_verifies_exactly_when_itsdangerous_accepts_it(
        where: int, char: str, cut: bool, lineage: bool) -> None:
    """The codec checks signatures with itsdangerous' primitives, not its ``loads``: the two
    must agree on every one-character change (or cut) of a real token."""
    codec = TokenCodec([KEY_B, KEY_A], max_age=DAY)  # the token is signed by the older key
    now = int(time.time())
    token = TokenCodec([KEY_A], max_age=DAY).sign(new_session_id(), "n1", now,
                                                  new_session_id() if lineage else None)
    at = where % len(token)
    changed = token[:at] if cut else token[:at] + char + token[at + 1:]
    reference = URLSafeTimedSerializer(KEY_A, salt=SALT,
                                       signer_kwargs={"digest_method": hashlib.sha256})
    try:
        reference.loads(changed)
        accepted = True
    except BadData:
        accepted = False
    claims = codec.verify(changed, now)
    assert (claims is not None) == accepted, changed
    if claims is not None:
        assert claims.key_index == 1


def test_the_newest_key_signs_and_older_keys_still_verify() -> None:
    old = TokenCodec([KEY_B], max_age=DAY)
    rotated = TokenCodec([KEY_A, KEY_B], max_age=DAY)
    newest_only = TokenCodec([KEY_A], max_age=DAY)
    now = time.time()
    session_id = new_session_id()

    before = old.sign(session_id, "n1", int(now))
    claims = rotated.verify(before, now)
    assert claims is not None
    assert claims.session_id == session_id
    assert claims.key_index == 1  # the caller re-signs it

    after = rotated.sign(session_id, "n1", int(now))
    assert old.verify(after, now) is None  # signed with the newest key, not the old one
    fresh = newest_only.verify(after, now)
    assert fresh is not None
    assert fresh.key_index == 0
    assert TokenCodec([KEY_C, KEY_A, KEY_B], max_age=DAY).verify(before, now) is not None
    assert TokenCodec([KEY_C, KEY_A], max_age=DAY).verify(before, now) is None  # retired


def test_a_codec_needs_a_key() -> None:
    with pytest.raises(ValueError, match="key"):
        TokenCodec([], max_age=DAY)


def _mutations(token: str) -> list[Any]:
    payload, _, rest = token.partition(".")
    middle = len(payload) // 2
    flipped = payload[:middle] + ("A" if payload[middle] != "A" else "B") + payload[middle + 1:]
    # Not the last character: it carries two padding bits, so some changes decode the same.
    sig = len(token) - 10
    changed = token[:sig] + ("A" if token[sig] != "A" else "B") + token[sig + 1:]
    return [
        pytest.param(flipped + "." + rest, id="payload-changed"),
        pytest.param(changed, id="signature-changed"),
        pytest.param(token[:-1], id="truncated-by-one"),
        pytest.param(token[: len(token) // 2], id="truncated-by-half"),
        pytest.param(token + "A" * (MAX_TOKEN_BYTES - len(token) + 1), id="oversized"),
        pytest.param(token[:5] + "é" + token[6:], id="non-ascii"),
        pytest.param(token + "\n", id="trailing-newline"),
        pytest.param("", id="empty"),
        pytest.param("...", id="only-dots"),
        pytest.param("not a token", id="garbage"),
    ]


_TOKEN = forge(valid_payload(s="abcdefghijklmnopqrstuvwx"))


@pytest.mark.parametrize("bad", _mutations(_TOKEN))
def test_a_damaged_token_is_refused(codec: TokenCodec, bad: str) -> None:
    assert codec.verify(_TOKEN, time.time()) is not None  # the undamaged token is fine
    assert codec.verify(bad, time.time()) is None


def test_a_token_signed_with_another_salt_or_key_is_refused(codec: TokenCodec) -> None:
    now = time.time()
    assert codec.verify(forge(valid_payload(), salt="itsdangerous"), now) is None
    assert codec.verify(forge(valid_payload(), salt="stickyctx.session.v2"), now) is None
    assert codec.verify(forge(valid_payload(), key=KEY_B), now) is None


def test_an_oversized_token_is_refused_even_with_a_valid_signature(codec: TokenCodec) -> None:
    noise = "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(200))
    token = forge(valid_payload(pad=noise))  # incompressible: the token stays long
    assert len(token) > MAX_TOKEN_BYTES
    assert codec.verify(token, time.time()) is None


def test_a_token_older_than_max_age_is_refused_even_after_a_successful_check() -> None:
    codec = TokenCodec([KEY_A], max_age=3600)
    now = time.time()
    token = codec.sign(new_session_id(), "n1", int(now))
    assert codec.verify(token, now + 3500) is not None  # now in the codec's cache
    assert codec.verify(token, now + 3700) is None


def test_a_token_for_a_session_created_more_than_max_age_ago_is_refused() -> None:
    codec = TokenCodec([KEY_A], max_age=3600)
    now = time.time()
    old_session = codec.sign(new_session_id(), "n1", int(now) - 3700)  # freshly re-signed
    assert codec.verify(old_session, now) is None
    recent = codec.sign(new_session_id(), "n1", int(now) - 3500)
    assert codec.verify(recent, now) is not None


def test_a_token_signed_in_the_future_is_refused(codec: TokenCodec) -> None:
    now = time.time()
    token = codec.sign(new_session_id(), "n1", int(now) - 7200)
    assert codec.verify(token, now - 3600) is None  # signed an hour after the verifier's now
    assert codec.verify(token, now - 10) is not None  # a little clock skew is tolerated


def test_a_creation_time_within_the_clock_skew_is_accepted(codec: TokenCodec) -> None:
    # (The cases below refuse a creation time in the future: this one is what they allow.)
    assert codec.verify(forge(valid_payload(c=int(time.time()) + 30)), time.time()) is not None
    with_lineage = valid_payload(l="L" * 22)
    assert codec.verify(forge(with_lineage), time.time()) is not None  # every known field


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"s": "too-short"}, id="id-too-short"),
        pytest.param({"s": "a" * 23 + ":"}, id="id-with-colon"),
        pytest.param({"s": "a" * 25}, id="id-too-long"),
        pytest.param({"s": 12345}, id="id-not-a-string"),
        pytest.param({"s": None}, id="id-null"),
        pytest.param({"o": ""}, id="owner-empty"),
        pytest.param({"o": "bad owner"}, id="owner-with-space"),
        pytest.param({"o": "n1;x=1"}, id="owner-with-semicolon"),
        pytest.param({"o": "n" * 64}, id="owner-too-long"),
        pytest.param({"o": 7}, id="owner-not-a-string"),
        pytest.param({"c": True}, id="created-bool"),
        pytest.param({"c": False}, id="created-false"),
        pytest.param({"c": -1}, id="created-negative"),
        pytest.param({"c": "1700000000"}, id="created-string"),
        pytest.param({"c": 1700000000.5}, id="created-float"),
        pytest.param({"v": 2}, id="unknown-format"),
        pytest.param({"v": None}, id="no-format"),
        pytest.param({"x": 1}, id="unknown-field"),
        pytest.param({"admin": True}, id="unknown-field-admin"),
        pytest.param({"c": int(time.time()) + 3600}, id="created-in-the-future"),
        pytest.param({"c": 2**40}, id="created-far-in-the-future"),
    ],
)
def test_claims_are_validated(codec: TokenCodec, changes: dict[str, Any]) -> None:
    assert codec.verify(forge(valid_payload(**changes)), time.time()) is None


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param([1, 2, 3], id="a-list"),
        pytest.param("a string", id="a-string"),
        pytest.param(None, id="null"),
        pytest.param({"v": 1}, id="claims-missing"),
    ],
)
def test_a_payload_that_is_not_a_claims_object_is_refused(codec: TokenCodec,
                                                          payload: Any) -> None:
    assert codec.verify(forge(payload), time.time()) is None
