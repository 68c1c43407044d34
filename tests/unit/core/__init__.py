"""Unit tests of core's pure policy rules."""
