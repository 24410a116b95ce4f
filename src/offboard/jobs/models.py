"""The periodic schedule: one row per periodic job, claimed by one worker per run."""

from django.db import models


class Schedule(models.Model):
    """When a periodic job (`jobs.schedule.PERIODIC`) is next due. A worker that finds it due
    moves `next_run_at` on with a conditional UPDATE and enqueues the job in the same
    transaction: of several workers ticking at once, exactly one wins each run."""

    name = models.CharField(max_length=64, primary_key=True)
    next_run_at = models.DateTimeField()
    last_enqueued_at = models.DateTimeField(null=True, blank=True)
    runs = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} next at {self.next_run_at:%Y-%m-%dT%H:%M:%SZ}"
