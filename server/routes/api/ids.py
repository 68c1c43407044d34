"""Path ids of the API (``12`` or ``PR-12``, ``3`` or ``T-3``) read strictly: a malformed id is a 422, never a 500.

Python's ``str.isdigit`` and ``int`` accept digits of every script (``"¹".isdigit()`` is true, ``int("٣")`` is 3)
and ints of any size, while the ids are PostgreSQL ``integer`` columns (1 to 2,147,483,647). Only ASCII digits in
that range are ids; a number beyond it names nothing that can exist and is refused as invalid input.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException

__all__ = ["ID_MAX", "path_id"]

#: Largest value of a PostgreSQL ``integer`` id column.
ID_MAX = 2**31 - 1


def path_id(value: str, parse_number: Callable[[str], int | None], what: str) -> int | None:
    """The database id a path segment names, or ``None`` when it names nothing (the caller answers 404).

    Args:
        value: the path segment: an id of ASCII digits, or a number such as ``PR-12`` understood by
            ``parse_number``.
        parse_number: reads ``PR-12`` / ``T-3`` style numbers (``None`` when the text names none).
        what: the id's name in the error message, e.g. ``"request"``.

    Returns:
        the id (1 to :data:`ID_MAX`), or ``None`` for a text that names no id.

    Raises:
        HTTPException: 422 when ``value`` holds non-ASCII digits or a number outside 1..:data:`ID_MAX`.
    """
    if any(ch.isdigit() and not ch.isascii() for ch in value):
        raise HTTPException(422, f"{what} id must be written with the digits 0-9")
    if value.isdigit():
        number: int | None = int(value) if len(value) <= 10 else ID_MAX + 1
    else:
        number = parse_number(value)
    if number is not None and not 1 <= number <= ID_MAX:
        raise HTTPException(422, f"{what} id must be between 1 and {ID_MAX}")
    return number
