"""Email for the desk: parsing, the loop guard, threading, intake of raw mail, and IMAP sync.

Mail flows raw bytes -> `parse.parse_message` -> `guard` flags -> `intake`
(thread onto a ticket or open one, exactly once) ; `imap` and the `ingest`
command are two sources feeding the same intake.
"""
