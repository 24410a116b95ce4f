"""`offboard backup` / `offboard restore`: an encrypted, consistent snapshot of an installation
(database, the stored files it references, public keys and checkpoints), and its restore into an
empty installation followed by a full ledger verification (docs/deploy.md, decision 0032)."""
