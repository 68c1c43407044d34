"""State of the procurement and approval graphs (defined in :mod:`core.domain.state`, re-exported here).

The State is checkpointed after every node (PostgreSQL in the server), so it holds only small JSON-safe values:
texts, ids, amounts as strings, and storage keys for media. Media bytes and raw payloads never enter it. The
classes live in ``core`` so that nodes, which may not import the graphs layer at run time, can annotate
``state: State`` in a way LangGraph can resolve when it reads node and router signatures.
"""

from core.domain.state import WINDOW_CAP, ApprovalState, State, window_reducer

__all__ = ["WINDOW_CAP", "ApprovalState", "State", "window_reducer"]
