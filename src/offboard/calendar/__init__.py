"""A member's calendar feed: a secret address of their steps' due dates and their cases'
milestones, for a calendar app to subscribe to (docs/calendar.md, decision 0018)."""
