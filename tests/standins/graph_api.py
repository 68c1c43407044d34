"""Test import path of the Graph API stand-in (it lives in ``server.sandbox.whatsapp`` so the demo can use it)."""

from server.sandbox.whatsapp import GraphAPIStandIn, RecordedRequest

__all__ = ["GraphAPIStandIn", "RecordedRequest"]
