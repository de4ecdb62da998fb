"""Configuration: the typed model of config.toml and how the database URL is chosen.

Precedence for the database: `--db URL`, then `TERMDESK_DB`, then the config
file's `[database] url` (file from `--config` or `TERMDESK_CONFIG`), then a
SQLite file in the XDG data directory. Secrets never live in the file: it
names the environment variables that hold them.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import ConfigError
from storage.database import default_sqlite_path


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Section):
    url: str | None = None
    echo: bool = False


class DeskSettings(_Section):
    # Prefix of ticket references (`TD-1042`); mail threading matches it in subjects.
    ref_prefix: str = Field(default="TD", pattern=r"^[A-Z][A-Z0-9]{0,9}$")
    timezone: str = "UTC"
    web_address: str = ""

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like Europe/Copenhagen") from None
        return value


class LoggingSettings(_Section):
    path: Path | None = None
    level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")


Security = Literal["tls", "starttls", "none"]


class MailboxSettings(_Section):
    """One IMAP mailbox that feeds the desk (`[[mailbox]]`)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    host: str
    port: int = Field(default=993, ge=1, le=65535)
    security: Security = "tls"
    username: str
    password_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    folder: str = "INBOX"
    # Where new tickets land unless a rule or a department's own To address says otherwise.
    department: str
    # aioimaplib stalls on one FETCH of ~1,000 messages (iroco-co/aioimaplib#118): keep batches small.
    batch_size: int = Field(default=100, ge=1, le=500)
    idle: bool = True
    poll_seconds: float = Field(default=60.0, gt=0)
    timeout_seconds: float = Field(default=60.0, gt=0)

    def password(self) -> str:
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(
                f"Mailbox {self.name!r} reads its password from ${self.password_env}, which is not set; "
                "export it before starting termdesk."
            )
        return value


class MailSettings(_Section):
    """Limits for incoming mail (`[mail]`); anything over them is quarantined, never lost."""

    max_message_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_attachment_bytes: int = Field(default=25 * 1024 * 1024, ge=0)
    # An attachment over the limit is dropped (listed on the message) or truncated.
    oversize_attachments: Literal["drop", "truncate"] = "drop"
    max_mime_depth: int = Field(default=20, ge=1, le=100)
    max_mime_parts: int = Field(default=1000, ge=1, le=100_000)
    # Our loop header on outgoing mail; mail coming back with it is dropped and logged.
    loop_header_value: str = "termdesk"


class SmtpSettings(_Section):
    """Where outgoing mail goes (`[smtp]`); the password is read from the environment variable it names."""

    host: str = ""
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security = "starttls"
    username: str = ""
    password_env: str = Field(default="", pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$")
    # CA certificates (PEM) to trust for a server with a private certificate; default: the system's.
    ca_file: Path | None = None
    timeout_seconds: float = Field(default=60.0, gt=0)
    # Delay before each retry after a 4xx or a connection failure: minutes first, then the last
    # one (hourly) until `give_up_hours` have passed since the mail was queued.
    retry_delays_seconds: list[float] = Field(default=[60, 300, 900, 1800, 3600], min_length=1)
    give_up_hours: float = Field(default=120.0, gt=0)
    # A message claimed by a worker that then died is sent again (same Message-ID) after this long.
    claim_seconds: float = Field(default=300.0, gt=0)
    # How often an idle worker looks for mail queued by other processes.
    poll_seconds: float = Field(default=5.0, gt=0)
    batch_size: int = Field(default=50, ge=1, le=1000)
    # Outcomes of deliveries are stored in groups at most this far apart (see core.mail.sender).
    record_seconds: float = Field(default=0.1, ge=0, le=5)
    # Automatic mail (auto-acknowledgements, resolved notices) per recipient and window;
    # a repeated subject gets fewer (FreeScout: 10 in 180 minutes).
    auto_limit: int = Field(default=10, ge=0)
    auto_limit_same_subject: int = Field(default=3, ge=0)
    auto_limit_minutes: float = Field(default=180.0, gt=0)

    @field_validator("retry_delays_seconds")
    @classmethod
    def _positive_delays(cls, value: list[float]) -> list[float]:
        if any(delay <= 0 for delay in value):
            raise ValueError("every retry delay must be more than 0 seconds")
        return value

    @property
    def configured(self) -> bool:
        return bool(self.host.strip())

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return {"tls": 465, "starttls": 587, "none": 25}[self.security]

    def password(self) -> str | None:
        if not self.password_env:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(
                f"[smtp] reads its password from ${self.password_env}, which is not set; "
                "export it before starting termdesk."
            )
        return value


class ConsoleSettings(_Section):
    """The agent console (`termdesk tui`): key remapping by binding id, live-update interval, theme."""

    # Binding id -> keys, e.g. {"ticket.reply" = "r,R"}; `?` in the console lists the ids.
    keymap: dict[str, str] = {}
    # SQLite: how often the console looks for new events. PostgreSQL is notified at once instead (LISTEN).
    poll_seconds: float = Field(default=0.5, gt=0, le=60)
    # PostgreSQL: how often the listening console still checks the newest event id, in case a notification
    # was lost (the listening connection is reopened with backoff whenever it drops).
    feed_safety_seconds: float = Field(default=10.0, gt=0, le=3600)
    # Composer text is saved as a draft this long after the last keystroke, so a killed console loses little.
    autosave_seconds: float = Field(default=2.0, gt=0, le=60)
    theme: str = "textual-dark"


class AutomationSettings(_Section):
    """`[automation]`: the scheduler inside `termdesk serve` (SLA moments, time rules, auto-close, rules)."""

    enabled: bool = True
    # Rules react to events within this time (a steady pass over a million tickets takes ~0.1 s).
    interval_seconds: float = Field(default=5.0, gt=0)


class ReportSettings(_Section):
    """`[reports]`: how `termdesk report` and the reports screen compute."""

    # Serve whole-day ranges from the per-day cache (core/reports/daycache.py, migration 0009's tables and
    # triggers) instead of the base tables: seconds become a fraction of a second on a big desk, with the
    # same numbers to the last bit (tests/test_report_day_cache.py).
    day_cache: bool = True
    # How many past days `termdesk serve` (at start and after each UTC midnight) and `termdesk check --warm`
    # fill in the cache ahead of the first report; 0: none, the first report of a range fills it.
    warm_days: int = Field(default=400, ge=0, le=36_600)


class Settings(_Section):
    automation: AutomationSettings = AutomationSettings()
    database: DatabaseSettings = DatabaseSettings()
    desk: DeskSettings = DeskSettings()
    logging: LoggingSettings = LoggingSettings()
    mail: MailSettings = MailSettings()
    mailbox: list[MailboxSettings] = []
    smtp: SmtpSettings = SmtpSettings()
    console: ConsoleSettings = ConsoleSettings()
    reports: ReportSettings = ReportSettings()

    @field_validator("mailbox")
    @classmethod
    def _unique_mailbox_names(cls, value: list[MailboxSettings]) -> list[MailboxSettings]:
        names = [mailbox.name for mailbox in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"mailbox names must be unique; {', '.join(duplicates)} appears twice")
        return value


def load_settings(path: Path | None) -> Settings:
    """Read the config file (or defaults when there is none) into Settings."""
    if path is None:
        env = os.environ.get("TERMDESK_CONFIG")
        path = Path(env) if env else None
    if path is None:
        return Settings()
    try:
        raw = path.expanduser().read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"The config file {path} does not exist; copy config.example.toml there or fix --config."
        ) from None
    except OSError as error:
        raise ConfigError(f"The config file {path} cannot be read ({error.strerror}); check its permissions.") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"The config file {path} is not valid TOML ({error}); fix that line.") from None
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(
            f"The config file {path} has a bad value at `{where}` ({first['msg']}); "
            "see config.example.toml for the expected form."
        ) from None


def choose_database_url(cli_url: str | None, settings: Settings) -> str:
    """Apply the documented precedence; the result may be a bare path or a URL."""
    for candidate in (cli_url, os.environ.get("TERMDESK_DB"), settings.database.url):
        if candidate:
            return candidate
    return str(default_sqlite_path())
