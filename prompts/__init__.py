"""Prompt texts and reply templates: data read by nodes, versioned.

``replies`` holds the WhatsApp reply templates (composed by code, never by the LLM); ``intake.md`` is the
LLM intake node's static system prompt. Bump the version constants when a text changes: the version is logged
with every LLM call and every eval run.
"""

from pathlib import Path

PROMPTS_DIR = Path(__file__).parent

#: Version of the intake prompt (``intake.md``); logged with token usage and eval runs.
INTAKE_PROMPT_VERSION = "intake-v3"
#: Version of the reply templates.
REPLIES_VERSION = "replies-v1"
PROMPT_VERSION = INTAKE_PROMPT_VERSION


def load_prompt(name: str) -> str:
    """Text of ``prompts/<name>`` (UTF-8)."""
    return (PROMPTS_DIR / name).read_text(encoding="utf-8")
