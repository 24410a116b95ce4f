"""The client portal: a signed, expiring, revocable link per client contact to acknowledge or
dispute a case's deliverables and handover items, with identity evidence on the record."""
