"""Run a graph's synchronous nodes and routers on the event loop instead of LangGraph's thread pool.

LangGraph runs a plain ``def`` node or router through ``run_in_executor`` when the graph is invoked
asynchronously (``langgraph._internal._runnable.coerce_to_runnable``): a thread hop, a context copy and a loop
wake-up per call, about a dozen per turn in the worker. The functions wrapped here are short, pure and CPU-bound
(no I/O), so a thread buys no concurrency under the GIL; running them inline is the same work without the hops.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

R = TypeVar("R")


def inline(fn: Callable[..., R]) -> Callable[..., Awaitable[R]]:
    """An ``async`` twin of a synchronous node or router with the same signature and annotations.

    LangGraph reads the wrapped function's parameters (``state``, ``runtime``) through ``__wrapped__``, so it
    injects the same arguments; the call happens on the event loop. Only for functions that do no blocking I/O.

    Args:
        fn: a synchronous node or router.

    Returns:
        A coroutine function returning what ``fn`` returns.
    """

    @functools.wraps(fn)
    async def run_inline(*args: Any, **kwargs: Any) -> R:
        return fn(*args, **kwargs)

    return run_inline
