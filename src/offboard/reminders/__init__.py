"""Reminders and escalation (docs/reminders.md, decision 0023): an email when steps are assigned
to someone, a daily digest of their due-soon and overdue steps, reminders before a case's
deadlines, escalations of what is late, and the client portal's periodic reminders and deemed
acceptance. Every message sent is recorded as an event on its case."""
