"""The home page: my inbox (what waits for me, each linking to where it is dealt with), cases
by state, and the risk list across the organization's open cases."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from offboard.accounts.models import Membership
from offboard.cases import risks, selectors
from offboard.core import clock
from offboard.web.inbox import build_inbox
from offboard.web.pages.common import staff_page

RISK_KINDS = {
    "access_after_end": "Access still active after the end date",
    "deliverable_overdue": "Deliverables past due",
    "data_return_due": "Data-return deadlines",
    "case_stalled": "Cases without progress",
}


@staff_page
def dashboard(request: HttpRequest, membership: Membership) -> HttpResponse:
    today = clock.now().date()
    counts = selectors.state_counts(membership.org)
    found = risks.risks(membership.org, today=today)
    groups = [
        (kind, title, [r for r in found if r.kind == kind]) for kind, title in RISK_KINDS.items()
    ]
    return render(
        request,
        "web/dashboard.html",
        {
            "membership": membership,
            "today": today,
            "counts": counts,
            "open_total": counts["draft"] + counts["active"] + counts["closing"],
            "inbox": build_inbox(membership, today=today),
            "risk_groups": [g for g in groups if g[2]],
            "risk_total": len(found),
            "stalled_days": risks.STALLED_AFTER_DAYS,
            "data_days": risks.DATA_RETURN_WARNING_DAYS,
            "horizon_days": risks.MY_STEPS_HORIZON_DAYS,
        },
    )
