"""The connector jobs (docs/connectors.md): a requested run, by its row's id."""

from typing import Any

from django_tasks import task


@task()
def run_connector(run_id: int) -> dict[str, Any]:
    """Carry out a revoke or verify run (`connectors/runs.py`); a duplicate or late job finds
    the run finished or claimed and does nothing."""
    from offboard.connectors.runs import execute

    run = execute(run_id)
    if run is None:
        return {"run": run_id, "ran": False}
    return {"run": run_id, "ran": True, "state": run.state, "done": run.done}
