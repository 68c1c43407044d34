"""Which insert failures blame the data (retry row by row, dead-letter the bad row) and which are an outage (503)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors as E
from psycopg_pool import PoolTimeout

from server.ingest.batcher import StaleConnection, is_data_error, refusal


@pytest.mark.parametrize(
    "exc",
    [
        E.CharacterNotInRepertoire("invalid byte sequence for encoding UTF8: 0x00"),  # 22021
        E.UntranslatableCharacter("unsupported Unicode escape sequence"),  # 22P05
        E.StringDataRightTruncation("value too long for type character varying(100)"),  # 22001
        E.DatetimeFieldOverflow("date/time field value out of range"),  # 22008
        E.NotNullViolation("null value in column"),  # 23502
        E.StatementTooComplex("stack depth limit exceeded"),  # 54001
        TypeError("Recursion limit reached"),  # orjson's nesting limit
    ],
)
def test_data_errors(exc: BaseException) -> None:
    assert is_data_error(exc)


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.OperationalError("connection refused"),
        StaleConnection("server closed the connection unexpectedly"),
        E.AdminShutdown("terminating connection due to administrator command"),  # 57P01
        E.CannotConnectNow("the database system is starting up"),  # 57P03
        E.TooManyConnections("sorry, too many clients already"),  # 53300
        PoolTimeout("couldn't get a connection after 5.00 sec"),
        OSError("Connection refused"),
    ],
)
def test_outages(exc: BaseException) -> None:
    assert not is_data_error(exc)


def test_a_refusal_names_the_error_on_one_line_without_nuls() -> None:
    reason = refusal(E.CharacterNotInRepertoire("invalid byte sequence\x00 for encoding\nDETAIL: more"))
    assert reason == "database refused the row: CharacterNotInRepertoire: invalid byte sequence for encoding"
