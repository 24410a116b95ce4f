"""A real OpenLDAP `slapd` on loopback for the LDAP connector's tests
(../shared/design/TESTING.md, "LDAP peer (OpenLDAP)").

`LocalSlapd.start()` writes a minimal `slapd.conf` (core, cosine, nis and inetorgperson
schemas; back_mdb with the memberof and refint overlays) in a fresh directory owned by
`nobody`, starts `slapd` on 127.0.0.1 at a free port, and waits until it answers. `.stop()`
kills it (its own child process); `.start_again()` brings the same
database back. Without `slapd` the fixture skips with the reason, or fails when
OFFBOARD_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

SUFFIX = "dc=example,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"

CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload refint
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args

access to attrs=userPassword
    by self write
    by anonymous auth
    by * none
access to * by * read

database mdb
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_pw}
directory {dir}/db
maxsize 33554432
overlay memberof
overlay refint
refint_attributes member
"""


def require(binary: str) -> str:
    """The binary's path, or a skip (a failure under OFFBOARD_REQUIRE_SERVICES=1)."""
    path = shutil.which(binary) or (
        f"/usr/sbin/{binary}" if os.path.exists(f"/usr/sbin/{binary}") else None
    )
    if path is None:
        reason = f"`{binary}` is not installed (apt-get install -y slapd ldap-utils)"
        if os.environ.get("OFFBOARD_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (OFFBOARD_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(reason)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalSlapd:
    def __init__(self, slapd: str, root_pw: str) -> None:
        self.slapd = slapd
        self.root_pw = root_pw
        # Not under pytest's tmp_path: its parents are private to root, and slapd runs as nobody.
        self.dir = Path(tempfile.mkdtemp(prefix="offboard-slapd-"))
        (self.dir / "db").mkdir()
        (self.dir / "slapd.conf").write_text(
            CONFIG.format(dir=self.dir, suffix=SUFFIX, root_dn=ROOT_DN, root_pw=root_pw)
        )
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            for path in (self.dir, self.dir / "db", self.dir / "slapd.conf"):
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
            os.chmod(self.dir, 0o700)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def start_again(self) -> None:
        """Start slapd in the foreground (`-d 0`) as a child of this process — as `nobody`
        when running as root, like `runuser -u nobody -- slapd …` — so that `stop()` can
        kill and reap it."""
        command = [self.slapd, "-d", "0", "-f", str(self.dir / "slapd.conf")]
        command += ["-h", f"ldap://127.0.0.1:{self.port}/"]
        as_nobody: dict[str, Any] = {}
        if os.geteuid() == 0:
            as_nobody = {"user": "nobody", "group": pwd.getpwnam("nobody").pw_gid}
        log = (self.dir / "slapd.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=log, **as_nobody)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited: {(self.dir / 'slapd.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("slapd did not answer within 10 s")

    def stop(self) -> None:
        """Kill the slapd this object started and reap it (a server that dies at once)."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
