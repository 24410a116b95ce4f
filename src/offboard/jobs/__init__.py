"""Background jobs on Django's tasks API (decision 0021, docs/jobs.md)."""
