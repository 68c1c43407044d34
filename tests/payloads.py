"""Test import path of the signed-payload builders (they live in ``server.sandbox.meta_payloads``)."""

from server.sandbox.meta_payloads import (
    button_reply,
    contact,
    envelope,
    list_reply,
    sign,
    signed,
    status,
    text_message,
    wamid,
)

__all__ = ["button_reply", "contact", "envelope", "list_reply", "sign", "signed", "status", "text_message", "wamid"]
