"""Shared foundation: settings, domain types, database schema, policy rules."""
