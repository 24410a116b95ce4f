"""PostgreSQL: the whole append as one server-side function, so an event costs one round
trip plus the commit. It computes exactly what `store.append` does in Python on SQLite
(RFC 9162 leaf and node hashes with PostgreSQL's sha256()); the test suite runs every
append of the PostgreSQL pass through it and checks the tree against the reference.

The functions are versioned: a migration installs the version of its time and never a later
one (0004/0005 install APPEND_V2, 0006 APPEND_V3 and CASE_HEAD_V1).
"""

from typing import Any

APPEND_V2 = r"""
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
APPEND_V3 = r"""
CREATE OR REPLACE FUNCTION ledger_append(
    p_org bigint, p_body bytea, p_case bigint, p_type varchar, p_at timestamptz, p_actor bigint,
    p_case_seq bigint
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
  INSERT INTO ledger_entry (org_id, "index", body, leaf_hash, redacted, case_id, type, at, actor_user_id, case_seq)
    VALUES (p_org, idx, p_body, h, false, p_case, p_type, p_at, p_actor, p_case_seq) RETURNING id INTO new_id;
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
CASE_HEAD_V1 = r"""
CREATE OR REPLACE FUNCTION ledger_case_head(p_org bigint, p_case bigint)
RETURNS TABLE (head_seq bigint, head_leaf bytea, head_count bigint) AS $$
BEGIN
  -- Lock the log head first: every append of the organization waits behind it, so the case's
  -- last event read below is still its last when this transaction appends the next one.
  -- (Each statement of a plpgsql function takes a fresh snapshot: the read sees every append
  -- that committed while this one waited for the lock.)
  INSERT INTO ledger_loghead (org_id, size) VALUES (p_org, 0) ON CONFLICT (org_id) DO NOTHING;
  PERFORM 1 FROM ledger_loghead WHERE org_id = p_org FOR UPDATE;
  RETURN QUERY
    SELECT e.case_seq, e.leaf_hash,
           CASE WHEN e.case_seq IS NULL
                THEN (SELECT count(*) FROM ledger_entry c WHERE c.case_id = p_case)
           END
    FROM ledger_entry e WHERE e.case_id = p_case ORDER BY e."index" DESC LIMIT 1;
END $$ LANGUAGE plpgsql
"""

DROP_V2 = (
    "DROP FUNCTION IF EXISTS ledger_append(bigint, bytea, bigint, varchar, timestamptz, bigint)"
)
DROP_V3 = (
    "DROP FUNCTION IF EXISTS ledger_append(bigint, bytea, bigint, varchar, timestamptz, bigint, "
    "bigint)"
)
DROP_CASE_HEAD_V1 = "DROP FUNCTION IF EXISTS ledger_case_head(bigint, bigint)"


def _run(connection: Any, *statements: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


def install_v2(connection: Any) -> None:
    """The append of migrations 0004/0005 (nodes stored from level 4 up)."""
    _run(connection, APPEND_V2)


def remove_v2(connection: Any) -> None:
    _run(connection, DROP_V2)


def install_v3(connection: Any) -> None:
    """Migration 0006: the append stores each event's place in its case (`case_seq`), and
    `ledger_case_head` reads a case's last event under the log head's lock."""
    _run(connection, DROP_V2, APPEND_V3, CASE_HEAD_V1)


def remove_v3(connection: Any) -> None:
    _run(connection, DROP_V3, DROP_CASE_HEAD_V1, APPEND_V2)
