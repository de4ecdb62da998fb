"""Mail stored on disk, for `termdesk ingest`: single .eml files, mbox files and Maildir folders.

Each source yields raw bytes one message at a time, so a mailbox of many
gigabytes is imported in constant memory; a message that cannot be read is
reported and skipped, never the end of the import.
"""

from __future__ import annotations

import logging
import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.errors import BadArgument

log = logging.getLogger("termdesk.mail.sources")


@dataclass(frozen=True)
class StoredMail:
    origin: str  # file path, or "path#key" inside an mbox/Maildir, for messages a person reads
    data: bytes


def _looks_like_mbox(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(5) == b"From "


def _is_maildir(path: Path) -> bool:
    return path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir()


def count_messages(paths: list[Path]) -> int | None:
    """How many messages the paths hold, when that is cheap to know (for a progress bar)."""
    total = 0
    for path in paths:
        if _is_maildir(path):
            total += sum(1 for folder in ("cur", "new") for item in (path / folder).iterdir() if item.is_file())
        elif path.is_dir():
            total += sum(1 for item in path.rglob("*.eml") if item.is_file())
        elif path.is_file() and not _looks_like_mbox(path):
            total += 1
        else:
            return None  # an mbox would have to be read twice to count
    return total


def read_stored_mail(paths: list[Path]) -> Iterator[StoredMail]:
    for path in paths:
        if not path.exists():
            raise BadArgument(f"{path} does not exist; give .eml files, mbox files or Maildir folders.")
        if _is_maildir(path):
            yield from _maildir(path)
        elif path.is_dir():
            for item in sorted(path.rglob("*.eml")):
                if item.is_file():
                    yield StoredMail(str(item), item.read_bytes())
        elif _looks_like_mbox(path):
            yield from _mbox(path)
        else:
            yield StoredMail(str(path), path.read_bytes())


def _mbox(path: Path) -> Iterator[StoredMail]:
    box = mailbox.mbox(str(path), create=False)
    try:
        for key in box.iterkeys():
            try:
                data = box.get_bytes(key)
            except (OSError, KeyError, ValueError) as error:
                log.warning("skipped unreadable message %s#%s: %s", path, key, error)
                continue
            yield StoredMail(f"{path}#{key}", data)
    finally:
        box.close()


def _maildir(path: Path) -> Iterator[StoredMail]:
    box = mailbox.Maildir(str(path), factory=None, create=False)
    for key in sorted(box.iterkeys()):
        try:
            data = box.get_bytes(key)
        except (OSError, KeyError) as error:
            log.warning("skipped unreadable message %s#%s: %s", path, key, error)
            continue
        yield StoredMail(f"{path}#{key}", data)
