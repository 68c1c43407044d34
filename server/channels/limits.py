"""WhatsApp message limits every channel enforces, text splitting and interactive-message validation.

The limits come from Meta's Cloud API message reference
(https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages) and apply to every provider, since
they all end up on WhatsApp:

- text body: at most 4,096 characters (:func:`split_text` cuts longer replies into several messages);
- reply buttons: 1 to 3 buttons, title at most 20 characters, id at most 256 characters, ids unique;
- interactive body at most 1,024 characters, header and footer at most 60;
- lists: 1 to 10 rows, row title at most 24, row description at most 72, row id at most 200, list button label
  at most 20, section title at most 24.

Display labels (titles, descriptions, header, footer) that are too long are shortened with an ellipsis (``…``)
because a slightly shorter label beats a failed message; structure that cannot be shortened without changing
its meaning (too many buttons or rows, too-long or duplicate ids, an over-long body) raises ``ValueError``,
because that is a bug in the caller.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BUTTON_ID_MAX",
    "BUTTON_TITLE_MAX",
    "BUTTONS_MAX",
    "ELLIPSIS",
    "FOOTER_MAX",
    "HEADER_MAX",
    "INTERACTIVE_BODY_MAX",
    "LIST_BUTTON_MAX",
    "LIST_ROWS_MAX",
    "ROW_DESCRIPTION_MAX",
    "ROW_ID_MAX",
    "ROW_TITLE_MAX",
    "SECTION_TITLE_MAX",
    "TEXT_MAX",
    "ListMessage",
    "ReplyButtons",
    "clip",
    "split_text",
    "validate_buttons",
    "validate_list",
]

# --- WhatsApp limits, in characters (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages)
TEXT_MAX = 4096
INTERACTIVE_BODY_MAX = 1024
HEADER_MAX = 60
FOOTER_MAX = 60
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
LIST_ROWS_MAX = 10
LIST_BUTTON_MAX = 20
SECTION_TITLE_MAX = 24
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
ROW_ID_MAX = 200
#: One character, so a clipped label stays within its limit.
ELLIPSIS = "…"


_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_LINE = re.compile(r"\n")
# A sentence ends at . ! ? or … (optionally followed by closing quotes/brackets) and whitespace.
_SENTENCE = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")
_WORD = re.compile(r"\s+")
# Separators used to glue pieces back together, one per level.
_LEVELS: tuple[tuple[re.Pattern[str], str], ...] = (
    (_PARAGRAPH, "\n\n"),
    (_LINE, "\n"),
    (_SENTENCE, " "),
    (_WORD, " "),
)


def split_text(text: str, limit: int = TEXT_MAX) -> list[str]:
    """Split a text into messages of at most ``limit`` characters, cutting at the most natural boundary.

    Paragraphs (separated by blank lines) are packed greedily into parts; a paragraph longer than ``limit`` is
    cut at line breaks, then sentence ends, then spaces, and as a last resort (a single word longer than the
    limit) hard at ``limit``. Whitespace at part boundaries is dropped; parts are never empty.

    Lengths are counted in Python characters (code points), which is how WhatsApp documents its
    4,096-character text limit (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages).

    Args:
        text: the text to send.
        limit: the largest part, in characters (must be > 0).

    Returns:
        the parts in order; ``[]`` for an empty or blank text.

    Raises:
        ValueError: ``limit`` is not positive.
    """
    if limit <= 0:
        raise ValueError("limit must be positive")
    text = text.strip()
    if not text:
        return []
    return _split(text, limit, 0)


def _split(text: str, limit: int, level: int) -> list[str]:
    if len(text) <= limit:
        return [text]
    if level == len(_LEVELS):
        # One unbreakable run (a URL, a long number): cut hard, the only option left.
        return [text[i : i + limit].strip() for i in range(0, len(text), limit) if text[i : i + limit].strip()]
    pattern, glue = _LEVELS[level]
    pieces = [p.strip() for p in pattern.split(text) if p.strip()]
    if len(pieces) <= 1:
        return _split(text, limit, level + 1)
    parts: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}{glue}{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        if len(piece) <= limit:
            current = piece
        else:
            # The piece alone is too long: cut it at a finer boundary; its last part may still take company.
            sub = _split(piece, limit, level + 1)
            parts.extend(sub[:-1])
            current = sub[-1]
    if current:
        parts.append(current)
    return parts


def clip(text: str, limit: int) -> str:
    """Shorten ``text`` to at most ``limit`` characters, ending with ``…`` when it had to be cut.

    Args:
        text: a display label.
        limit: the largest length allowed, in characters (>= 1).

    Returns:
        ``text`` stripped, unchanged when it fits.
    """
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS


def _check_body(body: str) -> str:
    body = body.strip()
    if not body:
        raise ValueError("interactive body must not be empty")
    if len(body) > INTERACTIVE_BODY_MAX:
        raise ValueError(
            f"interactive body is {len(body)} characters; WhatsApp allows {INTERACTIVE_BODY_MAX}. "
            "Send the long part as text first."
        )
    return body


def _check_id(value: str, limit: int, what: str, seen: set[str]) -> str:
    if not value:
        raise ValueError(f"{what} id must not be empty")
    if len(value) > limit:
        raise ValueError(f"{what} id is {len(value)} characters; WhatsApp allows {limit}")
    if value in seen:
        raise ValueError(f"duplicate {what} id {value!r}; WhatsApp requires unique ids")
    seen.add(value)
    return value


def _optional(text: str | None, limit: int) -> str | None:
    if text is None or not text.strip():
        return None
    return clip(text, limit)


@dataclass(frozen=True, slots=True)
class ReplyButtons:
    """A reply-buttons message within WhatsApp's limits (built by :func:`validate_buttons`).

    Attributes:
        body: body text, at most 1,024 characters.
        buttons: ``(id, title)`` pairs, 1 to 3, titles at most 20 characters, ids at most 256 and unique.
        header: header text, at most 60 characters, or ``None``.
        footer: footer text, at most 60 characters, or ``None``.
    """

    body: str
    buttons: tuple[tuple[str, str], ...]
    header: str | None = None
    footer: str | None = None


@dataclass(frozen=True, slots=True)
class ListMessage:
    """A single-section list message within WhatsApp's limits (built by :func:`validate_list`).

    Attributes:
        body: body text, at most 1,024 characters.
        button_text: label of the button that opens the list, at most 20 characters.
        section_title: section title, at most 24 characters.
        rows: ``(id, title, description)`` triples, 1 to 10, title at most 24, description at most 72 or
            ``None``, ids at most 200 and unique.
        header: header text, at most 60 characters, or ``None``.
        footer: footer text, at most 60 characters, or ``None``.
    """

    body: str
    button_text: str
    section_title: str
    rows: tuple[tuple[str, str, str | None], ...]
    header: str | None = None
    footer: str | None = None


def validate_buttons(
    body: str,
    buttons: Sequence[tuple[str, str]],
    header: str | None = None,
    footer: str | None = None,
) -> ReplyButtons:
    """Check a reply-buttons message against WhatsApp's limits, shortening labels that are too long.

    Limits: https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages (interactive object).

    Args:
        body: body text.
        buttons: ``(id, title)`` pairs.
        header: optional header text.
        footer: optional footer text.

    Returns:
        the checked message; titles over 20 and header/footer over 60 characters end in ``…``.

    Raises:
        ValueError: no button or more than 3, an empty, duplicate or over-256-character id, an empty title, or
            an empty or over-1,024-character body.
    """
    if not 1 <= len(buttons) <= BUTTONS_MAX:
        raise ValueError(f"reply buttons: {len(buttons)} given; WhatsApp allows 1 to {BUTTONS_MAX}")
    seen: set[str] = set()
    checked: list[tuple[str, str]] = []
    for button_id, title in buttons:
        if not title.strip():
            raise ValueError("button title must not be empty")
        checked.append((_check_id(button_id, BUTTON_ID_MAX, "button", seen), clip(title, BUTTON_TITLE_MAX)))
    return ReplyButtons(
        body=_check_body(body),
        buttons=tuple(checked),
        header=_optional(header, HEADER_MAX),
        footer=_optional(footer, FOOTER_MAX),
    )


def validate_list(
    body: str,
    button_text: str,
    rows: Sequence[tuple[str, str, str | None]],
    section_title: str,
    header: str | None = None,
    footer: str | None = None,
) -> ListMessage:
    """Check a single-section list message against WhatsApp's limits, shortening labels that are too long.

    Limits: https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages (interactive object,
    sections and rows).

    Args:
        body: body text.
        button_text: label of the button that opens the list.
        rows: ``(id, title, description)`` triples; ``description`` may be ``None``.
        section_title: title of the section.
        header: optional header text.
        footer: optional footer text.

    Returns:
        the checked message; over-long labels end in ``…``.

    Raises:
        ValueError: no row or more than 10, an empty, duplicate or over-200-character id, an empty title or
            button text, or an empty or over-1,024-character body.
    """
    if not 1 <= len(rows) <= LIST_ROWS_MAX:
        raise ValueError(f"list rows: {len(rows)} given; WhatsApp allows 1 to {LIST_ROWS_MAX}")
    if not button_text.strip():
        raise ValueError("list button text must not be empty")
    seen: set[str] = set()
    checked: list[tuple[str, str, str | None]] = []
    for row_id, title, description in rows:
        if not title.strip():
            raise ValueError("list row title must not be empty")
        checked.append(
            (
                _check_id(row_id, ROW_ID_MAX, "list row", seen),
                clip(title, ROW_TITLE_MAX),
                _optional(description, ROW_DESCRIPTION_MAX),
            )
        )
    return ListMessage(
        body=_check_body(body),
        button_text=clip(button_text, LIST_BUTTON_MAX),
        section_title=clip(section_title, SECTION_TITLE_MAX) if section_title.strip() else "",
        rows=tuple(checked),
        header=_optional(header, HEADER_MAX),
        footer=_optional(footer, FOOTER_MAX),
    )
