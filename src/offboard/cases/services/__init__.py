"""Every change to a case goes through one of these functions: one transaction, one event."""

from offboard.cases.services.closure import (
    activate_case,
    add_addendum,
    approve_case,
    cancel_case,
    close_case,
    enter_closing,
    update_case,
)
from offboard.cases.services.opening import CaseDates, compute_dates, open_case
from offboard.cases.services.registers import add_register_item, update_register_item
from offboard.cases.services.steps import (
    complete_step,
    mark_step_not_applicable,
    reopen_step,
    start_step,
)
from offboard.cases.services.waivers import grant_waiver, revoke_waiver

__all__ = [
    "CaseDates",
    "activate_case",
    "add_addendum",
    "add_register_item",
    "approve_case",
    "cancel_case",
    "close_case",
    "complete_step",
    "compute_dates",
    "enter_closing",
    "grant_waiver",
    "mark_step_not_applicable",
    "open_case",
    "reopen_step",
    "revoke_waiver",
    "start_step",
    "update_case",
    "update_register_item",
]
