"""``prompt_cache_key``: stable for a session, distinct between sessions, never the session id."""

from __future__ import annotations

from ..conftest import KEY_A, KEY_B
from .harness import Chat, Driver, settings_for


def test_the_prompt_cache_key_is_a_stable_keyed_name_of_the_session(kind: Driver) -> None:
    chat = Chat(kind, settings_for())
    keys, ids = [], []
    for _ in range(3):
        with chat.turn() as request:
            request.append("user", "hello")
            keys.append(request.handle.prompt_cache_key)
            ids.append(request.handle.session_id)
    assert len(set(ids)) == 1
    assert len(set(keys)) == 1
    key, session_id = keys[0], ids[0]
    assert key.startswith("sc-")
    assert len(key) > 20
    assert session_id not in key
    assert all(session_id[i:i + 8] not in key for i in range(len(session_id) - 7))
    with chat.turn() as request:
        assert request.key.tag not in key  # not the store's name for the session either
    restarted = Chat(kind, settings_for(secret_keys=(KEY_B, KEY_A)), store=chat.store)
    restarted.token = chat.token  # another process, a new signing key in front
    with restarted.turn() as request:
        assert request.handle.session_id == session_id
        assert request.handle.prompt_cache_key == key
    others = set()
    for _ in range(20):
        with Chat(kind, settings_for(), services=chat.services, store=chat.store).turn() as request:
            others.add(request.handle.prompt_cache_key)
    assert len(others) == 20
    assert key not in others
