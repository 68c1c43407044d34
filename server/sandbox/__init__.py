"""Sandbox stand-ins for third-party services (the reference supplier web shop), for development and tests."""
