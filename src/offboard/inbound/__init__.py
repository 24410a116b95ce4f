"""Inbound webhooks: another system (a CRM, a PSA) opens a case with a signed event."""
