"""Process entry points: webhook web app, worker and command line; provider channels live in ``channels``."""
