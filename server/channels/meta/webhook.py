"""Meta webhook authentication: the ``X-Hub-Signature-256`` body signature and the GET subscription handshake.

Source: https://developers.facebook.com/docs/graph-api/webhooks/getting-started (verification requests,
validating payloads). Secrets are compared in constant time and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from server.channels.errors import SignatureError

__all__ = ["verify_signature", "verify_subscription"]

_SIGNATURE_HEADER = "x-hub-signature-256"
_SIGNATURE_PREFIX = "sha256="


def verify_subscription(verify_token: bytes, mode: str | None, token: str | None, challenge: str | None) -> str | None:
    """Answer Meta's subscription check (the webhook GET, which carries no signature).

    https://developers.facebook.com/docs/graph-api/webhooks/getting-started#verification-requests

    Args:
        verify_token: the configured token (``META_VERIFY_TOKEN``), UTF-8 encoded; empty refuses every check.
        mode: the ``hub.mode`` query parameter; must be ``"subscribe"``.
        token: the ``hub.verify_token`` query parameter, compared in constant time with ``verify_token``.
        challenge: the ``hub.challenge`` query parameter.

    Returns:
        the challenge to answer with (HTTP 200, ``text/plain``), or ``None`` to answer 403.
    """
    if mode != "subscribe" or token is None or challenge is None or not verify_token:
        return None
    if not hmac.compare_digest(token.encode(), verify_token):
        return None
    return challenge


def verify_signature(app_secret: bytes, headers: Mapping[str, str], body: bytes) -> None:
    """Check the ``X-Hub-Signature-256`` header of a webhook POST.

    The header is ``sha256=<hex>``, the HMAC-SHA256 of the raw body bytes keyed with the app secret
    (https://developers.facebook.com/docs/graph-api/webhooks/getting-started#validate-payloads);
    compared in constant time.

    Args:
        app_secret: the Meta app secret (``META_APP_SECRET``), UTF-8 encoded.
        headers: request headers (looked up case-insensitively).
        body: the raw body exactly as received.

    Raises:
        SignatureError: header missing, without the ``sha256=`` prefix, not 64 hex digits, or not matching.
    """
    value = _header(headers, _SIGNATURE_HEADER)
    if value is None:
        raise SignatureError("missing X-Hub-Signature-256 header")
    value = value.strip()
    if not value.lower().startswith(_SIGNATURE_PREFIX):
        raise SignatureError("X-Hub-Signature-256 must start with 'sha256='")
    hex_digest = value[len(_SIGNATURE_PREFIX) :]
    try:
        given = bytes.fromhex(hex_digest)
    except ValueError:
        raise SignatureError("X-Hub-Signature-256 is not hexadecimal") from None
    expected = hmac.new(app_secret, body, hashlib.sha256).digest()
    if len(given) != len(expected) or not hmac.compare_digest(given, expected):
        raise SignatureError("X-Hub-Signature-256 does not match the body")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, val in headers.items():
        if key.lower() == name:
            return val
    return None
