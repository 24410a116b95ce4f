"""Keep only the nodes at level 4 and above (store.STORED_FROM_LEVEL, decision 0005): the
lower ones are recomputed from the entries' leaf hashes. Reversible: going back rebuilds
them from the same leaf hashes."""

from django.db import migrations

from offboard.ledger import merkle, sqlfunctions, triggers

LEVEL = 4

# ledger_append as 0004 installed it (every level stored), for going back.
PREVIOUS_APPEND_FUNCTION = r"""
CREATE OR REPLACE FUNCTION ledger_append(
    p_org bigint, p_body bytea, p_case bigint, p_type varchar, p_at timestamptz, p_actor bigint
) RETURNS TABLE (entry_id bigint, entry_index bigint, entry_leaf bytea) AS $$
DECLARE
  idx bigint;
  n bigint;
  lvl integer := 0;
  h bytea;
  left_hash bytea;
  new_id bigint;
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
  INSERT INTO ledger_node (org_id, level, "index", hash) VALUES (p_org, 0, idx, h);
  entry_leaf := h;
  n := idx;
  -- Every subtree this leaf completes: while the node is a right child, hash it with its
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
  entry_id := new_id;
  entry_index := idx;
  RETURN NEXT;
END $$ LANGUAGE plpgsql
"""


def forward(apps, schema_editor):
    connection = schema_editor.connection
    sqlfunctions.install_v2(connection)  # the append that stores nodes from level 4 up
    triggers.remove(connection)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM ledger_node WHERE level < %s", [LEVEL])
    triggers.install(connection)


def backward(apps, schema_editor):
    connection = schema_editor.connection
    LedgerEntry = apps.get_model("ledger", "LedgerEntry")
    LedgerNode = apps.get_model("ledger", "LedgerNode")
    triggers.remove(connection)
    for org_id in LedgerEntry.objects.order_by().values_list("org_id", flat=True).distinct():
        leaves = LedgerEntry.objects.filter(org_id=org_id).order_by("index")
        tree = merkle.MerkleTree(bytes(h) for h in leaves.values_list("leaf_hash", flat=True))
        rows = [
            LedgerNode(org_id=org_id, level=level, index=index, hash=tree.node(level, index))
            for level in range(LEVEL)
            for index in range(tree.size >> level)
        ]
        LedgerNode.objects.bulk_create(rows, batch_size=2000)
    triggers.install(connection)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(PREVIOUS_APPEND_FUNCTION)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0004_postgres_append_function")]

    operations = [migrations.RunPython(forward, backward)]
