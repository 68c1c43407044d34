"""The channel registry: the one place that names the WhatsApp providers this program serves.

Webhook routes (``server.app``), the GET handshake, webhook verification and parsing (``server.routes.webhooks``) and
the channel instances used for sending and media download (``server.services.Services.channels``) all derive
from :func:`channels`. Adding a provider means writing its package under ``server/channels/`` and adding one line
to :data:`BUILTIN`; a test or a plug-in calls :func:`register` instead.

Built-in channels are named by import path and imported on first use, so one provider's dependencies never load
for another.
"""

from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING

from server.channels.protocol import Channel

if TYPE_CHECKING:
    import httpx

    from core.config import Settings

__all__ = ["BUILTIN", "build", "channels", "get", "match_path", "register", "unregister"]

#: ``"module:Class"`` of every built-in channel, in registration order.
BUILTIN: tuple[str, ...] = ("server.channels.meta:MetaCloudChannel",)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_registered: dict[str, type[Channel]] = {}
#: What :func:`register` checks a class has (the members of :class:`Channel`).
_MEMBERS = (
    "name",
    "title",
    "webhook_path",
    "signs_url",
    "subscription_params",
    "from_settings",
    "verify_request",
    "answer_subscription",
    "parse",
    "webhook_answer",
    "send_text",
    "send_buttons",
    "send_list",
    "mark_read",
    "download_media",
    "aclose",
)
_builtins_loaded = False


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    for spec in BUILTIN:
        module, _, attr = spec.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        if cls.name not in _registered:
            register(cls)
    _builtins_loaded = True  # only once every built-in imported: a failed import is raised again next time


def register(cls: type[Channel]) -> type[Channel]:
    """Add a channel class to the registry (usable as a class decorator).

    Args:
        cls: a class implementing :class:`~server.channels.protocol.Channel` (its ``name``, ``title``,
            ``webhook_path``, ``signs_url`` and ``subscription_params`` are read from the class).

    Returns:
        ``cls`` unchanged.

    Raises:
        ValueError: the name is not lower-case ``[a-z][a-z0-9_]*``, the name or the webhook path is taken by
            another channel, or the webhook path does not start with ``/``.
        TypeError: the class lacks a member of the protocol.
    """
    missing = [m for m in _MEMBERS if not hasattr(cls, m)]
    if missing:
        raise TypeError(f"{cls.__name__} is not a Channel: missing {', '.join(missing)}")
    name, path = cls.name, cls.webhook_path
    if not _NAME.match(name):
        raise ValueError(f"channel name {name!r} must match {_NAME.pattern}")
    if not path.startswith("/"):
        raise ValueError(f"webhook path {path!r} must start with '/'")
    for other in _registered.values():
        if other is not cls and (other.name == name or other.webhook_path == path):
            raise ValueError(f"channel {name!r} ({path}) clashes with {other.name!r} ({other.webhook_path})")
    _registered[name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a channel registered with :func:`register` (tests); unknown names are ignored."""
    _registered.pop(name, None)


def channels() -> dict[str, type[Channel]]:
    """Every registered channel class by name: the built-in ones first, then those added by :func:`register`."""
    _load_builtins()
    return dict(_registered)


def get(name: str) -> type[Channel]:
    """The channel class registered under ``name``.

    Raises:
        KeyError: no such channel.
    """
    return channels()[name]


def build(settings: Settings, http_client: httpx.AsyncClient | None = None) -> dict[str, Channel]:
    """One instance of every configured channel, by name (``Channel.from_settings``; ``None`` = not configured).

    Args:
        settings: the process settings.
        http_client: an HTTP client the channels share, or ``None`` for one of their own each.
    """
    built: dict[str, Channel] = {}
    for name, cls in channels().items():
        channel = cls.from_settings(settings, http_client)
        if channel is not None:
            built[name] = channel
    return built


def match_path(template: str, path: str) -> bool:
    """Whether a request path matches a channel's webhook path.

    A template's last segment may be a ``{placeholder}`` that matches any one non-empty segment
    (``/webhooks/evolution/{secret}``); otherwise the paths must be equal.

    Args:
        template: :attr:`Channel.webhook_path`.
        path: the request path.
    """
    if not template.endswith("}"):
        return path == template
    prefix = template[: template.rindex("{")]
    rest = path[len(prefix) :]
    return path.startswith(prefix) and bool(rest) and "/" not in rest
