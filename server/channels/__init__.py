"""WhatsApp provider channels: one package per provider behind one protocol, named once in the registry.

``records`` (:class:`InboundMessage`, :class:`StatusUpdate`), ``errors``, ``protocol`` (:class:`Channel`),
``limits`` (WhatsApp's message limits, text splitting), ``registry`` (which channels exist; everything
provider-specific in the web app and the worker derives from it), and one package per provider (``meta``).
Provider packages are imported by the registry on first use, so one provider's dependencies never load for
another.
"""

from server.channels.errors import ChannelError, ChannelSendError, PayloadError, SignatureError
from server.channels.limits import split_text
from server.channels.protocol import Channel
from server.channels.records import DeliveryStatus, InboundMessage, MessageKind, StatusError, StatusUpdate

__all__ = [
    "Channel",
    "ChannelError",
    "ChannelSendError",
    "DeliveryStatus",
    "InboundMessage",
    "MessageKind",
    "PayloadError",
    "SignatureError",
    "StatusError",
    "StatusUpdate",
    "split_text",
]
