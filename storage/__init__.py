"""Persistence for termdesk: models, engines and sessions, migrations, and query helpers.

Nothing here knows about the domain rules in `core` or the screens in `tui`.
"""
