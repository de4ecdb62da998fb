"""The agent console: a keyboard-driven Textual app over `core.Desk` (`termdesk tui --as HANDLE`).

Importing this package sets Textual's frame rate to 120 updates per second
unless TEXTUAL_FPS says otherwise. Textual repaints a changed screen on its
next frame tick, and a screen resumed after an idle pause waits a whole frame,
so at the default 60 every key waited ~16.7 ms before its repaint (bench/tui.py:
j/k took 16.6 ms, nearly all of it the wait; at 120, 8.4 ms). Textual reads the
variable once, when it is first imported, so this must run before that: the
CLI imports the console (and with it Textual) only in the commands that open it.
"""

import os

os.environ.setdefault("TEXTUAL_FPS", "120")

from tui.console.app import ConsoleApp  # noqa: E402

__all__ = ["ConsoleApp"]
