"""Jobs for the engine's tests: each run leaves a trace a test can count, from any process."""

import os
import time
from pathlib import Path

from django_tasks import task


@task()
def record(directory: str, key: str, seconds: float = 0.0) -> str:
    """Append this process's id to `directory/key`: a file with two lines ran twice."""
    time.sleep(seconds)
    with open(Path(directory) / key, "a") as trace:
        trace.write(f"{os.getpid()}\n")
    return key


@task()
def fail(message: str) -> None:
    raise RuntimeError(message)
