"""Refuse values that look like secrets: handover records keep references, never credentials."""

import math
import re
from collections import Counter

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"-----BEGIN OPENSSH PRIVATE KEY-----"), "a private key"),
    (
        re.compile(r"(?i)\b(pass(word|wd|phrase)?|pwd|secret|api[_ -]?key|token)\s*[:=]\s*\S+"),
        "a password or key assignment",
    ),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), "a GitHub token"),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}\b"), "a GitHub token"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), "a Slack token"),
    (re.compile(r"\bsk_(live|test)_[A-Za-z0-9]{16,}\b"), "a Stripe key"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), "a Google API key"),
    (
        re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
        "a JSON web token",
    ),
    (re.compile(r"://[^/\s:@]+:[^/\s@]+@"), "a URL with an embedded password"),
]
_WORD = re.compile(r"[A-Za-z0-9+/=_\-!@#$%^&*]{20,}")
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def _entropy(word: str) -> float:
    counts = Counter(word)
    return -sum(c / len(word) * math.log2(c / len(word)) for c in counts.values())


def _looks_random(word: str) -> bool:
    """A long word mixing letter cases, digits and symbols with high entropy reads as a secret.

    Hex strings (sha256 references) and slugs are allowed: they are how we refer to things.
    """
    if _HEX.match(word) or "/" in word.strip("/"):
        return False
    classes = sum(
        [
            any(c.islower() for c in word),
            any(c.isupper() for c in word),
            any(c.isdigit() for c in word),
            any(not c.isalnum() for c in word),
        ]
    )
    return classes >= 3 and _entropy(word) >= 4.0


def secret_reason(value: str) -> str | None:
    """Why this value looks like a secret, or None."""
    for pattern, what in _PATTERNS:
        if pattern.search(value):
            return what
    for word in _WORD.findall(value):
        if _looks_random(word):
            return "a password or key (a long random-looking string)"
    return None
