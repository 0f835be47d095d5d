"""A rotated session's token carries its lineage (a keyed name, never an id), checked like the
other claims."""

from __future__ import annotations

import time

import pytest

from stickyctx.core.ids import new_session_id
from stickyctx.core.tokens import TokenCodec
from tests.conftest import KEY_A

from .test_tokens import DAY, forge, valid_payload

LINEAGE = "Zm9vYmFyYmF6cXV4cXV1eA"  # 22 URL-safe characters, as KeyDeriver.digest gives


def test_the_lineage_round_trips_and_is_absent_until_given() -> None:
    codec = TokenCodec([KEY_A], max_age=DAY)
    session_id, now = new_session_id(), time.time()
    plain = codec.verify(codec.sign(session_id, "n1", int(now)), now)
    rotated = codec.verify(codec.sign(session_id, "n1", int(now), LINEAGE), now)
    assert plain is not None
    assert plain.lineage is None
    assert rotated is not None
    assert (rotated.session_id, rotated.lineage) == (session_id, LINEAGE)


@pytest.mark.parametrize("lineage", [
    pytest.param("", id="empty"),
    pytest.param("short", id="too-short"),
    pytest.param("x" * 65, id="too-long"),
    pytest.param("has space in it, 22 ch", id="not-url-safe"),
    pytest.param(12345678901234567890, id="not-a-string"),
])
def test_a_token_with_a_malformed_lineage_is_refused(lineage: object) -> None:
    codec = TokenCodec([KEY_A], max_age=DAY)
    assert codec.verify(forge(valid_payload(l=LINEAGE)), time.time()) is not None
    assert codec.verify(forge(valid_payload(l=lineage)), time.time()) is None
