"""Storage failures a person can act on, each carrying one sentence naming the problem and the fix."""

from __future__ import annotations


class StorageError(Exception):
    """Base class; `str(error)` is the sentence shown to the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DatabaseUnavailable(StorageError):
    """The database cannot be reached or opened."""


class DatabaseBusy(StorageError):
    """A write waited past the busy timeout."""


class SchemaMissing(StorageError):
    """The database has no (or an older) termdesk schema."""
