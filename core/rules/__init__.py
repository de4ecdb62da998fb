"""Rules: triggers, condition groups and actions kept in the database, run on the change feed.

`model` validates a rule's parts (and converts to/from TOML), `match` evaluates
conditions against a ticket's facts, `actions` carries them out (or describes
them for a dry run), `engine` feeds events to rules exactly once, `store`
is the admin side (CRUD, import/export, dry run).
"""
