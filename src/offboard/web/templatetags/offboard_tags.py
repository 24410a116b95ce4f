"""Template helpers for the staff pages."""

from django import template

from offboard.ledger.summary import event_summary

register = template.Library()
register.filter("event_summary", event_summary)
