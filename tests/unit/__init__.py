"""Unit tests: pure functions, one folder per layer (no database, no graph run)."""
