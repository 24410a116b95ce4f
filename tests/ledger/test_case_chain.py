"""The events of a case form a chain (decision 0010): `seq` is each event's place in its case,
`prev` the leaf hash of the case's previous event; events of no case carry neither."""

import itertools
import json
from typing import Any

from django.db import connection, transaction

from offboard.ledger import merkle
from offboard.ledger.models import LedgerEntry
from offboard.ledger.recorder import record_event
from offboard.ledger.services import redact_event
from tests.factories import settle_everything
from tests.ledger.ledger_worker import check_log


def _chain(case: Any) -> list[tuple[int, int | None, str | None, bytes]]:
    rows = LedgerEntry.objects.filter(case=case).order_by("index")
    out = []
    for e in rows:
        body = json.loads(bytes(e.body)) if not e.redacted else {}
        out.append((e.case_seq, body.get("seq"), body.get("prev"), bytes(e.leaf_hash)))
    return out


def test_every_event_of_a_case_has_its_place_and_the_hash_of_the_one_before(case, cast):
    settle_everything(case, cast)
    chain = _chain(case)
    assert len(chain) > 20
    assert [seq for seq, *_ in chain] == list(range(1, len(chain) + 1))
    assert all(seq == body_seq for seq, body_seq, _, _ in chain)
    assert chain[0][2] is None
    for (_, _, _, leaf), (_, _, prev, _) in itertools.pairwise(chain):
        assert prev == leaf.hex()
    assert check_log(case.org)["problems"] == []


def test_two_cases_interleaved_keep_separate_chains(case, cast, alice, playbooks, client_contract):
    from offboard.cases.services import open_case

    client, contract = client_contract
    other = open_case(
        actor=alice, client=client, contracts=[contract], trigger="other",
        trigger_date=case.trigger_date, owner_id=alice.user.pk,
        playbook_version=playbooks["marketing_agency"], allow_duplicate=True,
    )  # fmt: skip
    for n in range(3):
        for target in (case, other):
            with transaction.atomic():
                record_event(actor=alice, type="test.note", case=target, data={"n": n})
    for target in (case, other):
        seqs = [seq for seq, *_ in _chain(target)]
        assert seqs == list(range(1, len(seqs) + 1))
    assert check_log(case.org)["problems"] == []


def test_events_of_no_case_carry_no_place(alice):
    with transaction.atomic():
        entry = record_event(actor=alice, type="test.org_note", data={})
    body = json.loads(bytes(entry.body))
    assert "seq" not in body and "prev" not in body and body["v"] == 2
    assert entry.case_seq is None


def test_a_redaction_is_an_event_of_the_erased_event_s_case_and_the_chain_goes_on(case, alice):
    erased = LedgerEntry.objects.filter(case=case).order_by("index").last()
    assert erased is not None
    assert redact_event(actor=alice, index=erased.index, reason="GDPR art. 17 request").redacted
    redaction = LedgerEntry.objects.filter(org=case.org).order_by("index").last()
    assert redaction is not None and redaction.type == "ledger.event_redacted"
    assert redaction.case_id == case.pk
    assert redaction.data["index"] == erased.index
    assert redaction.data["case_seq"] == erased.case_seq
    assert redaction.data["leaf_hash"] == bytes(erased.leaf_hash).hex()
    # The erased body is gone, yet the next event is numbered and linked past it.
    assert json.loads(bytes(redaction.body))["prev"] == bytes(erased.leaf_hash).hex()
    assert redaction.case_seq == erased.case_seq + 1
    with transaction.atomic():
        after = record_event(actor=alice, type="test.after", case=case, data={})
    assert after.case_seq == redaction.case_seq + 1
    assert json.loads(bytes(after.body))["prev"] == bytes(redaction.leaf_hash).hex()


def test_a_case_whose_last_event_predates_chains_continues_from_its_count(case, alice):
    """An event recorded before chains existed (format v1) has no case_seq: the next event's
    place is the number of the case's events so far."""
    count = LedgerEntry.objects.filter(case=case).count()
    last = LedgerEntry.objects.filter(case=case).order_by("index").last()
    assert last is not None
    with transaction.atomic():
        legacy = record_event(actor=alice, type="test.legacy", case=case, data={})
    # What a pre-chain append would have stored: no place in the column.
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO ledger_entry (org_id, "index", body, leaf_hash, redacted, case_id, '
            'type, at, actor_user_id, case_seq) SELECT org_id, "index" + 1, body, %s, %s, '
            "case_id, type, at, actor_user_id, NULL FROM ledger_entry WHERE id = %s",
            [merkle.leaf_hash(b"v1 body"), False, legacy.pk],
        )
        cursor.execute("UPDATE ledger_loghead SET size = size + 1 WHERE org_id = %s", [case.org_id])
    with transaction.atomic():
        nxt = record_event(actor=alice, type="test.next", case=case, data={})
    assert nxt.case_seq == count + 3
    assert json.loads(bytes(nxt.body))["prev"] == merkle.leaf_hash(b"v1 body").hex()
