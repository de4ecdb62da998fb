"""The terminal front ends: the Textual console and the Typer CLI (tui/cli.py); they call core, never SQL."""
