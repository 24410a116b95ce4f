"""Signed PDFs: the closure certificate carries a PAdES signature by its organization's
certificate, so a PDF reader shows who issued it and that it is unchanged since.

- `pdf.sign_certificate(pdf, org=…, reason=…)` — the entry point: PDF bytes in, signed
  PDF bytes out (with an RFC 3161 signature timestamp when a TSA answers);
- `certificates` — which certificate signs for an organization, and where its key lives
  (0600 files under OFFBOARD_KEY_DIR; Offboard issues one per organization by default);
- `services.import_signing_certificate` — an organization brings its own PKCS#12.

docs/certificate.md says how a reader checks the signature; docs/decisions/0009 why.
"""

from offboard.reports.signing.certificates import (
    SigningCertificate,
    SigningUnavailable,
    certificate_in_use,
    current_certificate,
)
from offboard.reports.signing.pdf import sign_certificate

__all__ = [
    "SigningCertificate",
    "SigningUnavailable",
    "certificate_in_use",
    "current_certificate",
    "sign_certificate",
]
