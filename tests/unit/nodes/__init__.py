"""Unit tests of the nodes layer's pure functions: routers, draft helpers, reply text."""
