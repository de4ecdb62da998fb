"""Real IMAP servers for the tests: one Dovecot per session (pymap where Dovecot is absent), a fresh user per test.

`imap_server` starts `dovecot -F -c <tmp>/dovecot.conf` on a free 127.0.0.1
port (plus a TLS port with a throwaway certificate when `openssl` exists) and
stops it by its process id at teardown; users are appended to its passwd-file,
which Dovecot reads without a restart. Without the `dovecot` binary, or with
TERMDESK_TEST_IMAP=pymap, each user gets a pymap process of its own instead.
`mail_user` gives every test a new user and `MailboxSettings` pointing at it.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import pytest

from core.config import MailboxSettings

SERVER_ENV = "TERMDESK_TEST_IMAP"  # "dovecot" (default when installed) or "pymap"
MAIL_UID = MAIL_GID = 65534  # nobody/nogroup: Dovecot refuses to run mail processes as root
START_SECONDS = 15.0
SPARE_USERS = 100  # written before Dovecot starts; enough for every test of a run


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_banner(port: int, process: subprocess.Popen[bytes], log: Path | None = None) -> None:
    """Block until the server greets on `port`; fail with its log if it dies or never does."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                if connection.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.05)
    stop_process(process)
    detail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"the IMAP server on port {port} did not start (exit {process.returncode}): {detail}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def sample_message(index: int, *, tag: str = "test", sender: str = "customer@example.org", body: str = "") -> bytes:
    """A small plain-text mail with a unique Message-ID and subject (`{tag} #{index}`)."""
    lines = [
        f"From: Customer {index} <{sender}>",
        "To: support@example.com",
        f"Subject: {tag} #{index}",
        f"Message-ID: {make_msgid(f'{tag}.{index}', 'example.org')}",
        f"Date: {format_datetime(time_aware())}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        body or f"Hello, this is message {index} of {tag}.\nMy printer (the blue one) is on fire.",
        "",
    ]
    return "\r\n".join(lines).encode()


def time_aware() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


@dataclass
class MailUser:
    """A mailbox account on the test server, with a few direct ways to look into it."""

    server: ImapServer
    name: str
    password: str
    host: str
    port: int
    tls_port: int | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)  # pymap: one per user

    def settings(self, name: str = "support", **values: Any) -> MailboxSettings:
        """MailboxSettings for this account; its password is put in the environment variable it names."""
        env = f"TERMDESK_TEST_IMAP_PASSWORD_{uuid.uuid4().hex[:8].upper()}"
        os.environ[env] = str(values.pop("password", self.password))
        fields: dict[str, Any] = {
            "name": name, "host": self.host, "port": self.port, "security": "none", "username": self.name,
            "password_env": env, "department": "Technical", "timeout_seconds": 10.0,
        }
        fields.update(values)
        return MailboxSettings(**fields)

    @contextmanager
    def imap(self, folder: str | None = None) -> Iterator[imaplib.IMAP4]:
        """A stdlib imaplib session (independent of the code under test), optionally with `folder` selected."""
        connection = imaplib.IMAP4(self.host, self.port, timeout=30)
        try:
            connection.login(self.name, self.password)
            if folder is not None:
                connection.select(f'"{folder}"')
            yield connection
        finally:
            try:
                connection.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def append(self, messages: Iterable[bytes], folder: str = "INBOX") -> None:
        with self.imap() as connection:
            for message in messages:
                status, detail = connection.append(f'"{folder}"', "", None, message)
                assert status == "OK", detail

    def deliver(self, messages: Iterable[bytes], folder: str = "INBOX") -> None:
        """Put mail in the folder the fastest way the server allows (Dovecot: Maildir files; pymap: APPEND)."""
        self.server.deliver(self, list(messages), folder)

    def create_folder(self, folder: str) -> None:
        with self.imap() as connection:
            status, detail = connection.create(f'"{folder}"')
            assert status == "OK", detail

    def delete_folder(self, folder: str) -> None:
        with self.imap() as connection:
            status, detail = connection.delete(f'"{folder}"')
            assert status == "OK", detail

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.imap() as connection:
            status, data = connection.status(f'"{folder}"', "(UIDVALIDITY)")
            assert status == "OK", data
            found = re.search(rb"UIDVALIDITY (\d+)", data[0] or b"")
            assert found, data
            return int(found.group(1))

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """UID -> flags of every message in the folder."""
        result: dict[int, set[str]] = {}
        with self.imap(folder) as connection:
            status, data = connection.uid("FETCH", "1:*", "(UID FLAGS)")
            assert status == "OK", data
            for item in data:
                if not isinstance(item, bytes):
                    continue
                uid = re.search(rb"UID (\d+)", item)
                flags = re.search(rb"FLAGS \(([^)]*)\)", item)
                if uid and flags:
                    result[int(uid.group(1))] = set(flags.group(1).decode().split())
        return result

    def drop_connections(self) -> int:
        """Kill the server side of this user's connections, as a crash or a network cut would; returns how many."""
        return self.server.drop_connections(self)


class ImapServer:
    kind = "abstract"

    def add_user(self) -> MailUser:
        """A new, empty account with a unique name."""
        raise NotImplementedError

    def deliver(self, user: MailUser, messages: list[bytes], folder: str) -> None:
        user.append(messages, folder)

    def drop_connections(self, user: MailUser) -> int:
        raise NotImplementedError

    def client_ssl_context(self) -> ssl.SSLContext | None:
        return None

    def stop(self) -> None:
        raise NotImplementedError


class DovecotServer(ImapServer):
    kind = "dovecot"

    def __init__(self, binary: str) -> None:
        # Not pytest's tmp_path: its parents are root-only, and Dovecot's mail processes run as nobody.
        self.root = Path(tempfile.mkdtemp(prefix="termdesk-dovecot-"))
        self.root.chmod(0o755)
        self.users_file = self.root / "users"
        self.users_file.write_text("")
        self.users_file.chmod(0o644)
        self.spare_users = self._write_users(SPARE_USERS)
        self.home = self.root / "home"
        self.home.mkdir()
        self.log = self.root / "dovecot.log"
        self.port = free_port()
        self.tls_port: int | None = None
        self.cert: Path | None = None
        self.as_root = os.geteuid() == 0
        self.mail_uid, self.mail_gid = (MAIL_UID, MAIL_GID) if self.as_root else (os.getuid(), os.getgid())
        os.chown(self.home, self.mail_uid, self.mail_gid)
        ssl_lines = self._make_certificate()
        (self.root / "dovecot.conf").write_text(self._config(ssl_lines))
        self.process = subprocess.Popen(
            [binary, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        wait_for_banner(self.port, self.process, self.log)

    def _make_certificate(self) -> str:
        openssl = shutil.which("openssl")
        if openssl is None:
            return "ssl = no"
        key, cert = self.root / "key.pem", self.root / "cert.pem"
        made = subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
            capture_output=True,
        )
        if made.returncode != 0:
            return "ssl = no"
        self.cert, self.tls_port = cert, free_port()
        return f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}"

    def _config(self, ssl_lines: str) -> str:
        d = self.root
        # As root, Dovecot's own users and chroots do; as anyone else, everything runs as that user, unchrooted.
        identity, chroot = "", ""
        if not self.as_root:
            me = pwd.getpwuid(os.getuid()).pw_name
            identity, chroot = f"default_login_user = {me}\ndefault_internal_user = {me}\n", "  chroot =\n"
        tls_listener = (
            f"  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {self.tls_port}\n    ssl = yes\n  }}\n"
            if self.tls_port else "  inet_listener imaps {\n    port = 0\n  }\n"
        )
        return f"""\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl_lines}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
# No auth penalty: a test logging in with a wrong password must not slow every later login down.
service anvil {{
{chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
first_valid_uid = 1
mail_fsync = never
verbose_proctitle = yes
{identity}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.users_file}
}}
userdb {{
  driver = static
  args = uid={self.mail_uid} gid={self.mail_gid} home={self.home}/%u
}}
mail_location = maildir:~/Maildir
protocol imap {{
  mail_max_userip_connections = 100
}}
service imap-login {{
{chroot}  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
{tls_listener}}}
"""

    def _write_users(self, count: int) -> list[tuple[str, str]]:
        made = [(f"u{uuid.uuid4().hex[:12]}", f"pw-{uuid.uuid4().hex[:8]}") for _ in range(count)]
        with self.users_file.open("a") as users:
            users.writelines(f"{name}:{{PLAIN}}{password}::::::\n" for name, password in made)
        return made

    def add_user(self) -> MailUser:
        # Dovecot looks at the passwd-file at most once a second, so a user appended
        # just after a login is unknown for up to a second: hand out users written
        # before the server started, and only when they run out append and wait.
        if self.spare_users:
            name, password = self.spare_users.pop()
        else:
            [(name, password)] = self._write_users(1)
            self._wait_until_known(name, password)
        return MailUser(self, name, password, "127.0.0.1", self.port, self.tls_port)

    def _wait_until_known(self, name: str, password: str) -> None:
        deadline = time.monotonic() + 5
        while True:
            connection = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
            try:
                connection.login(name, password)
            except imaplib.IMAP4.error:
                connection.shutdown()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
            else:
                connection.logout()
                return

    def client_ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=str(self.cert)) if self.cert else None

    def _maildir(self, user: MailUser, folder: str) -> Path:
        base = self.home / user.name / "Maildir"
        path = base if folder.upper() == "INBOX" else base / f".{folder}"
        for part in [self.home / user.name, base, path, path / "cur", path / "new", path / "tmp"]:
            if not part.exists():
                part.mkdir()
                os.chown(part, self.mail_uid, self.mail_gid)
        return path

    def deliver(self, user: MailUser, messages: list[bytes], folder: str) -> None:
        # Thousands of APPENDs take seconds; files in new/ are what a local delivery agent
        # writes, and Dovecot assigns their UIDs when it next looks at the folder.
        path = self._maildir(user, folder)
        stamp = f"{int(time.time())}.P{os.getpid()}Q"
        for index, message in enumerate(messages):
            name = f"{stamp}{uuid.uuid4().hex}{index}.termdesk-test"
            temporary = path / "tmp" / name
            temporary.write_bytes(message)
            os.chown(temporary, self.mail_uid, self.mail_gid)
            os.rename(temporary, path / "new" / name)

    def drop_connections(self, user: MailUser) -> int:
        # verbose_proctitle shows "dovecot/imap [user 127.0.0.1 ...]" for each connection's process.
        marker = f"[{user.name} ".encode()
        killed = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"dovecot/imap ") and marker in title:
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
        return killed

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.root, ignore_errors=True)


class PymapServer(ImapServer):
    """pymap's in-memory backend knows one user per process, so every user gets its own server."""

    kind = "pymap"

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.processes: list[subprocess.Popen[bytes]] = []

    def add_user(self) -> MailUser:
        name, password = f"u{uuid.uuid4().hex[:12]}", f"pw-{uuid.uuid4().hex[:8]}"
        port = free_port()
        process = subprocess.Popen(
            [self.binary, "--host", "127.0.0.1", "--port", str(port), "--no-tls",
             "dict", "--demo-user", name, "--demo-password", password],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        self.processes.append(process)
        wait_for_banner(port, process)
        return MailUser(self, name, password, "127.0.0.1", port, process=process)

    def drop_connections(self, user: MailUser) -> int:
        # pymap serves all connections from one process and keeps mail in memory, so
        # killing it would lose the mail: connections cannot be dropped one by one.
        pytest.skip("pymap cannot drop one connection without losing its mail; this test needs Dovecot")

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process)


def _start_server() -> ImapServer:
    wanted = os.environ.get(SERVER_ENV, "")
    dovecot = shutil.which("dovecot") or next(
        (path for path in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if Path(path).exists()), None
    )
    if dovecot and wanted != "pymap":
        return DovecotServer(dovecot)
    pymap = shutil.which("pymap") or str(Path(sys.executable).with_name("pymap"))
    if not Path(pymap).exists():
        pytest.skip("no IMAP server: install Dovecot (apt-get install dovecot-imapd) or pymap (pip install pymap)")
    return PymapServer(pymap)


@pytest.fixture(scope="session")
def imap_server() -> Iterator[ImapServer]:
    server = _start_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mail_user(imap_server: ImapServer) -> MailUser:
    """A new, empty mail account for this test."""
    return imap_server.add_user()


@pytest.fixture
def mail_user_factory(imap_server: ImapServer) -> Any:
    """Make more accounts when a test needs several."""

    return imap_server.add_user
