"""The arq worker process: settings and jobs, turns, the inbox and outbox, approval threads, recovery sweeps.

:mod:`server.worker.settings` (``procure worker``), :mod:`server.worker.jobs` (``run_turn``,
``place_fulfilment``), :mod:`server.worker.turns` (claim, run the graph, send), :mod:`server.worker.inbox`,
:mod:`server.worker.outbox`, :mod:`server.worker.approvals` (the approval graph's threads) and
:mod:`server.worker.sweeper`.
"""
