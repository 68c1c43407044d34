"""Test import path of the Graph API stand-in (it lives in ``sandboxes.whatsapp.meta_graph_api`` so the demo can use it)."""

from sandboxes.whatsapp.meta_graph_api import GraphAPIStandIn, RecordedRequest

__all__ = ["GraphAPIStandIn", "RecordedRequest"]
