"""WhatsApp provider channels behind one interface (:class:`~server.channels.base.Channel`).

``base`` holds the provider-neutral records (:class:`InboundMessage`, :class:`StatusUpdate`), the errors, the
interface and the WhatsApp limits; ``meta`` is the Meta Cloud API channel. Provider modules are imported
directly (``from server.channels.meta import MetaCloudChannel``) so that one provider's dependencies never
load for another.
"""

from server.channels.base import (
    Channel,
    ChannelError,
    ChannelSendError,
    DeliveryStatus,
    InboundMessage,
    MessageKind,
    PayloadError,
    SignatureError,
    StatusError,
    StatusUpdate,
    split_text,
)

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
