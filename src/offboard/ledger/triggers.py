"""Database triggers that make the ledger tables append-only, on SQLite and PostgreSQL.

UPDATE and DELETE are refused on `ledger_entry` and `ledger_node`; the one update allowed is
a redaction (body emptied, `redacted` set, every other column unchanged). Triggers stop
mistakes and casual edits; someone who can drop them can rewrite rows, which is why the
log is also signed, timestamped and handed to clients (checkpoints).
"""

from typing import Any

MESSAGE = "ledger tables are append-only"

_REDACTION_ONLY = (
    "OLD.redacted = {false} AND NEW.redacted = {true} AND length(NEW.body) = 0 "
    'AND NEW."index" = OLD."index" AND NEW.org_id = OLD.org_id AND NEW.leaf_hash = OLD.leaf_hash '
    "AND NEW.type = OLD.type AND NEW.at = OLD.at "
    "AND NEW.case_id IS NOT DISTINCT FROM OLD.case_id "
    "AND NEW.actor_user_id IS NOT DISTINCT FROM OLD.actor_user_id"
)

SQLITE_CREATE = [
    f"""CREATE TRIGGER IF NOT EXISTS ledger_entry_no_update BEFORE UPDATE ON ledger_entry
    WHEN NOT ({_REDACTION_ONLY.format(false=0, true=1).replace("IS NOT DISTINCT FROM", "IS")})
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS ledger_entry_no_delete BEFORE DELETE ON ledger_entry
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS ledger_node_no_update BEFORE UPDATE ON ledger_node
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS ledger_node_no_delete BEFORE DELETE ON ledger_node
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS ledger_entry_no_update",
    "DROP TRIGGER IF EXISTS ledger_entry_no_delete",
    "DROP TRIGGER IF EXISTS ledger_node_no_update",
    "DROP TRIGGER IF EXISTS ledger_node_no_delete",
]

POSTGRES_CREATE = [
    f"""CREATE OR REPLACE FUNCTION ledger_entry_refuse_change() RETURNS trigger AS $$
    BEGIN
      IF TG_OP = 'UPDATE' THEN
        IF ({_REDACTION_ONLY.format(false="false", true="true")}) THEN
          RETURN NEW;
        END IF;
      END IF;
      RAISE EXCEPTION '{MESSAGE}: % on ledger_entry refused', TG_OP;
    END $$ LANGUAGE plpgsql""",
    f"""CREATE OR REPLACE FUNCTION ledger_node_refuse_change() RETURNS trigger AS $$
    BEGIN
      RAISE EXCEPTION '{MESSAGE}: % on ledger_node refused', TG_OP;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_refuse_change()""",
    """CREATE TRIGGER ledger_node_append_only BEFORE UPDATE OR DELETE ON ledger_node
    FOR EACH ROW EXECUTE FUNCTION ledger_node_refuse_change()""",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS ledger_entry_append_only ON ledger_entry",
    "DROP TRIGGER IF EXISTS ledger_node_append_only ON ledger_node",
]


def _statements(vendor: str, create: bool) -> list[str]:
    if vendor == "sqlite":
        return SQLITE_CREATE if create else SQLITE_DROP
    if vendor == "postgresql":
        return POSTGRES_CREATE if create else POSTGRES_DROP
    raise RuntimeError(f"no append-only triggers for database vendor {vendor!r}")


def install(connection: Any) -> None:
    with connection.cursor() as cursor:
        for sql in _statements(connection.vendor, create=True):
            cursor.execute(sql)


def remove(connection: Any) -> None:
    with connection.cursor() as cursor:
        for sql in _statements(connection.vendor, create=False):
            cursor.execute(sql)
