"""A real PKCS#11 token for the tests: SoftHSM2 (Debian's `softhsm2`), one token directory per
test process, initialised with `softhsm2-util --init-token` (TESTING.md, "An HSM").

Without SoftHSM2 the fixtures skip with the reason, or fail when OFFBOARD_REQUIRE_SERVICES=1.
SOFTHSM2_CONF is read when the module is first loaded, so it is set before anything loads it.
"""

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")
LABEL = "offboard"
PIN = "hsm-user-pin-8c41"  # distinctive, so a test can look for it where it must not be
SO_PIN = "hsm-so-pin-5678"


@dataclass(frozen=True)
class SoftHSM:
    module: str
    label: str
    pin: str
    pin_file: Path
    conf: Path


def _require(reason: str) -> None:
    if os.environ.get("OFFBOARD_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (OFFBOARD_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHSM]:
    util = shutil.which("softhsm2-util")
    module = next((m for m in MODULES if os.path.isfile(m)), None)
    if util is None or module is None:
        _require("SoftHSM2 is not installed (apt-get install softhsm2): no PKCS#11 token to test")
    assert util is not None and module is not None
    directory = tmp_path_factory.mktemp("softhsm")
    (directory / "tokens").mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {directory / 'tokens'}\n"
        "objectstore.backend = file\nlog.level = ERROR\n"
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    done = subprocess.run(
        [util, "--init-token", "--free", "--label", LABEL, "--pin", PIN, "--so-pin", SO_PIN],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        raise RuntimeError(f"softhsm2-util --init-token failed: {done.stderr or done.stdout}")
    pin_file = directory / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    yield SoftHSM(module=module, label=LABEL, pin=PIN, pin_file=pin_file, conf=conf)
    from offboard.ledger import pkcs11

    pkcs11.close_all()
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


@pytest.fixture
def on_token(softhsm: SoftHSM, settings: Any) -> SoftHSM:
    """New checkpoint keys are made on the SoftHSM2 token."""
    settings.OFFBOARD_PKCS11_MODULE = softhsm.module
    settings.OFFBOARD_PKCS11_TOKEN = softhsm.label
    settings.OFFBOARD_PKCS11_PIN_FILE = str(softhsm.pin_file)
    return softhsm
