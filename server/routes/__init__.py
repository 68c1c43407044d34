"""HTTP routes of the web app: channel webhooks, health checks and the authenticated API, one module each.

:mod:`server.routes.webhooks` (every registered channel's POST and GET handshake, unauthenticated: the provider
signs its requests), :mod:`server.routes.health` (``/healthz``, ``/readyz``, unauthenticated) and
:mod:`server.routes.api` (``/api/...``, one router per resource, all behind ``ADMIN_API_TOKEN``). Route modules
hold no SQL: queries live in the ``tools`` stores.
"""
