"""The agent console: a keyboard-driven Textual app over `core.Desk` (`termdesk tui --as HANDLE`)."""

from tui.console.app import ConsoleApp

__all__ = ["ConsoleApp"]
