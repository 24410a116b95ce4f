"""The case API at /api/v1/cases: the lifecycle (`cases`) and the work on a case (`work`)."""

from offboard.cases.api import cases, work

router = cases.router
router.add_router("", work.router)

__all__ = ["router"]
