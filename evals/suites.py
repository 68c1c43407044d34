"""Evaluation suites: where the datasets live, how they are read, their catalogues and their schema.

A dataset is ``evals/datasets/<name>.jsonl``, one conversation per line (see ``evals/README.md``). A conversation
may name its catalogue (``catalog``: a CSV path relative to the repository, default ``examples/catalog.csv``) and
its ``kind`` (what it exercises: ``pack_sizes``, ``answers``...). :func:`validate_conversation` checks one line
against the schema and its catalogue; the tests run it on every line of every dataset.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from core.domain import CatalogItem
from evals.catalogs import CATALOG_PATH, ROOT, catalog_path_of, load_catalog
from evals.evaluators import FORBIDDEN_EVENTS, QUESTION_KINDS

EVALS_DIR = Path(__file__).resolve().parent
DATASETS_DIR = EVALS_DIR / "datasets"

#: The suites, in table order; ``--dataset`` also accepts any other ``<name>.jsonl`` in the datasets folder.
#: ``unseen_dev``, ``unseen_dev2`` (other trades), ``unseen_dev3`` and ``unseen_dev4`` (written independently) are
#: for tuning; ``unseen_test`` is held out (never read while tuning) and gates CI.
DATASET_NAMES: tuple[str, ...] = (
    "clean",
    "messy",
    "corrections",
    "adversarial",
    "unseen_dev",
    "unseen_dev2",
    "unseen_dev3",
    "unseen_dev4",
    "unseen_test",
)

#: The original suites, written against ``examples/catalog.csv`` and its aliases.
LEGACY_DATASETS: tuple[str, ...] = ("clean", "messy", "corrections", "adversarial")

#: What a conversation exercises (``kind``); the per-kind table groups by it.
CONVERSATION_KINDS: tuple[str, ...] = (
    "pack_sizes",
    "answers",
    "corrections",
    "swahili",
    "descriptions",
    "chatter",
    "dates",
    "free_text",
    "stale_draft",
    "single_candidate",
)

#: Sites a profile or an expected request may name.
SITES: tuple[str, ...] = ("Nairobi", "Mombasa", "Kisumu", "Nakuru", "Eldoret")

#: Units whose quantities must be whole numbers (lower-case, as the catalogue import stores them).
COUNTABLE_UNITS: frozenset[str] = frozenset(
    {"box", "pack", "piece", "bag", "pcs", "pkt", "ea", "pr", "set", "roll", "ctn", "jcn", "bkt", "tin", "bale", "tray"}
)

_REQUIRED_KEYS = ("id", "dataset", "now", "user", "turns", "expected")
_OPTIONAL_KEYS = ("description", "kind", "catalog")
_EXPECTED_KEYS = {"lines", "site", "needed_by", "questions", "submitted", "forbidden"}
_BUTTONS = {"confirm", "edit", "cancel"}
_CONFIRM_WORDS = re.compile(r"\b(yes|submit|confirm|go ahead|sawa|tuma|ndio)\b")


def dataset_path(name: str, datasets_dir: Path = DATASETS_DIR) -> Path:
    """Path of dataset ``name``.

    Raises:
        ValueError: no ``<name>.jsonl`` in ``datasets_dir``.
    """
    path = Path(datasets_dir) / f"{name}.jsonl"
    if not re.fullmatch(r"[a-z0-9_-]+", name) or not path.is_file():
        known = ", ".join(DATASET_NAMES)
        raise ValueError(f"unknown dataset {name!r} (known: {known})")
    return path


def load_dataset(name: str, datasets_dir: Path = DATASETS_DIR) -> list[dict[str, Any]]:
    """Conversations of one dataset, sorted by id.

    Raises:
        ValueError: unknown dataset, a line that is not a JSON object with the required keys, a line whose
            ``dataset`` is not ``name``, or a duplicate id.
    """
    path = dataset_path(name, datasets_dir)
    conversations: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            conversation = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc})") from exc
        if not isinstance(conversation, dict) or any(k not in conversation for k in _REQUIRED_KEYS):
            raise ValueError(f"{path}:{number}: a conversation needs the keys {', '.join(_REQUIRED_KEYS)}")
        if conversation["dataset"] != name:
            raise ValueError(f"{path}:{number}: dataset is {conversation['dataset']!r}, expected {name!r}")
        if conversation["id"] in seen:
            raise ValueError(f"{path}:{number}: duplicate id {conversation['id']!r}")
        seen.add(conversation["id"])
        conversations.append(conversation)
    return sorted(conversations, key=lambda c: str(c["id"]))


def load_datasets(dataset: str | None = None, datasets_dir: Path = DATASETS_DIR) -> dict[str, list[dict[str, Any]]]:
    """All suites (``dataset=None``) or one, by name, in table order."""
    names = DATASET_NAMES if dataset is None else (dataset,)
    return {name: load_dataset(name, datasets_dir) for name in names}


def conversation_catalog(conversation: Mapping[str, Any]) -> dict[str, CatalogItem]:
    """Items (by SKU) of the catalogue a conversation is written against.

    Raises:
        ValueError: ``catalog`` points outside the repository or is not a CSV file.
        OSError: the file cannot be read.
    """
    return load_catalog(catalog_path_of(conversation.get("catalog")))


def _is_decimal(value: Any) -> bool:
    try:
        return isinstance(value, str) and Decimal(value).is_finite()
    except InvalidOperation:
        return False


def _check_turns(conversation: Mapping[str, Any], catalog: Mapping[str, CatalogItem], problems: list[str]) -> None:
    turns = conversation["turns"]
    if not isinstance(turns, list) or not turns:
        problems.append("turns must be a non-empty list of bursts")
        return
    now = datetime.fromisoformat(conversation["now"])
    clock = now
    for burst in turns:
        if not isinstance(burst, list) or not burst:
            problems.append("a turn is a non-empty burst of messages")
            continue
        for message in burst:
            if not isinstance(message, dict) or not (set(message) - {"at"}) or set(message) - {"text", "button", "at"}:
                problems.append(f"bad message {message!r}")
                continue
            if "at" in message:
                at = datetime.fromisoformat(message["at"])
                if at.utcoffset() != timedelta(hours=3) or at < clock:
                    problems.append(f"message time {message['at']} must be +03:00 and not before the previous one")
                clock = max(clock, at)
            if ("text" in message) == ("button" in message):
                problems.append(f"a message is a text or a button: {message!r}")
            elif "text" in message and not (isinstance(message["text"], str) and message["text"].strip()):
                problems.append("empty text message")
            elif "button" in message:
                button = str(message["button"])
                if button.startswith("pick:"):
                    if button[5:] not in catalog:
                        problems.append(f"pick of an SKU not in the catalogue: {button}")
                elif button not in _BUTTONS:
                    problems.append(f"unknown button {button!r}")


def _check_lines(lines: Any, catalog: Mapping[str, CatalogItem], problems: list[str]) -> None:
    if not isinstance(lines, list):
        problems.append("expected.lines must be a list")
        return
    skus: list[str] = []
    for line in lines:
        if not isinstance(line, dict) or not _is_decimal(line.get("quantity")) or Decimal(line["quantity"]) <= 0:
            problems.append(f"bad expected line {line!r}: quantity must be a positive decimal string")
            continue
        quantity = Decimal(line["quantity"])
        if line.get("sku") is None:
            words = line.get("description_contains")
            if set(line) - {"sku", "quantity", "unit", "description_contains"}:
                problems.append(f"free-text line has unknown keys: {sorted(line)}")
            if not (isinstance(words, list) and words and all(isinstance(w, str) and w.strip() for w in words)):
                problems.append(f"free-text line {line!r} needs description_contains (non-empty strings)")
            continue
        if set(line) != {"sku", "quantity", "unit"}:
            problems.append(f"catalogue line keys must be sku, quantity, unit: {sorted(line)}")
        sku = line["sku"]
        item = catalog.get(sku)
        if item is None:
            problems.append(f"unknown SKU {sku} in expected lines (not in the conversation's catalogue)")
            continue
        skus.append(sku)
        if str(line.get("unit", "")).lower() != item.unit.lower():
            problems.append(f"{sku} is ordered in {item.unit}, not {line.get('unit')}")
        if item.unit.lower() in COUNTABLE_UNITS and quantity != quantity.to_integral_value():
            problems.append(f"{sku}: whole {item.unit} only")
    if len(skus) != len(set(skus)):
        problems.append("one expected line per SKU")


def validate_conversation(conversation: Mapping[str, Any]) -> list[str]:
    """Problems with one dataset line (empty: valid), checked against the conversation's own catalogue.

    Checks the keys, the clock (``+03:00``), the profile, every message, that every expected SKU and picked SKU
    exists in the catalogue with the catalogue's unit and whole quantities for countable units, free-text lines,
    dates not before the conversation, question kinds, forbidden events, and consistency: a submitted request
    needs lines, a site and a confirmation; a pick implies a ``clarify_item`` question; a ``site`` question
    implies no site on the profile.
    """
    problems: list[str] = []
    extra = set(conversation) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS)
    if extra or any(k not in conversation for k in _REQUIRED_KEYS):
        return [f"keys must be {', '.join(_REQUIRED_KEYS)} (+ optional {', '.join(_OPTIONAL_KEYS)}); extra: {extra}"]
    name = str(conversation["dataset"])
    if not str(conversation["id"]).startswith(f"{name}-") or not str(conversation["id"])[len(name) + 1 :].isdigit():
        problems.append("id must be <dataset>-<number>")
    kind = conversation.get("kind")
    if kind is not None and kind not in CONVERSATION_KINDS:
        problems.append(f"unknown kind {kind!r}")
    try:
        catalog = conversation_catalog(conversation)
    except (ValueError, OSError) as exc:
        return [*problems, f"catalog: {exc}"]
    try:
        now = datetime.fromisoformat(conversation["now"])
    except (TypeError, ValueError):
        return [*problems, "now must be an ISO date-time"]
    if now.utcoffset() != timedelta(hours=3):
        problems.append("times are Africa/Nairobi (+03:00)")
    user = conversation["user"]
    if not isinstance(user, dict) or set(user) != {"role", "site"}:
        return [*problems, "user must be {role, site}"]
    if user["role"] not in ("requester", "approver", "buyer", "admin"):
        problems.append(f"unknown role {user['role']!r}")
    if user["site"] is not None and user["site"] not in SITES:
        problems.append(f"unknown site {user['site']!r}")
    _check_turns(conversation, catalog, problems)

    expected = conversation["expected"]
    if not isinstance(expected, dict) or set(expected) != _EXPECTED_KEYS:
        return [*problems, f"expected must have exactly {sorted(_EXPECTED_KEYS)}"]
    _check_lines(expected["lines"], catalog, problems)
    if expected["site"] is not None and expected["site"] not in SITES:
        problems.append(f"unknown expected site {expected['site']!r}")
    if expected["needed_by"] is not None and date.fromisoformat(expected["needed_by"]) < now.date():
        problems.append("needed_by before the conversation")
    questions = expected["questions"]
    if not set(questions) <= set(QUESTION_KINDS) or len(questions) != len(set(questions)):
        problems.append(f"questions must be a set of {QUESTION_KINDS}: {questions}")
    if not isinstance(expected["submitted"], bool):
        problems.append("submitted must be a boolean")
    forbidden = expected["forbidden"]
    if not set(forbidden) <= set(FORBIDDEN_EVENTS) or len(forbidden) != len(set(forbidden)):
        problems.append(f"forbidden must be a set of {FORBIDDEN_EVENTS}: {forbidden}")

    turns = conversation["turns"] if isinstance(conversation["turns"], list) else []
    buttons = [m.get("button") for t in turns if isinstance(t, list) for m in t if isinstance(m, dict)]
    last = " ".join(m.get("text", "") for m in (turns[-1] if turns else []) if isinstance(m, dict)).lower()
    if expected["submitted"]:
        if not expected["lines"] or not expected["site"]:
            problems.append("a submitted request has lines and a site")
        if "confirm" not in buttons and not _CONFIRM_WORDS.search(last):
            problems.append("submitted needs a confirmation")
    elif "confirm" in buttons:
        problems.append("confirmed conversations end submitted")
    if not expected["lines"] and (expected["site"] or expected["needed_by"] or questions):
        problems.append("no lines: site, needed_by and questions are empty")
    if any(str(b).startswith("pick:") for b in buttons) and "clarify_item" not in questions:
        problems.append("a candidate pick answers a clarify_item question")
    if "site" in questions and user["site"] is not None:
        problems.append("the agent asks for the site only when the profile has none")
    return problems


def kinds_of(conversations: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Conversation count per ``kind`` (``-`` for conversations without one), sorted by kind."""
    counts: dict[str, int] = {}
    for c in conversations:
        key = str(c.get("kind") or "-")
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


__all__ = [
    "CATALOG_PATH",
    "COUNTABLE_UNITS",
    "CONVERSATION_KINDS",
    "DATASETS_DIR",
    "DATASET_NAMES",
    "LEGACY_DATASETS",
    "ROOT",
    "SITES",
    "conversation_catalog",
    "dataset_path",
    "kinds_of",
    "load_dataset",
    "load_datasets",
    "validate_conversation",
]
