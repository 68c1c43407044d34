"""Intake of inbound messages in the web process: durable batched inserts, then the debounced turn schedule.

:mod:`server.ingest.batcher` stores webhook messages exactly once and answers only after the commit;
:mod:`server.ingest.schedule` extends the chat's burst in Redis and enqueues its ``run_turn`` job.
"""

from server.ingest.batcher import IngestBatcher
from server.ingest.schedule import debounce_key, due_in, schedule_args, schedule_script

__all__ = ["IngestBatcher", "debounce_key", "due_in", "schedule_args", "schedule_script"]
