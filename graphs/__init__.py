"""LangGraph assembly: State, Context, and one module per graph exporting ``builder`` and ``graph``."""
