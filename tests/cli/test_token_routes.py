"""The owner regular expression of ``lb-config``: it picks exactly the tokens of its owner."""

from __future__ import annotations

import hashlib
import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer

from stickyctx.core.ids import new_session_id
from stickyctx.core.tokens import TokenCodec
from stickyctx.tools.token_routes import token_owner_regex

from ..conftest import KEY_A

CODEC = TokenCodec([KEY_A], max_age=10**10)
node_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(owners=st.lists(node_ids, min_size=2, max_size=6, unique=True),
       created=st.integers(0, 2**40), lineage=st.booleans(), data=st.data())
def test_a_token_is_matched_by_its_owners_pattern_only(owners: list[str], created: int,
                                                       lineage: bool, data: st.DataObject) -> None:
    # Node ids that share prefixes (web-1, web-10) are the case to get right: add some.
    owners = [*owners, owners[0] + "0", owners[0] + "-1"]
    patterns = {owner: token_owner_regex(owner) for owner in owners}
    owner = data.draw(st.sampled_from(owners))
    token = CODEC.sign(new_session_id(), owner, created,
                       new_session_id() + new_session_id() if lineage else None)
    matched = [o for o, p in patterns.items() if p is not None and re.match(p, token)]
    assert matched == [owner]


def test_tokens_of_usual_node_ids_are_all_routed() -> None:
    owners = [f"web-{i}" for i in range(1, 13)] + ["n1", "n2", "chat-0", "chat-10"]
    patterns = {owner: token_owner_regex(owner) for owner in owners}
    for i in range(4000):
        owner = owners[i % len(owners)]
        token = CODEC.sign(new_session_id(), owner, 1_790_000_000 + i * 7919,
                           new_session_id() if i % 2 else None)
        matched = [o for o, p in patterns.items() if p is not None and re.match(p, token)]
        assert matched == [owner], token


def test_the_pattern_is_plain_enough_for_every_balancer() -> None:
    pattern = token_owner_regex("web-1")
    assert pattern is not None
    assert re.fullmatch(r"\^\.\{\d+\}[A-Za-z0-9_-]+", pattern)  # no class, group or escape


def test_owners_that_compress_well_are_routed_too() -> None:
    # itsdangerous' default would compress these payloads; the codec never does.
    for owner in ("x" * 63, "node-00000", "a" * 20 + "-" + "a" * 20):
        pattern = token_owner_regex(owner)
        assert pattern is not None
        token = CODEC.sign(new_session_id(), owner, 1_790_000_000, None)
        assert re.match(pattern, token), owner


def test_a_compressed_token_of_an_earlier_version_matches_no_owner() -> None:
    forger = URLSafeTimedSerializer(KEY_A, salt="stickyctx.session.v1",
                                    signer_kwargs={"digest_method": hashlib.sha256})
    now = int(time.time())
    token = forger.dumps({"v": 1, "s": new_session_id(), "o": "x" * 63, "c": now})
    assert isinstance(token, str)
    assert token.startswith(".")
    assert CODEC.verify(token, now + 1) is not None  # still a valid session
    assert not any(re.match(p, token) for p in (token_owner_regex("x" * 63),
                                                token_owner_regex("x")) if p)  # spread
