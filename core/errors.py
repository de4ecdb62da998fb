"""Errors a person can cause or fix; each carries one sentence naming the problem and the fix."""

from __future__ import annotations


class DeskError(Exception):
    """Base class; `str(error)` is the sentence shown to the user."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadArgument(DeskError):
    """A value given by the user cannot be used (unknown status, empty subject, …)."""

    exit_code = 2


class UnknownAgent(DeskError):
    """The acting agent does not exist or is deactivated."""

    exit_code = 3


class NotFound(DeskError):
    """The thing does not exist *or the actor may not see it*: the two answer alike."""

    exit_code = 4


class Forbidden(DeskError):
    """The actor's role does not allow an administrative operation.

    Never used for tickets: a ticket the actor may not see is NotFound.
    """

    exit_code = 5


class Conflict(DeskError):
    """Someone changed the ticket since the actor last read it."""

    exit_code = 6


class ConfigError(DeskError):
    """The configuration file or environment cannot be used."""

    exit_code = 7
