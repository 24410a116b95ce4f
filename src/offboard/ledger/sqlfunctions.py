"""PostgreSQL: the whole append as one server-side function, so an event costs one round
trip plus the commit. It computes exactly what `store.append` does in Python on SQLite
(RFC 9162 leaf and node hashes with PostgreSQL's sha256()); the test suite runs every
append of the PostgreSQL pass through it and checks the tree against the reference."""

from typing import Any

POSTGRES_CREATE = r"""
CREATE OR REPLACE FUNCTION ledger_append(
    p_org bigint, p_body bytea, p_case bigint, p_type varchar, p_at timestamptz, p_actor bigint
) RETURNS TABLE (entry_id bigint, entry_index bigint, entry_leaf bytea) AS $$
DECLARE
  idx bigint;
  n bigint;
  lvl integer;
  h bytea;
  left_hash bytea;
  new_id bigint;
  hs bytea[];
  up bytea[];
  i integer;
BEGIN
  -- Claim the next index; the UPDATE row-locks the log head until commit.
  UPDATE ledger_loghead SET size = size + 1 WHERE org_id = p_org RETURNING size - 1 INTO idx;
  IF NOT FOUND THEN
    INSERT INTO ledger_loghead (org_id, size) VALUES (p_org, 1)
      ON CONFLICT (org_id) DO UPDATE SET size = ledger_loghead.size + 1
      RETURNING size - 1 INTO idx;
  END IF;
  h := sha256(decode('00', 'hex') || p_body);
  INSERT INTO ledger_entry (org_id, "index", body, leaf_hash, redacted, case_id, type, at, actor_user_id)
    VALUES (p_org, idx, p_body, h, false, p_case, p_type, p_at, p_actor) RETURNING id INTO new_id;
  entry_leaf := h;
  entry_id := new_id;
  entry_index := idx;
  -- Nodes are stored from level 4 up (store.STORED_FROM_LEVEL): once every 16 appends this
  -- leaf completes a 16-leaf block, whose hash is folded from the block's leaf hashes.
  IF (idx + 1) % 16 = 0 THEN
    SELECT array_agg(leaf_hash ORDER BY "index") INTO hs FROM ledger_entry
      WHERE org_id = p_org AND "index" >= idx - 15 AND "index" <= idx;
    IF coalesce(array_length(hs, 1), 0) <> 16 THEN
      RAISE EXCEPTION 'ledger entries % to % of organization % are missing', idx - 15, idx, p_org;
    END IF;
    WHILE array_length(hs, 1) > 1 LOOP
      up := '{}';
      FOR i IN 1 .. array_length(hs, 1) BY 2 LOOP
        up := up || sha256(decode('01', 'hex') || hs[i] || hs[i + 1]);
      END LOOP;
      hs := up;
    END LOOP;
    h := hs[1];
    lvl := 4;
    n := (idx + 1) / 16 - 1;
    INSERT INTO ledger_node (org_id, level, "index", hash) VALUES (p_org, lvl, n, h);
    -- Every larger subtree it completes: while the node is a right child, hash it with its
    -- left sibling into the parent (RFC 9162 §2.1.1 node hash).
    WHILE n % 2 = 1 LOOP
      SELECT hash INTO left_hash FROM ledger_node WHERE org_id = p_org AND level = lvl AND "index" = n - 1;
      IF left_hash IS NULL THEN
        RAISE EXCEPTION 'ledger node (%, %) of organization % is missing', lvl, n - 1, p_org;
      END IF;
      h := sha256(decode('01', 'hex') || left_hash || h);
      n := n / 2;
      lvl := lvl + 1;
      INSERT INTO ledger_node (org_id, level, "index", hash) VALUES (p_org, lvl, n, h);
    END LOOP;
  END IF;
  RETURN NEXT;
END $$ LANGUAGE plpgsql
"""
POSTGRES_DROP = (
    "DROP FUNCTION IF EXISTS ledger_append(bigint, bytea, bigint, varchar, timestamptz, bigint)"
)


def install(connection: Any) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(POSTGRES_CREATE)


def remove(connection: Any) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(POSTGRES_DROP)
