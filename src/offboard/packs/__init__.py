"""Evidence packs: `export` writes a case's pack (above cases, reports and the ledger);
`verify` checks one offline and imports nothing from Django or the database.

This package file stays free of imports so that `offboard.packs.verify` runs anywhere.
"""
