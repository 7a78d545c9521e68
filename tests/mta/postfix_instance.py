"""A private Postfix instance on 127.0.0.1 in a temporary folder, started and stopped by a test.

Its own config_directory, queue_directory, data_directory and maillog_file (Postfix >= 3.4
logs through postlogd, no syslog needed); smtpd listens on one loopback port; no system
service is touched. ``postfix -c DIR start`` runs it as root with mail_owner ``postfix``
(the Debian package creates that user). Retries are fast for a compressed clock.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

MASTER = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       1       1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN = """\
compatibility_level = 3.6
config_directory = {root}/conf
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.ipwarmup.test
mydomain = ipwarmup.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
alias_maps =
alias_database =
local_recipient_maps =
smtputf8_enable = no
smtp_tls_security_level = none
notify_classes =
# A compressed clock: deferred mail is retried within seconds, not minutes.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
maximal_queue_lifetime = 1d
"""


class PostfixInstance:
    """Start, reconfigure and stop one private Postfix instance."""

    def __init__(self, port: int) -> None:
        postfix = shutil.which("postfix") or "/usr/sbin/postfix"
        self.postfix = postfix
        self.postconf = str(Path(postfix).with_name("postconf"))
        # mkdtemp makes 0700 folders; Postfix's daemons (user postfix) must reach the queue.
        self.root = Path(tempfile.mkdtemp(prefix="ipwarmup-postfix-"))
        os.chmod(self.root, 0o755)
        self.conf = self.root / "conf"
        self.maillog = self.root / "maillog"
        self.port = port

    def __enter__(self) -> PostfixInstance:
        self.conf.mkdir()
        (self.root / "queue").mkdir()
        (self.root / "data").mkdir()
        shutil.chown(self.root / "data", user="postfix")
        (self.conf / "main.cf").write_text(MAIN.format(root=self.root))
        (self.conf / "master.cf").write_text(MASTER.format(port=self.port))
        self.run("start")
        return self

    def run(self, *command: str) -> None:
        """Run ``postfix -c CONF <command>``."""
        subprocess.run(
            [self.postfix, "-c", str(self.conf), *command],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def set(self, *settings: str) -> None:
        """Set main.cf parameters (``name=value``) with postconf."""
        subprocess.run(
            [self.postconf, "-c", str(self.conf), "-e", *settings],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def queued(self) -> int:
        """Return how many messages the queue holds (one file each)."""
        queue = self.root / "queue"
        return sum(
            1
            for name in ("maildrop", "incoming", "active", "deferred", "hold")
            for path in (queue / name).rglob("*")
            if path.is_file()
        )

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.run("stop")
        deadline = time.monotonic() + 10
        pid_file = self.root / "data" / "master.lock"
        while pid_file.exists() and time.monotonic() < deadline:
            try:
                pid = int(pid_file.read_text().split()[0])
                os.kill(pid, 0)
            except (OSError, ValueError, IndexError):
                break
            time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)
