"""The chat model from the settings: one constructor shared by the server, Studio and the evaluation runner."""

from __future__ import annotations

from typing import Any

from core.config import Settings


def make_chat_model(settings: Settings) -> Any:
    """The configured chat model (``langchain.chat_models.init_chat_model``), or ``None`` when ``LLM_MODEL`` is unset.

    ``LLM_BASE_URL`` points it at any OpenAI-compatible endpoint and ``LLM_API_KEY`` authenticates; a bare model
    name (no ``provider:`` prefix, no ``/``) is served by the OpenAI provider. Temperature is 0.

    Args:
        settings: the process settings (``LLM_MODEL``, ``LLM_BASE_URL``, ``LLM_API_KEY``).

    Returns:
        A LangChain chat model, or ``None``.
    """
    if not settings.LLM_MODEL:
        return None
    from langchain.chat_models import init_chat_model  # heavy: imported only when a model is configured

    kwargs: dict[str, Any] = {"temperature": 0}
    if settings.LLM_BASE_URL:
        kwargs["base_url"] = settings.LLM_BASE_URL
    if settings.LLM_API_KEY:
        kwargs["api_key"] = settings.LLM_API_KEY.get_secret_value()
    model = settings.LLM_MODEL
    if ":" not in model and "/" not in model:
        kwargs.setdefault("model_provider", "openai")
    return init_chat_model(model, **kwargs)
