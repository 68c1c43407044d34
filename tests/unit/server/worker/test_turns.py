"""The turn runner's contract with the webhook's scheduler (no services)."""

from __future__ import annotations

from core.config import Settings
from server.ingest.schedule import schedule_args
from server.worker.turns import SCHEDULED_JOB_PREFIX


def test_jobs_the_webhook_schedules_carry_the_prefix_the_runner_recognises() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    keys, args = schedule_args(settings, [("meta", "254700000001", 41), ("meta", "254700000002", 42)], 1_800_000_000.0)
    job_ids = args[6 + 1 :: 2]  # 6 shared arguments (see schedule_args), then (payload, job id) per message
    assert len(job_ids) == 2 and len(set(job_ids)) == 2
    assert all(isinstance(j, str) and j.startswith(SCHEDULED_JOB_PREFIX) for j in job_ids)
