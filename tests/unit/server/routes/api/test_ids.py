"""API path ids: ASCII digits within the integer column's range, else 422 (server.routes.api.ids)."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from server.routes.api.ids import ID_MAX, path_id
from tools.requests import parse_number


@pytest.mark.parametrize(
    ("value", "expected"), [("12", 12), ("PR-12", 12), ("pr12", 12), (str(ID_MAX), ID_MAX), ("hello", None), ("", None)]
)
def test_ids_and_numbers_are_read(value, expected) -> None:
    assert path_id(value, parse_number, "request") == expected


@pytest.mark.parametrize(
    "value", ["¹", "٣", "PR-٣", "1²", str(ID_MAX + 1), "9223372036854775807", "9" * 5000, "0", "PR-0"]
)
def test_non_ascii_digits_and_ids_out_of_range_are_422(value) -> None:
    with pytest.raises(HTTPException) as err:
        path_id(value, parse_number, "request")
    assert err.value.status_code == 422
