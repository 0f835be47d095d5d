"""o200k_base without a network: the packaged copy is hash-checked and counts exactly as tiktoken.

tiktoken's own ``o200k_base`` runs here too: its download is replaced by a private tiktoken
cache holding the packaged file under the name tiktoken gives that download (tiktoken checks
the cached file against its published sha256 itself). Both are then compared on a corpus.
"""

from __future__ import annotations

import gzip
import hashlib
import warnings
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken.model
import tiktoken.registry
from tiktoken_ext import openai_public

from stickyctx import ConfigError, Settings
from stickyctx.core.offline_encodings import (
    OfflineEncodingUnavailable,
    offline_encoding,
    packaged_ranks,
)
from stickyctx.core.tokenizer import Tokenizer, encoding_for, load_tokenizer
from stickyctx.session.services import Services
from tests.conftest import KEY_A

from .test_tokenizer import TEXTS

CORPUS = [
    *TEXTS.values(),
    "GPT-4o's tokenizer splits CamelCaseWords, snake_case_words and UPPER CASE differently.",
    "Numbers: 1 12 123 1234 12345 3.14159 -42 1e10 0xDEADBEEF 2025-01-31T12:00:00Z",
    "Ελληνικά, русский текст, العربية, हिन्दी, עברית, ภาษาไทย, Tiếng Việt.",
    "URLs https://example.com/a/b?c=d&e=f#g and paths /usr/local/bin/python3\r\n",
    "<|endoftext|> <|endofprompt|> look special but are plain text here",
    "\n\n\n    indented\n\t\ttabs\r\n\r\nwindows line ends   \n",
    "I'm sure they'll say we've done what's right; THEY'LL SAY IT'S DONE.",
    "emoji families 👩‍👩‍👧‍👦 flags 🇨🇭🇯🇵 skin 👋🏿 and combining e\u0301 a\u0308",
    "json {\"a\": [1, 2, {\"b\": null}], \"c\": \"d\"}",
    "def f(x):\n    return [i ** 2 for i in range(x) if i % 3 == 0]  # comment\n" * 20,
    "lorem ipsum dolor sit amet " * 200,
]
MESSAGES: list[list[Mapping[str, Any]]] = [
    [{"role": "system", "content": "You are a helpful assistant."},
     {"role": "user", "content": text, "name": "alice_1"},
     {"role": "assistant", "content": text[::-1]}]
    for text in CORPUS
] + [[
    {"role": "user", "content": [{"type": "text", "text": CORPUS[7]},
                                 {"type": "image_url", "image_url": {"url": "https://e.x/c.png"}}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": "weather", "arguments": '{"city": "Zürich"}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 21.5}'},
]]
O200K_MODELS = sorted(m for m, e in tiktoken.model.MODEL_TO_ENCODING.items() if e == "o200k_base")


def tiktoken_download() -> tuple[str, str]:
    """The address and the sha256 that tiktoken's own o200k_base constructor asks for."""
    asked: list[tuple[str, str]] = []

    def record(url: str, expected_hash: str) -> dict[bytes, int]:
        asked.append((url, expected_hash))
        return {}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(openai_public, "load_tiktoken_bpe", record)
        openai_public.o200k_base()
    assert len(asked) == 1
    return asked[0]


def packaged_bytes() -> bytes:
    path = metadata.distribution("bpe-openai").locate_file("bpe_openai/data/o200k_base.tiktoken.gz")
    return gzip.decompress(Path(str(path)).read_bytes())


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """tiktoken's own o200k_base, its download served from a private cache."""
    url, _ = tiktoken_download()
    cache = tmp_path_factory.mktemp("tiktoken-cache")
    cache_name = hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()  # tiktoken's
    (cache / cache_name).write_bytes(packaged_bytes())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
        was_loaded = "o200k_base" in tiktoken.registry.ENCODINGS
        encoding = tiktoken.get_encoding("o200k_base")
        try:
            yield encoding
        finally:
            if not was_loaded:  # later tests see tiktoken as it was (offline)
                tiktoken.registry.ENCODINGS.pop("o200k_base", None)


@pytest.fixture(scope="module")
def offline() -> Any:
    return offline_encoding("o200k_base")


def test_the_packaged_file_has_tiktokens_published_hash() -> None:
    _url, expected = tiktoken_download()
    assert hashlib.sha256(packaged_bytes()).hexdigest() == expected


def test_the_offline_encoding_is_tiktokens_own(genuine: Any, offline: Any) -> None:
    assert offline.name == "o200k_base_offline"
    assert offline._pat_str == genuine._pat_str
    assert offline._special_tokens == genuine._special_tokens
    assert offline._mergeable_ranks == genuine._mergeable_ranks
    assert offline.n_vocab == genuine.n_vocab


@pytest.mark.parametrize("text", CORPUS, ids=range(len(CORPUS)))
def test_texts_count_as_tiktoken_counts_them(genuine: Any, offline: Any, text: str) -> None:
    assert offline.encode_ordinary(text) == genuine.encode_ordinary(text)
    assert Tokenizer(offline, "o200k_base").count_text(text) == len(genuine.encode_ordinary(text))


@pytest.mark.parametrize("messages", MESSAGES, ids=range(len(MESSAGES)))
def test_chat_messages_count_as_with_tiktoken(
    genuine: Any, offline: Any, messages: list[Mapping[str, Any]]
) -> None:
    expected = Tokenizer(genuine, "o200k_base").count_messages(messages)
    assert Tokenizer(offline, "o200k_base").count_messages(messages) == expected
    assert expected > 3 * len(messages)


def test_o200k_differs_from_cl100k_on_the_corpus(offline: Any) -> None:
    """The point of the change: the default encoding miscounts these models."""
    cl100k = load_tokenizer("cl100k_base")
    o200k = Tokenizer(offline, "o200k_base")
    assert sum(o200k.count_text(t) for t in CORPUS) != sum(cl100k.count_text(t) for t in CORPUS)


@pytest.mark.parametrize(
    "expected_hash",
    [pytest.param("0" * 64, id="wrong-hash"), pytest.param(None, id="no-hash")],
)
def test_a_copy_that_cannot_be_checked_is_refused(expected_hash: str | None) -> None:
    url, _ = tiktoken_download()
    with pytest.raises(OfflineEncodingUnavailable):
        packaged_ranks(url, expected_hash)


def test_an_encoding_no_package_ships_has_no_offline_copy() -> None:
    with pytest.raises(OfflineEncodingUnavailable):
        offline_encoding("p50k_base")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """tiktoken as on a machine without network: only offline copies load."""
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


@pytest.mark.usefixtures("no_network")
def test_o200k_base_loads_offline_with_one_warning(genuine: Any) -> None:
    with pytest.warns(RuntimeWarning, match="offline copy 'o200k_base_offline'") as caught:
        tokenizer = load_tokenizer("o200k_base")
    assert len(caught) == 1
    assert (tokenizer.name, tokenizer.encoding_name) == ("o200k_base", "o200k_base_offline")
    assert tokenizer.count_text(CORPUS[0]) == len(genuine.encode_ordinary(CORPUS[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_tokenizer("o200k_base") is tokenizer


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("model", O200K_MODELS)
def test_every_o200k_model_of_tiktoken_loads_offline(model: str) -> None:
    name = encoding_for(None, model)
    assert name == "o200k_base"
    assert load_tokenizer(name).encoding_name == "o200k_base_offline"


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4.1-mini", "o3-mini", "gpt-5"])
def test_a_middleware_configured_with_an_o200k_model_counts_with_it(model: str) -> None:
    settings = Settings.from_env({"STICKYCTX_SECRET_KEYS": KEY_A, "STICKYCTX_MODEL": model})
    engine = Services(settings)
    assert engine.tokenizer.name == "o200k_base"


@pytest.mark.usefixtures("no_network")
def test_an_encoding_without_any_offline_copy_is_still_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_tokenizer("p50k_base")
    assert caught.value.variable == "STICKYCTX_ENCODING"
    assert "offline" in caught.value.reason
