"""Reports rendered from the records: the closure certificate (PDF)."""
