"""LangSmith plumbing for the runner: the client (offline unless ``LANGSMITH_API_KEY``), examples and dataset sync.

Without ``LANGSMITH_API_KEY`` (the default) the client is ``Client(api_key="offline", info={},
auto_batch_tracing=False)`` and examples are built locally, so nothing leaves the machine. With a key, each suite
is synced to LangSmith as ``procure-eval-<dataset>`` with stable example ids (uuid5 of the conversation id).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from langsmith import Client
from langsmith.schemas import Example

from core.config import get_settings

#: Namespace of the stable example and dataset ids (uuid5 of the conversation id).
ID_NAMESPACE = uuid.UUID("0b3f8a52-3c59-4d1e-9a57-6f1f6c0e2d41")

#: Fixed ``created_at`` of offline examples, so that nothing in a run depends on the clock.
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def target_inputs(conversation: Mapping[str, Any]) -> dict[str, Any]:
    """What the target sees: ``{"conversation": ...}`` without its ``expected`` answer."""
    return {"conversation": {k: v for k, v in conversation.items() if k != "expected"}}


def example_id(conversation: Mapping[str, Any]) -> uuid.UUID:
    """Stable LangSmith example id of a conversation (uuid5 of its id)."""
    return uuid.uuid5(ID_NAMESPACE, f"example:{conversation['id']}")


def _metadata(name: str, conversation: Mapping[str, Any]) -> dict[str, Any]:
    return {"dataset": name, "conversation_id": conversation["id"], "kind": conversation.get("kind")}


def offline_examples(name: str, conversations: Sequence[Mapping[str, Any]]) -> list[Example]:
    """Local examples for an offline run (never uploaded)."""
    dataset_id = uuid.uuid5(ID_NAMESPACE, f"dataset:{name}")
    return [
        Example(
            id=example_id(c),
            dataset_id=dataset_id,
            inputs=target_inputs(c),
            outputs=dict(c["expected"]),
            metadata=_metadata(name, c),
            created_at=_EPOCH,
        )
        for c in conversations
    ]


def sync_langsmith_dataset(client: Client, name: str, conversations: Sequence[Mapping[str, Any]]) -> list[Example]:
    """Create or update LangSmith dataset ``procure-eval-<name>`` so it holds these conversations.

    Examples keep stable ids (uuid5 of the conversation id); changed ones are updated, new ones created, and
    examples no longer in the file are left alone (they are simply not evaluated).
    """
    dataset_name = f"procure-eval-{name}"
    if client.has_dataset(dataset_name=dataset_name):
        dataset = client.read_dataset(dataset_name=dataset_name)
    else:
        dataset = client.create_dataset(dataset_name, description=f"procure-agent evaluation suite: {name}")
    existing = {ex.id: ex for ex in client.list_examples(dataset_id=dataset.id)}
    creates: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for c in conversations:
        ex_id, inputs, expected = example_id(c), target_inputs(c), dict(c["expected"])
        metadata = _metadata(name, c)
        old = existing.get(ex_id)
        if old is None:
            creates.append({"id": ex_id, "inputs": inputs, "reference_outputs": expected, "metadata": metadata})
        elif old.inputs != inputs or old.outputs != expected:
            updates.append({"id": ex_id, "inputs": inputs, "outputs": expected, "metadata": metadata})
    if creates:
        client.create_examples(dataset_id=dataset.id, examples=creates)
    if updates:
        client.update_examples(dataset_id=dataset.id, updates=updates)
    ids = [example_id(c) for c in conversations]
    return list(client.list_examples(dataset_id=dataset.id, example_ids=ids))


def langsmith_settings() -> tuple[str | None, str | None]:
    """``(api_key, endpoint)`` from the settings (the only place that reads the environment)."""
    settings = get_settings()
    key = settings.LANGSMITH_API_KEY.get_secret_value() if settings.LANGSMITH_API_KEY else None
    return key or None, settings.LANGSMITH_ENDPOINT


def make_client() -> tuple[Client, bool]:
    """A LangSmith client and whether results are uploaded (only with an API key)."""
    api_key, endpoint = langsmith_settings()
    if api_key:
        return Client(api_url=endpoint, api_key=api_key), True
    return Client(api_key="offline", info={}, auto_batch_tracing=False), False
