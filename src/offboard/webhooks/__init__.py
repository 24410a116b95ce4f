"""Outbound webhooks: the organization's events posted to other systems, signed (Standard
Webhooks), retried with backoff, logged per attempt (docs/webhooks-out.md, decision 0022)."""
