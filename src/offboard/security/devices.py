"""A user agent as a person names their device: "Chrome on Linux", "Safari on iPhone".

A small parser of our own (decision 0028): the label only helps a member recognise a session,
so the common browsers and systems are enough, and an unknown agent reads "Unknown browser".
Order matters: Edge and Opera say "Chrome" too, Chrome says "Safari", Android says "Linux".
"""

import re

_BROWSERS = [
    ("Edge", re.compile(r"\bEdg(e|A|iOS)?/")),
    ("Opera", re.compile(r"\b(OPR|Opera)/")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Firefox", re.compile(r"\b(Firefox|FxiOS)/")),
    ("Chromium", re.compile(r"\bChromium/")),
    ("Chrome", re.compile(r"(\b|Headless)(Chrome|CriOS)/")),
    ("Safari", re.compile(r"\bVersion/[\d.]+.*\bSafari/")),
    ("curl", re.compile(r"^curl/")),
    ("Python", re.compile(r"^python-(requests|httpx|urllib)")),
]
_SYSTEMS = [
    ("iPhone", re.compile(r"\biPhone\b")),
    ("iPad", re.compile(r"\biPad\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b")),
]


def device_label(user_agent: str | None) -> str:
    agent = (user_agent or "").strip()
    if not agent:
        return "Unknown device"
    browser = next((name for name, pattern in _BROWSERS if pattern.search(agent)), None)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser:
        return browser
    if system:
        return f"Unknown browser on {system}"
    return "Unknown browser"
