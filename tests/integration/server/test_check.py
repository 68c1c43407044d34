"""``procure check``: one line per check, exit 1 on any failure, never a secret value in the output."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

from tests.support.paths import ROOT

#: Real-looking secrets for a production configuration (they must never be printed).
PROD_SECRETS = {
    "META_APP_SECRET": "s3cr3t-app-5f1e0c2a9b",
    "META_VERIFY_TOKEN": "s3cr3t-verify-77aa31",
    "META_ACCESS_TOKEN": "s3cr3t-access-EAAG0042",
    "META_PHONE_NUMBER_ID": "109876543210987",
    "ADMIN_API_TOKEN": "s3cr3t-admin-d41d8cd9",
}


def check(database_url: str, redis_url: str, **env: str) -> tuple[int, list[str]]:
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("META_", "ADMIN_", "LLM_", "EMBEDDING_")) and k != "ENVIRONMENT"
    }
    full.update(DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING", **env)
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "check"], env=full, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    out = done.stdout + done.stderr
    for secret in PROD_SECRETS.values():
        assert secret not in out
    return done.returncode, done.stdout.splitlines()


def status(lines: list[str], name: str) -> set[str]:
    return {ln.split()[0] for ln in lines if ln.split(maxsplit=1)[-1].startswith(name + ":")}


def test_production_configuration_passes(services, database_url, redis_url):
    code, lines = check(database_url, redis_url, ENVIRONMENT="production", **PROD_SECRETS)
    assert code == 0, lines
    for name in ("settings", "secrets", "channel meta", "database", "migrations", "redis", "llm", "embeddings"):
        assert status(lines, name) == {"ok"}, (name, lines)
    assert lines[-1] == "all checks passed"


def test_placeholder_secrets_fail_in_production_and_warn_in_development(services, database_url, redis_url):
    prod = dict(PROD_SECRETS, ADMIN_API_TOKEN="changethis")
    code, lines = check(database_url, redis_url, ENVIRONMENT="production", **prod)
    assert code == 1
    assert status(lines, "settings") == {"FAIL"} and "ADMIN_API_TOKEN" in "\n".join(lines)
    assert status(lines, "secrets") == {"FAIL"}
    assert status(lines, "database") == {"ok"}  # the other checks still ran

    code, lines = check(database_url, redis_url, ENVIRONMENT="development")  # every secret left at its default
    assert code == 0, lines
    assert status(lines, "secrets") == {"warn"} and status(lines, "channel meta") == {"warn"}


def test_unreachable_services_and_an_unmigrated_database_fail(services, database_url, redis_url):
    base, _, query = database_url.partition("?")
    empty = base.rsplit("/", 1)[0] + "/procure_check_empty" + ("?" + query if query else "")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS procure_check_empty")
        conn.execute("CREATE DATABASE procure_check_empty")
    try:
        code, lines = check(empty, "redis://127.0.0.1:1/0", ENVIRONMENT="production", **PROD_SECRETS)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS procure_check_empty")
    assert code == 1
    assert status(lines, "database") == {"ok"}
    assert status(lines, "migrations") == {"FAIL"} and "procure db upgrade" in "\n".join(lines)
    assert status(lines, "redis") == {"FAIL"}

    gone = base.rsplit("/", 1)[0] + "/procure?host=/nonexistent-socket-dir"
    code, lines = check(gone, redis_url, ENVIRONMENT="production", **PROD_SECRETS)
    assert code == 1 and status(lines, "database") == {"FAIL"} and status(lines, "redis") == {"ok"}


def test_bad_llm_settings_fail(services, database_url, redis_url):
    code, lines = check(
        database_url,
        redis_url,
        ENVIRONMENT="production",
        LLM_MODEL="gpt-4o-mini",
        LLM_BASE_URL="ftp://x",
        **PROD_SECRETS,
    )
    assert code == 1 and status(lines, "llm") == {"FAIL"}
