"""A fake chat model that emits scripted tool calls (langchain-core's own fake models raise on ``bind_tools``)."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage


class ToolCallingFake(FakeMessagesListChatModel):
    """Returns the scripted messages in order; ``bind_tools`` records the tools and returns the model itself."""

    bound: list[Any] = []
    seen: list[Any] = []

    def bind_tools(self, tools: Any, **kwargs: Any) -> ToolCallingFake:  # type: ignore[override]
        self.bound = list(tools)
        return self

    async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        self.seen.append(input)
        return await super().ainvoke(input, config, **kwargs)


def calls(*calls: tuple[str, dict[str, Any]], tokens: tuple[int, int] = (900, 40)) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[{"name": n, "args": a, "id": f"call_{i}", "type": "tool_call"} for i, (n, a) in enumerate(calls)],
        usage_metadata={"input_tokens": tokens[0], "output_tokens": tokens[1], "total_tokens": sum(tokens)},
    )
