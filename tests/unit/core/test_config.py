"""Settings: placeholders refused in production, defaults as documented."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.config import GRAPH_API_VERSION, Settings


def test_defaults():
    s = Settings(_env_file=None)
    assert s.DATABASE_URL is None and s.REDIS_URL is None and str(s.DATA_DIR) == ".procure"
    assert s.DEBOUNCE_SECONDS == 2.0 and s.DEBOUNCE_MAX_SECONDS == 10 and s.CONTEXT_WINDOW_MESSAGES == 20
    assert s.LLM_MODEL is None and s.DEFAULT_CURRENCY == "USD"
    assert s.META_GRAPH_URL.endswith(f"/{GRAPH_API_VERSION}")


def test_placeholder_secrets_refused_in_production():
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(_env_file=None, ENVIRONMENT="production")
    ok = Settings(
        _env_file=None,
        ENVIRONMENT="production",
        META_APP_SECRET="s1",
        META_VERIFY_TOKEN="s2",
        META_ACCESS_TOKEN="s3",
        ADMIN_API_TOKEN="s4",
    )
    assert ok.ENVIRONMENT == "production"
    assert "s1" not in repr(ok)  # secrets never in reprs or logs


def test_debounce_cap_must_cover_the_gap():
    with pytest.raises(ValidationError):
        Settings(_env_file=None, DEBOUNCE_SECONDS=5, DEBOUNCE_MAX_SECONDS=2)
