"""The closure receipt as an email: what closed, the five answers, the signed checkpoint in
the body, the certificate PDF and the receipt file (ledger/receipt.py) attached, and how the
client checks an evidence pack later with that file alone."""

import datetime as dt
from email import encoders
from email.mime.base import MIMEBase
from email.utils import formataddr, parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from offboard.cases.models import Approval, OffboardingCase
from offboard.ledger import store
from offboard.ledger.models import Checkpoint, LedgerEntry
from offboard.ledger.receipt import encode_receipt
from offboard.ledger.tlogproof import encode_tlog_proof
from offboard.notifications.models import ClosureReceipt
from offboard.reports.certificate import certificate_context


def certificate_name(case: OffboardingCase) -> str:
    return f"{case.ref}-closure-certificate.pdf"


def receipt_name(case: OffboardingCase) -> str:
    return f"{case.ref}-closure-receipt.txt"


def pack_name(case: OffboardingCase) -> str:
    return f"{case.ref}-evidence-pack.zip"


def verify_command(case: OffboardingCase) -> str:
    """The one command the client is told to run: it trusts the receipt, never the pack."""
    return f"offboard verify {pack_name(case)} --receipt {receipt_name(case)}"


def closure_receipt_file(case: OffboardingCase, checkpoint: Checkpoint) -> str:
    """The receipt the client keeps: the closure event's leaf hash and its inclusion proof in
    the closure checkpoint, with the organization's verifier key (ledger/receipt.py)."""
    closed = LedgerEntry.objects.get(org_id=case.org_id, case=case, type="case.closed")
    proof = encode_tlog_proof(
        closed.index,
        store.inclusion_proof(case.org_id, closed.index, checkpoint.size),
        checkpoint.signed_note,
    )
    closed_at = (case.closed_at or checkpoint.created_at).astimezone(dt.UTC)
    return encode_receipt(
        case_ref=case.ref,
        closed_leaf=bytes(closed.leaf_hash),
        verifier_key=checkpoint.key.verifier_key,
        tlog_proof=proof,
        comments=[
            f"Closure receipt of offboarding case {case.ref} ({one_line(case.client.name)}),",
            f"closed by {one_line(case.org.name)} on {closed_at:%Y-%m-%d %H:%M} UTC.",
            "",
            "Keep this file. It holds the organization's signing key and its signed record of",
            "the closure as it stood when you received it. To check an evidence pack of this",
            "case later, offline, trusting nothing the pack says about itself:",
            "",
            f"    {verify_command(case)}",
            "",
            "(offboard is the open verifier; docs/evidence-pack.md explains every check.)",
        ],
    )


def one_line(text: str) -> str:
    """Names in headers: a newline in a client's name must not become a header of its own."""
    return " ".join(str(text).split())


def subject_for(case: OffboardingCase) -> str:
    return (
        f"Offboarding of {one_line(case.client.name)} closed — "
        f"your closure certificate ({case.ref})"
    )


def _sender(org_name: str) -> str:
    """OFFBOARD_EMAIL_FROM, with the organization's name shown when the setting gives none."""
    name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return formataddr((name or one_line(org_name), address or settings.DEFAULT_FROM_EMAIL))


def _person(user: Any) -> str:
    return str(user.get_full_name() or user.username)


def _receipt_part(case: OffboardingCase, receipt_text: str) -> MIMEBase:
    """The receipt byte for byte: base64 keeps mail servers and clients from rewriting its
    line endings, which would break the signature inside."""
    part = MIMEBase("text", "plain", charset="utf-8")
    part.set_payload(receipt_text.encode("utf-8"))
    encoders.encode_base64(part)
    part.add_header("Content-Disposition", "attachment", filename=receipt_name(case))
    return part


def _context(receipt: ClosureReceipt, case: OffboardingCase, checkpoint: Checkpoint) -> Any:
    certificate = certificate_context(case, checkpoint=checkpoint)
    approvals = [
        f"{_person(a.approver)} ({a.role})"
        for a in case.approvals.all()
        if a.invalidated_at is None and a.decision == Approval.Decision.APPROVED
    ]
    cert = receipt.certificate
    names = [r["name"] for r in receipt.recipients if r.get("name")]
    # Questions 1-4 as the certificate answers them (a closed case's records no longer change);
    # question 5 as of the checkpoint sent, not of the log now (the certificate's own event
    # and any addendum come after it).
    questions = [
        {"number": q.number, "title": q.title, "answer": q.answer} for q in certificate["questions"]
    ]
    covered = case.events.filter(index__lt=checkpoint.size).count()
    granted = [t for t in certificate["timestamps"] if t["status"] == "Granted"]
    # "Yes" because the receipt attached is now in the client's hands: an anchor outside us.
    questions[4]["answer"] = (
        f"Yes — all {covered} events of this case up to its closure are entries of "
        f"{certificate['org_name']}'s append-only log, fixed by the signed checkpoint in the "
        "closure receipt attached, which you now hold"
        + (
            f", and timestamped by {len(granted)} independent "
            f"{'authority' if len(granted) == 1 else 'authorities'}."
            if granted
            else "."
        )
    )
    return {
        "org_name": certificate["org_name"],
        "client_name": case.client.name,
        "ref": case.ref,
        "closed_at": (case.closed_at or checkpoint.created_at)
        .astimezone(dt.UTC)
        .strftime("%Y-%m-%d %H:%M UTC"),
        "contracts": ", ".join(c.reference for c in case.contracts.all()),
        "approvers": " and ".join(approvals),
        "closed_by": _person(receipt.closed_by),
        "greeting": names[0] if len(names) == 1 else "",
        "questions": questions,
        "certificate_name": certificate_name(case),
        "certificate_sha256": cert.sha256 if cert else "",
        "receipt_name": receipt_name(case),
        "verify_command": verify_command(case),
        "checkpoint": certificate["checkpoint"],
        "timestamps": granted,
        "signed_note": checkpoint.signed_note,
        "owner_email": case.owner.email,
    }


def closure_receipt_message(
    *,
    receipt: ClosureReceipt,
    certificate_pdf: bytes,
    connection: Any = None,
    receipt_text: str | None = None,
) -> EmailMultiAlternatives:
    """The email of `receipt`, ready to send; the same Message-ID on every attempt, so a
    receipt sent twice (a crash after the server accepted it) is recognisably one message."""
    case = (
        OffboardingCase.objects.select_related("client", "owner", "org")
        .prefetch_related("contracts", "approvals__approver")
        .get(pk=receipt.case_id)
    )
    checkpoint = Checkpoint.objects.select_related("key").get(pk=receipt.checkpoint_id)
    context = _context(receipt, case, checkpoint)
    message = EmailMultiAlternatives(
        subject=subject_for(case),
        body=render_to_string("notifications/closure_receipt.txt", context),
        from_email=_sender(context["org_name"]),
        to=[formataddr((one_line(r["name"]), r["email"])) for r in receipt.recipients],
        reply_to=[case.owner.email] if case.owner.email else None,
        headers={"Message-ID": receipt.message_id},
        connection=connection,
    )
    message.attach_alternative(
        render_to_string("notifications/closure_receipt.html", context), "text/html"
    )
    message.attach(certificate_name(case), certificate_pdf, "application/pdf")
    if receipt_text is None:
        receipt_text = closure_receipt_file(case, checkpoint)
    message.attach(_receipt_part(case, receipt_text))
    return message
