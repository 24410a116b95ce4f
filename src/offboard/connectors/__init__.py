"""Revocation connectors: one module per external system behind one contract (`base`)."""
