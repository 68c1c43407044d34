"""Test import path of the signed-payload builders (they live in ``sandboxes.whatsapp.meta_payloads``)."""

from sandboxes.whatsapp.meta_payloads import (
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
