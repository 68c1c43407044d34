"""The worker's jobs: ``run_turn`` and ``place_fulfilment``, the queue the effect nodes enqueue the latter with.

A turn's work lives in :mod:`server.worker.turns`. Fulfilment's lives in :mod:`tools.fulfilment`; this module
wires it into the worker process:

* :func:`install` (called by :func:`server.worker.settings.startup`) builds one :class:`~tools.fulfilment.Fulfiller` per worker
  and sets ``services.extras["fulfilment"]`` to a :class:`FulfilmentJobs`, which the turn runner injects as
  ``Context.fulfilment``: the graphs' effect nodes (``enqueue_fulfilment`` after an approval, ``retry_fulfilment``
  on a Retry press, see :mod:`nodes.effects`) call it. Nothing heavy starts here: the ERP client and Chromium
  start with their first order.
* one job per fulfilment round, enqueued under a stable ``_job_id`` (``fulfil:<id>:<retries>``), so a turn that is
  re-run after a crash enqueues nothing twice;
* a sweeper task re-enqueues fulfilments left ``placing`` by a dead worker or whose job was lost (arq does not
  retry a job that hit its timeout, and gives up after ``max_tries``).

arq semantics relied on (https://arq-docs.helpmanual.io/): a SIGKILLed job is re-run after its timeout + 10 s; only
``Retry`` (and cancellation) is retried; ``_job_id`` refuses a duplicate while the job or its result exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from arq import Retry, func
from arq.worker import Function

from core.config import Settings
from server.services import Services
from server.worker import outbox
from server.worker.sweeper import run_periodically
from server.worker.turns import run_turn_with_retry_mapping
from tools.fulfilment import OPEN_STATES, Fulfiller, RetryLater, job_id

log = logging.getLogger(__name__)

#: arq function name of the job.
JOB_NAME = "place_fulfilment"
#: Seconds a finished job's result is kept; while it is, its ``_job_id`` cannot be enqueued again.
KEEP_RESULT_SECONDS = 3600


async def run_turn(ctx: dict[str, Any], provider: str, chat_id: str) -> str:
    """Job: run the chat's due turn (see :mod:`server.worker.turns`)."""
    return await run_turn_with_retry_mapping(ctx["runner"], provider, chat_id, ctx.get("job_try", 1), ctx.get("job_id"))


async def place_fulfilment(ctx: dict[str, Any], fulfilment_id: int) -> str:
    """Job: place one fulfilment (see :meth:`tools.fulfilment.Fulfiller.place`).

    Args:
        ctx: arq's context; ``ctx["services"]`` is the worker's :class:`~server.services.Services`.
        fulfilment_id: ``fulfilments.id``.

    Returns:
        The fulfilment's state afterwards (``placed``, ``failed``, ``cancelled``) or ``missing``.

    Raises:
        arq.Retry: a retryable failure with tries left, the fulfilment or website account is busy, or our own
            infrastructure failed transiently.
    """
    services: Services = ctx["services"]
    fulfiller = services.extras.get("fulfiller") or install(services)
    try:
        return await fulfiller.place(fulfilment_id, job_try=int(ctx.get("job_try", 1)))
    except RetryLater as exc:  # tools know no worker framework: their retry request becomes arq's
        raise Retry(defer=exc.defer) from exc


def jobs_for(settings: Settings) -> list[Function]:
    """The fulfilment jobs with this deployment's limits.

    ``timeout`` is ``FULFILMENT_TIMEOUT_SECONDS`` (an attempt stops itself earlier and retries). ``max_tries``
    leaves room beyond ``FULFILMENT_MAX_TRIES`` for deferrals that are not attempts (another worker holds the
    fulfilment or the website account; our database blinked).
    """
    return [
        func(
            place_fulfilment,
            name=JOB_NAME,
            timeout=settings.FULFILMENT_TIMEOUT_SECONDS,
            max_tries=settings.FULFILMENT_MAX_TRIES * 3 + 20,
            keep_result=KEEP_RESULT_SECONDS,
        )
    ]


#: The fulfilment jobs with default limits (:mod:`server.worker.settings` uses :func:`jobs_for` with the process settings).
JOBS: list[Function] = jobs_for(Settings.model_construct())


async def enqueue(services: Services, fulfilment_id: int, jid: str) -> bool:
    """Enqueue the job of a fulfilment under ``jid``; False when arq already holds that job (or its result)."""
    job = await services.redis.enqueue_job(JOB_NAME, fulfilment_id, _job_id=jid)
    return job is not None


def _notifier(services: Services) -> Any:
    async def notify(provider: str, key_prefix: str, messages: list[dict[str, Any]]) -> None:
        # Requests remember the channel they came in on; fall back to any configured one.
        channel = provider if provider in services.channels else next(iter(services.channels))
        await outbox.send_all(services.engine, services.channels, channel, key_prefix, messages)

    return notify


class FulfilmentJobs:
    """The worker's fulfilment queue, injected as ``Context.fulfilment``: fulfilments created, jobs enqueued.

    Implements :class:`nodes.effects.FulfilmentQueue`; both operations are idempotent (stable job ids).

    Args:
        services: the worker's services (Redis for the queue).
        fulfiller: the worker's :class:`~tools.fulfilment.Fulfiller`.
    """

    def __init__(self, services: Services, fulfiller: Fulfiller) -> None:
        self.services = services
        self.fulfiller = fulfiller

    async def request(self, request_id: int, *, provider: str) -> int:
        """An approved request: one fulfilment per supplier, each job enqueued once (``fulfil:<id>:<retries>``).

        With no ERP and no registered supplier (a fresh embedded install) nothing is written and the request
        stays ``approved``.

        Returns:
            Jobs enqueued now (0 when they were already queued, or fulfilment is off).
        """
        if not await self.fulfiller.enabled():
            log.info("fulfilment is not configured (no ERP_URL, no suppliers): PR-%s stays approved", request_id)
            return 0
        n = 0
        for f in await self.fulfiller.create_for_request(request_id, provider=provider):
            if f.state in OPEN_STATES:
                n += await enqueue(self.services, f.id, job_id(f.id, f.retries))
        return n

    async def retry(self, fulfilment_id: int, by: int, *, provider: str, token: str) -> str:
        """A Retry press by user ``by`` (role re-checked by the fulfiller); enqueues the round's job when due.

        Args:
            fulfilment_id: from the button id ``retry:<id>``.
            by: the presser's user id (the turn's sender).
            provider: channel to answer on.
            token: identifies the press (``turn<id>``), for the answer's idempotency key.

        Returns:
            The outcome's status (``queued``, ``not_allowed``, ``missing``, ``placed``, ``cancelled``).
        """
        outcome = await self.fulfiller.retry(fulfilment_id, by, provider=provider, token=token)
        if outcome.job_id is not None and outcome.fulfilment is not None:
            await enqueue(self.services, outcome.fulfilment.id, outcome.job_id)
        return outcome.status


async def sweep_once(services: Services) -> int:
    """Re-enqueue fulfilments nobody is working on (see :meth:`Fulfiller.stale`); returns jobs enqueued."""
    fulfiller: Fulfiller = services.extras["fulfiller"]
    n = 0
    for fid, jid in await fulfiller.stale():
        n += await enqueue(services, fid, jid)
    return n


def install(services: Services, *, sweeper: bool = True, **fulfiller_options: Any) -> Fulfiller:
    """Set up fulfilment in a worker: the :class:`Fulfiller`, the :class:`FulfilmentJobs` queue and the sweeper.

    Args:
        services: the process services.
        sweeper: start the sweeper task (needs a running event loop; worker start-up has one).
        **fulfiller_options: passed to :class:`Fulfiller` (tests: ``browser_pool``, ``erp``, ``storage``).

    Returns:
        The fulfiller (also ``services.extras["fulfiller"]``; the queue is ``services.extras["fulfilment"]``,
        which the turn runner injects as ``Context.fulfilment``).
    """
    fulfiller = Fulfiller(
        services.engine,
        services.settings,
        database_url=services.database_url,
        notify=_notifier(services),
        **fulfiller_options,
    )
    services.extras["fulfiller"] = fulfiller
    services.extras["fulfilment"] = FulfilmentJobs(services, fulfiller)
    if sweeper:
        with contextlib.suppress(RuntimeError):  # no running loop: a caller that sweeps itself
            services.extras["fulfilment_sweeper"] = asyncio.get_running_loop().create_task(
                run_periodically(
                    "fulfilment sweeper",
                    lambda: sweep_once(services),
                    max(1.0, services.settings.SWEEP_INTERVAL_SECONDS),
                )
            )
    return fulfiller


async def close(services: Services) -> None:
    """Stop the sweeper and close the ERP client and Chromium (worker shutdown)."""
    task = services.extras.pop("fulfilment_sweeper", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    fulfiller = services.extras.pop("fulfiller", None)
    services.extras.pop("fulfilment", None)
    if fulfiller is not None:
        await fulfiller.aclose()


__all__ = [
    "JOBS",
    "JOB_NAME",
    "FulfilmentJobs",
    "close",
    "enqueue",
    "install",
    "jobs_for",
    "place_fulfilment",
    "run_turn",
    "sweep_once",
]
