"""Work started right after a commit, in a background thread, with an outbox behind it.

The timestamp requests and the closure receipts both follow this pattern: the action writes
an outbox row in its transaction; after commit a daemon thread processes that row at once;
`offboard worker` retries whatever failed. A short-lived process (a CLI command) waits for
its threads at exit, for a bounded time, so a claimed row is not left to its lease.
"""

import atexit
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connections

log = logging.getLogger("offboard.background")


class AfterCommitJobs:
    """One kind of after-commit job: its threads are named `prefix` + the row's id."""

    def __init__(self, prefix: str, *, enabled: Callable[[], bool], exit_wait: Callable[[], float]):
        self.prefix = prefix
        self._enabled = enabled
        self._exit_wait = exit_wait
        self._local = threading.local()
        self._atexit_registered = False

    @contextmanager
    def inline(self) -> Iterator[None]:
        """No background thread in this block: the caller processes the rows itself."""
        previous = getattr(self._local, "inline", False)
        self._local.inline = True
        try:
            yield
        finally:
            self._local.inline = previous

    def start(self, key: int, job: Callable[[], object], failure: str) -> threading.Thread | None:
        """Run `job` in a daemon thread, unless disabled by settings or inside `inline()`;
        an exception is logged with `failure` (the worker retries the row)."""
        if not self._enabled() or getattr(self._local, "inline", False):
            return None

        def run() -> None:
            try:
                job()
            except Exception:
                log.exception("%s; the worker will retry", failure)
            finally:
                connections.close_all()  # this thread's connections only

        if not self._atexit_registered:
            atexit.register(lambda: self.wait(self._exit_wait()))
            self._atexit_registered = True
        thread = threading.Thread(target=run, name=f"{self.prefix}{key}", daemon=True)
        thread.start()
        return thread

    def wait(self, timeout: float) -> None:
        """Join this kind's threads still running, for at most `timeout` seconds in all."""
        deadline = time.monotonic() + timeout
        for thread in threading.enumerate():
            if thread.name.startswith(self.prefix) and thread is not threading.current_thread():
                thread.join(max(deadline - time.monotonic(), 0))
