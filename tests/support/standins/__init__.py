"""Local stand-ins for external services: real HTTP servers following the providers' documented contracts."""
