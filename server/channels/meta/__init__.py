"""Meta WhatsApp Cloud API channel: ``webhook`` (signatures, handshake), ``parse`` (bodies), ``client`` (Graph API).

:class:`MetaCloudChannel` (``channel``) ties them together behind :class:`server.channels.protocol.Channel`.
"""

from server.channels.meta.channel import MetaCloudChannel
from server.channels.meta.client import RATE_LIMIT_CODES, GraphAPIClient

__all__ = ["RATE_LIMIT_CODES", "GraphAPIClient", "MetaCloudChannel"]
