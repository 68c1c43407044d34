"""Errors every channel raises: the webhook is not authentic or not understood, or the provider's API failed."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ChannelError", "ChannelSendError", "PayloadError", "SignatureError"]


class ChannelError(Exception):
    """Base class of every channel error."""


class SignatureError(ChannelError):
    """The webhook request is not authentic: signature missing, malformed or wrong. Answer 401/403."""


class PayloadError(ChannelError):
    """The webhook body cannot be understood (not JSON, wrong envelope). Answer 400."""


class ChannelSendError(ChannelError):
    """A call to the provider's API failed.

    Attributes:
        retryable: a later retry may succeed (rate limit, 5xx, network); the channel has already retried a
            few times before raising this.
        code: provider error code (Meta ``error.code``, e.g. ``131047``), when the provider gave one.
        http_status: HTTP status of the last response, ``None`` when no response arrived.
        delivery_unknown: the request may have reached the provider before the connection failed, so the
            message may have been sent; retrying risks a duplicate.
        sent_message_ids: ids of the parts of a multi-part send that did go out before the failure.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        code: int | None = None,
        http_status: int | None = None,
        delivery_unknown: bool = False,
        sent_message_ids: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code
        self.http_status = http_status
        self.delivery_unknown = delivery_unknown
        self.sent_message_ids: tuple[str, ...] = tuple(sent_message_ids)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self)!r}, retryable={self.retryable}, code={self.code}, "
            f"http_status={self.http_status}, delivery_unknown={self.delivery_unknown})"
        )
